import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { LatencyHistogram } from "../../src/bench/histogram.js";

describe("the latency histogram", () => {
  it("summarizes percentiles in milliseconds to three significant digits", () => {
    const histogram = new LatencyHistogram();
    // 1 ms .. 1,000 ms, one value each.
    for (let ms = 1; ms <= 1000; ms++) histogram.recordMs(ms);
    const summary = histogram.summary();
    assert.equal(summary.count, 1000);
    const near = (actual: number, expected: number): void => assert.ok(Math.abs(actual - expected) <= expected * 0.002, `${actual} vs ${expected}`);
    near(summary.p50Ms, 500);
    near(summary.p90Ms, 900);
    near(summary.p99Ms, 990);
    near(summary.maxMs, 1000);
    near(summary.meanMs, 500.5);
    assert.ok(summary.p50Ms <= summary.p90Ms && summary.p90Ms <= summary.p99Ms && summary.p99Ms <= summary.maxMs);
  });

  it("never reports a percentile above the maximum, though a bucket's upper bound may lie above it", () => {
    const histogram = new LatencyHistogram();
    histogram.recordMicros(182_765);
    const summary = histogram.summary();
    assert.equal(summary.maxMs, 182.765);
    assert.equal(summary.p99Ms, 182.765);
    assert.equal(summary.p50Ms, 182.765);
  });

  it("reports zeros, not NaN, when empty", () => {
    assert.deepEqual(new LatencyHistogram().summary(), { count: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, maxMs: 0 });
  });

  it("keeps sub-millisecond latencies apart and counts values below a microsecond as one", () => {
    const histogram = new LatencyHistogram();
    histogram.recordMicros(0.2);
    histogram.recordMicros(250);
    assert.equal(histogram.summary().maxMs, 0.25);
    assert.equal(histogram.count, 2);
  });

  it("adds loaders' histograms and survives its encoding", () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    for (let i = 0; i < 500; i++) a.recordMs(10);
    for (let i = 0; i < 500; i++) b.recordMs(30);
    a.add(LatencyHistogram.decode(b.encode()));
    const summary = a.summary();
    assert.equal(summary.count, 1000);
    assert.ok(Math.abs(summary.meanMs - 20) < 0.05, `mean ${summary.meanMs}`);
    assert.ok(Math.abs(summary.p90Ms - 30) < 0.05, `p90 ${summary.p90Ms}`);
  });
});
