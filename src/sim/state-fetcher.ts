// Serves the core's `fetchState` requests: ask a random peer for its snapshot at the proven
// checkpoint, accept it only if its recomputed digest equals the proof's state digest (PBFT:
// the 2f + 1 checkpoint proof is what makes a single peer's answer trustworthy), otherwise ask
// another peer. Each attempt takes one network delay.

import type { CheckpointProof, ReplicaId } from "../consensus/pbft/types.js";
import type { SimNode, StateFetchStarter } from "./context.js";
import { digestOfSnapshot } from "./execution-site.js";
import type { SimNetwork } from "./network.js";
import type { Random } from "./random.js";
import type { TraceRing } from "./trace.js";

interface FetchTask {
  readonly taskId: number;
  readonly proof: CheckpointProof;
  attempts: number;
}

export class StateFetcher implements StateFetchStarter {
  private readonly tasks = new Map<ReplicaId, FetchTask>();
  private readonly network: SimNetwork;
  private readonly random: Random;
  private readonly trace: TraceRing;
  private readonly attemptsMax: number;
  private nodes: readonly SimNode[] = [];
  private nextTaskId = 1;

  constructor(network: SimNetwork, random: Random, trace: TraceRing, replicaCount: number) {
    this.network = network;
    this.random = random;
    this.trace = trace;
    // Enough attempts to reach every peer a few times, even when some of them lie.
    this.attemptsMax = 3 * replicaCount;
  }

  attach(nodes: readonly SimNode[]): void {
    this.nodes = nodes;
  }

  start(replica: ReplicaId, proof: CheckpointProof): void {
    const existing = this.tasks.get(replica);
    if (existing !== undefined && existing.proof.seq >= proof.seq) return;
    const task: FetchTask = { taskId: this.nextTaskId++, proof, attempts: 0 };
    this.tasks.set(replica, task);
    this.network.scheduleAfterDelay({ kind: "fetch", replica, taskId: task.taskId });
  }

  cancel(replica: ReplicaId): void {
    this.tasks.delete(replica);
  }

  /** One attempt of `replica`'s task `taskId` (stale attempts of superseded tasks do nothing). */
  attempt(replica: ReplicaId, taskId: number): void {
    const task = this.tasks.get(replica);
    const requester = this.nodes[replica];
    if (task === undefined || task.taskId !== taskId || requester === undefined) return;
    const seq = task.proof.seq;
    if (!requester.up || requester.lastExecuted() >= seq) {
      this.tasks.delete(replica);
      return;
    }
    let peer = this.random.below(this.nodes.length - 1);
    if (peer >= replica) peer += 1;
    const snapshot = this.nodes[peer]?.serveSnapshot(seq);
    if (snapshot !== undefined && snapshot.seq === seq && digestOfSnapshot(snapshot) === task.proof.stateDigest) {
      this.tasks.delete(replica);
      requester.installSnapshot(snapshot, task.proof.stateDigest);
      return;
    }
    task.attempts += 1;
    if (task.attempts >= this.attemptsMax) {
      this.tasks.delete(replica);
      this.trace.record(this.network.nowTicks, "fetch-failed", peer, replica, `no peer served state at s${seq}`);
      return;
    }
    this.network.scheduleAfterDelay({ kind: "fetch", replica, taskId });
  }
}
