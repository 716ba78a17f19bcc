import { test } from "node:test";
import assert from "node:assert/strict";
import { CodecError, decodeMessage, encodeMessage } from "../../src/net/codec.js";
import type { ReplicaMessage } from "../../src/consensus/pbft/index.js";
import { Random } from "../../src/sim/random.js";
import { TestCluster, config, request } from "../consensus/harness.js";

/**
 * Every kind of message, as real replicas produce them: a run with batching, checkpoints, a view
 * change and catch-up. Replica 3 misses the last pre-prepare and every commit certificate, so after
 * the view change it fetches that re-proposed batch (batch-request, batch).
 */
function realMessages(): ReplicaMessage[] {
  const c = new TestCluster(4, config(4, { maxBatchSize: 3, viewChangeTimeoutTicks: 10 }));
  const seen: ReplicaMessage[] = [];
  const record = (m: { message: ReplicaMessage }): boolean => {
    seen.push(m.message);
    return true;
  };
  for (let i = 1; i <= 9; i++) {
    c.step(0, { type: "request", request: request(`client-${i % 3}`, i) });
    c.deliverAll((m) => (i === 9 && m.to === 3 && m.message.type === "pre-prepare" ? false : record(m)));
  }
  c.nodes[0]!.up = false;
  for (const id of [1, 2, 3]) c.step(id, { type: "request", request: request("late", 1) });
  for (let t = 0; t < 40; t++) {
    for (let id = 1; id < 4; id++) c.step(id, { type: "tick" });
    c.deliverAll((m) => (m.to === 3 && m.message.type === "commit-certificate" ? false : record(m)));
  }
  return seen;
}

const messages = realMessages();

test("every kind of replica message round-trips through the codec", () => {
  const kinds = new Set(messages.map((m) => m.type));
  for (const kind of ["pre-prepare", "prepare", "commit", "checkpoint", "view-change", "new-view", "status", "request", "batch-request", "batch"]) {
    assert.ok(kinds.has(kind as ReplicaMessage["type"]), `the run produced a ${kind}`);
  }
  for (const message of messages) assert.deepEqual(decodeMessage(encodeMessage(message)), message);
});

test("checkpoint proofs and commit certificates round-trip", () => {
  const checkpoint = messages.find((m) => m.type === "checkpoint");
  const pp = messages.find((m) => m.type === "pre-prepare");
  const commit = messages.find((m) => m.type === "commit");
  assert.ok(checkpoint?.type === "checkpoint" && pp?.type === "pre-prepare" && commit?.type === "commit");
  const proof: ReplicaMessage = { type: "checkpoint-proof", seq: checkpoint.seq, stateDigest: checkpoint.stateDigest, checkpoints: [checkpoint, checkpoint] };
  const certificate: ReplicaMessage = { type: "commit-certificate", prePrepare: pp, commits: [commit, commit, commit] };
  assert.deepEqual(decodeMessage(encodeMessage(proof)), proof);
  assert.deepEqual(decodeMessage(encodeMessage(certificate)), certificate);
});

test("the encoding is canonical: whatever decodes re-encodes to the same bytes, and nothing but CodecError is thrown", () => {
  const random = new Random(99);
  let decoded = 0;
  let rejected = 0;
  for (let i = 0; i < 20_000; i++) {
    const original = encodeMessage(messages[random.below(messages.length)]!);
    const bytes = Uint8Array.from(original);
    const mutation = random.below(3);
    if (mutation === 0) bytes[random.below(bytes.length)] = random.below(256);
    const mutated = mutation === 1 ? bytes.subarray(0, random.below(bytes.length)) : mutation === 2 ? Uint8Array.from([...bytes, random.below(256)]) : bytes;
    try {
      const message = decodeMessage(mutated);
      assert.deepEqual(Buffer.from(encodeMessage(message)), Buffer.from(mutated));
      decoded++;
    } catch (error) {
      assert.ok(error instanceof CodecError, `threw ${String(error)}`);
      rejected++;
    }
  }
  assert.ok(decoded > 1000 && rejected > 1000, `decoded ${decoded}, rejected ${rejected}`);
});

test("truncated input, trailing bytes, unknown tags and versions are rejected with CodecError", () => {
  const bytes = encodeMessage(messages[0]!);
  assert.throws(() => decodeMessage(bytes.subarray(0, bytes.length - 1)), CodecError);
  assert.throws(() => decodeMessage(Uint8Array.from([...bytes, 0])), /trailing/);
  assert.throws(() => decodeMessage(Uint8Array.from([1, 99])), /unknown message tag/);
  assert.throws(() => decodeMessage(Uint8Array.from([2, 1])), /version/);
  assert.throws(() => decodeMessage(new Uint8Array(0)), CodecError);
});

test("values no correct replica sends are refused at encoding", () => {
  const status: ReplicaMessage = { type: "status", view: -1, normal: true, stableSeq: 0, lastExecuted: 0, replica: 0 };
  assert.throws(() => encodeMessage(status), CodecError);
  const unicode: ReplicaMessage = { type: "request", request: { ...request("ü", 1) } };
  assert.throws(() => encodeMessage(unicode), /ASCII/);
});

test("every integer the core accepts crosses the wire: a request with timestamp 2^53 - 1 round-trips, 2^53 is refused", () => {
  const largest: ReplicaMessage = { type: "request", request: { ...request("big", 1), timestamp: Number.MAX_SAFE_INTEGER } };
  assert.deepEqual(decodeMessage(encodeMessage(largest)), largest);
  const bytes = Uint8Array.from(encodeMessage(largest));
  // The timestamp's high word follows version, tag and the client string ("big": 2 + 3 bytes).
  const highWord = new DataView(bytes.buffer).getUint32(2 + 2 + 3);
  assert.equal(highWord, 0x1fffff);
  new DataView(bytes.buffer).setUint32(2 + 2 + 3, 0x200000);
  assert.throws(() => decodeMessage(bytes), /above 2\^53 - 1/);
});
