// `bulwark verify`: audits one replica's store end to end against the cluster's public config
// (issue 3 §3): chain links, Merkle roots, certificates, and a replay of execution that
// recomputes every state root (src/node/store-audit.ts). Exit 0 when everything checks; 1 with the
// first bad height and what was wrong; 2 when the store or the config cannot be opened at all.

import { availableParallelism } from "node:os";

import { type Command, InvalidArgumentError } from "commander";

import { ClusterConfigError, readClusterFile } from "../ledger/cluster-json.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import { type AuditReport, auditStore } from "../node/store-audit.js";
import { ReplicaStore, StorageError } from "../storage/index.js";
import type { CliOutput } from "./output.js";

interface VerifyFlags {
  readonly data: string;
  readonly cluster: string;
  readonly json?: boolean;
  readonly workers?: number;
}

/** One signature worker per core; the replay itself runs on this thread between their batches. */
function defaultWorkers(): number {
  return Math.min(16, Math.max(1, availableParallelism()));
}

function parseWorkers(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0 || value > 64) throw new InvalidArgumentError("expected a number of worker threads from 0 (verify on the main thread) to 64.");
  return value;
}

export const VERIFY_EXIT_OK = 0;
export const VERIFY_EXIT_MISMATCH = 1;
export const VERIFY_EXIT_UNUSABLE = 2;

/** The summary `--json` prints (one object, the last line of output). */
export interface VerifySummary {
  readonly ok: boolean;
  readonly blocks: number;
  readonly transactions: number;
  readonly stateEntries: number;
  readonly replayed: boolean;
  readonly bodyRetentionHeight: number;
  readonly elapsedMs: number;
  readonly transactionsPerSecond: number;
  /** The first bad height (undefined when ok, or for a problem of the state as a whole). */
  readonly badHeight?: number;
  readonly badPart?: string;
  readonly badStateKeyHex?: string;
  readonly problem?: string;
  readonly notes: readonly string[];
}

function summaryOf(report: AuditReport): VerifySummary {
  const seconds = report.elapsedMs / 1000;
  const { problem } = report;
  return {
    ok: report.ok,
    blocks: report.blocks,
    transactions: report.transactions,
    stateEntries: report.stateEntries,
    replayed: report.replayed,
    bodyRetentionHeight: report.bodyRetentionHeight,
    elapsedMs: Math.round(report.elapsedMs),
    transactionsPerSecond: seconds > 0 ? Math.round(report.transactions / seconds) : 0,
    ...(problem === undefined
      ? {}
      : {
          ...(problem.height === undefined ? {} : { badHeight: problem.height }),
          badPart: problem.part,
          ...(problem.stateKeyHex === undefined ? {} : { badStateKeyHex: problem.stateKeyHex }),
          problem: problem.message,
        }),
    notes: report.notes,
  };
}

function describe(summary: VerifySummary): string {
  const lines: string[] = [];
  for (const note of summary.notes) lines.push(`note: ${note}`);
  const counts = `${summary.blocks} blocks, ${summary.transactions} transactions, ${summary.stateEntries} state entries`;
  const speed = `${(summary.elapsedMs / 1000).toFixed(2)} s, ${summary.transactionsPerSecond} tx/s`;
  if (summary.ok) {
    lines.push(`OK: ${counts} verified${summary.replayed ? " (execution replayed from the empty state)" : " (execution not replayed: bodies pruned)"} in ${speed}`);
  } else {
    const where = summary.badHeight !== undefined ? `at height ${summary.badHeight}` : summary.badStateKeyHex !== undefined ? `in state entry ${summary.badStateKeyHex}` : "in the stored state";
    lines.push(`FAILED ${where} (${summary.badPart}): ${summary.problem}`);
    lines.push(`checked before the failure: ${counts} in ${speed}`);
  }
  return `${lines.join("\n")}\n`;
}

export async function runVerify(flags: VerifyFlags, output: CliOutput): Promise<number> {
  let cluster: ClusterConfig;
  let store: ReplicaStore;
  try {
    cluster = readClusterFile(flags.cluster);
    store = await ReplicaStore.openExisting({ directory: flags.data, clusterId: cluster.clusterId });
  } catch (error) {
    if (!(error instanceof ClusterConfigError) && !(error instanceof StorageError)) throw error;
    output.err(`bulwark verify: ${error.message}\n`);
    return VERIFY_EXIT_UNUSABLE;
  }
  try {
    const summary = summaryOf(await auditStore(store, cluster, { signatureWorkers: flags.workers ?? defaultWorkers() }));
    if (flags.json === true) output.out(`${JSON.stringify(summary)}\n`);
    else output.out(describe(summary));
    return summary.ok ? VERIFY_EXIT_OK : VERIFY_EXIT_MISMATCH;
  } finally {
    await store.close();
  }
}

export function registerVerifyCommand(program: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  program
    .command("verify")
    .description("Audit a replica's store end to end: chain links, Merkle roots, commit certificates, and a replay of execution that recomputes every state root.")
    .requiredOption("--data <dir>", "the replica's data directory")
    .requiredOption("--cluster <file>", "the cluster config (JSON) whose public keys certify the blocks")
    .option("--json", "print one JSON summary object as the last line of output")
    .option("--workers <count>", "threads verifying transaction signatures for the replay (default: one per core; 0: none)", parseWorkers)
    .addHelpText(
      "after",
      "\nExample:\n  bulwark verify --data ./data/replica-0 --cluster ./cluster.json\n\n" +
        "Exit code 0 when the store verifies; 1 on any mismatch, naming the first bad height (or state entry) and what was wrong;\n" +
        "2 when the store or the cluster config cannot be opened.",
    )
    .action(async (flags: VerifyFlags) => {
      setExitCode(await runVerify(flags, output));
    });
}
