// Quorum arithmetic for n = 3f + 1 replicas (seed 000 §5; seed 003, "A normal-case property when
// n > 3f": two quorums of n - f = 2f + 1 intersect in at least f + 1 replicas, one of them correct).

import type { ReplicaId } from "./types.js";

/** Faults tolerated by `n` replicas; throws with a message saying what to fix when n ≠ 3f + 1. */
export function faultsTolerated(n: number): number {
  if (!Number.isInteger(n) || n < 4 || (n - 1) % 3 !== 0) {
    throw new Error(`PBFT needs n = 3f + 1 replicas with f >= 1 (4, 7, 10, ...); got ${n} replicas`);
  }
  return (n - 1) / 3;
}

/** The primary of `view`: replicas take turns (PBFT §4.1, p = v mod |R|). */
export function primaryOf(view: number, n: number): ReplicaId {
  return view % n;
}

export interface Quorums {
  readonly f: number;
  /** Matching prepares (from backups, the replica's own included) that, with the pre-prepare, make a request prepared: 2f. */
  readonly prepare: number;
  /** Matching commits that make a request committed-local: 2f + 1. */
  readonly commit: number;
  /** Matching checkpoints that make a checkpoint stable: 2f + 1. */
  readonly checkpoint: number;
  /** VIEW-CHANGE messages a NEW-VIEW needs: 2f + 1. */
  readonly viewChange: number;
  /** Messages that prove at least one correct sender: f + 1. */
  readonly weak: number;
}

export function quorumsFor(n: number): Quorums {
  const f = faultsTolerated(n);
  return { f, prepare: 2 * f, commit: 2 * f + 1, checkpoint: 2 * f + 1, viewChange: 2 * f + 1, weak: f + 1 };
}
