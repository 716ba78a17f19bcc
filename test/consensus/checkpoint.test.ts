import { test } from "node:test";
import assert from "node:assert/strict";
import { CertificateValidator, GENESIS_CHECKPOINT, quorumsFor, sign, type Checkpoint, type CheckpointProof } from "../../src/consensus/pbft/index.js";
import { TestCluster, config, request, testCrypto } from "./harness.js";

function checkpoint(replica: number, seq: number, stateDigest: string): Checkpoint {
  return sign<Checkpoint>(testCrypto(replica), { type: "checkpoint", seq, stateDigest, replica });
}

test("checkpoint stabilisation: 2f + 1 matching checkpoints make it stable, the log below is discarded and the watermarks advance", () => {
  const c = new TestCluster(4, config(4, { checkpointInterval: 4, watermarkWindow: 8 }));
  for (let i = 1; i <= 4; i++) c.submit(request("a", i));
  for (const node of c.nodes) {
    const status = node.replica.status();
    assert.equal(status.stableSeq, 4);
    assert.equal(status.highWatermark, 12);
    assert.ok(node.records.some((r) => r.kind === "stable-checkpoint"));
  }
});

test("checkpoint stabilisation: 2f matching checkpoints are not enough, and mismatching digests do not add up", () => {
  const c = new TestCluster(4);
  const replica = c.nodes[3]!.replica;
  replica.step({ type: "message", from: 0, message: checkpoint(0, 4, "d") });
  replica.step({ type: "message", from: 1, message: checkpoint(1, 4, "other") });
  replica.step({ type: "message", from: 2, message: checkpoint(2, 4, "d") });
  assert.equal(replica.status().stableSeq, 0);
  assert.equal(replica.drain().fetchState.length, 0);
  replica.step({ type: "message", from: 1, message: checkpoint(1, 4, "d") });
  assert.equal(replica.counters()["duplicate"], 1, "one checkpoint per replica per seq");
});

test("a replica below a stable checkpoint it cannot reach by execution asks for state transfer with the proof", () => {
  const c = new TestCluster(4);
  const replica = c.nodes[3]!.replica;
  for (const r of [0, 1, 2]) replica.step({ type: "message", from: r, message: checkpoint(r, 4, "d4") });
  // Within a window of the checkpoint it first gives retransmission two STATUS rounds.
  const statusIntervalTicks = c.cfg.statusIntervalTicks;
  for (let t = 1; t < 2 * statusIntervalTicks; t++) replica.step({ type: "tick" });
  assert.equal(replica.drain().fetchState.length, 0);
  replica.step({ type: "tick" });
  const ready = replica.drain();
  assert.equal(ready.fetchState.length, 1);
  assert.equal(ready.fetchState[0]!.proof.seq, 4);
  assert.equal(ready.fetchState[0]!.proof.checkpoints.length, 3);
  assert.equal(replica.status().fetchingSeq, 4);
  replica.step({ type: "state-installed", seq: 4, stateDigest: "d4" });
  assert.equal(replica.status().lastExecuted, 4);
  assert.equal(replica.status().fetchingSeq, undefined);
});

test("a replica fetching a checkpoint's state does not suspect the primary for requests it cannot execute yet, and does once the state is in", () => {
  const c = new TestCluster(4);
  const replica = c.nodes[3]!.replica;
  const viewChanges = (): number => replica.drain().send.filter((s) => s.message.type === "view-change").length;
  replica.step({ type: "request", request: request("z", 1) });
  for (const r of [0, 1, 2]) replica.step({ type: "message", from: r, message: checkpoint(r, 4, "d4") });
  for (let t = 0; t < 2 * c.cfg.statusIntervalTicks; t++) replica.step({ type: "tick" });
  assert.equal(replica.status().fetchingSeq, 4);
  // Twice the view-change timeout while the state travels: the request's timer runs out, but
  // nothing this replica could execute was withheld by the primary.
  for (let t = 0; t < 2 * c.cfg.viewChangeTimeoutTicks; t++) replica.step({ type: "tick" });
  assert.equal(viewChanges(), 0);
  assert.deepEqual([replica.status().view, replica.status().normal], [0, true]);
  // Installed, and z/1 is still not executed: the timer starts afresh and then suspects.
  replica.step({ type: "state-installed", seq: 4, stateDigest: "d4" });
  for (let t = 1; t < c.cfg.viewChangeTimeoutTicks; t++) replica.step({ type: "tick" });
  assert.equal(viewChanges(), 0, "a full timeout after the install, not at once");
  replica.step({ type: "tick" });
  assert.equal(viewChanges(), 1);
  assert.equal(replica.status().view, 1);
});

test("a replica far behind learns the stable checkpoint from a peer's STATUS answer and fetches it", () => {
  const c = new TestCluster(4, config(4, { checkpointInterval: 4, watermarkWindow: 8 }));
  c.nodes[3]!.up = false;
  for (let i = 1; i <= 12; i++) c.submit(request("a", i));
  c.nodes[3]!.up = true;
  c.inFlight = [];
  const fetches: number[] = [];
  for (let t = 0; t < 20; t++) {
    for (let id = 0; id < 4; id++) {
      for (const ready of c.step(id, { type: "tick" })) for (const f of ready.fetchState) if (id === 3) fetches.push(f.proof.seq);
    }
    c.deliverAll();
    if (fetches.length > 0) break;
  }
  assert.equal(fetches[0], 12);
});

test("certificate validation: a checkpoint proof needs 2f + 1 distinct valid signatures on one digest", () => {
  const q = quorumsFor(4);
  const v = new CertificateValidator(testCrypto(0), 4, q, 4, 8);
  const proof = (checkpoints: Checkpoint[]): CheckpointProof => ({ type: "checkpoint-proof", seq: 4, stateDigest: "d", checkpoints });
  assert.ok(v.validCheckpointProof(proof([checkpoint(0, 4, "d"), checkpoint(1, 4, "d"), checkpoint(2, 4, "d")])));
  assert.ok(!v.validCheckpointProof(proof([checkpoint(0, 4, "d"), checkpoint(1, 4, "d")])), "2f is too few");
  assert.ok(!v.validCheckpointProof(proof([checkpoint(0, 4, "d"), checkpoint(1, 4, "d"), checkpoint(1, 4, "d")])), "duplicate signer");
  assert.ok(!v.validCheckpointProof(proof([checkpoint(0, 4, "d"), checkpoint(1, 4, "d"), { ...checkpoint(2, 4, "d"), signature: "2:x" }])), "forged signature");
  assert.ok(!v.validCheckpointProof(proof([checkpoint(0, 4, "d"), checkpoint(1, 4, "d"), checkpoint(2, 4, "e")])), "mismatching digest");
  assert.ok(v.validCheckpointProof(GENESIS_CHECKPOINT));
  assert.ok(!v.validCheckpointProof({ ...GENESIS_CHECKPOINT, checkpoints: [checkpoint(0, 0, "")] }));
});
