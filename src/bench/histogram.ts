// Latency histograms for the benchmark (issue 5 §1: "latency p50/p90/p99/max from an HDR
// histogram"). An HDR histogram keeps every value to three significant digits in a few tens of
// kilobytes whatever the count, so a run of millions of requests costs no memory per request, and
// histograms of several loaders (or windows) add up exactly. Values are recorded in microseconds:
// a commit takes milliseconds, and three digits of microseconds resolve it to 0.1 % without
// rounding the fastest ones to zero. The pure-JavaScript build is used (no WebAssembly module to
// load or free); recording costs a few hundred nanoseconds.

import { type Histogram, build, decodeFromCompressedBase64, encodeIntoCompressedBase64 } from "hdr-histogram-js";

import type { LatencySummary } from "./types.js";

/** The longest latency the histogram holds without resizing: a minute, longer than any request deadline. */
const LATENCY_MICROS_TRACKED_MAX = 60_000_000;
const SIGNIFICANT_DIGITS = 3;

export class LatencyHistogram {
  private readonly histogram: Histogram;

  constructor(histogram?: Histogram) {
    this.histogram =
      histogram ??
      build({
        bitBucketSize: 32,
        autoResize: true,
        lowestDiscernibleValue: 1,
        highestTrackableValue: LATENCY_MICROS_TRACKED_MAX,
        numberOfSignificantValueDigits: SIGNIFICANT_DIGITS,
        useWebAssembly: false,
      });
  }

  /** A histogram from `encode()`'s text (another loader's, or a JSON report's). */
  static decode(text: string): LatencyHistogram {
    return new LatencyHistogram(decodeFromCompressedBase64(text, 32, false));
  }

  /** Records one latency in microseconds; below 1 µs counts as 1 µs (the histogram's lowest value). */
  recordMicros(micros: number): void {
    this.histogram.recordValue(micros < 1 ? 1 : Math.round(micros));
  }

  recordMs(milliseconds: number): void {
    this.recordMicros(milliseconds * 1000);
  }

  get count(): number {
    return this.histogram.totalCount;
  }

  /** Adds every value of `other` to this histogram. */
  add(other: LatencyHistogram): void {
    this.histogram.add(other.histogram);
  }

  /** The percentiles the report shows, in milliseconds; all zero for an empty histogram. */
  summary(): LatencySummary {
    const h = this.histogram;
    if (h.totalCount === 0) return { count: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, maxMs: 0 };
    const max = h.maxValue;
    // A percentile is its bucket's highest equivalent value, which may lie above the largest value
    // recorded; no percentile exceeds the maximum.
    const at = (percentile: number): number => microsToMs(Math.min(h.getValueAtPercentile(percentile), max));
    return { count: h.totalCount, meanMs: microsToMs(h.mean), p50Ms: at(50), p90Ms: at(90), p99Ms: at(99), maxMs: microsToMs(max) };
  }

  /** The histogram as compressed base64 (HdrHistogram's own format): a few hundred bytes, for JSON reports and loader threads. */
  encode(): string {
    return encodeIntoCompressedBase64(this.histogram);
  }
}

/** Milliseconds to the microsecond. */
function microsToMs(micros: number): number {
  return Math.round(micros) / 1000;
}
