// The ledger application: the key-value store and the token ledger (issue 3 §1-2) behind the one
// Application interface, over one authenticated state tree (ledger-state.ts). A cluster runs
// the services its config names: `createKvApplication`, `createTokenApplication`, or both in one
// cluster with `createLedgerApplication`; each is an Application, and all are deterministic.
// Every one of them answers a noop (nothing but the nonce; the benchmark's consensus-only load)
// with ok: the application handles it, not a service.
//
// Every request of a committed batch ends with exactly one result (result.ts):
//
//   refused at                         with                                 consumes the nonce
//   admission (request.ts): size,      oversized, malformed, bad-signature,  no: nothing authentic
//     form, binding, signature         unknown-op (an unknown tag)           to charge it to
//   the exactly-once rule (executor)   stale-nonce, nonce-gap                no: out of turn
//   execution (the services)           unknown-op (an operation this         yes
//                                      cluster does not serve),
//                                      not-authority, amount-overflow,
//                                      insufficient-balance
//   not refused                        an ok result                          yes
//
// The rule: a transaction consumes its nonce exactly when it is authentic (decoded, bound to its
// request, signed) and in turn (its nonce is the account's next). Then it is recorded in the
// exactly-once table and the account's next nonce advances, whatever the outcome, ok or error.
// Consuming the nonce on a failed transfer is what makes a failure final: otherwise anyone who
// saw a transfer refused for want of funds could replay it after the account is topped up.
// Nothing else consumes a nonce, so no refused request can lock a client out: after a gap, a
// forgery or a malformed request, the account's next nonce is what it was, and the executor's
// table (which the core consults to drop stale requests) agrees with it because they are
// written together (`LedgerState.recordTurn`).

import type { ClientId, ClientRequest, Digest } from "../consensus/pbft/types.js";
import type { Ed25519Verifier } from "../crypto/ed25519.js";
import type { Admission, Application, ClientEntry, OutOfTurn, TimestampRule } from "./application.js";
import { bytesToHex } from "./bytes.js";
import { kvStore } from "./kv-store.js";
import type { LedgerService } from "./ledger-service.js";
import { LedgerSnapshot, LedgerStateImport } from "./ledger-snapshot.js";
import { LedgerState, LedgerStateError, SESSION_MARK } from "./ledger-state.js";
import { admitRequest } from "./request.js";
import { encodeResult, errorResult } from "./result.js";
import { type TokenLedgerOptions, tokenLedger } from "./token-ledger.js";
import { type OperationType, type Transaction, isSessionTransaction } from "./transaction.js";

export interface LedgerApplicationOptions {
  readonly services: readonly LedgerService[];
  /**
   * Verify each transaction's signature at execution (default true). A replica whose consensus
   * core verifies requests with `verifyRequest` may turn it off: every committed request was
   * verified by f + 1 correct replicas before it could commit (see `AdmitOptions`), so results
   * and state are the same either way, and execution runs several times faster.
   */
  readonly verifySignatures?: boolean;
  readonly verifier?: Ed25519Verifier;
}

export type ServiceOptions = Omit<LedgerApplicationOptions, "services">;

/** A cluster that stores keys and values. */
export function createKvApplication(options: ServiceOptions = {}): LedgerApplication {
  return new LedgerApplication({ ...options, services: [kvStore] });
}

/** A cluster that keeps token accounts; only `authority` may mint. */
export function createTokenApplication(options: ServiceOptions & TokenLedgerOptions): LedgerApplication {
  return new LedgerApplication({ ...options, services: [tokenLedger(options)] });
}

/** A cluster that does both, over one state tree. */
export function createLedgerApplication(options: ServiceOptions & TokenLedgerOptions): LedgerApplication {
  return new LedgerApplication({ ...options, services: [kvStore, tokenLedger(options)] });
}

export class LedgerApplication implements Application<Transaction> {
  readonly timestampRule: TimestampRule = "sequential";
  private state = new LedgerState();
  private readonly serviceOf = new Map<OperationType, LedgerService>();
  private readonly verifySignatures: boolean;
  private readonly verifier: Ed25519Verifier | undefined;

  constructor(options: LedgerApplicationOptions) {
    for (const service of options.services) {
      for (const operation of service.operations) {
        if (operation === "noop") throw new Error(`ledger application: service ${service.name} handles noop, which the application answers itself`);
        const taken = this.serviceOf.get(operation);
        if (taken !== undefined) throw new Error(`ledger application: services ${taken.name} and ${service.name} both handle ${operation}`);
        this.serviceOf.set(operation, service);
      }
    }
    this.verifySignatures = options.verifySignatures ?? true;
    this.verifier = options.verifier;
  }

  /** Read access to the entries (for queries and proofs); change state only by executing. */
  get ledgerState(): LedgerState {
    return this.state;
  }

  admit(requests: readonly ClientRequest[]): Admission<Transaction>[] {
    // Execution runs committed batches only, so session requests are authentic (request.ts, `acceptSessions`).
    const options = { verifySignature: this.verifySignatures, acceptSessions: true, ...(this.verifier === undefined ? {} : { verifier: this.verifier }) };
    return requests.map((request) => {
      const admission = admitRequest(request, options);
      return admission.ok ? { admitted: true, value: admission.transaction } : { admitted: false, result: errorResult(admission.error) };
    });
  }

  lastReply(client: ClientId): ClientEntry | undefined {
    return this.state.lastTurn(client);
  }

  execute(_request: ClientRequest, transaction: Transaction): Uint8Array {
    // A noop changes nothing but the nonce, which every application advances: it is answered
    // here, the same whichever services the cluster runs.
    if (transaction.operation.type === "noop") return encodeResult({ ok: true, kind: "done" });
    const service = this.serviceOf.get(transaction.operation.type);
    if (service === undefined) return errorResult("unknown-op");
    return service.execute(this.state, transaction);
  }

  /**
   * Records `transaction`'s turn. Admission bound the entry's fields to it (request.ts): the
   * client is the hex of its key and the signature the hex of its signature ("" for a session
   * transaction), so the bytes come from the transaction and the entry gives the result.
   */
  record(entry: ClientEntry, transaction: Transaction): void {
    if (entry.timestamp !== transaction.nonce) throw new LedgerStateError(`recording nonce ${entry.timestamp} for transaction nonce ${transaction.nonce}`);
    const signature = isSessionTransaction(transaction) ? SESSION_MARK : transaction.signature;
    this.state.recordTurn(transaction.clientKey, { nonce: transaction.nonce, signature, result: entry.result }, entry.signature);
  }

  outOfTurnResult(reason: OutOfTurn, nextTimestamp: number): Uint8Array {
    return encodeResult({ ok: false, error: reason === "stale" ? "stale-nonce" : "nonce-gap", nextNonce: nextTimestamp });
  }

  /** The state root, the block's `stateRoot`; rehashes what changed since the last call. */
  stateRoot(): Uint8Array {
    return this.state.root();
  }

  /** The state root in hex: the digest the PBFT core checkpoints. */
  stateDigest(): Digest {
    return bytesToHex(this.state.root());
  }

  snapshot(): LedgerSnapshot {
    return LedgerSnapshot.capture(this.state.tree);
  }

  /**
   * Replaces the state with one of:
   * - a `LedgerSnapshot` (from `snapshot()`, possibly another replica's), checked against its root;
   * - a finished `LedgerStateImport` (chunked state transfer): compare its `root()` with the
   *   certified state digest before restoring;
   * - the whole state as one snapshot chunk (`LedgerSnapshot.bytes()`): compare `stateDigest()`
   *   with the certified one after.
   * Behind an Executor, restore through `executor.restore({ seq, app })`, so that the executor's
   * position and cached digest follow.
   */
  restore(snapshot: unknown): void {
    if (snapshot instanceof LedgerStateImport) {
      this.install(snapshot);
      return;
    }
    const imported = new LedgerStateImport();
    if (snapshot instanceof LedgerSnapshot) {
      imported.importChunk(snapshot.bytes());
      this.install(imported, snapshot.root);
    } else if (snapshot instanceof Uint8Array) {
      imported.importChunk(snapshot);
      this.install(imported);
    } else {
      throw new TypeError("ledger application: a snapshot is a LedgerSnapshot, a LedgerStateImport or snapshot bytes");
    }
  }

  /** Starts a chunked, resumable state transfer; `install` finishes it. */
  beginImport(): LedgerStateImport {
    return new LedgerStateImport();
  }

  /**
   * Replaces the state with an import's, once its root is the certified `expectedRoot`; throws,
   * leaving everything as it was, when it is not (entries missing or wrong).
   */
  install(imported: LedgerStateImport, expectedRoot?: Uint8Array): void {
    if (expectedRoot !== undefined && bytesToHex(imported.root()) !== bytesToHex(expectedRoot)) {
      throw new Error("ledger application: the imported state's root is not the expected one");
    }
    this.state = new LedgerState(imported.take());
  }
}
