// The replica's verification stage (issue 4: "verification runs in a pool of worker threads, in
// batches, so the event loop stays free"). The PBFT core checks client signatures synchronously
// (`PbftCrypto.verifyRequest`) when a request arrives and when it validates a pre-prepare's batch
// (also inside commit certificates, view changes and new views). Done inline, that is over 90 %
// of a replica's CPU on its event loop. So every core input that carries client requests stops
// here first: the signatures it carries that have no verdict yet are sent to the worker pool,
// coalesced with those of every other input read in the same turn of the event loop (or up to
// `batchItemsMax` items), and the input is handed to the core once all its verdicts are in. The
// verdicts go into the PrecomputedVerifier that the core's crypto consults for the exact
// (key, message, signature) triple; anything it lacks (an evicted verdict, a failed batch) is
// verified inline, so the verdict is the same either way and only its cost differs.
//
// Order. Inputs from one source (one connection) reach the core in the order they arrived: an
// input waits behind an earlier one of its source even when it needs no verification itself. The
// core is safe under any reordering (the simulator reorders freely), but some orders cost
// liveness work: a prepare or pre-prepare of view v + 1 that overtakes the primary's NEW-VIEW is
// dropped as "wrong-view" and must be retransmitted, and a client's later request overtaking an
// earlier one makes the earlier one a "duplicate-request". Keeping each connection's TCP order
// avoids both; across connections there is no order to keep.
//
// Memory. Inputs waiting for verdicts are bounded in count and bytes (their frames' sizes); an
// input over either bound is dropped and counted: clients retransmit their requests, and the
// protocol retransmits consensus messages (status exchange). Verdicts are bounded by the
// PrecomputedVerifier, and forgotten when the requests they answered for execute.

import type { ClientRequest, Input, PrePrepare, PreparedCertificate, ViewChange } from "../consensus/pbft/types.js";
import type { SignedItem } from "../crypto/verify-pool.js";
import { type PrecomputedVerdictStats, PrecomputedVerifier, signedItemKey, signedItemOfEnvelope } from "./signature-pool.js";

/** The core inputs that can carry client requests. */
export type StagedInput = Extract<Input, { type: "message" | "request" }>;

/** Where verdicts come from: the VerifyPool, or a stand-in in tests. */
export interface VerdictSource {
  /** One byte per item, 1 when its signature verifies, in order. */
  verifyBatch(items: readonly SignedItem[]): Promise<Uint8Array>;
  close?(): Promise<void>;
  stats?(): VerdictSourceStats;
}

/** The part of VerifyPoolStats the metrics read. */
export interface VerdictSourceStats {
  readonly backend: string;
  readonly workerCount: number;
  readonly pendingBatches: number;
  readonly queuedChunks: number;
  readonly inFlightChunks: number;
  readonly workerCrashes: number;
}

/** Observers, for metrics; each is optional and must be cheap. */
export interface VerificationHooks {
  /** The client requests an input carries, as it arrives (before any verification). */
  requestsArrived?(requests: readonly ClientRequest[]): void;
  /** A batch of `items` signatures came back from the pool after `seconds`. */
  batchVerified?(seconds: number, items: number): void;
  /** A batch failed (its inputs went on to the core, which verifies them inline). */
  batchFailed?(error: unknown): void;
}

export interface RequestVerificationOptions {
  /** Undefined: no pool, every input goes straight to the core, which verifies inline. */
  readonly pool: VerdictSource | undefined;
  /** Receives the verdicts; the core's crypto must consult the same instance (`verifier`). Default: a new one with the bounds below. */
  readonly verifier?: PrecomputedVerifier;
  /** Bounds of the default verifier. */
  readonly verdictsMax?: number;
  readonly verdictBytesMax?: number;
  /** Hands an input to the core (its verdicts are in the verifier by then). */
  readonly deliver: (input: StagedInput) => void;
  /** A batch is sent to the pool once it holds this many signatures, without waiting for the turn to end. */
  readonly batchItemsMax?: number;
  /** Most inputs waiting for verdicts (or behind one of their source that is). */
  readonly waitingInputsMax?: number;
  /** Most bytes of frames waiting, as the caller counts them. */
  readonly waitingBytesMax?: number;
  readonly hooks?: VerificationHooks;
  /** Runs `flush` after the current turn's input has been read; default: setImmediate. */
  readonly schedule?: (flush: () => void) => void;
  /** Clock for the batch latency hook; default: performance.now(). */
  readonly nowMs?: () => number;
}

export interface RequestVerificationStats {
  /** Inputs waiting for verdicts or for an earlier input of their source. */
  readonly waitingInputs: number;
  readonly waitingBytes: number;
  /** Signatures collected for the next batch. */
  readonly collectingItems: number;
  /** Batches sent to the pool and not answered yet. */
  readonly batchesInFlight: number;
  readonly batchesVerified: number;
  readonly batchesFailed: number;
  /** Signatures sent to the pool. */
  readonly itemsVerified: number;
  /** Inputs dropped because a waiting bound was reached. */
  readonly inputsDropped: number;
  readonly verdicts: PrecomputedVerdictStats;
  /** The pool's own figures; undefined without a pool. */
  readonly pool: VerdictSourceStats | undefined;
}

export const VERIFY_BATCH_ITEMS_MAX_DEFAULT = 1_024;
export const VERIFY_WAITING_INPUTS_MAX_DEFAULT = 4_096;
export const VERIFY_WAITING_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
/** Verdicts kept: a few watermark windows of full default batches (512 × 256). */
export const VERIFY_VERDICTS_MAX_DEFAULT = 262_144;
export const VERIFY_VERDICT_BYTES_MAX_DEFAULT = 128 * 1024 * 1024;

interface Waiting {
  readonly source: object;
  readonly input: StagedInput;
  readonly bytes: number;
  /** Batches this input still needs the verdicts of. */
  outstanding: number;
}

interface Batch {
  readonly items: SignedItem[];
  readonly keys: string[];
  readonly waiters: Waiting[];
  sentAtMs: number;
}

export class RequestVerification {
  /** The verdicts; pass it to the core's crypto (ReplicaCrypto's `requestVerifier`). */
  readonly verifier: PrecomputedVerifier;
  private readonly pool: VerdictSource | undefined;
  private readonly deliver: (input: StagedInput) => void;
  private readonly batchItemsMax: number;
  private readonly waitingInputsMax: number;
  private readonly waitingBytesMax: number;
  private readonly hooks: VerificationHooks;
  private readonly schedule: (flush: () => void) => void;
  private readonly nowMs: () => number;
  /** Per source, its inputs in arrival order; a source with nothing waiting has no entry. */
  private readonly queues = new Map<object, Waiting[]>();
  /** Key of every signature in a batch not answered yet → that batch. */
  private readonly inFlight = new Map<string, Batch>();
  /** The key computed for a request object, so that `executed` can forget its verdict cheaply. */
  private readonly keyOf = new WeakMap<ClientRequest, string>();
  private collecting: Batch | undefined;
  private flushScheduled = false;
  private waitingInputs = 0;
  private waitingBytes = 0;
  private batchesInFlight = 0;
  private batchesVerified = 0;
  private batchesFailed = 0;
  private itemsVerified = 0;
  private inputsDropped = 0;
  private closed = false;

  constructor(options: RequestVerificationOptions) {
    this.pool = options.pool;
    this.verifier =
      options.verifier ??
      new PrecomputedVerifier({
        verdictsMax: options.verdictsMax ?? VERIFY_VERDICTS_MAX_DEFAULT,
        verdictBytesMax: options.verdictBytesMax ?? VERIFY_VERDICT_BYTES_MAX_DEFAULT,
      });
    this.deliver = options.deliver;
    this.batchItemsMax = positiveInteger("batchItemsMax", options.batchItemsMax ?? VERIFY_BATCH_ITEMS_MAX_DEFAULT);
    this.waitingInputsMax = positiveInteger("waitingInputsMax", options.waitingInputsMax ?? VERIFY_WAITING_INPUTS_MAX_DEFAULT);
    this.waitingBytesMax = positiveInteger("waitingBytesMax", options.waitingBytesMax ?? VERIFY_WAITING_BYTES_MAX_DEFAULT);
    this.hooks = options.hooks ?? {};
    this.schedule = options.schedule ?? ((flush) => void setImmediate(flush));
    this.nowMs = options.nowMs ?? (() => performance.now());
  }

  /**
   * Takes an input from `source` (its connection) whose frame was `bytes` long: hands it to the
   * core now when nothing of its source waits and every signature it carries has a verdict, and
   * otherwise once they do. Returns false when it was dropped (a waiting bound was reached).
   */
  submit(source: object, input: StagedInput, bytes: number): boolean {
    if (this.closed) return false;
    const requests = requestsCarried(input);
    if (requests.length > 0) this.hooks.requestsArrived?.(requests);
    if (this.pool === undefined) {
      this.deliver(input);
      return true;
    }
    const unverified = this.unverified(requests);
    const queue = this.queues.get(source);
    if (queue === undefined && unverified.length === 0) {
      this.deliver(input);
      return true;
    }
    if (this.waitingInputs + 1 > this.waitingInputsMax || this.waitingBytes + bytes > this.waitingBytesMax) {
      this.inputsDropped++;
      return false;
    }
    const waiting: Waiting = { source, input, bytes, outstanding: 0 };
    const batches = new Set<Batch>();
    for (const { key, item } of unverified) {
      const batch = this.inFlight.get(key) ?? this.collect(key, item);
      if (!batches.has(batch)) {
        batches.add(batch);
        batch.waiters.push(waiting);
      }
    }
    waiting.outstanding = batches.size;
    if (queue === undefined) this.queues.set(source, [waiting]);
    else queue.push(waiting);
    this.waitingInputs++;
    this.waitingBytes += bytes;
    if (this.collecting !== undefined && !this.flushScheduled) {
      this.flushScheduled = true;
      this.schedule(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
    // An input with nothing to verify waits only behind its source's earlier ones, and leaves when they do.
    return true;
  }

  /**
   * The requests of a batch that executed: their verdicts are no longer needed. (A view change
   * that carries them again is mostly validated from the core's own cache of validated batches;
   * otherwise its signatures are simply verified again.)
   */
  executed(requests: readonly ClientRequest[]): void {
    for (const request of requests) {
      const key = this.keyOf.get(request);
      if (key !== undefined) this.verifier.forget(key);
    }
  }

  stats(): RequestVerificationStats {
    return {
      waitingInputs: this.waitingInputs,
      waitingBytes: this.waitingBytes,
      collectingItems: this.collecting?.items.length ?? 0,
      batchesInFlight: this.batchesInFlight,
      batchesVerified: this.batchesVerified,
      batchesFailed: this.batchesFailed,
      itemsVerified: this.itemsVerified,
      inputsDropped: this.inputsDropped,
      verdicts: this.verifier.stats(),
      pool: this.pool?.stats?.(),
    };
  }

  /** Drops every waiting input (the replica is stopping) and closes the pool. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queues.clear();
    this.inFlight.clear();
    this.collecting = undefined;
    this.waitingInputs = 0;
    this.waitingBytes = 0;
    await this.pool?.close?.();
  }

  /** The signatures of `requests` that have no verdict yet, with their keys. */
  private unverified(requests: readonly ClientRequest[]): { key: string; item: SignedItem }[] {
    const unverified: { key: string; item: SignedItem }[] = [];
    for (const request of requests) {
      let key = this.keyOf.get(request);
      let item: SignedItem | undefined;
      if (key === undefined) {
        // An envelope that does not decode needs no signature check: the core refuses it first.
        item = request.operation instanceof Uint8Array ? signedItemOfEnvelope(request.operation) : undefined;
        if (item === undefined) continue;
        key = signedItemKey(item);
        this.keyOf.set(request, key);
      }
      if (this.verifier.knows(key)) continue;
      if (item === undefined) {
        // Known key but its verdict was forgotten: the item is needed again.
        item = signedItemOfEnvelope(request.operation);
        if (item === undefined) continue;
      }
      unverified.push({ key, item });
    }
    return unverified;
  }

  /** Adds one signature to the batch being collected; sends that batch first when it is full. */
  private collect(key: string, item: SignedItem): Batch {
    if (this.collecting !== undefined && this.collecting.items.length >= this.batchItemsMax) this.flush();
    this.collecting ??= { items: [], keys: [], waiters: [], sentAtMs: 0 };
    const batch = this.collecting;
    batch.items.push(item);
    batch.keys.push(key);
    this.inFlight.set(key, batch);
    return batch;
  }

  private flush(): void {
    const batch = this.collecting;
    if (batch === undefined || this.closed || this.pool === undefined) return;
    this.collecting = undefined;
    batch.sentAtMs = this.nowMs();
    this.batchesInFlight++;
    this.itemsVerified += batch.items.length;
    this.pool.verifyBatch(batch.items).then(
      (verdicts) => this.onVerdicts(batch, verdicts),
      (error: unknown) => this.onFailure(batch, error),
    );
  }

  private onVerdicts(batch: Batch, verdicts: Uint8Array): void {
    this.batchesInFlight--;
    if (this.closed) return;
    this.batchesVerified++;
    this.hooks.batchVerified?.((this.nowMs() - batch.sentAtMs) / 1000, batch.items.length);
    batch.keys.forEach((key, index) => {
      this.verifier.remember(key, verdicts[index] === 1);
      if (this.inFlight.get(key) === batch) this.inFlight.delete(key);
    });
    this.settle(batch);
  }

  /**
   * A pool error (its queue full, a worker that died, the pool broken) must not lose the inputs:
   * they go on to the core without verdicts and are verified there, inline. A closed stage drops them.
   */
  private onFailure(batch: Batch, error: unknown): void {
    this.batchesInFlight--;
    if (this.closed) return;
    this.batchesFailed++;
    this.hooks.batchFailed?.(error);
    for (const key of batch.keys) if (this.inFlight.get(key) === batch) this.inFlight.delete(key);
    this.settle(batch);
  }

  private settle(batch: Batch): void {
    const sources = new Set<object>();
    for (const waiting of batch.waiters) {
      waiting.outstanding--;
      if (waiting.outstanding === 0) sources.add(waiting.source);
    }
    for (const source of sources) this.release(source);
  }

  /** Delivers the source's inputs from the front for as long as they have all their verdicts. */
  private release(source: object): void {
    const queue = this.queues.get(source);
    if (queue === undefined) return;
    while (queue.length > 0 && (queue[0] as Waiting).outstanding === 0) {
      const waiting = queue.shift() as Waiting;
      this.waitingInputs--;
      this.waitingBytes -= waiting.bytes;
      this.deliver(waiting.input);
      // Delivery may have stopped the stage (a fatal error, a stop).
      if (this.closed) return;
    }
    if (queue.length === 0) this.queues.delete(source);
  }
}

/** The client requests an input carries, wherever in the message they sit (duplicates included). */
export function requestsCarried(input: StagedInput): readonly ClientRequest[] {
  if (input.type === "request") return [input.request];
  const message = input.message;
  switch (message.type) {
    case "request":
      return [message.request];
    case "pre-prepare":
      return message.requests;
    case "commit-certificate":
      return message.prePrepare.requests;
    case "view-change":
      return requestsOfViewChanges([message], []);
    case "new-view":
      return requestsOfViewChanges(message.viewChanges, message.prePrepares);
    default:
      return [];
  }
}

function requestsOfViewChanges(viewChanges: readonly ViewChange[], prePrepares: readonly PrePrepare[]): ClientRequest[] {
  const requests: ClientRequest[] = [];
  const add = (pp: PrePrepare): void => {
    for (const request of pp.requests) requests.push(request);
  };
  for (const vc of viewChanges) vc.prepared.forEach((certificate: PreparedCertificate) => add(certificate.prePrepare));
  prePrepares.forEach(add);
  return requests;
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, not ${value}`);
  return value;
}
