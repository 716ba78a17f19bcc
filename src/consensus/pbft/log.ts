// The message log of one sequence number in the current view (PBFT §4.2), and the per-replica
// bookkeeping for votes. A slot is created only for seqs inside the watermark window, and holds at
// most one vote per replica, so the log is bounded by L × n votes.

import type { Commit, Prepare, PrePrepare, ReplicaId } from "./types.js";

export class Slot {
  prePrepare: PrePrepare | undefined;
  readonly prepares = new Map<ReplicaId, Prepare>();
  readonly commits = new Map<ReplicaId, Commit>();
  sentPrepare = false;
  prepared = false;
  sentCommit = false;
  committed = false;
  /** A digest-only re-proposal's batch: how often it was asked for, and whom to ask first (batches.ts). */
  batchAsks = 0;
  batchHolder: ReplicaId | undefined;

  constructor(
    readonly seq: number,
    readonly view: number,
  ) {}

  /** Votes in `votes` whose digest matches the accepted pre-prepare. */
  countMatching(votes: ReadonlyMap<ReplicaId, Prepare | Commit>): number {
    const digest = this.prePrepare?.digest;
    if (digest === undefined) return 0;
    let count = 0;
    for (const vote of votes.values()) if (vote.digest === digest) count++;
    return count;
  }

  matchingVotes<T extends Prepare | Commit>(votes: ReadonlyMap<ReplicaId, T>, limit: number): T[] {
    const digest = this.prePrepare?.digest;
    const out: T[] = [];
    for (const vote of votes.values()) {
      if (out.length >= limit) break;
      if (vote.digest === digest) out.push(vote);
    }
    return out;
  }
}
