// One seed's scenario: cluster configuration, workload, network schedule, crashes and Byzantine
// assignments, all drawn from the seed. Everything the run does follows from this value and the
// run's own random streams, which is what makes `bulwark sim --seed S` replay a failure exactly.

import type { CoreMutation, PbftConfig, ReplicaId } from "../consensus/pbft/types.js";
import { Random } from "./random.js";

export const FAULT_MODES = ["none", "crash", "network", "byzantine", "all"] as const;
export type FaultMode = (typeof FAULT_MODES)[number];

export const BEHAVIOURS = [
  "equivocation",
  "silentPrimary",
  "seqSkipReuse",
  "conflictingVotes",
  "replay",
  "forgery",
  "corruptDigest",
  "twins",
  "lyingBatches",
] as const;
export type BehaviourName = (typeof BEHAVIOURS)[number];

export const MUTATIONS: readonly CoreMutation[] = [
  "commit-quorum-2f",
  "prepare-quorum-2f-minus-1",
  "skip-new-view-validation",
  "forget-prepared-certificates",
  "skip-batch-digest-check",
];

export interface NetworkPlan {
  /** Before GST: chance that a message is lost. */
  readonly dropRate: number;
  /** Before GST: chance that a message is delivered twice. */
  readonly duplicateRate: number;
  /** Delivery delay is uniform in [1, max] ticks; the max is larger before GST. */
  readonly delayTicksMaxBeforeGst: number;
  readonly delayTicksMaxAfterGst: number;
}

/** Replicas in `sideMask` (bit i = replica i) cannot reach the others during [start, end). */
export interface PartitionPlan {
  readonly startTick: number;
  readonly endTick: number;
  readonly sideMask: number;
}

export interface CrashPlan {
  readonly replica: ReplicaId;
  readonly atTick: number;
  readonly downTicks: number;
}

export interface ByzantinePlan {
  readonly replica: ReplicaId;
  readonly behaviours: readonly BehaviourName[];
  /** Chance that a behaviour acts on an opportunity (a message it could alter, a tick). */
  readonly actRate: number;
}

export interface Scenario {
  readonly seed: number;
  readonly n: number;
  readonly f: number;
  readonly faults: FaultMode;
  readonly config: PbftConfig;
  readonly mutation: CoreMutation | undefined;
  readonly requestsPerClient: readonly number[];
  readonly clientRetryTicks: number;
  /** Ticks after which the network is synchronous and no replica crashes (0 when fault-free). */
  readonly gstTick: number;
  readonly network: NetworkPlan;
  readonly partitions: readonly PartitionPlan[];
  readonly crashes: readonly CrashPlan[];
  readonly byzantine: readonly ByzantinePlan[];
  /** After GST (or submission, if later), every request must complete within this many ticks. */
  readonly livenessBoundTicks: number;
  /** Hard stop for a run, far beyond any legitimate completion. */
  readonly ticksMax: number;
}

export interface ScenarioOptions {
  readonly n: number;
  readonly faults: FaultMode;
  readonly mutation?: CoreMutation;
}

export function faultsOf(n: number): number {
  return Math.floor((n - 1) / 3);
}

function drawByzantine(random: Random, n: number, f: number): ByzantinePlan[] {
  const count = random.between(1, f);
  const candidates: ReplicaId[] = [];
  for (let id = 0; id < n; id++) candidates.push(id);
  random.shuffle(candidates);
  // The initial primary (replica 0) is Byzantine in about half the seeds, so the primary-only
  // behaviours (equivocation, silence, sequence abuse) run from the first request on; the primary
  // of view 1 (replica 1) in about a third, so a Byzantine NEW-VIEW follows the first view change.
  const roll = random.float();
  const favoured = roll < 0.45 ? 0 : roll < 0.75 ? 1 : -1;
  if (favoured >= 0 && !candidates.slice(0, count).includes(favoured)) candidates[0] = favoured;
  const plans: ByzantinePlan[] = [];
  for (const replica of candidates.slice(0, count)) {
    const pool = random.shuffle([...BEHAVIOURS]);
    const behaviours = pool.slice(0, random.between(1, 3));
    plans.push({ replica, behaviours, actRate: 0.3 + 0.7 * random.float() });
  }
  return plans;
}

function drawPartitions(random: Random, n: number, gstTick: number): PartitionPlan[] {
  const partitions: PartitionPlan[] = [];
  const episodes = random.between(0, 3);
  for (let i = 0; i < episodes; i++) {
    const startTick = random.below(gstTick);
    const endTick = Math.min(gstTick, startTick + random.between(10, 120));
    let sideMask = 0;
    while (sideMask === 0 || sideMask === (1 << n) - 1) sideMask = random.below(1 << n);
    partitions.push({ startTick, endTick, sideMask });
  }
  return partitions;
}

function drawCrashes(random: Random, n: number, gstTick: number, byzantine: readonly ByzantinePlan[]): CrashPlan[] {
  const correct: ReplicaId[] = [];
  for (let id = 0; id < n; id++) if (!byzantine.some((plan) => plan.replica === id)) correct.push(id);
  const crashes: CrashPlan[] = [];
  const episodes = random.between(1, 3);
  for (let i = 0; i < episodes; i++) {
    // Every crashed replica is back before GST: after it, liveness may assume n - f correct
    // replicas are up and connected.
    const atTick = random.below(Math.max(1, gstTick - 20));
    const downTicks = random.between(5, Math.max(5, Math.min(150, gstTick - atTick - 1)));
    crashes.push({ replica: random.pick(correct), atTick, downTicks });
  }
  return crashes;
}

export function drawScenario(seed: number, options: ScenarioOptions): Scenario {
  const random = new Random(seed ^ 0x5eed5eed);
  const n = options.n;
  const f = faultsOf(n);
  const faults = options.faults;
  const network = faults === "network" || faults === "all";
  const crash = faults === "crash" || faults === "all";
  const byzantine = faults === "byzantine" || faults === "all";

  // Small checkpoint intervals and windows, so checkpoints, garbage collection, watermark stalls
  // and state transfer all happen within a few dozen requests.
  const checkpointInterval = random.between(4, 8);
  const viewChangeTimeoutTicks = random.between(30, 60);
  const config: PbftConfig = {
    n,
    checkpointInterval,
    watermarkWindow: checkpointInterval * random.between(2, 4),
    maxBatchSize: random.between(1, 4),
    batchDelayTicks: random.between(1, 3),
    viewChangeTimeoutTicks,
    viewChangeTimeoutMaxTicks: viewChangeTimeoutTicks * 4,
    statusIntervalTicks: random.between(10, 25),
    maxPendingRequests: 64,
  };

  const clientCount = random.between(4, 8);
  const requestsPerClient: number[] = [];
  for (let i = 0; i < clientCount; i++) requestsPerClient.push(random.between(5, 15));

  const gstTick = faults === "none" ? 0 : random.between(100, 400);
  const networkPlan: NetworkPlan = network
    ? {
        dropRate: 0.2 * random.float(),
        duplicateRate: 0.1 * random.float(),
        delayTicksMaxBeforeGst: random.between(2, 20),
        delayTicksMaxAfterGst: random.between(1, 5),
      }
    : { dropRate: 0, duplicateRate: 0, delayTicksMaxBeforeGst: 5, delayTicksMaxAfterGst: 5 };

  const byzantinePlans = byzantine ? drawByzantine(random, n, f) : [];
  const partitions = network ? drawPartitions(random, n, gstTick) : [];
  const crashes = crash ? drawCrashes(random, n, gstTick, byzantinePlans) : [];

  const clientRetryTicks = random.between(2, 4) * config.viewChangeTimeoutTicks;
  // After GST a request may still wait out one client retry, f silent or equivocating primaries
  // (each costing at most the capped view-change timeout), and a state transfer.
  const livenessBoundTicks = clientRetryTicks + (f + 2) * config.viewChangeTimeoutMaxTicks + 200;
  const ticksMax = gstTick + 200 * 15 + livenessBoundTicks * 2;

  return {
    seed,
    n,
    f,
    faults,
    config,
    mutation: options.mutation,
    requestsPerClient,
    clientRetryTicks,
    gstTick,
    network: networkPlan,
    partitions,
    crashes,
    byzantine: byzantinePlans,
    livenessBoundTicks,
    ticksMax,
  };
}
