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

/** Clients per reply: small enough that progress shows, large enough that messages are few. */
const CLIENTS_PER_REPLY = 16;

parentPort?.once("message", (request: PrepareRequest) => {
  const workload = createWorkload(request.settings);
  let batch: Array<{ client: number } & PreparedEnvelopes> = [];
  const send = (done: boolean): void => {
    // Each slab and offsets array owns its whole buffer (made for it in prepareClient).
    const transfer = batch.flatMap(({ slab, offsets }) => [slab.buffer as ArrayBuffer, offsets.buffer as ArrayBuffer]);
    parentPort!.postMessage({ prepared: batch, done } satisfies PrepareReply, transfer);
    batch = [];
  };
  for (const client of request.clients) {
    workload.prepareClient(client, request.perClient);
    batch.push({ client, ...workload.exportPrepared(client) });
    if (batch.length >= CLIENTS_PER_REPLY) send(false);
  }
  send(true);
});
