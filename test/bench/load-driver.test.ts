import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { BenchKey, buildEnvelope, envelopeKeyAndNonce } from "../../src/bench/bench-keys.js";
import { type EnvelopeSubmitter, delay, epochNowMs, median, runLoad } from "../../src/bench/load-driver.js";
import { TimeoutError } from "../../src/client/index.js";
import type { Committed } from "../../src/client/index.js";


const KEYS = Array.from({ length: 64 }, (_, index) => BenchKey.derive(new Uint8Array(32), "driver-test", index));

/** Client c's envelopes: noops of key c with nonces 1, 2, 3, ... */
function workload(): { next(client: number): Uint8Array } {
  const nonces = new Map<number, number>();
  return {
    next(client) {
      const nonce = (nonces.get(client) ?? 0) + 1;
      nonces.set(client, nonce);
      return buildEnvelope(KEYS[client]!, "session", nonce, { type: "noop" });
    },
  };
}

const OK: Committed = { result: { ok: true, kind: "done" }, height: 1, nonce: 1, replicas: [0, 1] };

/** Commits each envelope after `delayMs`; records what it was sent, per key. */
class FakeCluster implements EnvelopeSubmitter {
  readonly sent = new Map<string, number[]>();
  inFlight = 0;
  inFlightMax = 0;

  constructor(
    private readonly delayMs: number,
    private readonly outcome: (sentCount: number) => "ok" | "timeout" | "refused" = () => "ok",
  ) {}

  submitEnvelope(envelope: Uint8Array): Promise<Committed> {
    const { clientKey, nonce } = envelopeKeyAndNonce(envelope);
    const key = Buffer.from(clientKey).toString("hex");
    const list = this.sent.get(key) ?? [];
    list.push(nonce);
    this.sent.set(key, list);
    this.inFlight += 1;
    this.inFlightMax = Math.max(this.inFlightMax, this.inFlight);
    const outcome = this.outcome([...this.sent.values()].reduce((sum, l) => sum + l.length, 0));
    return new Promise((resolve, reject) =>
      setTimeout(() => {
        this.inFlight -= 1;
        if (outcome === "timeout") reject(new TimeoutError(1, nonce, 2, [], "test"));
        else if (outcome === "refused") resolve({ ...OK, result: { ok: false, error: "insufficient-balance" } });
        else resolve(OK);
      }, this.delayMs),
    );
  }
}

describe("the load driver", () => {
  it("takes the median of the windows as throughput", () => {
    assert.equal(median([5, 1, 3]), 3);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([]), 0);
  });

  it("closed loop: each client keeps one request in flight, in nonce order, and every commit of the window is in a window", async () => {
    const cluster = new FakeCluster(5);
    const outcome = await runLoad({ submitterOf: () => cluster, workload: workload(), clients: [0, 1, 2, 3], mode: { kind: "closed" }, warmupMs: 300, durationMs: 2000 });
    assert.equal(cluster.inFlightMax, 4);
    for (const nonces of cluster.sent.values()) assert.deepEqual(nonces, nonces.map((_, index) => index + 1));
    assert.equal(outcome.windows.length, 2);
    assert.equal(outcome.windows[0]! + outcome.windows[1]!, outcome.committed);
    assert.equal(outcome.latency.count, outcome.committed);
    // Four clients at ~5 ms (timers round up) a request: hundreds a second each.
    assert.ok(outcome.throughputTps > 200 && outcome.throughputTps < 4 * 210, `throughput ${outcome.throughputTps}`);
    assert.ok(outcome.latency.p50Ms >= 4.5, `p50 ${outcome.latency.p50Ms}`);
    assert.ok(outcome.warmupCommitted > 0);
    assert.equal(outcome.errors, 0);
    assert.equal(outcome.inFlightAtEnd, 0);
    assert.equal(outcome.offered, 0);
  });

  it("resends the same envelope after a timeout, and counts refused results as errors without stopping", async () => {
    const cluster = new FakeCluster(2, (count) => (count % 5 === 0 ? "timeout" : count % 7 === 0 ? "refused" : "ok"));
    const outcome = await runLoad({ submitterOf: () => cluster, workload: workload(), clients: [0], mode: { kind: "closed" }, warmupMs: 0, durationMs: 1000 });
    const nonces = [...cluster.sent.values()][0]!;
    // A timed-out nonce is sent again; otherwise the nonces advance one by one.
    for (let i = 1; i < nonces.length; i++) assert.ok(nonces[i] === nonces[i - 1] || nonces[i] === nonces[i - 1]! + 1, `nonce ${nonces[i]} after ${nonces[i - 1]}`);
    assert.ok(nonces.some((nonce, i) => i > 0 && nonce === nonces[i - 1]), "some nonce was resent");
    assert.ok((outcome.errorsByKind.timeout ?? 0) > 0 && (outcome.errorsByKind["insufficient-balance"] ?? 0) > 0, JSON.stringify(outcome.errorsByKind));
    assert.equal(outcome.errors, (outcome.errorsByKind.timeout ?? 0) + (outcome.errorsByKind["insufficient-balance"] ?? 0));
    assert.ok(outcome.retries > 0);
    assert.equal(outcome.firstFailure, undefined);
  });

  it("open loop: arrivals follow the rate whatever the cluster does, and latency counts from the intended time", async () => {
    // 200 arrivals a second, 2 keys, 50 ms a request: the keys can serve 40 a second, so arrivals queue.
    const cluster = new FakeCluster(50);
    const outcome = await runLoad({ submitterOf: () => cluster, workload: workload(), clients: [0, 1], mode: { kind: "open", ratePerSecond: 200 }, warmupMs: 0, durationMs: 1000 });
    assert.ok(outcome.offered >= 195 && outcome.offered <= 201, `offered ${outcome.offered}`);
    assert.ok(outcome.noFreeKey > 150, `${outcome.noFreeKey} arrivals found no free key`);
    assert.ok(outcome.committed < 50, `committed ${outcome.committed}`);
    // Queued behind earlier arrivals: far more than the 50 ms service time.
    assert.ok(outcome.latency.maxMs > 400, `max ${outcome.latency.maxMs} ms`);
    assert.ok(cluster.inFlightMax <= 2);
  });

  it("open loop with keys to spare: latency is the service time and nothing waits", async () => {
    const cluster = new FakeCluster(5);
    const outcome = await runLoad({ submitterOf: () => cluster, workload: workload(), clients: Array.from({ length: 16 }, (_, i) => i), mode: { kind: "open", ratePerSecond: 100 }, warmupMs: 200, durationMs: 1000 });
    assert.equal(outcome.noFreeKey, 0);
    assert.ok(outcome.committed >= 90 && outcome.committed <= 101, `committed ${outcome.committed}`);
    assert.ok(outcome.latency.p99Ms < 40, `p99 ${outcome.latency.p99Ms}`);
  });

  it("stops early on its signal and reports only the whole seconds measured", async () => {
    const cluster = new FakeCluster(5);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 1500);
    const startedMs = Date.now();
    const outcome = await runLoad({ submitterOf: () => cluster, workload: workload(), clients: [0, 1], mode: { kind: "closed" }, warmupMs: 0, durationMs: 10_000, signal: controller.signal });
    assert.ok(Date.now() - startedMs < 3000);
    assert.ok(outcome.stoppedEarly);
    assert.equal(outcome.windows.length, 1);
  });

  it("returns at once, having sent nothing, when its signal fired before the scheduled start", async () => {
    const cluster = new FakeCluster(5);
    const startedMs = Date.now();
    const outcome = await runLoad({
      submitterOf: () => cluster,
      workload: workload(),
      clients: [0, 1],
      mode: { kind: "closed" },
      warmupMs: 0,
      durationMs: 1000,
      startAtMs: epochNowMs() + 5_000,
      signal: AbortSignal.abort(),
    });
    assert.ok(Date.now() - startedMs < 1_000, `returned after ${Date.now() - startedMs} ms, not at the scheduled start`);
    assert.equal(cluster.sent.size, 0);
    assert.ok(outcome.stoppedEarly);
    assert.deepEqual(outcome.windows, []);
  });
});

describe("the bench's delay", () => {
  it("resolves at once for a signal that fired already, when the signal fires, and after its time otherwise", async () => {
    let startedMs = performance.now();
    await delay(10_000, AbortSignal.abort());
    assert.ok(performance.now() - startedMs < 100, "an aborted signal does not wait");

    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    startedMs = performance.now();
    await delay(10_000, controller.signal);
    assert.ok(performance.now() - startedMs < 1_000, "the signal firing ends the wait");

    startedMs = performance.now();
    await delay(60, new AbortController().signal);
    assert.ok(performance.now() - startedMs >= 55, "without the signal it waits its time");
    await delay(-5, undefined);
  });
});
