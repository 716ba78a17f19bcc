// Safety and liveness checkers, fed by the simulation as events happen, over correct replicas
// only (Byzantine replicas and twins are excluded; crash-restarted replicas are correct).
//
// The properties are the consensus specification of seed 002 and PBFT's guarantees (seed 003,
// "A normal-case property when n > 3f"):
// - agreement: no two correct replicas execute different batches at one sequence number;
// - validity: only requests a client submitted execute, with the operation it submitted;
// - integrity: each (client, timestamp) takes effect at most once at each replica;
// - checkpoint agreement: correct replicas have identical state digests at every checkpoint;
// - client results: a result a client accepted on f + 1 replies is the result correct replicas
//   computed (it cannot come from Byzantine replicas alone);
// - liveness: after GST every request completes within a bound of ticks.
// An exception thrown anywhere in a run (a core's invariant assertion, typically) is recorded as
// a violation too: it is a bug, and the seed replays it.

import type { ClientId, ClientRequest, Digest, ReplicaId } from "../consensus/pbft/types.js";
import type { AppliedRequest } from "../app/executor.js";
import { bytesToHexFast } from "./crypto.js";

export type ViolationKind =
  | "agreement"
  | "validity"
  | "integrity"
  | "checkpoint"
  | "client-result"
  | "exception"
  | "liveness";

export interface Violation {
  readonly kind: ViolationKind;
  readonly timeTicks: number;
  readonly message: string;
}

export function isSafetyViolation(violation: Violation): boolean {
  return violation.kind !== "liveness";
}

function requestKey(client: ClientId, timestamp: number): string {
  return `${client}@${timestamp}`;
}

export class Checkers {
  readonly violations: Violation[] = [];
  private readonly gstTick: number;
  private readonly livenessBoundTicks: number;
  /** seq → digest and the replica that first executed it. */
  private readonly executedAt = new Map<number, { digest: Digest; replica: ReplicaId }>();
  /** checkpoint seq → state digest and the replica that first reached it. */
  private readonly checkpointAt = new Map<number, { stateDigest: Digest; replica: ReplicaId }>();
  /** (client, timestamp) → operation (hex) the client submitted. */
  private readonly submitted = new Map<string, string>();
  /** Per replica, the requests that took effect there. */
  private readonly appliedBy = new Map<ReplicaId, Set<string>>();
  /** (client, timestamp) → result (hex) computed by the first correct replica to apply it. */
  private readonly resultOf = new Map<string, string>();
  /** (client, timestamp) → result (hex) the client accepted. */
  private readonly acceptedResultOf = new Map<string, string>();

  constructor(gstTick: number, livenessBoundTicks: number) {
    this.gstTick = gstTick;
    this.livenessBoundTicks = livenessBoundTicks;
  }

  get failed(): boolean {
    return this.violations.length > 0;
  }

  get safetyViolationCount(): number {
    return this.violations.filter(isSafetyViolation).length;
  }

  get livenessFailureCount(): number {
    return this.violations.length - this.safetyViolationCount;
  }

  /** A client is about to send a request for the first time. */
  onSubmitted(client: ClientId, timestamp: number, operationHex: string): void {
    this.submitted.set(requestKey(client, timestamp), operationHex);
  }

  /**
   * A correct replica executed the batch `digest` (recomputed from its requests) at `seq`. Every
   * request in it must be one a client submitted, even one the executor then skipped as a
   * duplicate: a committed forgery is a validity violation whether or not it took effect.
   */
  onExecuted(timeTicks: number, replica: ReplicaId, seq: number, digest: Digest, requests: readonly ClientRequest[]): void {
    for (const request of requests) {
      const key = requestKey(request.client, request.timestamp);
      const submittedOperation = this.submitted.get(key);
      if (submittedOperation === undefined || submittedOperation !== bytesToHexFast(request.operation)) {
        this.fail("validity", timeTicks, `seq ${seq}: r${replica} committed ${key}, which its client never submitted`);
      }
    }
    const first = this.executedAt.get(seq);
    if (first === undefined) {
      this.executedAt.set(seq, { digest, replica });
    } else if (first.digest !== digest) {
      this.fail(
        "agreement",
        timeTicks,
        `seq ${seq}: r${replica} executed batch ${digest} but r${first.replica} executed ${first.digest}`,
      );
    }
  }

  /** Requests that took effect at a correct replica, with the operations they carried. */
  onApplied(
    timeTicks: number,
    replica: ReplicaId,
    seq: number,
    applied: readonly AppliedRequest[],
  ): void {
    let seen = this.appliedBy.get(replica);
    if (seen === undefined) {
      seen = new Set();
      this.appliedBy.set(replica, seen);
    }
    for (const request of applied) {
      const key = requestKey(request.client, request.timestamp);
      const submittedOperation = this.submitted.get(key);
      if (submittedOperation === undefined) {
        this.fail("validity", timeTicks, `seq ${seq}: r${replica} executed ${key}, which its client never submitted`);
      } else if (submittedOperation !== bytesToHexFast(request.operation)) {
        this.fail("validity", timeTicks, `seq ${seq}: r${replica} executed ${key} with an operation its client did not submit`);
      }
      if (seen.has(key)) {
        this.fail("integrity", timeTicks, `seq ${seq}: r${replica} executed ${key} a second time`);
      }
      seen.add(key);
      const resultHex = bytesToHexFast(request.result);
      const known = this.resultOf.get(key);
      if (known === undefined) this.resultOf.set(key, resultHex);
      this.checkAccepted(timeTicks, key, resultHex);
    }
  }

  /** A correct replica's state digest after executing (or installing) checkpoint `seq`. */
  onCheckpointState(timeTicks: number, replica: ReplicaId, seq: number, stateDigest: Digest): void {
    const first = this.checkpointAt.get(seq);
    if (first === undefined) {
      this.checkpointAt.set(seq, { stateDigest, replica });
    } else if (first.stateDigest !== stateDigest) {
      this.fail(
        "checkpoint",
        timeTicks,
        `checkpoint ${seq}: r${replica} has state ${stateDigest} but r${first.replica} has ${first.stateDigest}`,
      );
    }
  }

  /** A client accepted `resultHex` for its request on f + 1 matching replies. */
  onAccepted(timeTicks: number, client: ClientId, timestamp: number, resultHex: string): void {
    const key = requestKey(client, timestamp);
    this.acceptedResultOf.set(key, resultHex);
    const computed = this.resultOf.get(key);
    if (computed !== undefined) this.checkAccepted(timeTicks, key, computed);
  }

  /** The simulation threw: a core invariant fired, or the simulator itself is broken. */
  onException(timeTicks: number, error: unknown): void {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    this.fail("exception", timeTicks, text);
  }

  /** A request completed (or the run ended without it completing: `completedTick` undefined). */
  onRequestSettled(nowTicks: number, client: ClientId, timestamp: number, submittedTick: number, completedTick: number | undefined): void {
    const clockStart = Math.max(submittedTick, this.gstTick);
    const endTick = completedTick ?? nowTicks;
    if (endTick - clockStart > this.livenessBoundTicks) {
      const what = completedTick === undefined ? "has not completed" : `completed only at t=${completedTick}`;
      this.fail(
        "liveness",
        nowTicks,
        `${requestKey(client, timestamp)} submitted at t=${submittedTick} ${what}; bound is ${this.livenessBoundTicks} ticks after t=${clockStart}`,
      );
    }
  }

  /**
   * The run reached its tick limit with work left: every request may have met its own bound, yet
   * the cluster is too slow to finish a workload that takes a few hundred ticks when healthy.
   */
  onUnfinished(nowTicks: number, client: ClientId, completed: number, total: number): void {
    this.fail("liveness", nowTicks, `${client} completed only ${completed} of ${total} requests by the run's limit t=${nowTicks}`);
  }

  /** True when a pending request submitted at `submittedTick` has already exceeded the bound. */
  overdue(nowTicks: number, submittedTick: number): boolean {
    return nowTicks - Math.max(submittedTick, this.gstTick) > this.livenessBoundTicks;
  }

  private checkAccepted(timeTicks: number, key: string, computedHex: string): void {
    const accepted = this.acceptedResultOf.get(key);
    if (accepted !== undefined && accepted !== computedHex) {
      this.fail("client-result", timeTicks, `${key}: the client accepted a result no correct replica computed`);
    }
  }

  private fail(kind: ViolationKind, timeTicks: number, message: string): void {
    this.violations.push({ kind, timeTicks, message });
  }
}
