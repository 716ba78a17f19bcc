// A thread that builds (and in signed mode signs) a share of a workload's envelopes before a
// run: the workload is deterministic from its settings (seed and key seed), so this thread's copy
// builds exactly the envelopes the main thread's would, and hands them over without copying
// (their buffers are transferred). See parallel-prepare.ts.

import { parentPort } from "node:worker_threads";

import type { PreparedEnvelopes } from "./prepared-workload.js";
import { type WorkloadSettings, createWorkload } from "./workload.js";

/** What the main thread asks: build `perClient` envelopes for each of `clients`. */
export interface PrepareRequest {
  readonly settings: Omit<WorkloadSettings, "authority">;
  readonly clients: readonly number[];
  readonly perClient: number;
}

/** What the thread answers, a few clients at a time; `done` on the last message. */
export interface PrepareReply {
  readonly prepared: ReadonlyArray<{ readonly client: number } & PreparedEnvelopes>;
  readonly done: boolean;
}

parentPort?.once("message", (request: PrepareRequest) => {
  const workload = createWorkload(request.settings);
  // A reply per PREPARE_PROGRESS_CLIENTS clients, and the last one `done`.
  workload.prepareClients(request.clients, request.perClient, (built, done) => {
    const prepared = built.map((client) => ({ client, ...workload.exportPrepared(client) }));
    // Each slab and offsets array owns its whole buffer (made for it in prepareClient).
    const transfer = prepared.flatMap(({ slab, offsets }) => [slab.buffer as ArrayBuffer, offsets.buffer as ArrayBuffer]);
    parentPort!.postMessage({ prepared, done } satisfies PrepareReply, transfer);
  });
});
