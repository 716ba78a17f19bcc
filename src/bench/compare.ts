// `bulwark bench compare A.json B.json`: two reports side by side, each figure with the ratio
// B / A, after the settings, commits and machines of both, and a warning for every setting that
// differs (a comparison across settings is a comparison of settings).

import { readFile } from "node:fs/promises";

import { BENCH_REPORT_FORMAT, type BenchReport, type RunReport, describeSettings, formatBytes, formatCount, formatMs, table } from "./report.js";

/** A report file that cannot be compared: unreadable, not JSON, or not a bench report. */
export class ReportFileError extends Error {
  override readonly name = "ReportFileError";
}

export async function readReport(path: string): Promise<BenchReport> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new ReportFileError(`cannot read ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ReportFileError(`${path} is not JSON: ${(error as Error).message}`);
  }
  return checkReport(parsed, path);
}

/** A JSON object (not null, not an array), so that its fields can be read. */
function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** What `compare` reads of a run ("result" or "baseline"), or undefined when it is all there. */
function runProblem(run: unknown): string | undefined {
  if (!isObject(run) || typeof run.throughputTps !== "number" || !isObject(run.latency) || !Array.isArray(run.processes)) return "lacks throughput, latency or processes";
  if (!run.processes.every((process) => isObject(process) && typeof process.name === "string")) return "has a process without a name";
  if (run.views !== undefined && run.views !== null && !isObject(run.views)) return `has "views" that are not an object`;
  return undefined;
}

/** The parsed JSON as a report, after checking every part `compare` reads. */
export function checkReport(parsed: unknown, source: string): BenchReport {
  if (!isObject(parsed) || parsed.format !== BENCH_REPORT_FORMAT) {
    throw new ReportFileError(`${source} is not a bulwark bench report (its "format" is not "${BENCH_REPORT_FORMAT}"); write one with bulwark bench --json FILE`);
  }
  const resultProblem = runProblem(parsed.result);
  if (resultProblem !== undefined) throw new ReportFileError(`${source}: its "result" ${resultProblem}`);
  if (parsed.baseline !== null && parsed.baseline !== undefined) {
    const baselineProblem = runProblem(parsed.baseline);
    if (baselineProblem !== undefined) throw new ReportFileError(`${source}: its "baseline" ${baselineProblem}`);
  }
  if (!isObject(parsed.settings)) throw new ReportFileError(`${source}: it lacks "settings"`);
  const { commit, machine } = parsed;
  if (!isObject(commit) || typeof commit.hash !== "string") throw new ReportFileError(`${source}: its "commit" lacks the hash (a string: "unknown" when there was none)`);
  if (!isObject(machine) || typeof machine.cores !== "number" || typeof machine.cpuModel !== "string" || typeof machine.nodeVersion !== "string") {
    throw new ReportFileError(`${source}: its "machine" lacks cores, cpuModel or nodeVersion`);
  }
  return parsed as unknown as BenchReport;
}

// A figure comes from a file, which checkReport checks only as far as the layout: anything that
// is not a number (null, missing, or wrong) is shown as n/a rather than formatted.

function ratio(a: number | null | undefined, b: number | null | undefined): string {
  if (typeof a !== "number" || typeof b !== "number") return "n/a";
  if (a === 0) return b === 0 ? "1.00x" : "n/a";
  return `${(b / a).toFixed(2)}x`;
}

type Row = readonly [label: string, a: number | null | undefined, b: number | null | undefined, format: (value: number) => string];

function cell(value: number | null | undefined, format: (value: number) => string): string {
  return typeof value !== "number" ? "n/a" : format(value);
}

const count = (value: number): string => formatCount(value);
const ms = (value: number): string => `${formatMs(value)} ms`;
const seconds = (value: number): string => value.toFixed(3);

function runRows(prefix: string, a: RunReport | null, b: RunReport | null): Row[] {
  const rows: Row[] = [
    [`${prefix}throughput (tx/s)`, a?.throughputTps, b?.throughputTps, count],
    [`${prefix}committed`, a?.committed, b?.committed, count],
    [`${prefix}latency p50`, a?.latency.p50Ms, b?.latency.p50Ms, ms],
    [`${prefix}latency p90`, a?.latency.p90Ms, b?.latency.p90Ms, ms],
    [`${prefix}latency p99`, a?.latency.p99Ms, b?.latency.p99Ms, ms],
    [`${prefix}latency max`, a?.latency.maxMs, b?.latency.maxMs, ms],
    [`${prefix}errors`, a?.errors, b?.errors, count],
  ];
  if ((a?.views ?? null) !== null || (b?.views ?? null) !== null) rows.push([`${prefix}view changes`, a?.views?.viewChanges, b?.views?.viewChanges, count]);
  const names = [...new Set([...(a?.processes ?? []), ...(b?.processes ?? [])].map((p) => p.name))];
  for (const name of names) {
    const pa = a?.processes.find((p) => p.name === name);
    const pb = b?.processes.find((p) => p.name === name);
    rows.push([`${prefix}${name} CPU s / 1000 tx`, pa?.cpuSecondsPer1000Tx, pb?.cpuSecondsPer1000Tx, seconds]);
    rows.push([`${prefix}${name} peak RSS`, pa?.peakRssBytes, pb?.peakRssBytes, formatBytes]);
  }
  return rows;
}

/**
 * The settings whose values differ between the two reports, as "name: a vs b". A setting a report
 * predates (absent) counts as null, its "not set" value.
 */
export function settingDifferences(a: BenchReport, b: BenchReport): string[] {
  const keys = [...new Set([...Object.keys(a.settings), ...Object.keys(b.settings)])] as Array<keyof BenchReport["settings"]>;
  const shown = (report: BenchReport, key: keyof BenchReport["settings"]): string => JSON.stringify(report.settings[key] ?? null);
  return keys.filter((key) => shown(a, key) !== shown(b, key)).map((key) => `${key}: ${shown(a, key)} vs ${shown(b, key)}`);
}

export function formatComparison(a: BenchReport, b: BenchReport, nameA: string, nameB: string): string {
  const describe = (report: BenchReport, name: string, label: string): string[] => [
    `${label}: ${name}, ${report.startedAt}`,
    `   ${describeSettings(report.settings)}`,
    `   commit ${report.commit.hash.slice(0, 12)}${report.commit.dirty === true ? " (dirty)" : ""}; ${report.machine.cores} cores, ${report.machine.cpuModel}, node ${report.machine.nodeVersion}`,
  ];
  const rows: Row[] = [...runRows("", a.result, b.result)];
  if (a.baseline !== null || b.baseline !== null) {
    rows.push(...runRows("baseline ", a.baseline, b.baseline));
    rows.push(["replicated / baseline", a.replicatedToBaselineRatio, b.replicatedToBaselineRatio, (value) => value.toFixed(3)]);
  }
  if ((a.signatureCeiling ?? null) !== null || (b.signatureCeiling ?? null) !== null) {
    rows.push(["signature ceiling tx/s", a.signatureCeiling?.ceilingTps ?? null, b.signatureCeiling?.ceilingTps ?? null, (value) => formatCount(value)]);
    rows.push(["throughput / ceiling", a.throughputToCeilingRatio ?? null, b.throughputToCeilingRatio ?? null, (value) => value.toFixed(3)]);
  }
  const lines = [...describe(a, nameA, "A"), ...describe(b, nameB, "B"), ""];
  lines.push(...table([["", "A", "B", "B / A"], ...rows.map(([label, va, vb, format]) => [label, cell(va, format), cell(vb, format), ratio(va, vb)])], ""));
  const differences = settingDifferences(a, b);
  if (differences.length > 0) lines.push("", "warning: the runs differ in settings:", ...differences.map((line) => `  ${line}`));
  if (a.machine.cpuModel !== b.machine.cpuModel || a.machine.cores !== b.machine.cores) lines.push("", "warning: the runs are from different machines");
  return `${lines.join("\n")}\n`;
}
