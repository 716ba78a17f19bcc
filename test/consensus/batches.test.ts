// VIEW-CHANGE and NEW-VIEW name batches by digest; a replica that lacks a re-proposed batch
// fetches it from its peers (src/consensus/pbft/batches.ts).

import { test } from "node:test";
import assert from "node:assert/strict";
import { PbftReplica, sign, type BatchBody, type Commit, type NewView, type PrePrepare, type ReplicaMessage, type ViewChange } from "../../src/consensus/pbft/index.js";
import { TestCluster, TestService, config, request, testCrypto } from "./harness.js";

// No checkpoint is stable during these runs (one would let replicas forget the batches below it).
const CONFIG = config(4, { maxBatchSize: 4, viewChangeTimeoutTicks: 10, checkpointInterval: 16, watermarkWindow: 32 });

/**
 * Seven batches commit in view 0; replica 3 misses the pre-prepare of the last one (seq 7) and
 * every commit certificate, so it holds that batch only after a view change, by fetching it.
 * Then the primary stops and replicas 1-3 move to view 1.
 */
function clusterAfterViewChange(onMessage: (m: { from: number; to: number; message: ReplicaMessage }) => boolean = () => true): {
  // `onMessage` may replace `m.message` (a lying peer) or return false (a lost message).
  c: TestCluster;
  lastBatch: readonly string[];
  seen: ReplicaMessage[];
} {
  const c = new TestCluster(4, CONFIG);
  const seen: ReplicaMessage[] = [];
  const lastBatch: string[] = [];
  for (let seq = 1; seq <= 7; seq++) {
    // One request per batch: the primary proposes a lone request at once.
    const r = request(`client-${seq}`, 1);
    if (seq === 7) lastBatch.push(`${r.client}/${r.timestamp}`);
    c.step(0, { type: "request", request: r });
    c.deliverAll((m) => !(seq === 7 && m.to === 3 && m.message.type === "pre-prepare"));
  }
  c.nodes[0]!.up = false;
  for (const id of [1, 2, 3]) c.step(id, { type: "request", request: request("late", 1) });
  for (let t = 0; t < 60; t++) {
    for (let id = 1; id < 4; id++) c.step(id, { type: "tick" });
    c.deliverAll((m) => {
      if (m.to === 3 && m.message.type === "commit-certificate") return false;
      seen.push(m.message);
      return onMessage(m);
    });
  }
  return { c, lastBatch, seen };
}

test("VIEW-CHANGE and NEW-VIEW carry no client requests: every certificate and re-proposal goes by digest", () => {
  const { seen } = clusterAfterViewChange();
  const viewChanges = seen.filter((m): m is ViewChange => m.type === "view-change");
  const newViews = seen.filter((m): m is NewView => m.type === "new-view");
  assert.ok(viewChanges.some((vc) => vc.prepared.length > 0), "some VIEW-CHANGE carries prepared certificates");
  assert.ok(newViews.length > 0);
  for (const vc of viewChanges) for (const c of vc.prepared) assert.deepEqual(c.prePrepare.requests, []);
  for (const nv of newViews) {
    for (const pp of nv.prePrepares) assert.deepEqual(pp.requests, []);
    for (const vc of nv.viewChanges) for (const c of vc.prepared) assert.deepEqual(c.prePrepare.requests, []);
  }
});

test("a replica that lacks a re-proposed batch fetches it, then executes what the others executed", () => {
  const { c, lastBatch, seen } = clusterAfterViewChange();
  const asks = seen.filter((m) => m.type === "batch-request" && m.replica === 3);
  assert.ok(asks.length >= 1, "replica 3 asked for the batch");
  assert.equal(c.nodes[3]!.replica.counters()["batches-fetched"], 1);
  for (const id of [1, 2, 3]) {
    assert.equal(c.nodes[id]!.replica.status().view, 1);
    assert.deepEqual(c.nodes[id]!.service.applied, c.nodes[1]!.service.applied);
  }
  for (const entry of lastBatch) assert.ok(c.nodes[3]!.service.applied.includes(entry), `${entry} executed at replica 3`);
  assert.ok(c.nodes[3]!.service.applied.includes("late/1"));
});

test("a batch answered with other requests under the asked digest is refused; the replica asks the next peer", () => {
  let lies = 0;
  const { c, lastBatch } = clusterAfterViewChange((m) => {
    if (m.message.type !== "batch" || m.from !== 1) return true;
    // Replica 1 lies: the batch of another seq under the asked-for digest.
    lies++;
    const lie: BatchBody = { ...m.message, requests: [request("client-6", 1)] };
    m.message = lie;
    return true;
  });
  assert.ok(lies >= 1, "replica 1 was asked first (its VIEW-CHANGE showed it prepared)");
  const counters = c.nodes[3]!.replica.counters();
  assert.equal(counters["invalid-batch"], lies);
  assert.equal(counters["batches-fetched"], 1);
  assert.ok(counters["batch-requests-sent"]! > lies);
  for (const entry of lastBatch) assert.ok(c.nodes[3]!.service.applied.includes(entry));
  assert.deepEqual(c.nodes[3]!.service.applied, c.nodes[2]!.service.applied);
});

test("a committed re-proposal whose batch never arrives does not execute, and nothing after it does", () => {
  const { c } = clusterAfterViewChange((m) => m.message.type !== "batch");
  const three = c.nodes[3]!;
  assert.ok((three.replica.counters()["committed-awaiting-batch"] ?? 0) >= 1);
  assert.equal(three.service.lastExecuted, 6, "stops before seq 7");
  assert.equal(c.nodes[1]!.service.lastExecuted >= 8, true, "the others went on");
  // It asked again each status interval (until its own request timer took it to a view change).
  assert.ok(three.replica.counters()["batch-requests-sent"]! >= 2);
});

test("batches are answered only when held, never unasked, and at most a watermark window per peer per status interval", () => {
  const { c, seen } = clusterAfterViewChange();
  // In the run, every batch sent answered an ask for its (seq, digest), and no more were sent than asked for.
  const asked = seen.filter((m) => m.type === "batch-request");
  const answered = seen.filter((m): m is BatchBody => m.type === "batch");
  assert.ok(answered.length >= 1);
  assert.ok(answered.length <= asked.length);
  for (const body of answered) assert.ok(asked.some((m) => m.type === "batch-request" && m.seq === body.seq && m.digest === body.digest), `batch s${body.seq} was asked for`);
  const one = c.nodes[1]!.replica;
  const digestOf7 = testCrypto(0).batchDigest([request("client-7", 1)]);
  const ask = (seq: number, digest: string): ReplicaMessage[] => {
    one.step({ type: "message", from: 2, message: { type: "batch-request", seq, digest, replica: 2 } });
    return one.drain().send.map((out) => out.message);
  };
  const answer = ask(7, digestOf7);
  assert.equal(answer.length, 1);
  assert.equal(answer[0]!.type, "batch");
  assert.deepEqual(ask(7, "not-a-digest"), []);
  assert.ok(one.counters()["batch-not-held"]! >= 1);
  // A sender that is not the asker named in the message: forged.
  one.step({ type: "message", from: 3, message: { type: "batch-request", seq: 7, digest: digestOf7, replica: 2 } });
  assert.deepEqual(one.drain().send, []);
  let answers = 1;
  for (let i = 0; i < 2 * CONFIG.watermarkWindow; i++) answers += ask(7, digestOf7).length;
  assert.equal(answers, CONFIG.watermarkWindow);
  assert.ok(one.counters()["batch-request-rate-limited"]! >= CONFIG.watermarkWindow);
  // A batch nobody awaits changes nothing.
  const before = c.nodes[2]!.service.applied.length;
  c.step(2, { type: "message", from: 1, message: { type: "batch", seq: 7, digest: digestOf7, requests: [request("client-7", 1)], replica: 1 } });
  assert.ok(c.nodes[2]!.replica.counters()["unwanted-batch"]! >= 1);
  assert.equal(c.nodes[2]!.service.applied.length, before);
});

test("a fetched batch is persisted: restarted from its records, the replica holds it and answers for it", () => {
  const { c } = clusterAfterViewChange();
  const three = c.nodes[3]!;
  const restarted = new PbftReplica(
    { id: 3, config: CONFIG, crypto: testCrypto(3), replies: three.service },
    { records: three.records, lastExecuted: three.service.lastExecuted, stateDigest: three.service.digest },
  );
  restarted.drain();
  const digestOf7 = testCrypto(0).batchDigest([request("client-7", 1)]);
  restarted.step({ type: "message", from: 1, message: { type: "batch-request", seq: 7, digest: digestOf7, replica: 1 } });
  const sent = restarted.drain().send.map((out) => out.message);
  assert.deepEqual(
    sent.map((m) => m.type),
    ["batch"],
  );
  assert.deepEqual((sent[0] as BatchBody).requests, [request("client-7", 1)]);
  assert.equal(restarted.counters()["batch-requests-sent"], undefined, "nothing to ask for after the restart");
});

test("a batch that arrived in a commit certificate is held and answered for, like an accepted one", () => {
  const backup = new PbftReplica({ id: 3, config: CONFIG, crypto: testCrypto(3), replies: new TestService() });
  const requests = [request("a", 1)];
  const pp = sign<PrePrepare>(testCrypto(0), { type: "pre-prepare", view: 0, seq: 1, digest: testCrypto(0).batchDigest(requests), requests, replica: 0 });
  const commits = [0, 1, 2].map((id) => sign<Commit>(testCrypto(id), { type: "commit", view: 0, seq: 1, digest: pp.digest, replica: id }));
  backup.step({ type: "message", from: 1, message: { type: "commit-certificate", prePrepare: pp, commits } });
  assert.deepEqual(backup.drain().execute.map((batch) => batch.seq), [1]);
  backup.step({ type: "message", from: 2, message: { type: "batch-request", seq: 1, digest: pp.digest, replica: 2 } });
  assert.deepEqual(
    backup.drain().send.map((out) => out.message),
    [{ type: "batch", seq: 1, digest: pp.digest, requests, replica: 3 }],
  );
});
