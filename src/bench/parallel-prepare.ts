// Builds a workload's envelopes before a run on every core: signing is tens of microseconds an
// envelope, so the hundreds of thousands a signed run needs take seconds on one core. Each
// preparation thread (prepare-worker.ts) rebuilds the workload from its settings and builds the
// envelopes of a share of the clients; the main thread adopts them (advancing its own copy's
// draws past them, PreparedWorkload.adoptPrepared), so it can go on building where they end.

import assert from "node:assert/strict";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

import type { PrepareReply, PrepareRequest } from "./prepare-worker.js";
import type { PreparedWorkload } from "./prepared-workload.js";
import type { WorkloadSettings } from "./workload.js";

const WORKER_URL = new URL("./prepare-worker.js", import.meta.url);

export interface ParallelPrepareOptions {
  /** The settings `workload` was made from; `keySeed` must be given, so every thread derives the same keys. */
  readonly settings: WorkloadSettings;
  readonly perClient: number;
  /** Threads; default one per core. */
  readonly threads?: number;
  /** Called with the share of clients prepared so far, 0 .. 1. */
  readonly onProgress?: (fraction: number) => void;
  readonly signal?: AbortSignal;
}

/** Builds `perClient` envelopes for every client of `workload` (which has none prepared) on several threads. */
export async function prepareInParallel(workload: PreparedWorkload, options: ParallelPrepareOptions): Promise<void> {
  const { settings, perClient } = options;
  assert.ok(settings.keySeed !== undefined, "threads must share the key seed");
  const threads = Math.max(1, Math.min(options.threads ?? availableParallelism(), workload.clients));
  const { authority: _authority, ...shared } = settings;
  let prepared = 0;
  const workers: Worker[] = [];
  const onAbort = (): void => {
    for (const worker of workers) void worker.terminate();
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await Promise.all(
      Array.from({ length: threads }, (_, thread) => {
        const clients: number[] = [];
        for (let client = thread; client < workload.clients; client += threads) clients.push(client);
        const request: PrepareRequest = { settings: shared, clients, perClient };
        return new Promise<void>((resolve, reject) => {
          const worker = new Worker(WORKER_URL);
          workers.push(worker);
          let done = false;
          worker.on("message", (reply: PrepareReply) => {
            for (const { client, slab, offsets } of reply.prepared) workload.adoptPrepared(client, { slab, offsets });
            prepared += reply.prepared.length;
            options.onProgress?.(prepared / workload.clients);
            if (reply.done) {
              done = true;
              resolve();
            }
          });
          worker.once("error", reject);
          worker.once("exit", (code) => {
            if (!done && options.signal?.aborted !== true) reject(new Error(`a preparation thread exited (code ${code}) before it finished`));
            else resolve();
          });
          worker.postMessage(request);
        });
      }),
    );
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
  if (options.signal?.aborted === true) throw new Error("stopped while building the envelopes");
}
