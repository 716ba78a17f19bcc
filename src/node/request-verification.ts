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
// Memory. Inputs waiting for verdicts are bounded in count and bytes (their frames' sizes), with
// separate budgets for replicas' consensus messages and for clients' requests, and within the
// clients' budget a share per client connection: one client flooding forged signatures fills its
// own share, never the room its peers' pre-prepares need (a dropped pre-prepare costs a view
// change). An input over a bound is dropped and counted: clients retransmit their requests, and
// the protocol retransmits consensus messages (status exchange). Verdicts are bounded by the
// PrecomputedVerifier (valid and invalid ones apart, so forged signatures never push out the
// verdicts the core needs), and forgotten when the requests they answered for execute.
//
// Session requests (issue 5, `--auth session`; session-requests.ts). A session request carries no
// signature: a backup may accept it in a pre-prepare only once its own copy arrived from the
// client over an attached session. The client sends it to every replica at once, but the primary's
// pre-prepare can overtake the client's copy, so a pre-prepare whose session requests are not all
// recorded waits here, like one waiting for verdicts, until they are (`sessionArrived`) or until
// `sessionWaitMs` passed (`expire`); then it goes on and the core refuses it, and the replica
// catches up from the others' certificates. Certificates, view changes and new views need no
// wait: 2f + 1 replicas vouch for their batches.
//
// Backpressure. At most `batchesInFlightMax` batches are at the pool at once; beyond that the
// signatures keep collecting into batches that leave as answers come back, so a saturated pool
// makes batches larger rather than the queue longer. A pool that still answers "queue-full"
// gets the batch again later; only a pool that fails otherwise sends inputs on unverified.

import { primaryOf } from "../consensus/pbft/quorum.js";
import type { ClientRequest, Input } from "../consensus/pbft/types.js";
import { type SignedItem, VerifyPoolError, positiveInteger } from "../crypto/verify-pool.js";
import { type SessionRequestStats, type SessionRequests, isSessionRequest, sessionRequestKey } from "./session-requests.js";
import { type PrecomputedVerdictStats, PrecomputedVerifier, signedItemKey, signedItemOfEnvelope } from "./signature-pool.js";

/** The core inputs that can carry client requests. */
export type StagedInput = Extract<Input, { type: "message" | "request" }>;

/** Who sent an input: a client (a "request" input) or a replica (a "message" input, even one relaying a request). */
export type InputOrigin = "replica" | "client";

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
  /** A batch of `items` signatures came back from the pool after `seconds`. */
  batchVerified?(seconds: number, items: number): void;
  /** A batch failed (its inputs went on to the core, which verifies them inline). */
  batchFailed?(error: unknown): void;
}

export interface RequestVerificationOptions<S extends object> {
  /** Undefined: no pool, every input goes straight to the core, which verifies inline. */
  readonly pool: VerdictSource | undefined;
  /** Receives the verdicts; the core's crypto must consult the same instance (`verifier`). Default: a new one with the bound below. */
  readonly verifier?: PrecomputedVerifier;
  /** Valid verdicts the default verifier keeps. */
  readonly verdictsMax?: number;
  /** Hands an input to the core (its verdicts are in the verifier by then), with the source it was submitted from. */
  readonly deliver: (input: StagedInput, source: S) => void;
  /** A batch is sent to the pool once it holds this many signatures, without waiting for the turn to end. */
  readonly batchItemsMax?: number;
  /** Batches at the pool and not answered yet; past it, signatures wait in the stage. */
  readonly batchesInFlightMax?: number;
  /** Most replica inputs (consensus messages) waiting for verdicts or behind one of their source that is, and their bytes. */
  readonly replicaInputsMax?: number;
  readonly replicaBytesMax?: number;
  /** The same for client requests, over all client connections. */
  readonly clientInputsMax?: number;
  readonly clientBytesMax?: number;
  /** The share of one client connection (one source) of the clients' budget. */
  readonly clientSourceInputsMax?: number;
  readonly clientSourceBytesMax?: number;
  readonly hooks?: VerificationHooks;
  /** The session requests received; with it, a pre-prepare waits for the session requests it carries (see the header). */
  readonly sessions?: SessionRequests;
  /**
   * Whether this replica has executed `request` (its client's last executed timestamp is at least
   * the request's). Its session copy is forgotten then, and never comes again, so a pre-prepare
   * carrying it (the primary retransmitting a batch the backups already executed) must not wait
   * for it: that wait held every later pre-prepare of the primary for sessionWaitMs (seen as
   * one-second stalls of a single client). The core then drops such a pre-prepare (as a
   * duplicate of the one it holds, or as invalid when it committed the slot from a certificate).
   */
  readonly hasExecuted?: (request: ClientRequest) => boolean;
  /** How long a pre-prepare waits for its session requests. Default 1,000. */
  readonly sessionWaitMs?: number;
  /** The cluster's n: only the view's primary's pre-prepares wait for session requests. Without it none wait. */
  readonly replicaCount?: number;
  /** Runs `flush` after the current turn's input has been read; default: setImmediate. */
  readonly schedule?: (flush: () => void) => void;
  /** Clock for the batch latency hook; default: performance.now(). */
  readonly nowMs?: () => number;
}

export interface WaitingStats {
  /** Inputs waiting for verdicts or for an earlier input of their source. */
  readonly inputs: number;
  readonly bytes: number;
}

export interface RequestVerificationStats {
  readonly waiting: Readonly<Record<InputOrigin, WaitingStats>>;
  /** Inputs dropped because a waiting bound was reached. */
  readonly inputsDropped: Readonly<Record<InputOrigin, number>>;
  /** Signatures collected and not sent to the pool yet. */
  readonly collectingItems: number;
  /** Batches sent to the pool and not answered yet. */
  readonly batchesInFlight: number;
  readonly batchesVerified: number;
  readonly batchesFailed: number;
  /** Batches the pool refused as "queue-full" and that were sent again later. */
  readonly batchesDeferred: number;
  /** Signatures the pool answered. */
  readonly itemsVerified: number;
  /** Session requests pre-prepares are waiting for, and the waits that ran out. */
  readonly sessionWaits: number;
  readonly sessionWaitsExpired: number;
  /** The session table's figures; undefined without one. */
  readonly sessionRequests: SessionRequestStats | undefined;
  readonly verdicts: PrecomputedVerdictStats;
  /** The pool's own figures; undefined without a pool. */
  readonly pool: VerdictSourceStats | undefined;
}

const VERIFY_BATCH_ITEMS_MAX_DEFAULT = 1_024;
/** Enough to keep every worker of a large machine busy (the pool splits a batch across its workers). */
const VERIFY_BATCHES_IN_FLIGHT_MAX_DEFAULT = 16;
const VERIFY_REPLICA_INPUTS_MAX_DEFAULT = 4_096;
const VERIFY_REPLICA_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
const VERIFY_CLIENT_INPUTS_MAX_DEFAULT = 4_096;
const VERIFY_CLIENT_BYTES_MAX_DEFAULT = 32 * 1024 * 1024;
/**
 * One client connection's share: a gateway carries many users' requests over one connection, and
 * its requests wait only for one batch's verdicts (milliseconds), so a few hundred suffice.
 */
const VERIFY_CLIENT_SOURCE_INPUTS_MAX_DEFAULT = 1_024;
const VERIFY_CLIENT_SOURCE_BYTES_MAX_DEFAULT = 8 * 1024 * 1024;
/** Valid verdicts kept: a few watermark windows of full default batches (512 × 256). */
const VERIFY_VERDICTS_MAX_DEFAULT = 262_144;
/** A client sends a session request to every replica at once; a second covers a slow link, not a lost one. */
export const SESSION_WAIT_MS_DEFAULT = 1_000;

interface Waiting<S> {
  readonly source: S;
  readonly origin: InputOrigin;
  readonly input: StagedInput;
  readonly bytes: number;
  /** Batches this input still needs the verdicts of. */
  outstanding: number;
}

/** One source's inputs in arrival order, and their bytes. */
interface SourceQueue<S> {
  readonly entries: Waiting<S>[];
  bytes: number;
}

interface Batch<S> {
  readonly items: SignedItem[];
  readonly keys: string[];
  readonly waiters: Waiting<S>[];
  sentAtMs: number;
}

/** Inputs waiting for one session request, since `sinceMs`. */
interface SessionWait<S> {
  readonly waiters: Waiting<S>[];
  readonly sinceMs: number;
}

interface Budget {
  readonly inputsMax: number;
  readonly bytesMax: number;
  inputs: number;
  bytes: number;
}

export class RequestVerification<S extends object = object> {
  /** The verdicts; pass it to the core's crypto (ReplicaCrypto's `requestVerifier`). */
  readonly verifier: PrecomputedVerifier;
  private readonly pool: VerdictSource | undefined;
  private readonly deliver: (input: StagedInput, source: S) => void;
  private readonly batchItemsMax: number;
  private readonly batchesInFlightMax: number;
  private readonly budgets: Readonly<Record<InputOrigin, Budget>>;
  private readonly clientSourceInputsMax: number;
  private readonly clientSourceBytesMax: number;
  private readonly hooks: VerificationHooks;
  private readonly schedule: (flush: () => void) => void;
  private readonly nowMs: () => number;
  /** Per source, its inputs in arrival order; a source with nothing waiting has no entry. */
  private readonly queues = new Map<S, SourceQueue<S>>();
  /** Key of every signature in a batch not answered yet (sent or not) → that batch. */
  private readonly inFlight = new Map<string, Batch<S>>();
  /** The key computed for a request object, so that `executed` can forget its verdict cheaply. */
  private readonly keyOf = new WeakMap<ClientRequest, string>();
  /** Batches not sent yet, oldest first; the last one may still be collecting. */
  private readonly unsent: Batch<S>[] = [];
  private flushScheduled = false;
  private readonly dropped: Record<InputOrigin, number> = { replica: 0, client: 0 };
  private batchesInFlight = 0;
  private batchesVerified = 0;
  private batchesFailed = 0;
  private batchesDeferred = 0;
  private itemsVerified = 0;
  private readonly sessions: SessionRequests | undefined;
  private readonly hasExecuted: ((request: ClientRequest) => boolean) | undefined;
  private readonly sessionWaitMs: number;
  private readonly replicaCount: number | undefined;
  /** Session request key → the inputs waiting for it, oldest first. */
  private readonly sessionWaits = new Map<string, SessionWait<S>>();
  private sessionWaitsExpired = 0;
  private closed = false;

  constructor(options: RequestVerificationOptions<S>) {
    this.pool = options.pool;
    this.verifier = options.verifier ?? new PrecomputedVerifier({ verdictsMax: options.verdictsMax ?? VERIFY_VERDICTS_MAX_DEFAULT });
    this.deliver = options.deliver;
    this.batchItemsMax = positiveInteger("batchItemsMax", options.batchItemsMax ?? VERIFY_BATCH_ITEMS_MAX_DEFAULT);
    this.batchesInFlightMax = positiveInteger("batchesInFlightMax", options.batchesInFlightMax ?? VERIFY_BATCHES_IN_FLIGHT_MAX_DEFAULT);
    const budget = (name: InputOrigin, inputsMax: number, bytesMax: number): Budget => ({
      inputsMax: positiveInteger(`${name}InputsMax`, inputsMax),
      bytesMax: positiveInteger(`${name}BytesMax`, bytesMax),
      inputs: 0,
      bytes: 0,
    });
    this.budgets = {
      replica: budget("replica", options.replicaInputsMax ?? VERIFY_REPLICA_INPUTS_MAX_DEFAULT, options.replicaBytesMax ?? VERIFY_REPLICA_BYTES_MAX_DEFAULT),
      client: budget("client", options.clientInputsMax ?? VERIFY_CLIENT_INPUTS_MAX_DEFAULT, options.clientBytesMax ?? VERIFY_CLIENT_BYTES_MAX_DEFAULT),
    };
    this.clientSourceInputsMax = positiveInteger("clientSourceInputsMax", options.clientSourceInputsMax ?? VERIFY_CLIENT_SOURCE_INPUTS_MAX_DEFAULT);
    this.clientSourceBytesMax = positiveInteger("clientSourceBytesMax", options.clientSourceBytesMax ?? VERIFY_CLIENT_SOURCE_BYTES_MAX_DEFAULT);
    this.hooks = options.hooks ?? {};
    this.sessions = options.sessions;
    this.hasExecuted = options.hasExecuted;
    this.sessionWaitMs = positiveInteger("sessionWaitMs", options.sessionWaitMs ?? SESSION_WAIT_MS_DEFAULT);
    this.replicaCount = options.replicaCount === undefined ? undefined : positiveInteger("replicaCount", options.replicaCount);
    this.schedule = options.schedule ?? ((flush) => void setImmediate(flush));
    this.nowMs = options.nowMs ?? (() => performance.now());
  }

  /**
   * Takes an input from `source` (its connection) whose frame was `bytes` long: hands it to the
   * core now when nothing of its source waits and every signature it carries has a verdict, and
   * otherwise once they do. `signed` is the signature of a client request input whose envelope
   * the caller has already decoded (it is not decoded again). Returns false when the input was
   * dropped (its budget or its source's share was used up).
   */
  submit(source: S, input: StagedInput, bytes: number, signed?: SignedItem): boolean {
    if (this.closed) return false;
    const origin: InputOrigin = input.type === "request" ? "client" : "replica";
    const queue = this.queues.get(source);
    const missing = this.missingSessions(input);
    if (this.pool === undefined && queue === undefined && missing.length === 0) {
      this.deliver(input, source);
      return true;
    }
    const admitted = this.admits(origin, queue, bytes);
    // An input that would have to wait and has no room is dropped before anything is decoded.
    if (!admitted && queue !== undefined) return this.drop(origin);
    const unverified = this.pool === undefined ? [] : this.unverified(input, signed);
    if (queue === undefined && unverified.length === 0 && missing.length === 0) {
      this.deliver(input, source);
      return true;
    }
    if (!admitted) return this.drop(origin);
    const waiting: Waiting<S> = { source, origin, input, bytes, outstanding: missing.length };
    const nowMs = missing.length > 0 ? this.nowMs() : 0;
    for (const key of missing) {
      const wait = this.sessionWaits.get(key);
      if (wait === undefined) this.sessionWaits.set(key, { waiters: [waiting], sinceMs: nowMs });
      else wait.waiters.push(waiting);
    }
    const batches = new Set<Batch<S>>();
    for (const { key, item } of unverified) {
      const batch = this.inFlight.get(key) ?? this.collect(key, item);
      if (!batches.has(batch)) {
        batches.add(batch);
        batch.waiters.push(waiting);
      }
    }
    waiting.outstanding += batches.size;
    if (queue === undefined) this.queues.set(source, { entries: [waiting], bytes });
    else {
      queue.entries.push(waiting);
      queue.bytes += bytes;
    }
    this.budgets[origin].inputs++;
    this.budgets[origin].bytes += bytes;
    if (this.unsent.length > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      this.schedule(() => {
        this.flushScheduled = false;
        this.send();
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

  /** A session request was recorded (it arrived over an attached session): the inputs waiting for it may go on. */
  sessionArrived(request: ClientRequest): void {
    if (this.sessionWaits.size === 0 || this.closed) return;
    const key = sessionRequestKey(request);
    const wait = this.sessionWaits.get(key);
    if (wait === undefined) return;
    this.sessionWaits.delete(key);
    this.settleWaiters(wait.waiters);
  }

  /** Ends the session waits older than `sessionWaitMs`: their inputs go on, and the core judges them as they are. */
  expire(nowMs: number = this.nowMs()): void {
    const waiters: Waiting<S>[] = [];
    for (const [key, wait] of this.sessionWaits) {
      if (nowMs - wait.sinceMs < this.sessionWaitMs) break; // Map order is arrival order
      this.sessionWaits.delete(key);
      this.sessionWaitsExpired++;
      for (const waiting of wait.waiters) waiters.push(waiting);
    }
    if (waiters.length > 0) this.settleWaiters(waiters);
  }

  stats(): RequestVerificationStats {
    const waiting = (budget: Budget): WaitingStats => ({ inputs: budget.inputs, bytes: budget.bytes });
    return {
      waiting: { replica: waiting(this.budgets.replica), client: waiting(this.budgets.client) },
      inputsDropped: { ...this.dropped },
      collectingItems: this.unsent.reduce((items, batch) => items + batch.items.length, 0),
      batchesInFlight: this.batchesInFlight,
      batchesVerified: this.batchesVerified,
      batchesFailed: this.batchesFailed,
      batchesDeferred: this.batchesDeferred,
      itemsVerified: this.itemsVerified,
      sessionWaits: this.sessionWaits.size,
      sessionWaitsExpired: this.sessionWaitsExpired,
      sessionRequests: this.sessions?.stats(),
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
    this.sessionWaits.clear();
    this.unsent.length = 0;
    for (const budget of Object.values(this.budgets)) {
      budget.inputs = 0;
      budget.bytes = 0;
    }
    await this.pool?.close?.();
  }

  /** Whether an input of `origin` and `bytes` fits its budget and, from a client, its source's share. */
  private admits(origin: InputOrigin, queue: SourceQueue<S> | undefined, bytes: number): boolean {
    const budget = this.budgets[origin];
    if (budget.inputs + 1 > budget.inputsMax || budget.bytes + bytes > budget.bytesMax) return false;
    if (origin === "replica") return true;
    const queued = queue?.entries.length ?? 0;
    const queuedBytes = queue?.bytes ?? 0;
    return queued + 1 <= this.clientSourceInputsMax && queuedBytes + bytes <= this.clientSourceBytesMax;
  }

  private drop(origin: InputOrigin): false {
    this.dropped[origin]++;
    return false;
  }

  /** The keys of the session requests a pre-prepare carries that have not arrived from their clients, once each. */
  private missingSessions(input: StagedInput): string[] {
    const sessions = this.sessions;
    if (sessions === undefined || input.type !== "message" || input.message.type !== "pre-prepare") return [];
    // Only the view's primary's own pre-prepare may hold inputs back: any other replica's would be
    // refused by the core anyway, and must not occupy the replicas' budget for sessionWaitMs.
    const pp = input.message;
    if (this.replicaCount === undefined || input.from !== pp.replica || pp.replica !== primaryOf(pp.view, this.replicaCount)) return [];
    let missing: Set<string> | undefined;
    for (const request of pp.requests) {
      if (!isSessionRequest(request) || sessions.has(request) || this.hasExecuted?.(request) === true) continue;
      (missing ??= new Set()).add(sessionRequestKey(request));
    }
    return missing === undefined ? [] : [...missing];
  }

  /** The signatures carried by `input` that have no verdict yet, with their keys. */
  private unverified(input: StagedInput, signed: SignedItem | undefined): { key: string; item: SignedItem }[] {
    const unverified: { key: string; item: SignedItem }[] = [];
    for (const request of requestsCarried(input)) {
      // Session requests carry no signature (session-requests.ts).
      if (isSessionRequest(request)) continue;
      let key = this.keyOf.get(request);
      if (key !== undefined && this.verifier.knows(key)) continue;
      // The caller's item, or the envelope decoded here. An envelope that does not decode needs
      // no signature check: the core refuses it first.
      const item =
        input.type === "request" && signed !== undefined
          ? signed
          : request.operation instanceof Uint8Array
            ? signedItemOfEnvelope(request.operation)
            : undefined;
      if (item === undefined) continue;
      if (key === undefined) {
        key = signedItemKey(item);
        this.keyOf.set(request, key);
        if (this.verifier.knows(key)) continue;
      }
      unverified.push({ key, item });
    }
    return unverified;
  }

  /** Adds one signature to the batch being collected; a full batch leaves (when the cap allows) and a new one starts. */
  private collect(key: string, item: SignedItem): Batch<S> {
    let batch = this.unsent.at(-1);
    if (batch === undefined || batch.items.length >= this.batchItemsMax) {
      if (batch !== undefined) this.send();
      batch = { items: [], keys: [], waiters: [], sentAtMs: 0 };
      this.unsent.push(batch);
    }
    batch.items.push(item);
    batch.keys.push(key);
    this.inFlight.set(key, batch);
    return batch;
  }

  /** Sends unsent batches, oldest first, while fewer than batchesInFlightMax are at the pool. */
  private send(): void {
    const pool = this.pool;
    if (this.closed || pool === undefined) return;
    while (this.batchesInFlight < this.batchesInFlightMax) {
      const batch = this.unsent.shift();
      if (batch === undefined) return;
      batch.sentAtMs = this.nowMs();
      this.batchesInFlight++;
      pool.verifyBatch(batch.items).then(
        (verdicts) => this.onVerdicts(batch, verdicts),
        (error: unknown) => this.onFailure(batch, error),
      );
    }
  }

  private onVerdicts(batch: Batch<S>, verdicts: Uint8Array): void {
    this.batchesInFlight--;
    if (this.closed) return;
    this.batchesVerified++;
    this.itemsVerified += batch.items.length;
    this.hooks.batchVerified?.((this.nowMs() - batch.sentAtMs) / 1000, batch.items.length);
    batch.keys.forEach((key, index) => {
      this.verifier.remember(key, verdicts[index] === 1);
      if (this.inFlight.get(key) === batch) this.inFlight.delete(key);
    });
    this.settle(batch);
    this.send();
  }

  /**
   * A pool that is full ("queue-full") while batches of ours are in it is backpressure: the
   * batch goes back to the front and leaves when one of those comes back. Any other error (a
   * worker that died, the pool broken) must not lose the inputs: they go on to the core without
   * verdicts and are verified there, inline. A closed stage drops them.
   */
  private onFailure(batch: Batch<S>, error: unknown): void {
    this.batchesInFlight--;
    if (this.closed) return;
    if (error instanceof VerifyPoolError && error.code === "queue-full" && this.batchesInFlight > 0) {
      this.batchesDeferred++;
      this.unsent.unshift(batch);
      return;
    }
    this.batchesFailed++;
    this.hooks.batchFailed?.(error);
    for (const key of batch.keys) if (this.inFlight.get(key) === batch) this.inFlight.delete(key);
    this.settle(batch);
    this.send();
  }

  private settle(batch: Batch<S>): void {
    this.settleWaiters(batch.waiters);
  }

  /** One thing each of `waiters` waited for is in; the sources whose front input has everything go on. */
  private settleWaiters(waiters: readonly Waiting<S>[]): void {
    const sources = new Set<S>();
    for (const waiting of waiters) {
      waiting.outstanding--;
      if (waiting.outstanding === 0) sources.add(waiting.source);
    }
    for (const source of sources) this.release(source);
  }

  /** Delivers the source's inputs from the front for as long as they have all their verdicts. */
  private release(source: S): void {
    const queue = this.queues.get(source);
    if (queue === undefined) return;
    while (queue.entries.length > 0 && (queue.entries[0] as Waiting<S>).outstanding === 0) {
      const waiting = queue.entries.shift() as Waiting<S>;
      queue.bytes -= waiting.bytes;
      const budget = this.budgets[waiting.origin];
      budget.inputs--;
      budget.bytes -= waiting.bytes;
      this.deliver(waiting.input, source);
      // Delivery may have stopped the stage (a fatal error, a stop).
      if (this.closed) return;
    }
    if (queue.entries.length === 0) this.queues.delete(source);
  }
}

/**
 * The client requests an input carries, wherever in the message they sit (duplicates included).
 * VIEW-CHANGE and NEW-VIEW name batches by digest (consensus/pbft/batches.ts) and the core refuses
 * one that carries requests, so theirs are not verified: a faulty peer's stuffed VIEW-CHANGE
 * would only cost the pool.
 */
export function requestsCarried(input: StagedInput): readonly ClientRequest[] {
  if (input.type === "request") return [input.request];
  const message = input.message;
  switch (message.type) {
    case "request":
      return [message.request];
    case "pre-prepare":
    case "batch":
      return message.requests;
    case "commit-certificate":
      return message.prePrepare.requests;
    default:
      return [];
  }
}
