// One replica's execution layer in the simulation: the executor over the hash-chain application,
// and the snapshots it keeps at recent checkpoints so that peers can fetch them (state transfer).
// Both survive a crash: the simulation treats execution as durable per batch.

import { Executor, type AppliedRequest, type ExecutorSnapshot } from "../app/executor.js";
import type { CommittedBatch, Digest } from "../consensus/pbft/types.js";
import { HashChainApplication } from "./hash-chain-app.js";

/** Checkpoint snapshots kept per replica; older ones are gone, as after log truncation. */
const SNAPSHOTS_KEPT_MAX = 6;

export function newSimExecutor(): Executor<undefined> {
  return new Executor(new HashChainApplication());
}

/** The digest of `snapshot`'s state, recomputed from its content; undefined if it is malformed. */
export function digestOfSnapshot(snapshot: ExecutorSnapshot): Digest | undefined {
  const scratch = newSimExecutor();
  try {
    scratch.restore(snapshot);
  } catch {
    return undefined;
  }
  return scratch.stateDigest();
}

export class ExecutionSite {
  readonly executor = newSimExecutor();
  private readonly checkpointInterval: number;
  private readonly snapshots = new Map<number, ExecutorSnapshot>();

  constructor(checkpointInterval: number) {
    this.checkpointInterval = checkpointInterval;
  }

  get lastExecuted(): number {
    return this.executor.lastExecuted;
  }

  /**
   * Executes `batch` and returns the requests that took effect: those are the ones the
   * simulation replies to and checks. Duplicates and refused requests get no reply here, as
   * before the executor gave every request a result; the core answers retransmissions from the
   * reply cache.
   */
  execute(batch: CommittedBatch): AppliedRequest[] {
    const applied = this.executor.executeBatch(batch).filter((request) => request.outcome === "executed");
    if (batch.seq % this.checkpointInterval === 0) this.keep(this.executor.snapshot());
    return applied;
  }

  install(snapshot: ExecutorSnapshot): void {
    this.executor.restore(snapshot);
    this.keep(snapshot);
  }

  snapshotAt(seq: number): ExecutorSnapshot | undefined {
    return this.snapshots.get(seq);
  }

  private keep(snapshot: ExecutorSnapshot): void {
    this.snapshots.set(snapshot.seq, snapshot);
    if (this.snapshots.size > SNAPSHOTS_KEPT_MAX) {
      let oldest = Infinity;
      for (const seq of this.snapshots.keys()) oldest = Math.min(oldest, seq);
      this.snapshots.delete(oldest);
    }
  }
}
