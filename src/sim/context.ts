// What every part of one simulated run shares: the scenario, the core module under test, the
// network, the trace, the checkers and the run's counters. One instance per seed.

import type { ExecutorSnapshot } from "../app/executor.js";
import type { CheckpointProof, ClientId, ClientRequest, ReplicaId, ReplicaMessage } from "../consensus/pbft/types.js";
import type { Checkers } from "./checkers.js";
import type { CoreModule } from "./core-port.js";
import type { SimEvent, SimNetwork } from "./network.js";
import type { BehaviourName, Scenario } from "./scenario.js";
import type { TraceRing } from "./trace.js";

export interface SimStats {
  requestsCommitted: number;
  /** Views above 0 that some correct replica entered (completed view changes). */
  viewChanges: number;
  stateTransfers: number;
  crashes: number;
  /** Sum over correct replicas' cores of their drop counters. */
  droppedByCore: number;
  /** Per core counter name, summed over correct replicas' cores. */
  coreCounters: Record<string, number>;
  byzantine: Record<BehaviourName, number>;
}

export function emptyByzantineCounts(): Record<BehaviourName, number> {
  return {
    equivocation: 0,
    silentPrimary: 0,
    seqSkipReuse: 0,
    conflictingVotes: 0,
    replay: 0,
    forgery: 0,
    corruptDigest: 0,
    twins: 0,
    lyingBatches: 0,
  };
}

/** A replica as the simulator drives it, correct or Byzantine. */
export interface SimNode {
  readonly id: ReplicaId;
  /** False for Byzantine replicas (and their twins): the checkers ignore them. */
  readonly correct: boolean;
  readonly up: boolean;
  onMessage(from: ReplicaId, message: ReplicaMessage): void;
  onRequest(request: ClientRequest): void;
  onTick(): void;
  /** The executed sequence number the requester of a state transfer compares against. */
  lastExecuted(): number;
  /** What this replica serves to a peer fetching the state at `seq` (a Byzantine one may lie). */
  serveSnapshot(seq: number): ExecutorSnapshot | undefined;
  /** Installs a snapshot the fetcher has checked against the checkpoint proof. */
  installSnapshot(snapshot: ExecutorSnapshot, stateDigest: string): void;
}

export interface StateFetchStarter {
  start(replica: ReplicaId, proof: CheckpointProof): void;
  cancel(replica: ReplicaId): void;
}

export interface SimContext {
  readonly scenario: Scenario;
  readonly core: CoreModule;
  readonly network: SimNetwork;
  readonly trace: TraceRing;
  readonly checkers: Checkers;
  readonly stats: SimStats;
  readonly clientIndexOf: ReadonlyMap<ClientId, number>;
  readonly fetcher: StateFetchStarter;
  /** Views above 0 entered by some correct replica, for `stats.viewChanges`. */
  readonly viewsEntered: Set<number>;
  /** Schedules a simulator event (a restart) at an absolute tick. */
  schedule(atTick: number, event: SimEvent): void;
}
