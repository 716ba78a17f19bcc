// The benchmark's load generator: drives a workload's envelopes through a client for a warm-up
// and a timed window, and measures what committed.
//
// Closed loop (`--clients N`): N clients, each with one request in flight; a client sends its next
// envelope when the previous one committed. Throughput is what the cluster sustains at that
// concurrency, and latency is measured from each send.
//
// Open loop (`--rate R`): arrivals on a fixed schedule, R per second, whatever the cluster does.
// Each arrival takes the longest-free client (a key with nothing in flight: one key has at most one request
// in flight, client/client.ts); an arrival that finds none waits in a backlog for the next client
// that frees up, and is counted (`noFreeKey`). Latency is measured from the arrival's intended
// time, not from when it was sent, so a cluster that falls behind shows it in the latency
// instead of hiding it by slowing the generator down ("coordinated omission", Tene). A backlog
// beyond BACKLOG_PER_CLIENT_MAX arrivals per client drops further arrivals (counted).
//
// Timing. The run starts at `startAtMs` (the process-independent clock `epochNowMs`, so several
// loader threads share one schedule); completions before the warm-up ends are not measured, and
// the timed window is cut into whole seconds (`windows`), whose median is the throughput. A
// request that completes after the window is not counted; the driver waits up to `drainMs` for
// those still in flight, so that the caller can close its client without cutting them off.
//
// A request that times out is sent again, the same envelope (the replicas answer a retransmission
// from their reply cache, so it commits at most once), and its latency keeps counting from the
// first send: a client's later envelopes have later nonces, and skipping one would leave a nonce
// gap that refuses every later one. Any other failure stops that client; the first is reported.
//
// Cost per request: the per-client callbacks are made once, and completions update counters and
// the histogram in place; nothing is logged per request.

import { performance } from "node:perf_hooks";

import { type Committed, type SubmitEnvelopeOptions, classifyClientError } from "../client/index.js";
import { envelopeKeyAndNonce } from "./bench-keys.js";
import { LatencyHistogram } from "./histogram.js";
import type { BenchWorkload, LoadResult } from "./types.js";

/** Arrivals per client an open loop may hold back before it drops arrivals. */
const BACKLOG_PER_CLIENT_MAX = 64;
const DRAIN_MS_DEFAULT = 5_000;
const SECOND_MS = 1_000;

/** What the driver needs of a client (BulwarkClient has it). */
export interface EnvelopeSubmitter {
  submitEnvelope(envelope: Uint8Array, options?: SubmitEnvelopeOptions): Promise<Committed>;
}

export type LoadMode = { readonly kind: "closed" } | { readonly kind: "open"; readonly ratePerSecond: number };

/** Once a second: where the run is. */
export interface LoadProgress {
  readonly phase: "warm-up" | "measuring";
  /** Seconds since the start of the phase. */
  readonly elapsedS: number;
  /** Committed in the last second (warm-up included). */
  readonly lastSecond: number;
  /** Committed in the timed window so far. */
  readonly committed: number;
  readonly errors: number;
  readonly inFlight: number;
}

export interface LoadOptions {
  /** The client (connection) that sends client `client`'s envelopes. */
  readonly submitterOf: (client: number) => EnvelopeSubmitter;
  readonly workload: Pick<BenchWorkload, "next">;
  /** The clients (workload client indexes) this driver sends for. */
  readonly clients: readonly number[];
  readonly mode: LoadMode;
  readonly warmupMs: number;
  /** The timed window, a whole number of seconds in milliseconds. */
  readonly durationMs: number;
  /** When the warm-up starts, on `epochNowMs`'s clock; default now. */
  readonly startAtMs?: number;
  /** How long to wait after the window for the requests still in flight. Default 5,000. */
  readonly drainMs?: number;
  readonly onSecond?: (progress: LoadProgress) => void;
  /** Ends the run early (Ctrl-C): no more sends; the result covers what was measured. */
  readonly signal?: AbortSignal;
}

/** LoadResult plus what the driver saw beyond it. */
export interface LoadOutcome extends LoadResult {
  readonly histogram: LatencyHistogram;
  /** Committed during the warm-up (not measured). */
  readonly warmupCommitted: number;
  /** Errors by kind: a client error's class ("timeout", ...) or a refused result's code. */
  readonly errorsByKind: Readonly<Record<string, number>>;
  /** The first failure that stopped a client, if any. */
  readonly firstFailure: string | undefined;
  /** Requests sent again after a timeout, in the timed window. */
  readonly retries: number;
  /** Open loop: arrivals scheduled in the timed window. */
  readonly offered: number;
  /** Open loop: arrivals that found no free client and waited. */
  readonly noFreeKey: number;
  /** Open loop: arrivals dropped because the backlog was full. */
  readonly dropped: number;
  /** Requests still in flight when the driver stopped waiting for them. */
  readonly inFlightAtEnd: number;
  /** Whether `signal` cut the run short. */
  readonly stoppedEarly: boolean;
}

/** Milliseconds since the epoch with sub-millisecond resolution: one clock for every thread. */
export function epochNowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The median of `values` (the mean of the middle two for an even count); 0 for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** A first-in first-out queue that does not shift an array per item. */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head++]!;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

/** One client's state: its request in flight and the callbacks, made once. */
class ClientSlot {
  envelope: Uint8Array | undefined;
  /** When the request's latency starts: its first send, or (open loop) its arrival's intended time. */
  startedAtMs = 0;
  stopped = false;
  readonly onCommitted: (committed: Committed) => void;
  readonly onFailed: (error: unknown) => void;

  constructor(
    readonly client: number,
    readonly submitter: EnvelopeSubmitter,
    driver: LoadRun,
  ) {
    this.onCommitted = (committed) => driver.committed(this, committed);
    this.onFailed = (error) => driver.failed(this, error);
  }
}

class LoadRun {
  private readonly histogram = new LatencyHistogram();
  private readonly windows: number[];
  private readonly errorsByKind: Record<string, number> = {};
  private readonly slots: ClientSlot[];
  /** Open loop: clients with nothing in flight, first in first out (so the keys take turns evenly). */
  private readonly free = new Fifo<ClientSlot>();
  /** Open loop: intended times of arrivals waiting for a free client, oldest first. */
  private readonly backlog = new Fifo<number>();
  private readonly warmupEndMs: number;
  private readonly endMs: number;
  private committedInWindow = 0;
  private warmupCommitted = 0;
  private committedTotal = 0;
  private errors = 0;
  private retries = 0;
  private offered = 0;
  private noFreeKey = 0;
  private dropped = 0;
  private inFlight = 0;
  private firstFailure: string | undefined;
  private sending = true;
  private stoppedEarly = false;
  private arrivalTimer: NodeJS.Timeout | undefined;
  private nextArrivalMs = 0;
  private arrivalIntervalMs = 0;
  /** Called when sending stops, and when the last request in flight settles after that. */
  private onStopped: (() => void) | undefined;
  private onIdle: (() => void) | undefined;

  constructor(private readonly options: LoadOptions) {
    const startMs = options.startAtMs ?? epochNowMs();
    this.warmupEndMs = startMs + options.warmupMs;
    this.endMs = this.warmupEndMs + options.durationMs;
    this.windows = new Array<number>(Math.ceil(options.durationMs / SECOND_MS)).fill(0);
    this.slots = options.clients.map((client) => new ClientSlot(client, options.submitterOf(client), this));
  }

  async run(): Promise<LoadOutcome> {
    const { options } = this;
    const startMs = this.warmupEndMs - options.warmupMs;
    if (epochNowMs() < startMs) await delay(startMs - epochNowMs(), options.signal);
    const onAbort = (): void => this.stopSending(true);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted === true) this.stopSending(true);
    const progress = this.startProgress(startMs);
    const ended = setTimeout(() => this.stopSending(false), Math.max(0, this.endMs - epochNowMs()));
    try {
      if (this.sending) {
        if (options.mode.kind === "closed") {
          for (const slot of this.slots) this.send(slot);
        } else {
          for (const slot of this.slots) this.free.push(slot);
          this.arrivalIntervalMs = SECOND_MS / options.mode.ratePerSecond;
          this.nextArrivalMs = startMs;
          this.arrive();
        }
      }
      await this.whenSendingStops();
      await this.drain(options.drainMs ?? DRAIN_MS_DEFAULT);
    } finally {
      clearTimeout(ended);
      clearInterval(progress);
      clearTimeout(this.arrivalTimer);
      options.signal?.removeEventListener("abort", onAbort);
    }
    return this.outcome();
  }

  committed(slot: ClientSlot, committed: Committed): void {
    this.settle();
    const nowMs = epochNowMs();
    if (committed.result.ok) {
      this.committedTotal += 1;
      if (nowMs < this.warmupEndMs) {
        this.warmupCommitted += 1;
      } else if (nowMs < this.endMs) {
        this.committedInWindow += 1;
        this.windows[Math.floor((nowMs - this.warmupEndMs) / SECOND_MS)]! += 1;
        this.histogram.recordMicros((nowMs - slot.startedAtMs) * 1000);
      }
    } else if (this.measuring(nowMs)) {
      this.countError(committed.result.error);
    }
    slot.envelope = undefined;
    this.release(slot);
  }

  failed(slot: ClientSlot, error: unknown): void {
    this.settle();
    const kind = classifyClientError(error)?.code ?? "error";
    if (kind === "closed" || slot.stopped) {
      slot.stopped = true;
      return;
    }
    if (this.measuring(epochNowMs())) this.countError(kind);
    if (kind === "timeout") {
      // Sent again as it is, its latency still counting from the first send.
      if (this.sending) {
        if (this.measuring(epochNowMs())) this.retries += 1;
        this.submit(slot);
      }
      return;
    }
    slot.stopped = true;
    this.firstFailure ??= `client ${slot.client}: ${error instanceof Error ? error.message : String(error)}`;
  }

  private measuring(nowMs: number): boolean {
    return nowMs >= this.warmupEndMs && nowMs < this.endMs;
  }

  private countError(kind: string): void {
    this.errors += 1;
    this.errorsByKind[kind] = (this.errorsByKind[kind] ?? 0) + 1;
  }

  /** A request is no longer in flight. */
  private settle(): void {
    this.inFlight -= 1;
    if (this.inFlight === 0 && !this.sending) this.onIdle?.();
  }

  /** The slot is free for its next envelope: closed loop sends it, open loop serves the backlog or waits. */
  private release(slot: ClientSlot): void {
    if (!this.sending || slot.stopped) return;
    if (this.options.mode.kind === "closed") {
      this.send(slot);
      return;
    }
    const intendedMs = this.backlog.shift();
    if (intendedMs !== undefined) {
      this.send(slot, intendedMs);
    } else {
      this.free.push(slot);
    }
  }

  /** Sends the slot's next envelope; its latency starts at `startedAtMs` (default now). */
  private send(slot: ClientSlot, startedAtMs = epochNowMs()): void {
    slot.envelope = this.options.workload.next(slot.client);
    slot.startedAtMs = startedAtMs;
    this.submit(slot);
  }

  private submit(slot: ClientSlot): void {
    const envelope = slot.envelope!;
    this.inFlight += 1;
    slot.submitter.submitEnvelope(envelope, { decoded: envelopeKeyAndNonce(envelope) }).then(slot.onCommitted, slot.onFailed);
  }

  /** Open loop: dispatches every arrival due by now, then sleeps until the next one. */
  private arrive(): void {
    this.arrivalTimer = undefined;
    if (!this.sending) return;
    const nowMs = epochNowMs();
    while (this.nextArrivalMs <= nowMs && this.nextArrivalMs < this.endMs) {
      const intendedMs = this.nextArrivalMs;
      this.nextArrivalMs += this.arrivalIntervalMs;
      if (intendedMs >= this.warmupEndMs) this.offered += 1;
      const slot = this.free.shift();
      if (slot !== undefined) {
        this.send(slot, intendedMs);
        continue;
      }
      if (intendedMs >= this.warmupEndMs) this.noFreeKey += 1;
      if (this.backlog.length >= BACKLOG_PER_CLIENT_MAX * this.slots.length) {
        if (intendedMs >= this.warmupEndMs) this.dropped += 1;
      } else {
        this.backlog.push(intendedMs);
      }
    }
    if (this.nextArrivalMs < this.endMs) this.arrivalTimer = setTimeout(() => this.arrive(), Math.max(0, this.nextArrivalMs - epochNowMs()));
  }

  private stopSending(early: boolean): void {
    if (!this.sending) return;
    this.sending = false;
    this.stoppedEarly ||= early && epochNowMs() < this.endMs;
    clearTimeout(this.arrivalTimer);
    this.onStopped?.();
  }

  private whenSendingStops(): Promise<void> {
    if (!this.sending) return Promise.resolve();
    return new Promise((resolve) => (this.onStopped = resolve));
  }

  private drain(drainMs: number): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, drainMs);
      this.onIdle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private startProgress(startMs: number): NodeJS.Timeout | undefined {
    const { onSecond } = this.options;
    if (onSecond === undefined) return undefined;
    let lastTotal = 0;
    return setInterval(() => {
      const nowMs = epochNowMs();
      const warm = nowMs < this.warmupEndMs;
      onSecond({
        phase: warm ? "warm-up" : "measuring",
        elapsedS: Math.floor((nowMs - (warm ? startMs : this.warmupEndMs)) / SECOND_MS),
        lastSecond: this.committedTotal - lastTotal,
        committed: this.committedInWindow,
        errors: this.errors,
        inFlight: this.inFlight,
      });
      lastTotal = this.committedTotal;
    }, SECOND_MS);
  }

  private outcome(): LoadOutcome {
    // A run cut short measures only its whole seconds.
    const measuredMs = Math.min(this.endMs, epochNowMs()) - this.warmupEndMs;
    const windows = this.stoppedEarly ? this.windows.slice(0, Math.max(0, Math.floor(measuredMs / SECOND_MS))) : this.windows;
    return {
      committed: this.committedInWindow,
      windows,
      throughputTps: median(windows),
      latency: this.histogram.summary(),
      errors: this.errors,
      histogram: this.histogram,
      warmupCommitted: this.warmupCommitted,
      errorsByKind: { ...this.errorsByKind },
      firstFailure: this.firstFailure,
      retries: this.retries,
      offered: this.offered,
      noFreeKey: this.noFreeKey,
      dropped: this.dropped,
      inFlightAtEnd: this.inFlight,
      stoppedEarly: this.stoppedEarly,
    };
  }
}

/** Runs the load: warm-up, then the timed window, then waits for what is still in flight. */
export function runLoad(options: LoadOptions): Promise<LoadOutcome> {
  if (options.mode.kind === "open" && !(options.mode.ratePerSecond > 0)) throw new RangeError(`an open loop needs a positive rate; got ${options.mode.ratePerSecond}`);
  if (options.clients.length === 0) throw new RangeError("a load needs at least one client");
  return new LoadRun(options).run();
}

/**
 * Resolves after `milliseconds` (at once for none or less), or as soon as `signal` fires: at once
 * when it has fired already. It never rejects: a run that is stopping goes on to report.
 */
export function delay(milliseconds: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const timer = setTimeout(done, Math.max(0, milliseconds));
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
