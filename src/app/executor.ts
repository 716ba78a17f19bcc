// Runs committed batches against an Application, in sequence order and exactly once per
// (client, timestamp) (PBFT §4.1, DESIGN.md "Clients"), and gives every request of a batch a
// deterministic result, so that a block can carry one result per transaction.
//
// The exactly-once rule, applied to each request in batch order after the application's
// stateless admission (form, signature):
//
//   the request, against the client's table entry   outcome     effect
//   is the last recorded request itself (same        duplicate   none; result = the cached one
//     timestamp and signature)
//   has the recorded timestamp or an older one       rejected    none; result = stale
//   has the next timestamp (see TimestampRule)       executed    applied, then recorded
//   is beyond the next one ("sequential" only)       rejected    none; result = gap
//
// Only executed requests are recorded, so the table's timestamp for a client is always the last
// one that took effect. This is what keeps a client from being locked out: a request refused for
// any reason (malformed, forged, out of turn) leaves the table, and so the client's next valid
// timestamp, exactly as it was. In particular a gapped nonce never moves the table: the core
// compares new requests with `lastReply` and would otherwise drop the client's right nonce as
// stale forever. For the ledger, "recorded" and "the account nonce advanced" are the same event
// (ledger-state.ts keeps both in one state tree and asserts they agree).
//
// The table lives inside the application's state (the ledger stores it in the state tree under
// its own prefix), so the state digest that checkpoints sign and the snapshots that state
// transfer moves both cover it: a replica that installs a snapshot still answers retransmissions
// correctly and still refuses to execute a request twice.

import type { ClientId, ClientRequest, CommittedBatch, Digest, ReplyCache } from "../consensus/pbft/types.js";
import type { Application, ClientEntry, OutOfTurn, TimestampRule } from "./application.js";

export type { ClientEntry } from "./application.js";

/** A request that took effect, with the result to send back to its client. */
export interface AppliedRequest {
  readonly client: ClientId;
  readonly timestamp: number;
  readonly operation: Uint8Array;
  readonly result: Uint8Array;
}

/** What became of one request of a committed batch (see the table at the top of this file). */
export type RequestOutcome = "executed" | "duplicate" | "rejected";

/** One request of a committed batch with its deterministic result. */
export interface ExecutedRequest extends AppliedRequest {
  readonly outcome: RequestOutcome;
}

/** Everything a replica needs to take over another's state at `seq`. */
export interface ExecutorSnapshot {
  readonly seq: number;
  /** The application's snapshot; it includes the client table. */
  readonly app: unknown;
}

/** Where a timestamp stands against the client's last recorded one. */
export type Turn = "next" | "duplicate" | OutOfTurn;

/**
 * The exactly-once rule for `request`; `last` is its client's table entry, if any. A request with
 * the recorded timestamp is a duplicate only if it is the recorded request itself (same
 * signature); another request on a taken timestamp is stale.
 */
export function turnOf(rule: TimestampRule, last: ClientEntry | undefined, request: ClientRequest): Turn {
  const { timestamp } = request;
  if (last !== undefined && timestamp === last.timestamp && request.signature === last.signature) return "duplicate";
  if (rule === "increasing") return last === undefined || timestamp > last.timestamp ? "next" : "stale";
  const next = nextTimestamp(rule, last);
  if (timestamp === next) return "next";
  return timestamp < next ? "stale" : "gap";
}

/** The timestamp a client's next request needs (under "increasing", the smallest that works). */
export function nextTimestamp(rule: TimestampRule, last: ClientEntry | undefined): number {
  if (last !== undefined) return last.timestamp + 1;
  return rule === "sequential" ? 1 : 0;
}

export class Executor<Admitted = unknown> implements ReplyCache {
  readonly app: Application<Admitted>;
  private executedSeq = 0;
  /** The digest of the current state, or undefined when a change made it stale. */
  private digestCached: Digest | undefined;

  constructor(app: Application<Admitted>) {
    this.app = app;
  }

  /** The sequence number of the last batch executed (or installed by state transfer). */
  get lastExecuted(): number {
    return this.executedSeq;
  }

  lastReply(client: ClientId): ClientEntry | undefined {
    return this.app.lastReply(client);
  }

  /**
   * Executes `batch`, which must be the next sequence number, and returns every request of it
   * with its outcome and result, in batch order. Call `stateDigest()` once afterwards.
   */
  executeBatch(batch: CommittedBatch): ExecutedRequest[] {
    if (batch.seq !== this.executedSeq + 1) {
      throw new Error(`executor: batch seq ${batch.seq} is not the next after ${this.executedSeq}`);
    }
    const { app } = this;
    const admissions = app.admit(batch.requests);
    if (admissions.length !== batch.requests.length) {
      throw new Error(`executor: admission gave ${admissions.length} verdicts for ${batch.requests.length} requests`);
    }
    const executed: ExecutedRequest[] = [];
    let changed = false;
    batch.requests.forEach((request, index) => {
      const admission = admissions[index]!;
      if (!admission.admitted) {
        executed.push(outcomeOf(request, "rejected", admission.result));
        return;
      }
      const last = app.lastReply(request.client);
      const turn = turnOf(app.timestampRule, last, request);
      if (turn === "duplicate") {
        executed.push(outcomeOf(request, "duplicate", last!.result));
      } else if (turn === "next") {
        const result = app.execute(request, admission.value);
        app.record({ client: request.client, timestamp: request.timestamp, signature: request.signature, result }, admission.value);
        changed = true;
        executed.push(outcomeOf(request, "executed", result));
      } else {
        executed.push(outcomeOf(request, "rejected", app.outOfTurnResult(turn, nextTimestamp(app.timestampRule, last))));
      }
    });
    this.executedSeq = batch.seq;
    // Only executed requests change state: duplicates and refusals leave it (and its digest) as it was.
    if (changed) this.digestCached = undefined;
    return executed;
  }

  /** The application's digest of the whole state, computed at most once per batch. */
  stateDigest(): Digest {
    this.digestCached ??= this.app.stateDigest();
    return this.digestCached;
  }

  snapshot(): ExecutorSnapshot {
    return { seq: this.executedSeq, app: this.app.snapshot() };
  }

  /** Replaces the whole state (application with its client table, position) with `snapshot`'s. */
  restore(snapshot: ExecutorSnapshot): void {
    if (!Number.isSafeInteger(snapshot.seq) || snapshot.seq < 0) throw new Error(`executor: snapshot seq ${snapshot.seq} is invalid`);
    this.app.restore(snapshot.app);
    this.executedSeq = snapshot.seq;
    this.digestCached = undefined;
  }
}

function outcomeOf(request: ClientRequest, outcome: RequestOutcome, result: Uint8Array): ExecutedRequest {
  return { client: request.client, timestamp: request.timestamp, operation: request.operation, result, outcome };
}
