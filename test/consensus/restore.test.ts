import { test } from "node:test";
import assert from "node:assert/strict";
import { PbftReplica, compactRecords, sign, type PrePrepare } from "../../src/consensus/pbft/index.js";
import { TestCluster, config, request, testCrypto } from "./harness.js";

function restart(c: TestCluster, id: number): PbftReplica {
  const node = c.nodes[id]!;
  node.records = compactRecords(node.records);
  node.replica = new PbftReplica(
    { id, config: c.cfg, crypto: testCrypto(id), replies: node.service },
    { records: node.records, lastExecuted: node.service.lastExecuted, stateDigest: node.service.digest },
  );
  return node.replica;
}

function prePrepare(seq: number, client: string): PrePrepare {
  const crypto = testCrypto(0);
  const requests = [request(client, 1)];
  return sign<PrePrepare>(crypto, { type: "pre-prepare", view: 0, seq, digest: crypto.batchDigest(requests), requests, replica: 0 });
}

test("a backup restarted from its persisted records never prepares a second batch at the same (view, seq)", () => {
  const c = new TestCluster(4);
  c.step(1, { type: "message", from: 0, message: prePrepare(1, "a") });
  const replica = restart(c, 1);
  replica.step({ type: "message", from: 0, message: prePrepare(1, "b") });
  const ready = replica.drain();
  assert.equal(ready.persist.length, 0);
  assert.equal(ready.send.filter((s) => s.message.type === "prepare").length, 0);
  assert.equal(replica.counters()["conflicting-pre-prepare"], 1);
});

test("a primary restarted from its persisted records continues after the sequence numbers it used (ResilientDB #220)", () => {
  const c = new TestCluster(4);
  for (let i = 1; i <= 3; i++) c.step(0, { type: "request", request: request(`c${i}`, 1) });
  c.inFlight = [];
  const primary = restart(c, 0);
  primary.step({ type: "request", request: request("late", 1) });
  const seqs = primary
    .drain()
    .send.filter((s) => s.message.type === "pre-prepare")
    .map((s) => (s.message as PrePrepare).seq);
  assert.deepEqual(seqs, [4]);
});

test("a replica restarted in the middle of a view change stays in it and announces its VIEW-CHANGE again", () => {
  const c = new TestCluster(4, config(4, { viewChangeTimeoutTicks: 5 }));
  c.nodes[0]!.up = false;
  c.step(1, { type: "request", request: request("a", 1) });
  for (let t = 0; t < 5; t++) c.step(1, { type: "tick" });
  assert.equal(c.nodes[1]!.replica.status().normal, false);
  const replica = restart(c, 1);
  assert.equal(replica.status().view, 1);
  assert.equal(replica.status().normal, false);
  for (let t = 0; t < 10; t++) replica.step({ type: "tick" });
  assert.ok(replica.drain().send.some((s) => s.message.type === "view-change"));
});

test("compacted records restore the same view, checkpoint and progress after garbage collection", () => {
  const c = new TestCluster(4);
  for (let i = 1; i <= 30; i++) c.submit(request("a", i));
  const before = c.nodes[2]!.replica.status();
  const full = c.nodes[2]!.records.length;
  const replica = restart(c, 2);
  assert.ok(c.nodes[2]!.records.length < full / 4, `compaction keeps ${c.nodes[2]!.records.length} of ${full} records`);
  assert.deepEqual(replica.status(), before);
  for (let i = 31; i <= 34; i++) c.submit(request("a", i));
  assert.equal(c.nodes[2]!.service.applied.length, 34);
});

test("a replica restarted with a stable checkpoint above its executed state fetches that state again", () => {
  const c = new TestCluster(4);
  c.nodes[3]!.up = false;
  for (let i = 1; i <= 8; i++) c.submit(request("a", i));
  const proof = c.nodes[0]!.records.filter((r) => r.kind === "stable-checkpoint").at(-1)!;
  c.nodes[3]!.records.push(proof);
  const replica = restart(c, 3);
  assert.equal(replica.drain().fetchState[0]?.proof.seq, 8);
});
