// The benchmark's report: the JSON document `--json FILE` writes (every figure, the exact
// settings, the commit and the machine, so a result can be reproduced and compared) and the text
// table printed to stdout. Figures that could not be measured are null in JSON and "n/a" in text.

import type { BaselineResult } from "./baseline.js";
import type { SignatureCeiling } from "./signature-ceiling.js";
import type { CommitInfo, MachineInfo } from "./machine.js";
import { PREPARED_ENVELOPES_MAX } from "./prepared-workload.js";
import type { ProcessFigures } from "./probes.js";
import type { AuthMode, LoadResult, WorkloadName } from "./types.js";

/** The `format` of a report; `bench compare` reads only this one. */
export const BENCH_REPORT_FORMAT = "bulwark-bench/1";

/** Every setting the run used, defaults resolved. */
export interface BenchSettings {
  readonly workload: WorkloadName;
  readonly auth: AuthMode;
  /** "closed": `clients` each with one request in flight; "open": `rate` arrivals per second over a pool of `clients` keys. */
  readonly loop: "closed" | "open";
  readonly clients: number;
  readonly rate: number | null;
  readonly durationS: number;
  readonly warmupS: number;
  readonly seed: number;
  readonly loaders: number;
  /** "local" for a cluster the bench started, else the cluster file's path. */
  readonly cluster: string;
  readonly replicas: number;
  /** The cluster's maxBatchSize. */
  readonly batchSize: number;
  readonly records: number | null;
  readonly preload: boolean | null;
  readonly accounts: number | null;
  /** Envelopes built per client before the timed window. */
  readonly preparedPerClient: number;
  readonly signingBackend: string;
  readonly baseline: boolean;
  readonly profileDir: string | null;
  /** The replicas' durability policy, for a local cluster ("durable": fsync before voting). */
  readonly sync: string | null;
  /** The local cluster's `bulwark replica --retain-blocks` (block bodies kept below the tip); null: all kept. Absent in reports older than the option. */
  readonly retainBlocks?: number | null;
}

/** One process's figures over the timed window. */
export interface ProcessReport {
  readonly name: string;
  readonly cpuSeconds: number | null;
  readonly cpuSecondsPer1000Tx: number | null;
  readonly peakRssBytes: number | null;
  /** Resident memory once a second through the timed window; null where a sample failed. */
  readonly rssSamplesBytes: ReadonlyArray<number | null>;
  /** Its anonymous part (RssAnon, probes.ts says why) at the same moments; empty where unknown. */
  readonly anonRssSamplesBytes?: ReadonlyArray<number | null>;
  readonly note?: string;
}

export interface ViewFigures {
  /** Each replica's view at the start and end of the timed window (null: it did not answer). */
  readonly start: ReadonlyArray<number | null>;
  readonly end: ReadonlyArray<number | null>;
  /** Highest view at the end minus highest at the start; null when no replica answered. */
  readonly viewChanges: number | null;
}

/** What one run measured (the replicated run, or the baseline): the load's figures and more. */
export interface RunReport extends LoadResult {
  readonly errorsByKind: Readonly<Record<string, number>>;
  readonly retries: number;
  readonly warmupCommitted: number;
  /** Open loop: arrivals in the timed window, those that waited for a free key, those dropped. */
  readonly offered: number | null;
  readonly noFreeKey: number | null;
  readonly dropped: number | null;
  readonly inFlightAtEnd: number;
  readonly stoppedEarly: boolean;
  /** Envelopes built during the run because the prepared ones ran out (their cost fell on the measurement). */
  readonly builtOnDemand: number;
  /** The latency histogram, HdrHistogram's compressed base64 (microseconds). */
  readonly histogram: string;
  readonly processes: readonly ProcessReport[];
  readonly views: ViewFigures | null;
  readonly setup: { readonly rounds: number; readonly transactions: number; readonly seconds: number };
  readonly firstFailure: string | null;
}

export interface BenchReport {
  readonly format: typeof BENCH_REPORT_FORMAT;
  readonly startedAt: string;
  readonly settings: BenchSettings;
  readonly commit: CommitInfo;
  readonly machine: MachineInfo;
  readonly result: RunReport;
  readonly baseline: RunReport | null;
  /** Replicated throughput / baseline throughput: what Byzantine fault tolerance keeps of one process's rate. */
  readonly replicatedToBaselineRatio: number | null;
  /** Signed runs of a local cluster: the signature-verification ceiling, measured before the run (signature-ceiling.ts). */
  readonly signatureCeiling?: SignatureCeiling | null;
  /** Throughput / the ceiling's tx/s. */
  readonly throughputToCeilingRatio?: number | null;
}

/** A process's figures for the report, CPU per 1,000 committed transactions included. */
export function processReport(figures: ProcessFigures, committed: number): ProcessReport {
  const cpuSeconds = figures.cpuSeconds ?? null;
  return {
    name: figures.name,
    cpuSeconds: cpuSeconds === null ? null : round(cpuSeconds, 3),
    cpuSecondsPer1000Tx: cpuSeconds === null || committed === 0 ? null : round((cpuSeconds * 1000) / committed, 4),
    peakRssBytes: figures.peakRssBytes ?? null,
    rssSamplesBytes: figures.rssSamplesBytes,
    anonRssSamplesBytes: figures.anonRssSamplesBytes ?? [],
    ...(figures.note === undefined ? {} : { note: figures.note }),
  };
}

/**
 * The baseline's report: its figures, its latency histogram encoded, and the whole process as
 * its one process. `builtOnDemand` and `stoppedEarly` are the run's (the workload's count and
 * whether Ctrl-C cut it short); what only a replicated run has (retries, arrivals, views, setup
 * over the network) is zero or null.
 */
export function baselineRunReport(result: BaselineResult, builtOnDemand: number, stoppedEarly: boolean): RunReport {
  return {
    committed: result.committed,
    windows: result.windows,
    throughputTps: result.throughputTps,
    latency: result.latency,
    errors: result.errors,
    errorsByKind: {},
    retries: 0,
    warmupCommitted: 0,
    offered: null,
    noFreeKey: null,
    dropped: null,
    inFlightAtEnd: 0,
    stoppedEarly,
    builtOnDemand,
    histogram: result.histogram.encode(),
    processes: [processReport({ name: "baseline", cpuSeconds: result.cpuSeconds, peakRssBytes: result.peakRssBytes, rssSamplesBytes: [] }, result.committed)],
    views: null,
    setup: { rounds: 0, transactions: 0, seconds: 0 },
    firstFailure: null,
  };
}

/** The view figures from each replica's view at the start and end (undefined: no answer). */
export function viewFigures(start: ReadonlyArray<number | undefined>, end: ReadonlyArray<number | undefined>): ViewFigures {
  const known = (views: ReadonlyArray<number | undefined>): number[] => views.filter((view): view is number => view !== undefined);
  const startKnown = known(start);
  const endKnown = known(end);
  const viewChanges = startKnown.length === 0 || endKnown.length === 0 ? null : Math.max(0, Math.max(...endKnown) - Math.max(...startKnown));
  return { start: start.map((view) => view ?? null), end: end.map((view) => view ?? null), viewChanges };
}

export function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

// ---------------------------------------------------------------------------------------------
// Text

const MIB = 1024 * 1024;

export function formatCount(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

export function formatMs(value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

export function formatBytes(value: number | null): string {
  return value === null ? "n/a" : `${(value / MIB).toFixed(0)} MiB`;
}

function formatOptional(value: number | null, digits: number): string {
  return value === null ? "n/a" : value.toFixed(digits);
}

/** Lays out rows as columns: the first left-aligned, the rest right-aligned. */
export function table(rows: ReadonlyArray<readonly string[]>, indent = "  "): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, column) => (widths[column] = Math.max(widths[column] ?? 0, cell.length)));
  return rows.map((row) => indent + row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join("   ").trimEnd());
}

/** The one-line description of the settings that heads a report. */
export function describeSettings(settings: BenchSettings): string {
  const loop = settings.loop === "closed" ? `closed loop, ${settings.clients} clients` : `open loop at ${formatCount(settings.rate ?? 0)} tx/s over ${settings.clients} keys`;
  const cluster = settings.cluster === "local" ? `${settings.replicas} local replicas` : `the cluster in ${settings.cluster} (${settings.replicas} replicas)`;
  const shape =
    settings.workload === "kv"
      ? ` (${formatCount(settings.records ?? 0)} records${settings.preload === true ? ", preloaded" : ""})`
      : settings.workload === "transfer"
        ? ` (${formatCount(settings.accounts ?? 0)} accounts)`
        : "";
  const retain = settings.retainBlocks === undefined || settings.retainBlocks === null ? "" : `, bodies of the last ${formatCount(settings.retainBlocks)} blocks kept`;
  return `${settings.workload}${shape}, ${settings.auth} auth, ${loop}, ${cluster}, batch ${settings.batchSize}${retain}, ${settings.durationS} s after ${settings.warmupS} s warm-up, seed ${settings.seed}`;
}

/**
 * Whether the run built as many envelopes ahead as the bench ever does: within one per client of
 * PREPARED_ENVELOPES_MAX, which the plan caps the envelopes built ahead at.
 */
function preparedAtCap(settings: BenchSettings): boolean {
  return (settings.preparedPerClient + 1) * settings.clients > PREPARED_ENVELOPES_MAX;
}

/** The note for envelopes built during the run: what would have avoided them. */
function builtOnDemandNote(builtOnDemand: number, settings: BenchSettings): string {
  const built = `${formatCount(builtOnDemand)} envelopes were built during the run, which loaded the bench process`;
  if (preparedAtCap(settings)) {
    return `${built}: the bench builds at most ${formatCount(PREPARED_ENVELOPES_MAX)} ahead of a run (${formatCount(settings.preparedPerClient)} per client here) and builds the rest as the clients need them; a shorter --duration or --warmup needs fewer`;
  }
  return `${built} (the prepared ones ran out); raise --prepare-rate`;
}

function runLines(run: RunReport, settings: BenchSettings): string[] {
  const { durationS } = settings;
  const windows = run.windows;
  const spread = windows.length === 0 ? "" : `; windows min ${formatCount(Math.min(...windows))}, max ${formatCount(Math.max(...windows))}`;
  const { latency } = run;
  const lines = [
    `  throughput    ${formatCount(run.throughputTps)} tx/s  (median of ${windows.length} one-second windows${spread})`,
    `  committed     ${formatCount(run.committed)} in ${durationS} s; errors ${formatCount(run.errors)}${describeErrors(run)}`,
    `  latency       p50 ${formatMs(latency.p50Ms)} ms   p90 ${formatMs(latency.p90Ms)} ms   p99 ${formatMs(latency.p99Ms)} ms   max ${formatMs(latency.maxMs)} ms   (mean ${formatMs(latency.meanMs)} ms)`,
  ];
  if (run.views !== null) lines.push(`  view changes  ${run.views.viewChanges ?? "n/a"}`);
  if (run.offered !== null) {
    lines.push(`  arrivals      ${formatCount(run.offered)} offered; ${formatCount(run.noFreeKey ?? 0)} waited for a free key; ${formatCount(run.dropped ?? 0)} dropped`);
  }
  if (run.setup.transactions > 0) lines.push(`  setup         ${formatCount(run.setup.transactions)} transactions in ${run.setup.rounds} rounds, ${run.setup.seconds.toFixed(1)} s (not measured)`);
  lines.push(...memoryTrendLines(run));
  lines.push("", ...table([["process", "CPU s", "CPU s / 1000 tx", "peak RSS"], ...run.processes.map((p) => [p.name, formatOptional(p.cpuSeconds, 1), formatOptional(p.cpuSecondsPer1000Tx, 3), formatBytes(p.peakRssBytes)])]));
  // One line per distinct note, naming every process it applies to.
  const notes = new Map<string, string[]>();
  for (const p of run.processes) if (p.note !== undefined) notes.set(p.note, [...(notes.get(p.note) ?? []), p.name]);
  for (const [note, names] of notes) lines.push(`  note: ${names.join(", ")}: ${note}`);
  if (run.builtOnDemand > 0) lines.push(`  note: ${builtOnDemandNote(run.builtOnDemand, settings)}`);
  if (run.stoppedEarly) lines.push("  note: the run was stopped early; the figures cover the whole seconds measured");
  if (run.firstFailure !== null) lines.push(`  note: a client stopped: ${run.firstFailure}`);
  if (run.inFlightAtEnd > 0) lines.push(`  note: ${formatCount(run.inFlightAtEnd)} requests were still in flight when the run ended`);
  return lines;
}

/** Runs at least this long report each process's memory in minute 1 against the last minute (issue 5: flat over 5 minutes). */
const MEMORY_TREND_SAMPLES_MIN = 120;
/** Samples averaged at each end: the V8 heap swings by tens of MiB between collections, so one sample misleads. */
const MEMORY_TREND_WINDOW_SAMPLES = 60;

/** The mean of the non-null samples, or null when there are none. */
function meanOf(samples: ReadonlyArray<number | null>): number | null {
  const known = samples.filter((value): value is number => value !== null);
  return known.length === 0 ? null : known.reduce((sum, value) => sum + value, 0) / known.length;
}

/**
 * For a long run: every process's mean resident memory over the window's first minute and over
 * its last, and the anonymous part the same way, with the ratios (last / first).
 */
export function memoryTrendLines(run: RunReport): string[] {
  const ends = (samples: ReadonlyArray<number | null>): [number | null, number | null] => [meanOf(samples.slice(0, MEMORY_TREND_WINDOW_SAMPLES)), meanOf(samples.slice(-MEMORY_TREND_WINDOW_SAMPLES))];
  const ratio = ([first, last]: [number | null, number | null]): string => (first === null || last === null || first === 0 ? "n/a" : (last / first).toFixed(3));
  const rows = run.processes
    .filter((p) => p.rssSamplesBytes.length >= MEMORY_TREND_SAMPLES_MIN)
    .map((p) => {
      const rss = ends(p.rssSamplesBytes);
      const anon = ends(p.anonRssSamplesBytes ?? []);
      return [p.name, formatBytes(rss[0]), formatBytes(rss[1]), ratio(rss), formatBytes(anon[0]), formatBytes(anon[1]), ratio(anon)];
    });
  if (rows.length === 0) return [];
  return [
    "",
    "  memory, means of the first and the last minute (VmRSS counts the LMDB file's mapped pages; RssAnon is the process's own memory):",
    ...table([["process", "RSS minute 1", "RSS last minute", "last / first", "anon minute 1", "anon last minute", "last / first"], ...rows]),
  ];
}

function describeErrors(run: RunReport): string {
  const kinds = Object.entries(run.errorsByKind);
  if (kinds.length === 0) return "";
  return ` (${kinds.map(([kind, count]) => `${kind} ${formatCount(count)}`).join(", ")}${run.retries > 0 ? `; ${formatCount(run.retries)} resent` : ""})`;
}

/** The report as text for stdout. */
export function formatReport(report: BenchReport): string {
  const { settings, machine, commit } = report;
  const lines = [`bulwark bench: ${describeSettings(settings)}`, ...runLines(report.result, settings)];
  if (report.baseline !== null) {
    lines.push("", "baseline (one process, same application and storage, no replication):", ...runLines(report.baseline, settings));
    const ratio = report.replicatedToBaselineRatio;
    lines.push("", `  replicated / baseline throughput: ${ratio === null ? "n/a" : ratio.toFixed(3)}`);
  }
  const ceiling = report.signatureCeiling;
  if (ceiling !== undefined && ceiling !== null) {
    lines.push(
      "",
      `  signature ceiling  ${formatCount(ceiling.ceilingTps)} tx/s (${ceiling.cores} cores × ${formatCount(ceiling.verifiesPerSecondOneCore)} verifications/s on one core, ${ceiling.backend}, ÷ ${ceiling.replicas} replicas; measured before the run)`,
      `  throughput / ceiling  ${report.throughputToCeilingRatio === null || report.throughputToCeilingRatio === undefined ? "n/a" : `${(100 * report.throughputToCeilingRatio).toFixed(1)} %`}`,
    );
  }
  const commitText = `${commit.hash === "unknown" ? "unknown commit" : `commit ${commit.hash.slice(0, 12)}`}${commit.dirty === true ? " (with uncommitted changes)" : ""}`;
  lines.push("", `${commitText}; ${machine.cores} cores, ${machine.cpuModel}, ${(machine.totalMemoryBytes / (1024 * MIB)).toFixed(0)} GiB, node ${machine.nodeVersion}, load ${machine.loadAverageAtStart.join(" ")}`);
  return `${lines.join("\n")}\n`;
}
