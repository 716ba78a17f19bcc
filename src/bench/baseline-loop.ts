// The baseline's closed loop (issue 5 §1): `clients` simulated clients, each with one transaction
// outstanding, against the replica's execution and persistence path in this process.
//
// A client's envelope goes through the intake (baseline-admission.ts: decode, verify once) and
// waits; the loop takes every waiting transaction, up to `batchSize`, as the next batch, which the
// block pipeline executes at once and writes as block `seq`. When that write is durable (the
// point where a replica would reply), the batch's clients have their latencies recorded and submit
// their next envelopes. Batches are pipelined as a replica's are: while batch k is being written,
// batch k + 1 may already execute from the transactions waiting, and LMDB folds the writes queued
// meanwhile into one transaction (one fsync). A replica bounds the batches between the last stable
// checkpoint and the newest by its watermark window; the loop bounds unwritten batches the same.
// What a replica does only for other replicas (pausing at checkpoint heights so state transfer
// can pin the store, signing blocks for their certificates) has no counterpart here.
//
// Measurement: nothing during warm-up; then for `durationS` seconds every durable transaction with
// an ok result counts as committed (its latency from submission to durability recorded), and
// every refusal (dropped at intake, or an error result) as an error. At the end the loop stops
// taking batches, drops what is waiting, and returns once the writes in flight are durable.

import { performance } from "node:perf_hooks";

import { resultErrorCode } from "../app/result.js";
import type { ClientRequest } from "../consensus/pbft/types.js";
import type { BlockPipeline, CommittedBlock } from "../node/block-pipeline.js";
import type { EnvelopeAdmission } from "./baseline-admission.js";
import type { BaselineResult } from "./baseline.js";
import { LatencyHistogram } from "./histogram.js";
import { median } from "./load-driver.js";
import type { BenchWorkload } from "./types.js";

export interface ClosedLoopOptions {
  readonly workload: BenchWorkload;
  readonly admission: EnvelopeAdmission;
  readonly pipeline: BlockPipeline;
  readonly clients: number;
  readonly batchSize: number;
  /** Most batches executed and not yet durable. */
  readonly writesInFlightMax: number;
  readonly warmupS: number;
  readonly durationS: number;
  readonly onSecond?: (committedSoFar: number) => void;
  readonly signal?: AbortSignal;
}

interface Waiting {
  readonly client: number;
  readonly request: ClientRequest;
  readonly submittedMs: number;
}

const MS_PER_SECOND = 1000;

export class ClosedLoop {
  private readonly options: ClosedLoopOptions;
  /** Admitted transactions waiting for a batch; at most one per client. */
  private readonly waiting: Waiting[] = [];
  private writesInFlight = 0;
  private admissionsInFlight = 0;
  private phase: "warm-up" | "timed" | "stopping" = "warm-up";
  private failure: { readonly error: unknown } | undefined;
  private finish: (() => void) | undefined;
  private readonly histogram = new LatencyHistogram();
  private readonly windows: number[];
  private committedTimed = 0;
  private errorsTimed = 0;
  private timedStartMs = 0;
  private timedEndMs = 0;
  private cpuStart: NodeJS.CpuUsage | undefined;
  private cpuSeconds = 0;
  /** Whole seconds of the timed window that ran: all of them unless the signal cut the run short. */
  private windowsMeasured = 0;
  private peakRssBytes = 0;
  /** The warm-up's and the timed window's end. */
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(options: ClosedLoopOptions) {
    this.options = options;
    this.windows = new Array<number>(Math.floor(options.durationS)).fill(0);
  }

  /**
   * Runs warm-up and the timed window. The signal ends it early, with what was measured (whole
   * seconds only); rejects with the first failure (a store write, the verification pool, a bug).
   */
  async run(): Promise<BaselineResult> {
    const { signal, warmupS, clients } = this.options;
    signal?.throwIfAborted();
    const drained = new Promise<void>((resolve) => {
      this.finish = resolve;
    });
    const onAbort = (): void => this.stop(true);
    signal?.addEventListener("abort", onAbort, { once: true });
    const secondTimer = setInterval(() => this.onSecond(), MS_PER_SECOND);
    if (warmupS === 0) this.startTimed();
    else this.timers.push(setTimeout(() => this.startTimed(), warmupS * MS_PER_SECOND));
    this.submit(Array.from({ length: clients }, (_, client) => client));
    try {
      await drained;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      clearInterval(secondTimer);
      for (const timer of this.timers) clearTimeout(timer);
    }
    if (this.failure !== undefined) throw this.failure.error;
    const windows = this.windows.slice(0, this.windowsMeasured);
    return {
      committed: this.committedTimed,
      windows,
      throughputTps: median(windows),
      latency: this.histogram.summary(),
      errors: this.errorsTimed,
      histogram: this.histogram,
      cpuSeconds: this.cpuSeconds,
      peakRssBytes: this.peakRssBytes,
    };
  }

  private startTimed(): void {
    if (this.phase !== "warm-up") return;
    this.phase = "timed";
    this.timedStartMs = performance.now();
    this.timedEndMs = this.timedStartMs + this.options.durationS * MS_PER_SECOND;
    this.cpuStart = process.cpuUsage();
    this.sampleRss();
    this.timers.push(setTimeout(() => this.stop(), this.options.durationS * MS_PER_SECOND));
  }

  /** Ends the run: no new batches or submissions; resolves `run` once the writes in flight are durable. */
  private stop(early = false): void {
    if (this.phase === "stopping") return;
    if (this.phase === "timed" && this.cpuStart !== undefined) {
      const cpu = process.cpuUsage(this.cpuStart);
      this.cpuSeconds = (cpu.user + cpu.system) / 1e6;
      this.sampleRss();
      const measuredMs = Math.min(performance.now(), this.timedEndMs) - this.timedStartMs;
      this.windowsMeasured = early ? Math.min(this.windows.length, Math.floor(measuredMs / MS_PER_SECOND)) : this.windows.length;
    }
    this.phase = "stopping";
    this.waiting.length = 0;
    this.settleIfDrained();
  }

  private fail(error: unknown): void {
    this.failure ??= { error };
    this.stop();
  }

  private settleIfDrained(): void {
    if (this.phase === "stopping" && this.writesInFlight === 0 && this.admissionsInFlight === 0) this.finish?.();
  }

  private onSecond(): void {
    if (this.phase === "timed") this.sampleRss();
    if (this.phase === "stopping") return;
    try {
      this.options.onSecond?.(this.committedTimed);
    } catch (error) {
      this.fail(error);
    }
  }

  private sampleRss(): void {
    this.peakRssBytes = Math.max(this.peakRssBytes, process.memoryUsage.rss());
  }

  /** `clients` each take their next envelope and send it through the intake together. */
  private submit(clients: readonly number[]): void {
    if (this.phase === "stopping" || clients.length === 0) return;
    let envelopes: Uint8Array[];
    try {
      envelopes = clients.map((client) => this.options.workload.next(client));
    } catch (error) {
      // A workload that throws is a bug in the benchmark, not input to measure.
      this.fail(error);
      return;
    }
    const submittedMs = performance.now();
    this.admissionsInFlight += 1;
    this.options.admission.admit(envelopes).then(
      (verdicts) => {
        this.admissionsInFlight -= 1;
        if (this.phase === "stopping") return this.settleIfDrained();
        const refused: number[] = [];
        verdicts.forEach((verdict, index) => {
          const client = clients[index]!;
          if (verdict.ok) {
            this.waiting.push({ client, request: verdict.request, submittedMs });
          } else {
            this.countError(performance.now());
            refused.push(client);
          }
        });
        // A replica drops such an envelope; its client moves on to its next one. On the next turn,
        // so that a workload of nothing but bad envelopes cannot starve the timers (a submission
        // after the end does nothing).
        if (refused.length > 0) setImmediate(() => this.submit(refused));
        this.pump();
      },
      (error: unknown) => {
        this.admissionsInFlight -= 1;
        this.fail(error);
      },
    );
  }

  /** Executes batches from the waiting transactions while the write window has room. */
  private pump(): void {
    const { pipeline, batchSize, writesInFlightMax } = this.options;
    while (this.phase !== "stopping" && this.waiting.length > 0 && this.writesInFlight < writesInFlightMax) {
      const batch = this.waiting.splice(0, batchSize);
      let committed: Promise<CommittedBlock>;
      try {
        // The digest is consensus's name for the batch; nothing on this path reads it.
        committed = pipeline.commit({ seq: pipeline.height + 1, view: 0, digest: "", requests: batch.map((waiting) => waiting.request) });
      } catch (error) {
        // Execution runs inside `commit` and throws only on a bug (an application invariant).
        this.fail(error);
        return;
      }
      this.writesInFlight += 1;
      committed
        .then(
          (block) => {
            this.writesInFlight -= 1;
            this.onDurable(batch, block);
          },
          (error: unknown) => {
            this.writesInFlight -= 1;
            throw error;
          },
        )
        .catch((error: unknown) => this.fail(error));
    }
  }

  private onDurable(batch: readonly Waiting[], block: CommittedBlock): void {
    const nowMs = performance.now();
    block.executed.forEach((executed, index) => {
      const { submittedMs } = batch[index]!;
      if (resultErrorCode(executed.result) === undefined) this.countCommitted(nowMs, nowMs - submittedMs);
      else this.countError(nowMs);
    });
    this.submit(batch.map((waiting) => waiting.client));
    this.pump();
    this.settleIfDrained();
  }

  private countCommitted(nowMs: number, latencyMs: number): void {
    if (!this.inTimedWindow(nowMs)) return;
    this.committedTimed += 1;
    const second = Math.floor((nowMs - this.timedStartMs) / MS_PER_SECOND);
    if (second < this.windows.length) this.windows[second]! += 1;
    this.histogram.recordMs(latencyMs);
  }

  private countError(nowMs: number): void {
    if (this.inTimedWindow(nowMs)) this.errorsTimed += 1;
  }

  private inTimedWindow(nowMs: number): boolean {
    return this.phase === "timed" && nowMs < this.timedEndMs;
  }
}
