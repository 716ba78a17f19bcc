// The deterministic state machines that consensus orders requests for (DESIGN.md, "execution";
// issue 3 §2). Execution is separate from agreement: the consensus core hands committed batches
// over in sequence order and never looks inside a request; the `Executor` (executor.ts) runs
// each batch against an `Application` and owns the exactly-once rule; the application owns
// everything else, including where the exactly-once table is stored, so that one state digest
// and one snapshot cover the whole replicated state.
//
// Implementations: the ledger application (ledger-application.ts: the key-value store, the token
// ledger, or both in one cluster, over one authenticated state tree) and the simulator's
// hash-chain application (src/sim/hash-chain-app.ts).

import type { ClientId, ClientRequest, Digest, Signature } from "../consensus/pbft/types.js";

/** One row of the exactly-once table: a client's last recorded request and its result. */
export interface ClientEntry {
  readonly client: ClientId;
  readonly timestamp: number;
  /**
   * The recorded request's signature. It tells a retransmission of that very request (same
   * signature: answered with the cached result) from a different request the client signed with
   * the same timestamp (refused as stale: the timestamp is taken).
   */
  readonly signature: Signature;
  readonly result: Uint8Array;
}

/**
 * How a client's timestamps must advance for its requests to take effect.
 * - "increasing": any timestamp above the last recorded one (PBFT §4.1); the first may be any.
 * - "sequential": exactly the last recorded one plus one, starting at 1. This is the account
 *   nonce rule of the ledger (seed 000 §6): a transaction is valid only with the account's
 *   next nonce, so a signed transaction can take effect at most once and only in the order the
 *   client numbered it.
 */
export type TimestampRule = "increasing" | "sequential";

/**
 * Why the executor refused to run a request that is authentic: its timestamp is below the
 * client's next one ("stale": already used, but not the last recorded, whose result is cached)
 * or above it ("gap": only under the sequential rule).
 */
export type OutOfTurn = "stale" | "gap";

/**
 * The stateless verdict on a request, reached before its batch runs: either it may run (with
 * whatever the application derived from it, typically the decoded transaction), or it is
 * committed with `result` and no effect at all.
 */
export type Admission<Admitted> =
  | { readonly admitted: true; readonly value: Admitted }
  | { readonly admitted: false; readonly result: Uint8Array };

export interface Application<Admitted = unknown> {
  readonly timestampRule: TimestampRule;

  /**
   * Checks what needs no state (form, the client's signature) for every request of a committed
   * batch, in order. Pure and independent per request, so it may run in a worker pool while the
   * previous batch executes. Never throws for bad input.
   */
  admit(requests: readonly ClientRequest[]): Admission<Admitted>[];

  /** The client's last recorded request (the exactly-once table, which the core reads too). */
  lastReply(client: ClientId): ClientEntry | undefined;

  /**
   * Runs an admitted request that is its client's next (the executor checked). The request
   * takes its client's turn whatever the result, ok or error: the executor then records it.
   * Deterministic; an invalid operation is an error result, never a throw.
   */
  execute(request: ClientRequest, admitted: Admitted): Uint8Array;

  /**
   * Stores `entry` as its client's last recorded request. `admitted` is what admission derived
   * from that request (the value `execute` just ran), so the application need not derive it from
   * the entry again.
   */
  record(entry: ClientEntry, admitted: Admitted): void;

  /** The deterministic result of a request refused as out of turn; `nextTimestamp` is the one it needed. */
  outOfTurnResult(reason: OutOfTurn, nextTimestamp: number): Uint8Array;

  /** A digest of the whole state, client table included; equal states give equal digests. */
  stateDigest(): Digest;

  /** A self-contained copy of the state that `restore` accepts; later execution must not change it. */
  snapshot(): unknown;

  /**
   * Replaces the whole state with a copy taken by `snapshot` (possibly on another replica).
   * Throws, leaving the state unchanged, if `snapshot` is not one this application made.
   */
  restore(snapshot: unknown): void;
}
