// Where a benchmark ran and on what code, for its JSON report (issue 5 §1: "the commit hash and
// the machine (cores, model)"): figures from different machines or commits are not comparable,
// and `bench compare` shows both so a reader sees it.

import { execFile } from "node:child_process";
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";
import { fileURLToPath } from "node:url";

/** dist/src/bench/ → the package root, whose git checkout names the commit. */
const PACKAGE_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const GIT_TIMEOUT_MS = 5_000;

export interface MachineInfo {
  readonly cores: number;
  readonly cpuModel: string;
  readonly totalMemoryBytes: number;
  readonly nodeVersion: string;
  readonly platform: string;
  /** The 1-, 5- and 15-minute load averages when the run started: other work on the machine shows here. */
  readonly loadAverageAtStart: readonly number[];
}

export interface CommitInfo {
  /** `git rev-parse HEAD` of the package, or "unknown" outside a git checkout. */
  readonly hash: string;
  /** Whether tracked files differ from the commit (the figures are then of uncommitted code); undefined when unknown. */
  readonly dirty: boolean | undefined;
}

export function machineInfo(): MachineInfo {
  return {
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    totalMemoryBytes: totalmem(),
    nodeVersion: process.version,
    platform: `${process.platform}-${process.arch}`,
    loadAverageAtStart: loadavg().map((value) => Math.round(value * 100) / 100),
  };
}

export async function commitInfo(directory = PACKAGE_ROOT): Promise<CommitInfo> {
  const head = await git(directory, ["rev-parse", "HEAD"]);
  if (head === undefined || !/^[0-9a-f]{40,64}$/.test(head.trim())) return { hash: "unknown", dirty: undefined };
  const status = await git(directory, ["status", "--porcelain", "--untracked-files=no"]);
  return { hash: head.trim(), dirty: status === undefined ? undefined : status.trim() !== "" };
}

function git(directory: string, args: readonly string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile("git", ["-C", directory, ...args], { timeout: GIT_TIMEOUT_MS }, (error, stdout) => resolve(error === null ? stdout : undefined));
  });
}
