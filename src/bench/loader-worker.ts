// A loader thread of `bulwark bench --loaders K` (loaders.ts): it rebuilds the workload from its
// settings, builds its clients' envelopes, opens its own connections, and on "start" runs its
// share of the load on the shared schedule, reporting each second and, at the end, its outcome
// with the latency histogram encoded.

import { parentPort } from "node:worker_threads";

import type { ClusterConfig } from "../ledger/cluster.js";
import { type LoadMode, type LoadProgress, runLoad } from "./load-driver.js";
import { type SerializedOutcome, prepareShare } from "./loaders.js";
import type { WorkloadSettings } from "./workload.js";

export interface LoaderInit {
  readonly cluster: ClusterConfig;
  readonly settings: Omit<WorkloadSettings, "authority">;
  readonly clients: readonly number[];
  readonly perClient: number;
  readonly mode: LoadMode;
  readonly warmupMs: number;
  readonly durationMs: number;
}

/** From the main thread. */
export type LoaderCommand = { readonly type: "init"; readonly init: LoaderInit } | { readonly type: "start"; readonly startAtMs: number } | { readonly type: "stop" };

/** To the main thread. */
export type LoaderMessage =
  | { readonly type: "prepared"; readonly clients: number }
  | { readonly type: "ready" }
  | { readonly type: "second"; readonly progress: LoadProgress }
  | { readonly type: "done"; readonly outcome: SerializedOutcome }
  | { readonly type: "error"; readonly message: string };

const port = parentPort;
if (port !== null) {
  const post = (message: LoaderMessage): void => port.postMessage(message);
  const stop = new AbortController();
  let share: Awaited<ReturnType<typeof prepareShare>> | undefined;
  let init: LoaderInit | undefined;

  const run = async (startAtMs: number): Promise<void> => {
    const { workload, connections } = share!;
    try {
      const outcome = await runLoad({
        submitterOf: (client) => connections.submitterOf(client),
        workload,
        clients: init!.clients,
        mode: init!.mode,
        warmupMs: init!.warmupMs,
        durationMs: init!.durationMs,
        startAtMs,
        onSecond: (progress) => post({ type: "second", progress }),
        signal: stop.signal,
      });
      post({ type: "done", outcome: { ...outcome, histogram: outcome.histogram.encode(), builtOnDemand: workload.builtOnDemand } });
    } finally {
      await connections.close();
      port.close();
    }
  };

  port.on("message", (command: LoaderCommand) => {
    const fail = (error: unknown): void => post({ type: "error", message: error instanceof Error ? error.message : String(error) });
    switch (command.type) {
      case "init":
        init = command.init;
        prepareShare(command.init, (clients) => post({ type: "prepared", clients })).then((prepared) => {
          share = prepared;
          post({ type: "ready" });
        }, fail);
        break;
      case "start":
        run(command.startAtMs).catch(fail);
        break;
      case "stop":
        stop.abort();
        break;
    }
  });
}
