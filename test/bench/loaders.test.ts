import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { baselineCluster } from "../../src/bench/baseline.js";
import { LatencyHistogram } from "../../src/bench/histogram.js";
import { type LoaderPlan, type SerializedOutcome, loaderClients, mergeOutcomes, startThreads } from "../../src/bench/loaders.js";

function outcome(windows: number[], latencyMs: number, overrides: Partial<SerializedOutcome> = {}): SerializedOutcome {
  const histogram = new LatencyHistogram();
  const committed = windows.reduce((sum, count) => sum + count, 0);
  for (let i = 0; i < committed; i++) histogram.recordMs(latencyMs);
  return {
    committed,
    windows,
    throughputTps: 0,
    latency: histogram.summary(),
    errors: 1,
    histogram: histogram.encode(),
    warmupCommitted: 10,
    errorsByKind: { timeout: 1 },
    firstFailure: undefined,
    retries: 1,
    offered: 0,
    noFreeKey: 0,
    dropped: 0,
    inFlightAtEnd: 0,
    stoppedEarly: false,
    builtOnDemand: 2,
    ...overrides,
  };
}

/**
 * Two loader threads with signed kv envelopes to build: 200,000 signatures each, seconds of work.
 * The cluster is never reached (its one replica listens nowhere): the tests stop the threads first.
 */
function heavyPlan(signal: AbortSignal): LoaderPlan {
  return {
    cluster: baselineCluster(new Uint8Array(32).fill(0x11), 64),
    settings: { name: "kv", auth: "signed", clients: 4, seed: 1, keySeed: new Uint8Array(32).fill(3), records: 1000 },
    perClient: 100_000,
    mode: { kind: "closed" },
    warmupMs: 0,
    durationMs: 1000,
    signal,
  };
}

describe("loader threads", () => {
  it("are ended at once by Ctrl-C while they build their envelopes, which they do without reading messages", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const startedMs = performance.now();
    await assert.rejects(startThreads(2, heavyPlan(controller.signal)), /stopped while building the envelopes/);
    assert.ok(performance.now() - startedMs < 2_500, `rejected after ${Math.round(performance.now() - startedMs)} ms, not once the envelopes were built`);
  });

  it("do not start building when the signal fired before", async () => {
    const startedMs = performance.now();
    await assert.rejects(startThreads(2, heavyPlan(AbortSignal.abort())), /stopped while building the envelopes/);
    assert.ok(performance.now() - startedMs < 2_000);
  });

  it("share the clients: every client in exactly one loader", () => {
    const shares = [0, 1, 2].map((loader) => loaderClients(10, 3, loader));
    assert.deepEqual(shares, [
      [0, 3, 6, 9],
      [1, 4, 7],
      [2, 5, 8],
    ]);
  });

  it("add up to one outcome: windows second by second, histograms merged, the median of the sums as throughput", () => {
    const merged = mergeOutcomes([outcome([100, 120, 80], 10), outcome([50, 70, 90], 30, { firstFailure: "client 3: boom", errorsByKind: { timeout: 1, closed: 2 } })]);
    assert.deepEqual(merged.windows, [150, 190, 170]);
    assert.equal(merged.throughputTps, 170);
    assert.equal(merged.committed, 510);
    assert.equal(merged.latency.count, 510);
    assert.ok(Math.abs(merged.latency.p50Ms - 10) < 0.05 && Math.abs(merged.latency.maxMs - 30) < 0.05, JSON.stringify(merged.latency));
    assert.deepEqual(merged.errorsByKind, { timeout: 2, closed: 2 });
    assert.equal(merged.errors, 2);
    assert.equal(merged.warmupCommitted, 20);
    assert.equal(merged.builtOnDemand, 4);
    assert.equal(merged.firstFailure, "client 3: boom");
  });

  it("keep only the seconds every loader measured when one stopped early", () => {
    const merged = mergeOutcomes([outcome([100, 100, 100], 10), outcome([100, 100], 10, { stoppedEarly: true })]);
    assert.deepEqual(merged.windows, [200, 200]);
    assert.ok(merged.stoppedEarly);
  });
});
