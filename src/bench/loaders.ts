// Who generates the load (`--loaders K`): this thread (K = 1), or K worker threads
// (loader-worker.ts), each with its own connections and a share of the clients (client i goes to
// loader i mod K) and, in an open loop, of the rate. Every loader builds its own share of the
// envelopes before the run, keeps to one schedule (the start time on a clock every thread shares,
// `epochNowMs`), and reports its windows and latency histogram; they add up exactly
// (`mergeOutcomes`). A single loader builds its envelopes on every core too (parallel-prepare.ts).

import { Worker } from "node:worker_threads";

import type { ClusterConfig } from "../ledger/cluster.js";
import { LatencyHistogram } from "./histogram.js";
import { type LoadConnections, connectLoad } from "./load-connections.js";
import { type LoadMode, type LoadOutcome, type LoadProgress, median, runLoad } from "./load-driver.js";
import type { LoaderInit, LoaderMessage } from "./loader-worker.js";
import { prepareInParallel } from "./parallel-prepare.js";
import type { PreparedWorkload } from "./prepared-workload.js";
import { type WorkloadSettings, createWorkload } from "./workload.js";

const WORKER_URL = new URL("./loader-worker.js", import.meta.url);
const SECOND_MS = 1_000;

/** A load's outcome, as a loader thread sends it: the histogram encoded. */
export type SerializedOutcome = Omit<LoadOutcome, "histogram"> & { readonly histogram: string; readonly builtOnDemand: number };

export interface LoaderPlan {
  readonly cluster: ClusterConfig;
  /** The workload's settings, its key seed included (every loader derives the same keys). */
  readonly settings: WorkloadSettings;
  readonly perClient: number;
  readonly mode: LoadMode;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Called with the share of the clients whose envelopes are built, 0 .. 1. */
  readonly onPrepared?: (fraction: number) => void;
  readonly signal?: AbortSignal;
}

/** Loaders ready to run: envelopes built, connections open. */
export interface Loaders {
  run(startAtMs: number, onSecond: (progress: LoadProgress) => void): Promise<LoadOutcome & { readonly builtOnDemand: number }>;
  close(): Promise<void>;
}

/** Adds up the outcomes of loaders that ran on one schedule. */
export function mergeOutcomes(outcomes: readonly SerializedOutcome[]): LoadOutcome & { readonly builtOnDemand: number } {
  const histogram = new LatencyHistogram();
  for (const outcome of outcomes) histogram.add(LatencyHistogram.decode(outcome.histogram));
  const length = Math.min(...outcomes.map((outcome) => outcome.windows.length));
  const windows = Array.from({ length }, (_, second) => outcomes.reduce((sum, outcome) => sum + outcome.windows[second]!, 0));
  const sum = (field: "committed" | "errors" | "warmupCommitted" | "retries" | "offered" | "noFreeKey" | "dropped" | "inFlightAtEnd" | "builtOnDemand"): number =>
    outcomes.reduce((total, outcome) => total + outcome[field], 0);
  const errorsByKind: Record<string, number> = {};
  for (const outcome of outcomes) for (const [kind, count] of Object.entries(outcome.errorsByKind)) errorsByKind[kind] = (errorsByKind[kind] ?? 0) + count;
  return {
    committed: sum("committed"),
    windows,
    throughputTps: median(windows),
    latency: histogram.summary(),
    errors: sum("errors"),
    histogram,
    warmupCommitted: sum("warmupCommitted"),
    errorsByKind,
    firstFailure: outcomes.find((outcome) => outcome.firstFailure !== undefined)?.firstFailure,
    retries: sum("retries"),
    offered: sum("offered"),
    noFreeKey: sum("noFreeKey"),
    dropped: sum("dropped"),
    inFlightAtEnd: sum("inFlightAtEnd"),
    stoppedEarly: outcomes.some((outcome) => outcome.stoppedEarly),
    builtOnDemand: sum("builtOnDemand"),
  };
}

/** Loader k's share of the clients: every K-th from k. */
export function loaderClients(clients: number, loaders: number, loader: number): number[] {
  const share: number[] = [];
  for (let client = loader; client < clients; client += loaders) share.push(client);
  return share;
}

/** Loader k's share of an open loop's rate (a closed loop is shared by its clients). */
function loaderMode(mode: LoadMode, loaders: number): LoadMode {
  return mode.kind === "open" ? { kind: "open", ratePerSecond: mode.ratePerSecond / loaders } : mode;
}

/** The load generated in this thread, on `workload` (the one the setup ran on). */
export async function startInThread(workload: PreparedWorkload, plan: LoaderPlan): Promise<Loaders> {
  await prepareInParallel(workload, { settings: plan.settings, perClient: plan.perClient, onProgress: plan.onPrepared, signal: plan.signal });
  const clients = Array.from({ length: workload.clients }, (_, client) => client);
  const connections = await connectLoad(plan.cluster, workload, clients, plan.signal);
  return {
    async run(startAtMs, onSecond) {
      const outcome = await runLoad({
        submitterOf: (client) => connections.submitterOf(client),
        workload,
        clients,
        mode: plan.mode,
        warmupMs: plan.warmupMs,
        durationMs: plan.durationMs,
        startAtMs,
        onSecond,
        signal: plan.signal,
      });
      return { ...outcome, builtOnDemand: workload.builtOnDemand };
    },
    close: () => connections.close(),
  };
}

/**
 * `count` loader threads, each ready (envelopes built, connected) when this resolves. The signal
 * firing before then ends the threads at once and rejects: a thread building its envelopes reads
 * no message until it is done, which can take minutes (as parallel-prepare.ts ends its threads).
 * Once they are ready it stops their load, which then reports what it measured.
 */
export async function startThreads(count: number, plan: LoaderPlan): Promise<Loaders> {
  const { authority: _authority, ...settings } = plan.settings;
  const threads = Array.from({ length: count }, (_, loader) => new LoaderThread(loader, count, plan, settings));
  let ready = false;
  let stopPreparing: (() => void) | undefined;
  const onAbort = (): void => {
    if (ready) threads.forEach((thread) => thread.stop());
    else stopPreparing?.();
  };
  plan.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      stopPreparing = () => reject(new Error("stopped while building the envelopes"));
      if (plan.signal?.aborted === true) stopPreparing();
      Promise.all(threads.map((thread) => thread.ready)).then(() => resolve(), reject);
    });
    ready = true;
    // A signal that fired as the last thread became ready found none to stop.
    if (plan.signal?.aborted === true) threads.forEach((thread) => thread.stop());
  } catch (error) {
    plan.signal?.removeEventListener("abort", onAbort);
    await Promise.all(threads.map((thread) => thread.terminate()));
    throw error;
  }
  return {
    async run(startAtMs, onSecond) {
      // The loaders report each second on their own; this thread reports their sum once a second.
      const timer = setInterval(() => {
        const latest = threads.map((thread) => thread.progress).filter((progress): progress is LoadProgress => progress !== undefined);
        if (latest.length === 0) return;
        onSecond({
          phase: latest[0]!.phase,
          elapsedS: latest[0]!.elapsedS,
          lastSecond: latest.reduce((total, progress) => total + progress.lastSecond, 0),
          committed: latest.reduce((total, progress) => total + progress.committed, 0),
          errors: latest.reduce((total, progress) => total + progress.errors, 0),
          inFlight: latest.reduce((total, progress) => total + progress.inFlight, 0),
        });
      }, SECOND_MS);
      try {
        return mergeOutcomes(await Promise.all(threads.map((thread) => thread.run(startAtMs))));
      } finally {
        clearInterval(timer);
        plan.signal?.removeEventListener("abort", onAbort);
      }
    },
    close: async () => {
      await Promise.all(threads.map((thread) => thread.terminate()));
    },
  };
}

/** One loader thread and the messages to and from it. */
class LoaderThread {
  readonly ready: Promise<void>;
  progress: LoadProgress | undefined;
  private readonly worker: Worker;
  private readonly clients: number;
  private prepared = 0;
  private onDone: ((outcome: SerializedOutcome) => void) | undefined;
  private failed: ((error: Error) => void) | undefined;

  constructor(loader: number, count: number, plan: LoaderPlan, settings: Omit<WorkloadSettings, "authority">) {
    const clients = loaderClients(plan.settings.clients, count, loader);
    this.clients = clients.length;
    this.worker = new Worker(WORKER_URL);
    const init: LoaderInit = { cluster: plan.cluster, settings, clients, perClient: plan.perClient, mode: loaderMode(plan.mode, count), warmupMs: plan.warmupMs, durationMs: plan.durationMs };
    this.ready = new Promise<void>((resolve, reject) => {
      this.failed = reject;
      this.worker.on("message", (message: LoaderMessage) => {
        switch (message.type) {
          case "prepared":
            this.prepared = message.clients;
            plan.onPrepared?.(this.prepared / this.clients);
            break;
          case "ready":
            resolve();
            break;
          case "second":
            this.progress = message.progress;
            break;
          case "done":
            this.onDone?.(message.outcome);
            break;
          case "error":
            this.failed?.(new Error(message.message));
            break;
        }
      });
      this.worker.once("error", (error) => this.failed?.(error));
      this.worker.once("exit", (code) => this.failed?.(new Error(`loader thread ${loader} exited (code ${code}) before it finished`)));
    });
    this.worker.postMessage({ type: "init", init });
  }

  run(startAtMs: number): Promise<SerializedOutcome> {
    return new Promise((resolve, reject) => {
      this.failed = reject;
      this.onDone = (outcome) => {
        this.failed = undefined;
        resolve(outcome);
      };
      this.worker.postMessage({ type: "start", startAtMs });
    });
  }

  stop(): void {
    this.worker.postMessage({ type: "stop" });
  }

  async terminate(): Promise<void> {
    this.failed = undefined;
    await this.worker.terminate();
  }
}

/** Starts the loaders the plan asks for: `count` threads, or this thread for 1. */
export function startLoaders(count: number, workload: PreparedWorkload, plan: LoaderPlan): Promise<Loaders> {
  return count === 1 ? startInThread(workload, plan) : startThreads(count, plan);
}

/** For a loader thread: its share of the workload, built, connected and ready to run; `onPrepared` gets the clients built so far. */
export async function prepareShare(init: LoaderInit, onPrepared: (clients: number) => void): Promise<{ workload: PreparedWorkload; connections: LoadConnections }> {
  const workload = createWorkload(init.settings);
  let done = 0;
  workload.prepareClients(init.clients, init.perClient, (built) => {
    done += built.length;
    if (built.length > 0) onPrepared(done);
  });
  const connections = await connectLoad(init.cluster, workload, init.clients, undefined);
  return { workload, connections };
}
