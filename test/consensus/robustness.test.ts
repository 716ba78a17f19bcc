import { test } from "node:test";
import assert from "node:assert/strict";
import { PbftReplica, type ReplicaMessage } from "../../src/consensus/pbft/index.js";
import { TestCluster, TestService, config, request, testCrypto } from "./harness.js";

/** A small deterministic PRNG (mulberry32), so the fuzz cases are the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function garbage(random: () => number, depth = 0): unknown {
  const pick = Math.floor(random() * 9);
  switch (pick) {
    case 0:
      return null;
    case 1:
      return Math.floor(random() * 20) - 5;
    case 2:
      return random() * 1e9;
    case 3:
      return "x".repeat(Math.floor(random() * 5));
    case 4:
      return depth > 2 ? [] : Array.from({ length: Math.floor(random() * 4) }, () => garbage(random, depth + 1));
    case 5:
      return new Uint8Array(3);
    case 6:
      return Number.NaN;
    default: {
      if (depth > 3) return {};
      const types = ["pre-prepare", "prepare", "commit", "checkpoint", "checkpoint-proof", "commit-certificate", "view-change", "new-view", "status", "request", "bogus"];
      const fields = ["view", "seq", "digest", "replica", "signature", "requests", "stateDigest", "checkpoints", "prePrepare", "commits", "prepares", "stable", "prepared", "viewChanges", "prePrepares", "normal", "stableSeq", "lastExecuted", "request", "client", "timestamp", "operation"];
      const out: Record<string, unknown> = { type: types[Math.floor(random() * types.length)] };
      for (const field of fields) if (random() < 0.5) out[field] = garbage(random, depth + 1);
      return out;
    }
  }
}

test("malformed, forged and random messages are dropped and counted, never thrown", () => {
  const c = new TestCluster(4);
  for (let i = 1; i <= 6; i++) c.submit(request("a", i));
  const replica = c.nodes[1]!.replica;
  const random = prng(7);
  for (let i = 0; i < 20_000; i++) {
    const from = Math.floor(random() * 6) - 1;
    replica.step({ type: "message", from, message: garbage(random) as ReplicaMessage });
    replica.drain();
  }
  const counters = replica.counters();
  assert.ok((counters["malformed"] ?? 0) > 1000, JSON.stringify(counters));
  // The replica still works.
  for (let i = 7; i <= 10; i++) c.submit(request("a", i));
  assert.equal(c.nodes[1]!.service.applied.length, 10);
});

test("valid messages mutated field by field are dropped, never thrown, and never break agreement", () => {
  const c = new TestCluster(4);
  const random = prng(11);
  const seen: { from: number; message: ReplicaMessage }[] = [];
  const record = (m: { from: number; to: number; message: ReplicaMessage }): boolean => {
    if (m.to === 3) seen.push({ from: m.from, message: m.message });
    return m.to !== 3; // replica 3 of the cluster stays silent; the target below takes its place
  };
  for (let i = 1; i <= 8; i++) {
    c.step(0, { type: "request", request: request("a", i) });
    c.deliverAll(record);
  }
  const service = new TestService();
  const target = new PbftReplica({ id: 3, config: config(4), crypto: testCrypto(3), replies: service });
  const run = (): void => {
    for (const batch of target.drain().execute) {
      service.execute(batch.requests);
      target.step({ type: "executed", seq: batch.seq, stateDigest: service.digest });
    }
  };
  for (let i = 0; i < 5000; i++) {
    const original = seen[Math.floor(random() * seen.length)]!;
    let message = original.message;
    if (random() < 0.8) {
      const mutated: Record<string, unknown> = { ...(original.message as unknown as Record<string, unknown>) };
      const keys = Object.keys(mutated);
      mutated[keys[Math.floor(random() * keys.length)]!] = garbage(random);
      message = mutated as unknown as ReplicaMessage;
    }
    target.step({ type: "message", from: original.from, message });
    run();
  }
  const committed = c.nodes[0]!.service.applied;
  assert.ok(service.applied.length > 0, "the honest messages among the mutants let the target execute");
  assert.deepEqual(service.applied, committed.slice(0, service.applied.length), "the target executed only the cluster's committed order");
  assert.ok((target.counters()["malformed"] ?? 0) + (target.counters()["bad-signature"] ?? 0) > 0);
});

test("the primary's proposal queue stays bounded when clients flood newer requests while the window is full", () => {
  const c = new TestCluster(4, config(4, { maxPendingRequests: 8, watermarkWindow: 4, checkpointInterval: 4 }));
  const primary = c.nodes[0]!.replica;
  // Fill the window: no backup answers, so nothing commits and the primary cannot propose more.
  for (let i = 1; i <= 4; i++) primary.step({ type: "request", request: request(`fill${i}`, 1) });
  for (let t = 1; t <= 5000; t++) primary.step({ type: "request", request: request(`spam${t % 4}`, t) });
  primary.drain();
  const queued = (primary as unknown as { state: { queue: unknown[]; queueHead: number } }).state;
  assert.ok(queued.queue.length - queued.queueHead <= 2 * 8 + 1, `queue holds ${queued.queue.length - queued.queueHead}`);
});

test("a backup's queue of delayed relays stays bounded when clients flood newer signed requests within one relay delay", () => {
  const c = new TestCluster(4, config(4, { maxPendingRequests: 8 }));
  const backup = c.nodes[1]!.replica;
  // No tick passes: every relay is still waiting for its delay, so only the sweep can shed them.
  for (let t = 1; t <= 5000; t++) backup.step({ type: "request", request: request(`spam${t % 4}`, t) });
  backup.drain();
  const state = (backup as unknown as { state: { relayQueue: unknown[]; relayQueueHead: number } }).state;
  assert.ok(state.relayQueue.length - state.relayQueueHead <= 2 * 8 + 1, `relay queue holds ${state.relayQueue.length - state.relayQueueHead}`);
  // What is left still relays: each client's newest request, once the delay is over.
  c.inFlight = [];
  for (let tick = 0; tick < c.cfg.statusIntervalTicks; tick++) c.step(1, { type: "tick" });
  const relayed = c.inFlight.filter((m) => m.from === 1 && m.to === 0 && m.message.type === "request").map((m) => (m.message as { request: { client: string; timestamp: number } }).request);
  assert.deepEqual(relayed.map((r) => `${r.client}/${r.timestamp}`).sort(), ["spam0/5000", "spam1/4997", "spam2/4998", "spam3/4999"]);
});

test("a flood of STATUS messages from one peer is answered at most once per half status interval", () => {
  const c = new TestCluster(4);
  for (let i = 1; i <= 6; i++) c.submit(request("a", i));
  const replica = c.nodes[1]!.replica;
  replica.drain();
  const status = { type: "status", view: 0, normal: true, stableSeq: 0, lastExecuted: 0, replica: 2 } as const;
  for (let i = 0; i < 100; i++) replica.step({ type: "message", from: 2, message: status });
  const certificates = replica.drain().send.filter((s) => s.message.type === "commit-certificate").length;
  assert.ok(certificates > 0 && certificates <= 6, `${certificates} certificates sent`);
  assert.equal(replica.counters()["status-rate-limited"], 99);
});
