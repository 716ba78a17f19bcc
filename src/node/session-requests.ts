// The session-authenticated requests a replica has received (issue 5, `--auth session`).
//
// A session request carries no signature (app/transaction.ts, format version 2): its client
// attached its key to the connection once, with a signature over that connection's handshake
// transcript, and the connection's per-frame MAC authenticates every request after that (seed
// 003's MAC authenticators; PBFT §4.1 lets the normal case use MACs). Such a request convinces
// only the replica that received it. So the client sends it to every replica, each replica
// records here what arrived on a session its key had attached to, and the core's crypto accepts a
// session request (`PbftCrypto.verifyRequest`) only when it is recorded here, byte for byte, or
// when 2f + 1 replicas vouched for its batch (a certificate: f + 1 correct replicas among them
// recorded it). A faulty primary therefore cannot order a session request the client never sent:
// no correct backup would prepare it.
//
// Identity: (client, timestamp) plus the envelope bytes, compared in full; the client and
// timestamp fields of a recorded request were derived from the envelope when it arrived, and
// equal envelopes mean equal fields. Memory: entries leave when their request executes; a client
// key holds at most SESSION_REQUESTS_PER_CLIENT_MAX (its oldest leaves first), and the oldest of
// all leave once `entriesMax` entries or `bytesMax` bytes are kept (requests nobody orders). The
// queue that finds the oldest keeps left entries until it is twice the live ones plus 1,024, then
// sweeps them, so it holds at most that many slots.
//
// Liveness caveat (Aardvark's "MAC attack"): a client whose key is attached can send a request to
// the primary alone (or different requests at one nonce to different replicas); the backups then
// refuse the pre-prepare and the replicas change view. So replicas take session requests only
// when their operator allows it (`--session-auth`): for clients the operator trusts not to do
// that (its own gateway, a load generator), never for the public.

import type { ClientRequest } from "../consensus/pbft/types.js";

/** Kept session requests: a few per client of a large load (one in flight per key, plus retries). */
export const SESSION_REQUESTS_MAX_DEFAULT = 131_072;
/** Their envelopes' bytes at most (a few hundred bytes each in practice, up to 129 KiB). */
export const SESSION_REQUEST_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
/** Entries one client key may hold: its request in flight and a few retransmitted or newer ones. */
export const SESSION_REQUESTS_PER_CLIENT_MAX = 4;

export interface SessionRequestStats {
  readonly entries: number;
  readonly bytes: number;
  readonly recorded: number;
  readonly evicted: number;
  /** Slots of the arrival queue that finds the oldest entry, left entries included: at most 2 × entries + 1,024 after each call. */
  readonly queued: number;
}

/** One kept request. `live` turns false when it leaves, so the arrival queue can skip it. */
interface SessionEntry {
  readonly client: string;
  readonly timestamp: number;
  readonly envelope: Uint8Array;
  live: boolean;
}

export class SessionRequests {
  /**
   * Each client's kept entries, oldest first (at most SESSION_REQUESTS_PER_CLIENT_MAX). Looked up
   * by the client's string alone: `has` runs three times per request on the hot path (the
   * verification stage, the pre-prepare check, the reply route), and a `client:timestamp` key
   * built for each call was a new string to allocate, flatten and hash every time.
   */
  private readonly byClient = new Map<string, SessionEntry[]>();
  /** Every entry in arrival order, left ones included until the head passes them or a sweep. */
  private arrivals: SessionEntry[] = [];
  private arrivalsHead = 0;
  private entryCount = 0;
  private bytes = 0;
  private recordedCount = 0;
  private evictedCount = 0;

  constructor(
    private readonly entriesMax = SESSION_REQUESTS_MAX_DEFAULT,
    private readonly bytesMax = SESSION_REQUEST_BYTES_MAX_DEFAULT,
  ) {
    if (!Number.isSafeInteger(entriesMax) || entriesMax < 1) throw new RangeError(`entriesMax must be a positive integer, not ${entriesMax}`);
    if (!Number.isSafeInteger(bytesMax) || bytesMax < 1) throw new RangeError(`bytesMax must be a positive integer, not ${bytesMax}`);
  }

  /** Records `request`, which arrived on a session its client's key is attached to. */
  record(request: ClientRequest): void {
    this.remove(request.client, request.timestamp);
    const entry: SessionEntry = { client: request.client, timestamp: request.timestamp, envelope: request.operation, live: true };
    let entries = this.byClient.get(request.client);
    if (entries === undefined) this.byClient.set(request.client, (entries = []));
    entries.push(entry);
    this.arrivals.push(entry);
    this.entryCount++;
    this.bytes += entry.envelope.length;
    this.recordedCount++;
    while (entries.length > SESSION_REQUESTS_PER_CLIENT_MAX) this.evict(entries[0]!);
    while (this.entryCount > this.entriesMax || this.bytes > this.bytesMax) this.evict(this.oldest());
    this.sweepArrivals();
  }

  /** The oldest live entry; only called while there is one. */
  private oldest(): SessionEntry {
    for (;;) {
      const entry = this.arrivals[this.arrivalsHead++]!;
      if (entry.live) return entry;
    }
  }

  /**
   * Rebuilds the arrival queue from its live entries once it is more than twice their number
   * (plus 1,024). The whole array counts, the part the head has passed too: when the caps evict
   * through `oldest`, the left entries are all behind the head.
   */
  private sweepArrivals(): void {
    if (this.arrivals.length <= 2 * this.entryCount + 1024) return;
    this.arrivals = this.arrivals.filter((entry, index) => index >= this.arrivalsHead && entry.live);
    this.arrivalsHead = 0;
  }

  private evict(entry: SessionEntry): void {
    this.remove(entry.client, entry.timestamp);
    this.evictedCount++;
  }

  private remove(client: string, timestamp: number): void {
    const entries = this.byClient.get(client);
    if (entries === undefined) return;
    const index = entries.findIndex((entry) => entry.timestamp === timestamp);
    if (index < 0) return;
    const entry = entries[index]!;
    entry.live = false;
    this.entryCount--;
    this.bytes -= entry.envelope.length;
    entries.splice(index, 1);
    if (entries.length === 0) this.byClient.delete(client);
  }

  /** Whether exactly this request (same client, timestamp and envelope bytes) was recorded. */
  has(request: ClientRequest): boolean {
    if (typeof request.client !== "string" || typeof request.timestamp !== "number" || !(request.operation instanceof Uint8Array)) return false;
    const entries = this.byClient.get(request.client);
    if (entries === undefined) return false;
    for (const entry of entries) if (entry.timestamp === request.timestamp) return Buffer.compare(entry.envelope, request.operation) === 0;
    return false;
  }

  /** The requests executed: their entries are no longer needed. */
  forget(requests: readonly ClientRequest[]): void {
    for (const request of requests) if (isSessionRequest(request)) this.remove(request.client, request.timestamp);
    this.sweepArrivals();
  }

  stats(): SessionRequestStats {
    return { entries: this.entryCount, bytes: this.bytes, recorded: this.recordedCount, evicted: this.evictedCount, queued: this.arrivals.length };
  }
}

/** A request is a session request when its signature field is empty (app/request.ts). */
export function isSessionRequest(request: ClientRequest): boolean {
  return request.signature === "";
}

/** The identity a session request is kept and awaited under: its client and timestamp. */
export function sessionRequestKey(request: ClientRequest): string {
  return `${request.client}:${request.timestamp}`;
}
