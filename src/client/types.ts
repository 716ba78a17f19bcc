// The client's public types: what it is configured with, what a committed call returns, and the
// counters it keeps.

import type { TransactionResult } from "../app/result.js";
import type { Ed25519PrivateKey } from "../crypto/ed25519.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import type { BackoffOptions, RandomSource } from "../net/backoff.js";
import type { ConnectionSettings } from "../net/connection.js";

/** How long one attempt waits for agreement before the request is re-broadcast to every replica. */
export const REQUEST_TIMEOUT_MS_DEFAULT = 2_000;
/** How long a whole call (and `connect`) may take. */
export const DEADLINE_MS_DEFAULT = 30_000;
/** Most requests in flight at once (of different keys: one key has at most one); calls wait beyond it. */
export const IN_FLIGHT_MAX_DEFAULT = 1_024;
/** The upper bound of `inFlightMax`: each in-flight request holds its envelope and a reply per replica. */
export const IN_FLIGHT_MAX_LIMIT = 65_536;

export interface ClientOptions {
  readonly cluster: ClusterConfig;
  /** The client's key: it signs every transaction `submit` makes, and the handshakes. */
  readonly privateKey: Ed25519PrivateKey;
  /** Per attempt: after this long without agreement the request goes to every replica. Default 2,000. */
  readonly requestTimeoutMs?: number;
  /** Per call, and for `connect`. Default 30,000. */
  readonly deadlineMs?: number;
  /**
   * The nonce of the first transaction `submit` signs; default 1, the first nonce of a new
   * account. A client that restarts with a used key should pass the account's next nonce; if it
   * does not, the cluster's nonce errors tell it (see client.ts, "Nonces").
   */
  readonly firstNonce?: number;
  /** Most requests in flight at once. Default 1,024. */
  readonly inFlightMax?: number;
  /** Transport tuning; the defaults suit a real deployment. */
  readonly transport?: ClientTransportOptions;
}

export interface ClientTransportOptions {
  readonly settings?: Partial<ConnectionSettings>;
  readonly backoff?: Partial<BackoffOptions>;
  readonly connectTimeoutMs?: number;
  /** Uniform in [0, 1): jitters reconnection back-off. Default Math.random. */
  readonly random?: RandomSource;
}

export interface SubmitOptions {
  /**
   * Stops waiting for the result; the call rejects with RequestAbortedError. The transaction may
   * still commit: once sent it cannot be recalled.
   */
  readonly signal?: AbortSignal;
}

/** A result f + 1 replicas agreed on, so at least one correct replica computed it (PBFT §4.1). */
export interface Committed {
  /** The transaction's result; a failed transaction (insufficient balance, ...) is a result too. */
  readonly result: TransactionResult;
  /** The block holding the transaction, when f + 1 of the agreeing replicas named the same one; otherwise 0 (unknown). */
  readonly height: number;
  /** The nonce the transaction committed with (for `submit`, possibly not the first one tried). */
  readonly nonce: number;
  /** The replicas whose results agreed, ascending. */
  readonly replicas: readonly number[];
}

export interface ClientCounters {
  /** Client-reply frames from authenticated replicas. */
  repliesReceived: number;
  /** Replies dropped because the frame named another replica than the connection's. */
  repliesMisattributed: number;
  /** Replies for no request in flight (late, duplicate, or for a call already settled). */
  repliesUnmatched: number;
  /** Replies whose result bytes are not a valid result encoding. */
  repliesInvalid: number;
  /** Frames that did not decode, or were not client replies; each closes its connection. */
  framesRejected: number;
  /** Attempts that timed out and re-broadcast their request to every replica. */
  rebroadcasts: number;
  /** Operations signed again with a new nonce after a stale-nonce result. */
  resigned: number;
}
