import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { BaselineResult } from "../../src/bench/baseline.js";
import { ReportFileError, checkReport, formatComparison, settingDifferences } from "../../src/bench/compare.js";
import { LatencyHistogram } from "../../src/bench/histogram.js";
import { PREPARED_ENVELOPES_MAX } from "../../src/bench/prepared-workload.js";
import { BENCH_REPORT_FORMAT, type BenchReport, type RunReport, baselineRunReport, formatReport, memoryTrendLines, processReport, viewFigures } from "../../src/bench/report.js";

const MIB = 1024 * 1024;

function run(throughputTps: number, overrides: Partial<RunReport> = {}): RunReport {
  return {
    committed: throughputTps * 3,
    windows: [throughputTps - 10, throughputTps, throughputTps + 10],
    throughputTps,
    latency: { count: throughputTps * 3, meanMs: 12.5, p50Ms: 11, p90Ms: 20.25, p99Ms: 45, maxMs: 130 },
    errors: 0,
    errorsByKind: {},
    retries: 0,
    warmupCommitted: 100,
    offered: null,
    noFreeKey: null,
    dropped: null,
    inFlightAtEnd: 0,
    stoppedEarly: false,
    builtOnDemand: 0,
    histogram: new LatencyHistogram().encode(),
    processes: [
      processReport({ name: "replica 0", cpuSeconds: 6, peakRssBytes: 200 * MIB, rssSamplesBytes: [190 * MIB, 200 * MIB] }, throughputTps * 3),
      processReport({ name: "replica 1", cpuSeconds: undefined, peakRssBytes: undefined, rssSamplesBytes: [null], note: "no samples" }, throughputTps * 3),
    ],
    views: viewFigures([0, 0, 1, undefined], [2, 2, 2, undefined]),
    setup: { rounds: 0, transactions: 0, seconds: 0 },
    firstFailure: null,
    ...overrides,
  };
}

function report(throughputTps: number, overrides: Partial<BenchReport> = {}): BenchReport {
  return {
    format: BENCH_REPORT_FORMAT,
    startedAt: "2026-01-01T00:00:00.000Z",
    settings: {
      workload: "kv",
      auth: "session",
      loop: "closed",
      clients: 256,
      rate: null,
      durationS: 3,
      warmupS: 1,
      seed: 1,
      loaders: 1,
      cluster: "local",
      replicas: 4,
      batchSize: 256,
      records: 100_000,
      preload: false,
      accounts: null,
      preparedPerClient: 100,
      signingBackend: "sodium-native",
      baseline: false,
      profileDir: null,
      sync: "durable",
    },
    commit: { hash: "0123456789abcdef0123456789abcdef01234567", dirty: false },
    machine: { cores: 2, cpuModel: "Test CPU", totalMemoryBytes: 24 * 1024 * MIB, nodeVersion: "v20.0.0", platform: "linux-x64", loadAverageAtStart: [0.5, 0.4, 0.3] },
    result: run(throughputTps),
    baseline: null,
    replicatedToBaselineRatio: null,
    ...overrides,
  };
}

describe("the bench report", () => {
  it("divides CPU by the committed transactions, per 1,000", () => {
    const figures = processReport({ name: "bench", cpuSeconds: 1.5, peakRssBytes: 10, rssSamplesBytes: [] }, 3000);
    assert.equal(figures.cpuSecondsPer1000Tx, 0.5);
    assert.equal(processReport({ name: "bench", cpuSeconds: 1.5, peakRssBytes: 10, rssSamplesBytes: [] }, 0).cpuSecondsPer1000Tx, null);
  });

  it("counts view changes as the rise of the highest view, and none when no replica answered", () => {
    assert.equal(viewFigures([0, 0, 1, undefined], [2, 2, 2, undefined]).viewChanges, 1);
    assert.equal(viewFigures([undefined], [3]).viewChanges, null);
    assert.deepEqual(viewFigures([0, undefined], [0, 0]).start, [0, null]);
  });

  it("prints throughput, latency percentiles, view changes and a row per process, with n/a for what was not measured", () => {
    const text = formatReport(report(1234));
    assert.match(text, /kv \(100,000 records\), session auth, closed loop, 256 clients, 4 local replicas, batch 256/);
    assert.match(text, /throughput +1,234 tx\/s +\(median of 3 one-second windows/);
    assert.match(text, /p50 11\.0 ms +p90 20\.3 ms +p99 45\.0 ms +max 130 ms/);
    assert.match(text, /view changes +1/);
    assert.match(text, /replica 0 +6\.0 +1\.621 +200 MiB/);
    assert.match(text, /replica 1 +n\/a +n\/a +n\/a/);
    assert.match(text, /note: replica 1: no samples/);
    assert.match(text, /commit 0123456789ab; 2 cores, Test CPU/);
  });

  it("prints the baseline and the ratio when there is one, and flags envelopes built during the run", () => {
    const text = formatReport(report(1000, { baseline: run(4000, { views: null, processes: [] }), replicatedToBaselineRatio: 0.25, result: run(1000, { builtOnDemand: 77 }) }));
    assert.match(text, /baseline \(one process/);
    assert.match(text, /throughput +4,000 tx\/s/);
    assert.match(text, /replicated \/ baseline throughput: 0\.250/);
    assert.match(text, /note: 77 envelopes were built during the run\b.*; raise --prepare-rate$/m);
  });

  it("prints the signature ceiling and the throughput's share of it for a signed run that measured one", () => {
    const signatureCeiling = { backend: "sodium-native", verifiesPerSecondOneCore: 18_000, cores: 2, replicas: 4, ceilingTps: 9_000, rounds: 5 };
    const text = formatReport(report(4500, { signatureCeiling, throughputToCeilingRatio: 0.5 }));
    assert.match(text, /signature ceiling {2}9,000 tx\/s \(2 cores × 18,000 verifications\/s on one core, sodium-native, ÷ 4 replicas/);
    assert.match(text, /throughput \/ ceiling {2}50\.0 %/);
    assert.doesNotMatch(formatReport(report(4500)), /signature ceiling/, "a run without one prints none");
  });

  it("reports the mean memory of the first minute against the last, RSS and RssAnon, for a run of two minutes or more, and not for a short one", () => {
    const samples = (fromMib: number, toMib: number): number[] => Array.from({ length: 300 }, (_, index) => (fromMib + ((toMib - fromMib) * index) / 299) * MIB);
    const long = run(1000, {
      processes: [processReport({ name: "replica 0", cpuSeconds: 6, peakRssBytes: 900 * MIB, rssSamplesBytes: samples(500, 900), anonRssSamplesBytes: samples(300, 310) }, 3000)],
    });
    const lines = memoryTrendLines(long).join("\n");
    // Linear 500 → 900 MiB over 300 samples: means 539.5 and 860.5 MiB over the first and last 60.
    assert.match(lines, /replica 0 +539 MiB +861 MiB +1\.595 +301 MiB +309 MiB +1\.027/);
    assert.match(formatReport(report(1000, { result: long })), /RssAnon is the process's own memory/);
    assert.deepEqual(memoryTrendLines(run(1000)), [], "two samples are not a trend");
  });

  it("says that envelopes built during a run at the cap come from the cap, which --prepare-rate does not raise", () => {
    const base = report(1000);
    const atCap = Math.floor(PREPARED_ENVELOPES_MAX / base.settings.clients);
    const text = formatReport(report(1000, { settings: { ...base.settings, preparedPerClient: atCap }, result: run(1000, { builtOnDemand: 5000 }) }));
    assert.match(text, /note: 5,000 envelopes were built during the run, which loaded the bench process: the bench builds at most 2,000,000 ahead of a run \(7,812 per client here\)/);
    assert.doesNotMatch(text, /--prepare-rate/);
    const below = formatReport(report(1000, { settings: { ...base.settings, preparedPerClient: atCap - 1 }, result: run(1000, { builtOnDemand: 5000 }) }));
    assert.match(below, /raise --prepare-rate$/m);
  });

  it("reports the baseline's latency histogram, not an empty one", () => {
    const histogram = new LatencyHistogram();
    for (let i = 1; i <= 300; i++) histogram.recordMs(i / 10);
    const result: BaselineResult = { committed: 300, windows: [150, 150], throughputTps: 150, latency: histogram.summary(), errors: 0, histogram, cpuSeconds: 1.5, peakRssBytes: 100 * MIB };
    const baseline = baselineRunReport(result, 12, true);
    const decoded = LatencyHistogram.decode(baseline.histogram);
    assert.equal(decoded.count, 300);
    // The encoding keeps buckets, not the exact maximum, so the percentiles below it are what survive exactly.
    const { p50Ms, p90Ms, p99Ms } = decoded.summary();
    assert.deepEqual({ p50Ms, p90Ms, p99Ms }, { p50Ms: result.latency.p50Ms, p90Ms: result.latency.p90Ms, p99Ms: result.latency.p99Ms });
    assert.equal(baseline.builtOnDemand, 12);
    assert.equal(baseline.stoppedEarly, true);
    assert.deepEqual(baseline.processes.map((p) => [p.name, p.cpuSecondsPer1000Tx]), [["baseline", 5]]);
  });

  it("survives JSON and is recognized as a report; anything else is refused with a message", () => {
    const original = report(500);
    assert.deepEqual(checkReport(JSON.parse(JSON.stringify(original)), "a.json"), original);
    assert.throws(() => checkReport({ hello: 1 }, "x.json"), (error) => error instanceof ReportFileError && /x\.json is not a bulwark bench report/.test(error.message));
    assert.throws(() => checkReport({ ...original, result: {} }, "y.json"), ReportFileError);
  });

  it("refuses a report whose commit, machine, processes or baseline compare could not read, naming the part", () => {
    const original = JSON.parse(JSON.stringify(report(500))) as Record<string, unknown>;
    const refused = (broken: Record<string, unknown>, message: RegExp): void => {
      assert.throws(() => checkReport({ ...original, ...broken }, "z.json"), (error) => error instanceof ReportFileError && message.test(error.message), JSON.stringify(broken));
    };
    refused({ commit: {} }, /^z\.json: its "commit" lacks the hash/);
    refused({ commit: null }, /"commit" lacks the hash/);
    refused({ machine: { cores: 2 } }, /^z\.json: its "machine" lacks cores, cpuModel or nodeVersion/);
    refused({ machine: { ...(original.machine as object), nodeVersion: 20 } }, /"machine" lacks/);
    refused({ settings: "kv" }, /lacks "settings"/);
    refused({ result: { ...(original.result as object), processes: [null] } }, /"result" has a process without a name/);
    refused({ baseline: { throughputTps: 1 } }, /"baseline" lacks throughput, latency or processes/);
    // Every part that formatComparison reads is checked: what passes compares without throwing.
    const minimal = { ...original, commit: { hash: "unknown" }, machine: { cores: 1, cpuModel: "m", nodeVersion: "v20" } };
    assert.doesNotThrow(() => formatComparison(checkReport(minimal, "m.json"), checkReport(original, "o.json"), "m", "o"));
  });

  it("shows a figure that is not a number as n/a instead of failing", () => {
    const a = report(1000);
    const b = JSON.parse(JSON.stringify(report(1000))) as BenchReport;
    (b.result.latency as unknown as Record<string, unknown>).p50Ms = "fast";
    assert.match(formatComparison(a, checkReport(b, "b.json"), "a", "b"), /latency p50 +11\.0 ms +n\/a +n\/a/);
  });

  it("compares two reports side by side with B / A ratios and warns about differing settings", () => {
    const a = report(1000);
    const b = report(1500, { settings: { ...a.settings, batchSize: 1024 } });
    const text = formatComparison(a, b, "a.json", "b.json");
    assert.match(text, /^A: a\.json/m);
    assert.match(text, /^B: b\.json/m);
    assert.match(text, /throughput \(tx\/s\) +1,000 +1,500 +1\.50x/);
    assert.match(text, /latency p99 +45\.0 ms +45\.0 ms +1\.00x/);
    assert.match(text, /replica 1 CPU s \/ 1000 tx +n\/a +n\/a +n\/a/);
    assert.match(text, /warning: the runs differ in settings:\n {2}batchSize: 256 vs 1024/);
    assert.deepEqual(settingDifferences(a, a), []);
    assert.doesNotMatch(formatComparison(a, a, "a", "a"), /warning/);
    // A report older than a setting lacks it: that is its "not set", the same as null.
    const older = report(1000, { settings: { ...a.settings, retainBlocks: undefined } });
    assert.deepEqual(settingDifferences(older, report(1000, { settings: { ...a.settings, retainBlocks: null } })), []);
    assert.deepEqual(settingDifferences(older, report(1000, { settings: { ...a.settings, retainBlocks: 100 } })), ["retainBlocks: null vs 100"]);
  });
});
