// End to end (issue 5 §1, "Done when"): `bulwark bench` starts a local cluster of four real
// replica processes, runs the kv workload with signed transactions (and first the one-process
// baseline), and writes a JSON report with every figure; `bulwark bench compare` reads it back.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { LatencyHistogram } from "../../src/bench/histogram.js";
import type { BenchReport } from "../../src/bench/report.js";

const BULWARK_BIN = fileURLToPath(new URL("../../../bin/bulwark.js", import.meta.url));
const RUN_TIMEOUT_MS = 90_000;

function bulwark(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BULWARK_BIN, ...args], { timeout: RUN_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr });
    });
  });
}

describe("bulwark bench on a local cluster of real processes", () => {
  it("measures kv with signed transactions and writes a report that compare reads", { timeout: RUN_TIMEOUT_MS * 2 }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "bulwark-bench-e2e-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const json = join(dir, "out.json");
    const run = await bulwark(["bench", "--workload", "kv", "--auth", "signed", "--duration", "3", "--warmup", "1", "--clients", "16", "--baseline", "--json", json]);
    assert.equal(run.code, 0, `exit ${run.code}\n${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /throughput +[\d,]+ tx\/s/);
    assert.match(run.stdout, /latency +p50 .* p90 .* p99 .* max /);

    const report = JSON.parse(readFileSync(json, "utf8")) as BenchReport;
    const { result, settings } = report;
    assert.ok(result.throughputTps > 0, `throughput ${result.throughputTps}`);
    assert.equal(result.windows.length, 3);
    assert.ok(result.committed > 0);
    const { latency } = result;
    assert.ok(latency.count === result.committed && latency.p50Ms > 0 && latency.p50Ms <= latency.p90Ms && latency.p90Ms <= latency.p99Ms && latency.p99Ms <= latency.maxMs, JSON.stringify(latency));
    const replicas = result.processes.filter((p) => p.name.startsWith("replica "));
    assert.deepEqual(replicas.map((p) => p.name), ["replica 0", "replica 1", "replica 2", "replica 3"]);
    for (const replica of replicas) {
      assert.ok(replica.cpuSeconds !== null && replica.cpuSeconds > 0 && replica.cpuSecondsPer1000Tx !== null, JSON.stringify(replica));
      assert.ok(replica.peakRssBytes !== null && replica.peakRssBytes > 10 * 1024 * 1024, JSON.stringify(replica));
      assert.ok(replica.rssSamplesBytes.length >= 2, `${replica.name}: ${replica.rssSamplesBytes.length} RSS samples`);
    }
    assert.ok(result.processes.some((p) => p.name === "bench" && p.cpuSeconds !== null));
    // A loaded machine may see a view change in a short run; the figure must be there.
    assert.equal(typeof result.views?.viewChanges, "number", JSON.stringify(result.views));
    assert.equal(result.views?.start.length, 4);
    assert.deepEqual(
      [settings.workload, settings.auth, settings.loop, settings.clients, settings.durationS, settings.warmupS, settings.replicas, settings.batchSize, settings.cluster],
      ["kv", "signed", "closed", 16, 3, 1, 4, 256, "local"],
    );
    // A signed run measures the signature ceiling before the replicas start, and relates to it.
    const ceiling = report.signatureCeiling;
    assert.ok(ceiling !== undefined && ceiling !== null && ceiling.ceilingTps === Math.round((ceiling.cores * ceiling.verifiesPerSecondOneCore) / 4), JSON.stringify(ceiling));
    assert.equal(report.throughputToCeilingRatio, Math.round((result.throughputTps / ceiling.ceilingTps) * 10_000) / 10_000);
    assert.match(run.stdout, /signature ceiling +[\d,]+ tx\/s/);
    assert.match(report.commit.hash, /^([0-9a-f]{40}|unknown)$/);
    assert.ok(report.machine.cores >= 1 && report.machine.cpuModel.length > 0 && report.machine.nodeVersion.startsWith("v"));
    assert.equal(LatencyHistogram.decode(result.histogram).count, result.committed);
    const { baseline } = report;
    assert.ok(baseline !== null && baseline.committed > 0, JSON.stringify(baseline));
    assert.equal(LatencyHistogram.decode(baseline.histogram).count, baseline.committed, "the baseline's histogram is its own, not an empty one");
    assert.ok(report.replicatedToBaselineRatio !== null && report.replicatedToBaselineRatio > 0);

    const compare = await bulwark(["bench", "compare", json, json]);
    assert.equal(compare.code, 0, compare.stderr);
    assert.match(compare.stdout, /throughput \(tx\/s\) +[\d,]+ +[\d,]+ +1\.00x/);
    assert.doesNotMatch(compare.stdout, /warning/);
  });
});
