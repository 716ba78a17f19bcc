// The errors a Bulwark client call can end with. Each says what happened and, where the caller can
// do something about it, what to do. A transaction-level failure (insufficient balance, a mint by
// a key that is not the authority, ...) is NOT among them for `submit`: it is a committed result,
// agreed by the cluster and final, and `submit` returns it in `Committed.result`. Only the
// convenience wrappers (`put`, `transfer`, ...) turn such a result into a `RejectedError`.

import type { TransactionErrorCode } from "../app/result.js";
import { type OperationType, TransactionDecodeError, TransactionEncodeError } from "../app/transaction.js";
import type { Committed } from "./types.js";

/** The base of every error this client throws, so a caller can catch them all at once. */
export class BulwarkClientError extends Error {
  override readonly name: string = "BulwarkClientError";
}

/** The replies one replica group sent for a request: the result they agreed on and who sent it. */
export interface ReplyGroup {
  /** The result as text ("ok done", "error nonce-gap (next nonce 7)"). */
  readonly result: string;
  readonly replicas: readonly number[];
}

/**
 * The call's deadline passed before f + 1 replicas agreed on a result. The transaction may still
 * commit: it was sent and the client does not know whether the cluster ordered it. For `submit`
 * the client keeps retrying the same signed envelope in the background (so its nonce does not
 * become a hole that stalls later requests); its result, when it comes, is discarded.
 */
export class TimeoutError extends BulwarkClientError {
  override readonly name = "TimeoutError";

  constructor(
    readonly deadlineMs: number,
    /** The request's nonce, or undefined when the call was still waiting for an in-flight slot. */
    readonly nonce: number | undefined,
    /** f + 1: how many distinct replicas had to send byte-equal results. */
    readonly matchesNeeded: number,
    /** What the replicas that answered said, largest group first. */
    readonly replies: readonly ReplyGroup[],
    detail: string,
  ) {
    super(
      nonce === undefined
        ? `no in-flight slot became free within ${deadlineMs} ms (${detail}); raise inFlightMax or submit less at once`
        : `no ${matchesNeeded} replicas agreed on a result for nonce ${nonce} within ${deadlineMs} ms: ${describeGroups(replies)}; ${detail}. The transaction may still commit`,
    );
  }
}

/** Why one replica could not serve a read, a block or a status. */
export interface ReplicaFailure {
  readonly replica: number;
  readonly reason: string;
}

/**
 * The cluster could not be reached well enough to answer: too few replicas connected for a result
 * to be accepted (TooFewReplicasError), or no replica served a read, block or proof that verified
 * (ReplicasFailedError). Either way the cluster, not the call, is the problem; retrying later may
 * succeed.
 */
export class ClusterUnavailableError extends BulwarkClientError {
  override readonly name: string = "ClusterUnavailableError";
}

/** Fewer than f + 1 replicas could be reached, so no result could ever be accepted. */
export class TooFewReplicasError extends ClusterUnavailableError {
  override readonly name = "TooFewReplicasError";

  constructor(
    readonly connected: number,
    readonly needed: number,
    detail: string,
  ) {
    super(
      `connected to ${connected} replicas, but a result needs ${needed}; ${detail}. Check that the replicas run and that their addresses in the cluster config are reachable from here`,
    );
  }
}

/** Every replica asked for a proof read, a block or a status failed; `reasons` says why, for each. */
export class ReplicasFailedError extends ClusterUnavailableError {
  override readonly name = "ReplicasFailedError";

  constructor(
    /** What was asked for ("block 7"). */
    what: string,
    readonly reasons: readonly ReplicaFailure[],
  ) {
    super(`no replica served ${what} that verified: ${reasons.length === 0 ? "no replica was asked" : reasons.map((failure) => `replica ${failure.replica}: ${failure.reason}`).join("; ")}`);
  }
}

/**
 * A committed transaction failed (a wrapper such as `transfer` throws this; `submit` returns the
 * result instead). The failure is final: the transaction used its nonce and will not run again.
 */
export class RejectedError extends BulwarkClientError {
  override readonly name = "RejectedError";

  constructor(
    readonly code: TransactionErrorCode,
    readonly operation: OperationType,
    readonly committed: Committed,
  ) {
    super(`the cluster rejected the ${operation} with nonce ${committed.nonce}: ${REJECTION_REASONS[code]}`);
  }
}

const REJECTION_REASONS: Readonly<Record<TransactionErrorCode, string>> = {
  "bad-signature": "bad-signature, its signature does not verify under its client key",
  malformed: "malformed, the replicas could not read the transaction",
  "unknown-op": "unknown-op, this cluster does not serve that operation",
  oversized: "oversized, the transaction is longer than the limit",
  "stale-nonce": "stale-nonce, its nonce was already used",
  "nonce-gap": "nonce-gap, its nonce is beyond the account's next one",
  "insufficient-balance": "insufficient-balance, the account holds less than the amount",
  "not-authority": "not-authority, only the genesis authority's key may mint",
  "amount-overflow": "amount-overflow, the total supply would pass 2^64 - 1",
};

/**
 * The client could not give its transaction a nonce the account accepts. Nothing executed: the
 * nonce errors are refusals that change no state.
 */
export class NonceError extends BulwarkClientError {
  override readonly name = "NonceError";

  constructor(
    readonly code: "stale-nonce" | "nonce-gap",
    /** The last nonce the client tried. */
    readonly nonce: number,
    /** The account's next nonce, as the cluster reported it. */
    readonly nextNonce: number,
    detail: string,
  ) {
    super(`nonce ${nonce} was refused (${code}; the account's next nonce is ${nextNonce}): ${detail}`);
  }
}

/** The client was closed while the call waited; the transaction may still commit. */
export class ClientClosedError extends BulwarkClientError {
  override readonly name = "ClientClosedError";

  constructor() {
    super("the client was closed before the cluster answered; the transaction may still commit");
  }
}

/** The caller's AbortSignal fired; the transaction may still commit (`cause` is the signal's reason). */
export class RequestAbortedError extends BulwarkClientError {
  override readonly name = "AbortError";

  constructor(reason: unknown) {
    super("the request was aborted; the transaction may still commit", { cause: reason });
  }
}

function describeGroups(groups: readonly ReplyGroup[]): string {
  if (groups.length === 0) return "no replica answered";
  return groups.map((group) => `${group.replicas.length === 1 ? "replica" : "replicas"} ${group.replicas.join(", ")} answered "${group.result}"`).join("; ");
}

/**
 * What kind of failure a client call ended with, the one classification the gateway's status codes
 * (gateway/errors.ts) and the CLI's exit codes (cli/cluster-client.ts) are both mapped from:
 *
 *   timeout         no f + 1 replicas agreed within the deadline (TimeoutError)
 *   unavailable     too few replicas reachable, or none served a read that verified (ClusterUnavailableError)
 *   rejected        the transaction committed and failed: a final answer (RejectedError)
 *   nonce           the key's nonce could not be used (NonceError), see below
 *   aborted         the caller's AbortSignal fired (RequestAbortedError)
 *   closed          the client was closed during the call (ClientClosedError)
 *   invalid-answer  the cluster answered something impossible with at most f faulty replicas
 *                   (certified blocks that do not chain): any other BulwarkClientError
 *   invalid-request the caller's own input breaks the transaction format (TransactionEncodeError,
 *                   TransactionDecodeError for a pre-signed envelope)
 *
 * A NonceError is NOT a final answer about the operation: nothing executed (nonce refusals change
 * no state), and the account's nonce moves on without the caller (another process using the key,
 * a firstNonce too high). It is therefore transient like "unavailable" (`retryable`): the gateway
 * answers it 503 and the CLI exits 3, not 1 ("the cluster said no"). Its own code lets a caller
 * still say what happened.
 */
export type ClientErrorCode = "timeout" | "unavailable" | "rejected" | "nonce" | "aborted" | "closed" | "invalid-answer" | "invalid-request";

export interface ClientErrorClass {
  readonly code: ClientErrorCode;
  /**
   * Whether the same call may succeed if tried again later: true for everything but "rejected"
   * (final), "invalid-request" (the input is wrong) and "invalid-answer" (the cluster is broken).
   */
  readonly retryable: boolean;
  /** Whether a transaction of the call may still commit (it was sent and its outcome is unknown). */
  readonly mayCommit: boolean;
}

/** The class of an error a client call rejected with; undefined for anything else (a bug, or an argument RangeError). */
export function classifyClientError(error: unknown): ClientErrorClass | undefined {
  if (error instanceof TimeoutError) return { code: "timeout", retryable: true, mayCommit: error.nonce !== undefined };
  if (error instanceof ClusterUnavailableError) return { code: "unavailable", retryable: true, mayCommit: false };
  if (error instanceof RejectedError) return { code: "rejected", retryable: false, mayCommit: false };
  if (error instanceof NonceError) return { code: "nonce", retryable: true, mayCommit: false };
  if (error instanceof RequestAbortedError) return { code: "aborted", retryable: true, mayCommit: true };
  if (error instanceof ClientClosedError) return { code: "closed", retryable: true, mayCommit: true };
  if (error instanceof BulwarkClientError) return { code: "invalid-answer", retryable: false, mayCommit: false };
  if (error instanceof TransactionEncodeError || error instanceof TransactionDecodeError) return { code: "invalid-request", retryable: false, mayCommit: false };
  return undefined;
}
