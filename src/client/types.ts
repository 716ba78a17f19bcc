// The client's public types: what it is configured with, what a committed call returns, and the
// counters it keeps.

import type { TransactionResult } from "../app/result.js";
import type { Transaction } from "../app/transaction.js";
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
   * account. A client that restarts with a used key should pass the account's next nonce, or call
   * `discoverNonce()` (which `connect()` does by default). A nonce too high fails with a
   * NonceError (see client.ts, "Nonces"). One too low is NOT reliably corrected: replicas drop,
   * unanswered, a request whose nonce is at or below the key's last executed one
   * (consensus/pbft/normal-case.ts), so such calls time out.
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
  /** Uniform in [0, 1): jitters reconnection back-off and picks the replica the first read asks. Default Math.random. */
  readonly random?: RandomSource;
}

export interface SubmitOptions {
  /**
   * Stops waiting for the result; the call rejects with RequestAbortedError. The transaction may
   * still commit: once sent it cannot be recalled.
   */
  readonly signal?: AbortSignal;
}

export interface SubmitEnvelopeOptions extends SubmitOptions {
  /**
   * The envelope's client key and nonce, when the caller has already decoded it, so it is not
   * decoded again. They must be the envelope's own: the client queues the call in its key's lane
   * and matches the replicas' replies by them.
   */
  readonly decoded?: Pick<Transaction, "clientKey" | "nonce">;
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
  /** Status, proof and block answers from authenticated replicas. */
  answersReceived: number;
  /** Answers for no query in flight (late, or from another replica than the one asked). */
  answersUnmatched: number;
  /** Proofs and blocks that did not verify, and answers of the wrong kind: the next replica was asked. */
  answersRejected: number;
  /** Proofs of state older than the client had seen (a lagging replica): the next replica was asked. */
  answersStale: number;
}

/**
 * How a read is answered. "linearizable" (the default): a read transaction ordered through
 * consensus, accepted on f + 1 matching replies, so it sees every write that completed before it
 * began. "proof": one replica answers with a state proof, the block header it holds and that
 * header's commit certificate, all checked here against the cluster's keys; cheaper (no
 * consensus, no nonce), and never older than the highest height this client has already seen,
 * but possibly older than a write another client completed a moment ago.
 */
export type Consistency = "linearizable" | "proof";

export interface ReadOptions extends SubmitOptions {
  readonly consistency?: Consistency;
  /**
   * For the proof behind a "proof" read or an account: accept no state older than this height,
   * besides none older than the client has seen itself. A caller that knows of a later commit
   * than this client saw (another client's write, e.g. the gateway's writers) passes its height
   * so the read sees it. Default 0.
   */
  readonly minHeight?: number;
}

/** A key's value and the height of the state it was read from. */
export interface ReadResult {
  /** Undefined when the key has no value. */
  readonly value: Uint8Array | undefined;
  /** The block after which the key had this value (for a linearizable read, the read's own block). */
  readonly height: number;
}

/** A token account as of `height`. */
export interface AccountState {
  readonly balance: bigint;
  /** The nonce the account's next transaction must carry. */
  readonly nextNonce: number;
  readonly height: number;
}

export interface StatusOptions {
  /** How long to wait for the replicas' answers. Default 2,000. */
  readonly timeoutMs?: number;
  /** Stops waiting; the call rejects with RequestAbortedError. */
  readonly signal?: AbortSignal;
}

/**
 * What one replica says about itself. Nothing in it is certified (a faulty replica can claim
 * anything); the fields beyond `reachable` are absent when it did not answer.
 */
export interface ReplicaStatus {
  readonly replica: number;
  readonly address: string;
  /** Whether it answered within the timeout. */
  readonly reachable: boolean;
  readonly view?: number;
  readonly primary?: number;
  /** False while it takes part in a view change. */
  readonly normal?: boolean;
  readonly executedHeight?: number;
  readonly stableCheckpoint?: number;
  /** The highest block it holds a commit certificate for (0: none it knows of). */
  readonly certifiedHeight?: number;
}

/**
 * A block whose header 2f + 1 replicas certified, checked here: every signer's signature over the
 * header, and the body (when present) against the header's roots and transaction count. The
 * header carries no view (ledger/block-header.ts, "No view"), so neither does this.
 */
export interface VerifiedBlock {
  readonly height: number;
  readonly seq: number;
  /** The header hash, hex. */
  readonly hash: string;
  readonly previousHash: string;
  readonly stateRoot: string;
  readonly transactionRoot: string;
  readonly resultsRoot: string;
  readonly transactionCount: number;
  /** The transaction envelopes in block order; empty when the body was not sent (`bodyPruned`). */
  readonly transactions: readonly Uint8Array[];
  /** `results[i]` is the encoded result of `transactions[i]`. */
  readonly results: readonly Uint8Array[];
  /** `transactionIds[i]` is the id (SHA-256, hex) of `transactions[i]`: computed once, for the txRoot check. */
  readonly transactionIds: readonly string[];
  /** The replicas whose certificate signatures verified, ascending. */
  readonly signers: readonly number[];
  /**
   * True when the replica sent the header and certificate without the body: pruned there, or too
   * large to travel beside the other blocks of a `blocks` answer (`block(height)` asks for it alone).
   */
  readonly bodyPruned: boolean;
}
