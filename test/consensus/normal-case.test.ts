import { test } from "node:test";
import assert from "node:assert/strict";
import { PARTIAL_BATCHES_IN_FLIGHT_MAX } from "../../src/consensus/pbft/normal-case.js";
import { PbftReplica, sign, type PrePrepare, type Prepare, type Commit } from "../../src/consensus/pbft/index.js";
import { TestCluster, TestService, config, request, testCrypto } from "./harness.js";

for (const n of [4, 7, 10]) {
  test(`normal case with n = ${n}: every replica executes every request once, in the same order`, () => {
    const c = new TestCluster(n, config(n, { maxBatchSize: 3, batchDelayTicks: 2 }));
    for (let i = 1; i <= 12; i++) c.submit(request(`c${i % 4}`, i));
    c.tick(10);
    const orders = c.nodes.map((node) => node.service.applied.join(" "));
    assert.equal(c.nodes[0]!.service.applied.length, 12);
    for (const order of orders) assert.equal(order, orders[0]);
  });
}

test("batching: an idle primary proposes a lone request at once; under load it fills batches and waits at most the batch delay for a partial one", () => {
  const c = new TestCluster(4, config(4, { maxBatchSize: 4, batchDelayTicks: 3 }));
  const proposedSizes = (fromSeq = 1): number[] =>
    c.inFlight.filter((m) => m.message.type === "pre-prepare" && m.to === 1 && m.message.seq >= fromSeq).map((m) => (m.message as PrePrepare).requests.length);
  const alone = PARTIAL_BATCHES_IN_FLIGHT_MAX;
  for (let i = 1; i <= alone; i++) c.step(0, { type: "request", request: request(`a${i}`, 1) });
  assert.deepEqual(proposedSizes(), Array<number>(alone).fill(1), "with fewer than PARTIAL_BATCHES_IN_FLIGHT_MAX batches in flight, a partial batch goes at once");
  for (let i = 1; i <= 6; i++) c.step(0, { type: "request", request: request(`c${i}`, 1) });
  assert.deepEqual(proposedSizes(), [...Array<number>(alone).fill(1), 4], "a full batch goes at once; the partial one waits behind the batches in flight");
  // Nothing commits (the pre-prepares stay in flight): only the delay releases the partial batch.
  const held = c.inFlight;
  c.inFlight = [];
  c.step(0, { type: "tick" });
  c.step(0, { type: "tick" });
  assert.deepEqual(proposedSizes(alone + 2), [], "the partial batch waits");
  c.step(0, { type: "tick" });
  assert.deepEqual(proposedSizes(alone + 2), [2], "the partial batch goes after the delay");
  c.inFlight.unshift(...held);
  c.deliverAll();
  assert.equal(c.nodes[1]!.service.applied.length, alone + 6);
});

test("batching: a partial batch waiting behind the batches in flight goes as soon as they commit, before the delay", () => {
  const c = new TestCluster(4, config(4, { maxBatchSize: 4, batchDelayTicks: 1000 }));
  const alone = PARTIAL_BATCHES_IN_FLIGHT_MAX;
  for (let i = 1; i <= alone + 2; i++) c.step(0, { type: "request", request: request(`c${i}`, 1) });
  assert.equal(c.inFlight.filter((m) => m.message.type === "pre-prepare" && m.to === 1).length, alone, "the first requests went alone; the last two wait");
  c.deliverAll();
  assert.equal(c.nodes[1]!.service.applied.length, alone + 2, "the last two were proposed when the batches ahead of them committed, with no tick");
});

test("out-of-order agreement: many sequence numbers are in flight at once inside the window", () => {
  const c = new TestCluster(4, config(4, { watermarkWindow: 8 }));
  for (let i = 1; i <= 10; i++) c.step(0, { type: "request", request: request(`c${i}`, 1) });
  const seqs = c.inFlight.filter((m) => m.message.type === "pre-prepare" && m.to === 1).map((m) => (m.message as PrePrepare).seq);
  assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6, 7, 8], "the primary proposes up to the high watermark without waiting");
});

test("execution is strictly in sequence order: seq 2 committed before seq 1 waits", () => {
  const c = new TestCluster(4);
  c.step(0, { type: "request", request: request("a", 1) });
  c.step(0, { type: "request", request: request("b", 1) });
  // Hold back everything about seq 1 until seq 2 has committed everywhere.
  c.deliverAll((m) => !("seq" in m.message && m.message.seq === 1));
  assert.equal(c.nodes[1]!.service.applied.length, 0);
  const held = c.inFlight;
  c.inFlight = [];
  c.step(0, { type: "tick" });
  c.inFlight.push(...held);
  c.tick(6);
  assert.deepEqual(c.nodes[1]!.service.applied, ["a/1", "b/1"]);
});

function prePrepare(seq: number, view = 0, requests = [request("x", seq)]): PrePrepare {
  const crypto = testCrypto(view % 4);
  return sign<PrePrepare>(crypto, { type: "pre-prepare", view, seq, digest: crypto.batchDigest(requests), requests, replica: view % 4 });
}

test("a backup prepares a valid pre-prepare and persists the pre-prepare and its prepare before sending", () => {
  const c = new TestCluster(4);
  c.nodes[1]!.replica.step({ type: "message", from: 0, message: prePrepare(1) });
  const ready = c.nodes[1]!.replica.drain();
  assert.deepEqual(ready.persist.map((r) => r.kind), ["pre-prepare", "prepare"]);
  assert.deepEqual(ready.send.map((s) => s.message.type), ["prepare"]);
});

test("a backup rejects a pre-prepare outside the watermarks", () => {
  const c = new TestCluster(4);
  const backup = c.nodes[1]!.replica;
  backup.step({ type: "message", from: 0, message: prePrepare(9) });
  assert.equal(backup.drain().send.length, 0);
  assert.equal(backup.counters()["outside-watermarks"], 1);
});

test("a backup rejects a pre-prepare from a replica that is not the primary, or claiming another sender", () => {
  const c = new TestCluster(4);
  const backup = c.nodes[1]!.replica;
  backup.step({ type: "message", from: 2, message: prePrepare(1) });
  const forged = { ...prePrepare(1, 0), replica: 2 };
  backup.step({ type: "message", from: 2, message: forged });
  assert.equal(backup.drain().send.length, 0);
  assert.equal(backup.counters()["forged-sender"], 1);
  assert.equal(backup.counters()["not-primary"], 1);
});

test("a backup rejects a pre-prepare whose digest does not match its batch, or with a forged client request", () => {
  const c = new TestCluster(4);
  const backup = c.nodes[1]!.replica;
  const crypto = testCrypto(0);
  const corrupted = sign<PrePrepare>(crypto, { type: "pre-prepare", view: 0, seq: 1, digest: "corrupted", requests: [request("x", 1)], replica: 0 });
  const fake = { ...request("x", 2), signature: "client:forged" };
  const forgedRequest = sign<PrePrepare>(crypto, { type: "pre-prepare", view: 0, seq: 2, digest: crypto.batchDigest([fake]), requests: [fake], replica: 0 });
  backup.step({ type: "message", from: 0, message: corrupted });
  backup.step({ type: "message", from: 0, message: forgedRequest });
  assert.equal(backup.drain().send.length, 0);
  assert.equal(backup.counters()["invalid-pre-prepare"], 2);
});

test("a backup never accepts two different pre-prepares for one (view, seq): equivocation is dropped", () => {
  const c = new TestCluster(4);
  const backup = c.nodes[1]!.replica;
  backup.step({ type: "message", from: 0, message: prePrepare(1, 0, [request("a", 1)]) });
  backup.step({ type: "message", from: 0, message: prePrepare(1, 0, [request("b", 1)]) });
  assert.equal(backup.drain().persist.filter((r) => r.kind === "prepare").length, 1);
  assert.equal(backup.counters()["conflicting-pre-prepare"], 1);
});

function vote<T extends Prepare | Commit>(type: T["type"], replica: number, pp: PrePrepare, digest = pp.digest): T {
  return sign<T>(testCrypto(replica), { type, view: pp.view, seq: pp.seq, digest, replica } as Omit<T, "signature"> as never);
}

test("prepared needs 2f matching prepares from backups; a prepare from the primary or with another digest does not count", () => {
  const c = new TestCluster(4);
  const backup = c.nodes[1]!.replica;
  const pp = prePrepare(1);
  backup.step({ type: "message", from: 0, message: pp });
  backup.drain();
  backup.step({ type: "message", from: 0, message: vote<Prepare>("prepare", 0, pp) });
  backup.step({ type: "message", from: 2, message: vote<Prepare>("prepare", 2, pp, "other") });
  assert.equal(backup.drain().persist.length, 0, "own prepare + mismatching ones: not prepared");
  backup.step({ type: "message", from: 3, message: vote<Prepare>("prepare", 3, pp) });
  assert.deepEqual(backup.drain().persist.map((r) => r.kind), ["prepared", "commit"], "own + one more = 2f: prepared, commit sent");
  assert.equal(backup.counters()["prepare-from-primary"], 1);
});

test("committed-local needs 2f + 1 matching commits, and then the batch executes", () => {
  const c = new TestCluster(4);
  const backup = c.nodes[1]!.replica;
  const pp = prePrepare(1);
  backup.step({ type: "message", from: 0, message: pp });
  backup.step({ type: "message", from: 2, message: vote<Prepare>("prepare", 2, pp) });
  backup.drain();
  backup.step({ type: "message", from: 2, message: vote<Commit>("commit", 2, pp) });
  assert.equal(backup.drain().execute.length, 0, "2 of 3 commits");
  backup.step({ type: "message", from: 2, message: vote<Commit>("commit", 2, pp) });
  assert.equal(backup.counters()["duplicate"], 1, "a repeated vote counts once");
  backup.step({ type: "message", from: 3, message: vote<Commit>("commit", 3, pp) });
  assert.deepEqual(backup.drain().execute.map((b) => b.seq), [1]);
});

test("a vote with a bad signature is dropped and counted", () => {
  const c = new TestCluster(4);
  const backup = c.nodes[1]!.replica;
  const pp = prePrepare(1);
  backup.step({ type: "message", from: 0, message: pp });
  backup.step({ type: "message", from: 2, message: { ...vote<Prepare>("prepare", 2, pp), signature: "2:bad" } });
  assert.equal(backup.counters()["bad-signature"], 1);
});

test("a vote for a slot that already has its quorum of that kind is dropped unverified, counted as surplus", () => {
  const c = new TestCluster(4);
  const backup = c.nodes[1]!.replica;
  const pp = prePrepare(1);
  backup.step({ type: "message", from: 0, message: pp });
  backup.step({ type: "message", from: 2, message: vote<Prepare>("prepare", 2, pp) });
  backup.step({ type: "message", from: 3, message: { ...vote<Prepare>("prepare", 3, pp), signature: "3:bad" } });
  backup.step({ type: "message", from: 2, message: vote<Commit>("commit", 2, pp) });
  backup.step({ type: "message", from: 3, message: vote<Commit>("commit", 3, pp) });
  assert.deepEqual(backup.drain().execute.map((b) => b.seq), [1]);
  backup.step({ type: "message", from: 0, message: { ...vote<Commit>("commit", 0, pp), signature: "0:bad" } });
  assert.deepEqual(
    { surplus: backup.counters()["surplus-vote"], bad: backup.counters()["bad-signature"] },
    { surplus: 2, bad: undefined },
    "the prepare after prepared and the commit after committed were not checked",
  );
});

test("clients: a retransmitted request that already executed gets the cached reply and is not re-executed", () => {
  const c = new TestCluster(4);
  c.submit(request("a", 1));
  const before = c.replies.length;
  c.step(2, { type: "request", request: request("a", 1) });
  c.deliverAll();
  assert.equal(c.replies.length, before + 1);
  assert.equal(c.replies.at(-1)!.replica, 2);
  assert.deepEqual(c.nodes[2]!.service.applied, ["a/1"]);
});

test("clients: a backup forwards a request still pending after the relay delay to the primary, which orders it; not at arrival", () => {
  const c = new TestCluster(4, config(4, { statusIntervalTicks: 50, viewChangeTimeoutTicks: 20 }));
  // A quarter of the view-change timeout, shorter here than the status interval.
  const delay = 5;
  c.step(2, { type: "request", request: request("a", 1) });
  assert.ok(!c.inFlight.some((m) => m.message.type === "request"), "no relay at arrival: a client sending to a backup sends to the primary too");
  for (let tick = 1; tick < delay; tick++) c.step(2, { type: "tick" });
  assert.ok(!c.inFlight.some((m) => m.message.type === "request"), "not before the delay");
  c.step(2, { type: "tick" });
  assert.ok(c.inFlight.some((m) => m.from === 2 && m.to === 0 && m.message.type === "request"), "relayed when the delay is over, long before the backup's view-change timer");
  c.deliverAll();
  for (const node of c.nodes) assert.deepEqual(node.service.applied, ["a/1"]);
});

test("clients: a request that executed before its relay delay is over is not relayed", () => {
  const c = new TestCluster(4);
  c.step(0, { type: "request", request: request("a", 1) });
  c.step(2, { type: "request", request: request("a", 1) });
  c.deliverAll();
  assert.deepEqual(c.nodes[2]!.service.applied, ["a/1"]);
  for (let tick = 0; tick < 2 * c.cfg.statusIntervalTicks; tick++) c.step(2, { type: "tick" });
  assert.ok(!c.inFlight.some((m) => m.message.type === "request"));
});

test("clients: a request without a signature (session-authenticated) is never relayed: the primary could not authenticate the copy", () => {
  const c = new TestCluster(4);
  // A crypto that authenticates session requests as this backup's own copies do (node/session-requests.ts).
  const backup = new PbftReplica({ id: 2, config: c.cfg, crypto: { ...testCrypto(2), verifyRequest: (r) => r.signature === "" || testCrypto(2).verifyRequest(r) }, replies: new TestService() });
  const sent: string[] = [];
  const record = (): void => {
    for (const out of backup.drain().send) sent.push(`${String(out.to)}:${out.message.type}`);
  };
  backup.step({ type: "request", request: { ...request("a", 1), signature: "" } });
  record();
  for (let tick = 0; tick < 12; tick++) {
    backup.step({ type: "tick" }); // past two status intervals (5 ticks): the retransmission round does not forward it either
    record();
  }
  assert.ok(sent.includes("all:status"), "the retransmission rounds ran");
  assert.ok(!sent.some((entry) => entry.endsWith(":request")), sent.join(", "));
  assert.equal(backup.status().pendingRequests, 1);
});

test("clients: a different request signed with an executed timestamp is refused, not answered with the cached result", () => {
  const c = new TestCluster(4);
  c.submit(request("a", 1, "first"));
  const table = c.nodes[2]!.service.table;
  const cached = table.get("a")!;
  table.set("a", { ...cached, signature: request("a", 1, "first").signature } as typeof cached);
  const before = c.replies.length;
  const other = { ...request("a", 1, "second"), signature: "client:other-signature" };
  c.step(2, { type: "request", request: other });
  assert.equal(c.replies.length, before);
  assert.equal(c.nodes[2]!.replica.counters()["stale-request"], 1);
});

test("clients: a request whose client id or signature the wire cannot carry (non-ASCII) is dropped as malformed", () => {
  const c = new TestCluster(4);
  c.step(0, { type: "request", request: { ...request("a", 1), client: "ü" } });
  c.step(0, { type: "request", request: { ...request("b", 1), signature: "client:ü" } });
  assert.equal(c.nodes[0]!.replica.counters()["malformed"], 2);
  assert.equal(c.inFlight.length, 0);
});
