// `bulwark sim`: runs the deterministic simulator over many seeds (or replays one) and reports
// safety violations, liveness failures and what the faults exercised.

import { Command, InvalidArgumentError, Option } from "commander";

import type { CoreMutation } from "../consensus/pbft/types.js";
import { pbftModule } from "../sim/pbft-module.js";
import { runSimulation, type SimSummary } from "../sim/runner.js";
import { FAULT_MODES, MUTATIONS, type FaultMode } from "../sim/scenario.js";
import type { SeedResult } from "../sim/simulation.js";
import type { CliOutput } from "./output.js";

/** Failing seeds whose trace is printed in full; the rest are listed by number. */
const TRACES_PRINTED_MAX = 3;
const REPLICA_COUNTS = [4, 7, 10] as const;

interface SimFlags {
  readonly seeds?: number;
  readonly seed?: number;
  readonly faults: FaultMode;
  readonly replicas: number;
  readonly json?: boolean;
  readonly mutation?: CoreMutation;
  readonly verbose?: boolean;
}

function parseCount(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new InvalidArgumentError("expected a whole number of seeds, at least 1.");
  return value;
}

function parseSeed(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0 || value > 0xffffffff) throw new InvalidArgumentError("expected a seed from 0 to 4294967295.");
  return value;
}

function parseReplicas(text: string): number {
  const value = Number(text);
  if (!REPLICA_COUNTS.some((count) => count === value)) {
    throw new InvalidArgumentError("PBFT needs n = 3f + 1 replicas; the simulator runs 4, 7 or 10 (f = 1, 2, 3).");
  }
  return value;
}

function replayCommand(seed: number, flags: SimFlags): string {
  const mutation = flags.mutation === undefined ? "" : ` --mutation ${flags.mutation}`;
  return `bulwark sim --seed ${seed} --faults ${flags.faults} --replicas ${flags.replicas}${mutation}`;
}

function describeFailure(result: SeedResult, flags: SimFlags): string {
  const lines = [`FAILED seed ${result.seed} (replay: ${replayCommand(result.seed, flags)})`];
  for (const violation of result.violations.slice(0, 10)) lines.push(`  ${violation.kind} at t=${violation.timeTicks}: ${violation.message}`);
  if (result.violations.length > 10) lines.push(`  ... and ${result.violations.length - 10} more`);
  lines.push(`  last ${result.trace.length} events:`);
  for (const line of result.trace) lines.push(`    ${line}`);
  return `${lines.join("\n")}\n`;
}

function describeSummary(summary: SimSummary): string {
  const behaviours = Object.entries(summary.byzantine)
    .map(([name, count]) => `${name} ${count}`)
    .join(", ");
  const verdict = summary.safetyViolations === 0 && summary.livenessFailures === 0 ? "OK" : "FAILED";
  return [
    `${verdict}: ${summary.seeds} seeds, faults ${summary.faults}, ${summary.replicas} replicas${summary.mutation === null ? "" : `, mutation ${summary.mutation}`}`,
    `  safety violations: ${summary.safetyViolations} seeds; liveness failures: ${summary.livenessFailures} seeds`,
    `  requests committed: ${summary.requestsCommitted}/${summary.requestsTotal}; view changes: ${summary.viewChanges}; state transfers: ${summary.stateTransfers}; crashes: ${summary.crashes}`,
    `  byzantine actions: ${behaviours}`,
    `  input dropped by correct cores: ${summary.droppedByCore}`,
    `  ${summary.seedsPerMinute} seeds/minute (${(summary.elapsedMs / 1000).toFixed(1)} s)`,
    summary.failingSeeds.length > 0 ? `  failing seeds: ${summary.failingSeeds.join(", ")}` : "",
  ]
    .filter((line) => line !== "")
    .join("\n");
}

function runSim(flags: SimFlags, output: CliOutput): number {
  const single = flags.seed !== undefined && flags.seeds === undefined;
  const seeds = flags.seeds ?? 1;
  const firstSeed = flags.seed ?? 1;
  const json = flags.json === true;
  // In JSON mode stdout ends with the JSON line; traces and progress go to stderr.
  const write = (text: string): void => (json ? output.err(text) : output.out(text));
  const progressEvery = Math.max(1, Math.round(seeds / 10));
  let tracesPrinted = 0;
  const summary = runSimulation({
    seeds,
    firstSeed,
    n: flags.replicas,
    faults: flags.faults,
    core: pbftModule,
    ...(flags.mutation === undefined ? {} : { mutation: flags.mutation }),
    traceAlways: single && flags.verbose === true,
    onSeed: (result, done) => {
      if (result.violations.length > 0 && tracesPrinted < TRACES_PRINTED_MAX) {
        tracesPrinted += 1;
        // A redrawn progress line has no newline yet.
        write(`${output.interactive && !json ? "\n" : ""}${describeFailure(result, flags)}`);
      } else if (flags.verbose === true && single) {
        write(`seed ${result.seed}: passed; last ${result.trace.length} events:\n${result.trace.map((line) => `    ${line}`).join("\n")}\n`);
      }
      if (!json && !single) {
        // A terminal gets one line redrawn per seed; a log gets a line every tenth of the run.
        if (output.interactive) output.out(`\r  ${done}/${seeds} seeds${done === seeds ? "\n" : ""}`);
        else if (done % progressEvery === 0 || done === seeds) output.out(`  ${done}/${seeds} seeds\n`);
      }
    },
  });
  if (json) output.out(`${JSON.stringify(summary)}\n`);
  else output.out(`${describeSummary(summary)}\n`);
  return summary.safetyViolations > 0 || summary.livenessFailures > 0 ? 1 : 0;
}

export function registerSimCommand(program: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  program
    .command("sim")
    .description("Run the deterministic PBFT simulator: seeded network faults, crashes and Byzantine replicas, with safety and liveness checkers.")
    .option("--seeds <count>", "number of seeds to run (from --seed, default 1)", parseCount)
    .option("--seed <seed>", "replay exactly this seed (with --seeds: the first seed of the range)", parseSeed)
    .addOption(new Option("--faults <mode>", "faults to inject").choices(FAULT_MODES).default("all"))
    .option("--replicas <n>", "cluster size n = 3f + 1: 4, 7 or 10", parseReplicas, 4)
    .option("--json", "print one JSON summary object as the last line of output")
    .addOption(new Option("--mutation <mutation>", "deliberately break correct replicas' cores (to prove the checkers catch it)").choices(MUTATIONS))
    .option("--verbose", "with --seed: print the run's trace even if it passes")
    .addHelpText(
      "after",
      "\nExamples:\n  bulwark sim --seeds 1000 --faults all --json\n  bulwark sim --seed 42 --faults byzantine --verbose\n  bulwark sim --seeds 500 --mutation commit-quorum-2f\n\nExit code 1 when any seed violates safety or liveness; a failing seed prints its trace and a replay command.",
    )
    .action((flags: SimFlags) => {
      setExitCode(runSim(flags, output));
    });
}
