// `bulwark verify` on a large store (a script, not a test): run `npm run build`, then
//
//   node dist/test/node/measure-verify.js [--transactions 100000] [--batch 500] [--runs 3] [--keep DIR]
//
// It builds replica 0's store through the BlockPipeline from a random signed workload (transfers,
// mints, kv traffic, double spends, replays, forgeries; batches of about --batch requests, every
// block certified by the 4 test replicas; sync "none" for the build, which is not what is
// measured), then runs `node bin/bulwark.js verify --data DIR --cluster FILE --json` --runs
// times as a separate process and prints each run's wall time and the median.
// The test runner loads every file under test/; this one does nothing when loaded that way.

import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

import { clusterConfigToJson } from "../../src/ledger/cluster-json.js";
import { buildLedgerStore, ledgerCluster } from "./ledger-store.js";

function flag(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  if (index === -1) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${name} needs a positive whole number`);
  return value;
}

async function main(): Promise<void> {
  const transactionsMin = flag("transactions", 100_000);
  const batch = flag("batch", 500);
  const runs = flag("runs", 3);
  const keepIndex = process.argv.indexOf("--keep");
  const root = keepIndex === -1 ? mkdtempSync(join(tmpdir(), "bulwark-measure-verify-")) : process.argv[keepIndex + 1]!;
  const data = join(root, "replica-0");
  const clusterFile = join(root, "cluster.json");
  const cluster = ledgerCluster();
  mkdirSync(root, { recursive: true });
  writeFileSync(clusterFile, clusterConfigToJson(cluster.config));
  try {
    const buildStarted = performance.now();
    const built = await buildLedgerStore(cluster, {
      directory: data,
      batches: Math.ceil(transactionsMin / batch),
      clientCount: 400,
      seed: 2026,
      requestsPerBatchMin: batch,
    });
    const buildSeconds = (performance.now() - buildStarted) / 1000;
    process.stdout.write(`built ${built.blocks} blocks, ${built.transactions} transactions in ${buildSeconds.toFixed(1)} s (${data})\n`);
    const wallSeconds: number[] = [];
    for (let run = 1; run <= runs; run++) {
      const started = performance.now();
      const child = spawnSync(process.execPath, ["bin/bulwark.js", "verify", "--data", data, "--cluster", clusterFile, "--json"], { encoding: "utf8" });
      const seconds = (performance.now() - started) / 1000;
      if (child.status !== 0) throw new Error(`verify exited ${child.status}: ${child.stdout}${child.stderr}`);
      const summary = JSON.parse(child.stdout.trim().split("\n").pop()!) as { transactions: number; elapsedMs: number; transactionsPerSecond: number };
      wallSeconds.push(seconds);
      process.stdout.write(
        `run ${run}: wall ${seconds.toFixed(2)} s (${Math.round(built.transactions / seconds)} tx/s); audit ${(summary.elapsedMs / 1000).toFixed(2)} s (${summary.transactionsPerSecond} tx/s)\n`,
      );
    }
    const median = [...wallSeconds].sort((a, b) => a - b)[Math.floor(wallSeconds.length / 2)]!;
    process.stdout.write(`median wall time of ${runs} runs: ${median.toFixed(2)} s, ${Math.round(built.transactions / median)} tx/s over ${built.transactions} transactions\n`);
  } finally {
    if (keepIndex === -1) rmSync(root, { recursive: true, force: true });
  }
}

if (process.env.NODE_TEST_CONTEXT === undefined && process.argv[1]?.endsWith("measure-verify.js")) {
  main().catch((error: unknown) => {
    process.stderr.write(`measure-verify: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
