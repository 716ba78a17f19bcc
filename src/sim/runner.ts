// Runs many seeds and adds up their results: what `bulwark sim` reports and what CI checks.

import type { CoreMutation } from "../consensus/pbft/types.js";
import { emptyByzantineCounts } from "./context.js";
import { addCounters, type CoreModule } from "./core-port.js";
import type { BehaviourName, FaultMode } from "./scenario.js";
import { runSeed, type SeedResult } from "./simulation.js";

/** Failing seeds listed in a summary (all are counted). */
const FAILING_SEEDS_LISTED_MAX = 20;

export interface SimRunOptions {
  readonly seeds: number;
  readonly firstSeed: number;
  readonly n: number;
  readonly faults: FaultMode;
  readonly mutation?: CoreMutation;
  readonly core: CoreModule;
  /** Format every seed's trace, not only failing ones. */
  readonly traceAlways?: boolean;
  /** Called after each seed; `onSeed` may stop the run early by returning false. */
  readonly onSeed?: (result: SeedResult, done: number) => boolean | void;
}

export interface SimSummary {
  readonly seeds: number;
  readonly firstSeed: number;
  readonly replicas: number;
  readonly faults: FaultMode;
  readonly mutation: CoreMutation | null;
  /** Seeds with at least one safety violation (agreement, validity, integrity, checkpoint, client result). */
  readonly safetyViolations: number;
  /** Seeds where some request did not complete within the liveness bound after GST. */
  readonly livenessFailures: number;
  readonly requestsCommitted: number;
  readonly requestsTotal: number;
  readonly viewChanges: number;
  readonly stateTransfers: number;
  readonly crashes: number;
  readonly seedsPerMinute: number;
  readonly elapsedMs: number;
  readonly byzantine: Readonly<Record<BehaviourName, number>>;
  readonly droppedByCore: number;
  readonly coreCounters: Readonly<Record<string, number>>;
  readonly failingSeeds: readonly number[];
  /** Simulated ticks over all seeds. */
  readonly ticks: number;
}

export function runSimulation(options: SimRunOptions): SimSummary {
  const startedMs = performance.now();
  const byzantine = emptyByzantineCounts();
  const coreCounters: Record<string, number> = {};
  const failingSeeds: number[] = [];
  let safetyViolations = 0;
  let livenessFailures = 0;
  let requestsCommitted = 0;
  let requestsTotal = 0;
  let viewChanges = 0;
  let stateTransfers = 0;
  let crashes = 0;
  let droppedByCore = 0;
  let ticks = 0;
  let done = 0;
  for (let i = 0; i < options.seeds; i++) {
    const seed = (options.firstSeed + i) >>> 0;
    const result = runSeed(seed, {
      n: options.n,
      faults: options.faults,
      core: options.core,
      ...(options.mutation === undefined ? {} : { mutation: options.mutation }),
      ...(options.traceAlways === true ? { traceAlways: true } : {}),
    });
    done += 1;
    if (result.safetyViolations > 0) safetyViolations += 1;
    if (result.livenessFailures > 0) livenessFailures += 1;
    if (result.violations.length > 0 && failingSeeds.length < FAILING_SEEDS_LISTED_MAX) failingSeeds.push(seed);
    requestsCommitted += result.requestsCommitted;
    requestsTotal += result.requestsTotal;
    viewChanges += result.viewChanges;
    stateTransfers += result.stateTransfers;
    crashes += result.crashes;
    droppedByCore += result.droppedByCore;
    ticks += result.ticks;
    addCounters(coreCounters, result.coreCounters);
    for (const name of Object.keys(byzantine) as BehaviourName[]) byzantine[name] += result.byzantine[name];
    if (options.onSeed?.(result, done) === false) break;
  }
  const elapsedMs = performance.now() - startedMs;
  return {
    seeds: done,
    firstSeed: options.firstSeed,
    replicas: options.n,
    faults: options.faults,
    mutation: options.mutation ?? null,
    safetyViolations,
    livenessFailures,
    requestsCommitted,
    requestsTotal,
    viewChanges,
    stateTransfers,
    crashes,
    seedsPerMinute: Math.round((done / Math.max(elapsedMs, 1)) * 60_000),
    elapsedMs: Math.round(elapsedMs),
    byzantine,
    droppedByCore,
    coreCounters,
    failingSeeds,
    ticks,
  };
}
