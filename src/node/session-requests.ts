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
// all leave once `entriesMax` entries or `bytesMax` bytes are kept (requests nobody orders).
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
}

export class SessionRequests {
  /** `${client}:${timestamp}` → the envelope, oldest first (Map order). */
  private readonly entries = new Map<string, Uint8Array>();
  /** Each client's entry keys, oldest first. */
  private readonly byClient = new Map<string, string[]>();
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
    const key = sessionRequestKey(request);
    this.remove(key, request.client);
    this.entries.set(key, request.operation);
    this.bytes += request.operation.length;
    let keys = this.byClient.get(request.client);
    if (keys === undefined) this.byClient.set(request.client, (keys = []));
    keys.push(key);
    this.recordedCount++;
    while (keys.length > SESSION_REQUESTS_PER_CLIENT_MAX) this.evict(keys[0]!, request.client);
    while (this.entries.size > this.entriesMax || this.bytes > this.bytesMax) {
      const oldest = this.entries.keys().next().value as string;
      this.evict(oldest, oldest.slice(0, oldest.lastIndexOf(":")));
    }
  }

  private evict(key: string, client: string): void {
    this.remove(key, client);
    this.evictedCount++;
  }

  private remove(key: string, client: string): void {
    const envelope = this.entries.get(key);
    if (envelope === undefined) return;
    this.entries.delete(key);
    this.bytes -= envelope.length;
    const keys = this.byClient.get(client);
    if (keys === undefined) return;
    const index = keys.indexOf(key);
    if (index >= 0) keys.splice(index, 1);
    if (keys.length === 0) this.byClient.delete(client);
  }

  /** Whether exactly this request (same client, timestamp and envelope bytes) was recorded. */
  has(request: ClientRequest): boolean {
    if (typeof request.client !== "string" || typeof request.timestamp !== "number" || !(request.operation instanceof Uint8Array)) return false;
    const envelope = this.entries.get(sessionRequestKey(request));
    return envelope !== undefined && Buffer.compare(envelope, request.operation) === 0;
  }

  /** The requests executed: their entries are no longer needed. */
  forget(requests: readonly ClientRequest[]): void {
    for (const request of requests) if (isSessionRequest(request)) this.remove(sessionRequestKey(request), request.client);
  }

  stats(): SessionRequestStats {
    return { entries: this.entries.size, bytes: this.bytes, recorded: this.recordedCount, evicted: this.evictedCount };
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
