// The replica's verification stage (src/node/request-verification.ts): client signatures carried
// by core inputs are verified in batches off the event loop, and the core's synchronous
// `verifyRequest` answers from those verdicts. What must hold: a forged signature is refused
// whatever batch it shares, inputs of one source reach the core in arrival order, the memory
// waiting for verdicts is bounded (clients apart from replicas, so a client cannot crowd out
// consensus), a saturated pool slows batches down rather than sending inputs on unverified, and
// a pool failure never loses an input or changes a verdict.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { requestFromTransaction } from "../../src/app/request.js";
import { type Transaction, signTransaction } from "../../src/app/transaction.js";
import { PbftReplica, sign } from "../../src/consensus/pbft/index.js";
import type { ClientRequest, PrePrepare, ReplicaMessage } from "../../src/consensus/pbft/types.js";
import { type Ed25519KeyPair, ed25519KeyPairFromSeed } from "../../src/crypto/ed25519.js";
import { type SignedItem, VerifyPool, VerifyPoolError, createEd25519VerifyBackend } from "../../src/crypto/verify-pool.js";
import { ReplicaCrypto } from "../../src/node/replica-crypto.js";
import { RequestVerification, type RequestVerificationOptions, type StagedInput, type VerdictSource, requestsCarried } from "../../src/node/request-verification.js";
import { PrecomputedVerifier, signedItemKey, signedItemOfEnvelope } from "../../src/node/signature-pool.js";
import { testCluster } from "../ledger/fixtures.js";

const cluster = testCluster(4);
const clients = Array.from({ length: 8 }, (_, index) => ed25519KeyPairFromSeed(new Uint8Array(32).fill(index + 101)));
const encoder = new TextEncoder();

function signedPut(client: number, nonce: number): Transaction {
  const key = clients[client] as Ed25519KeyPair;
  return signTransaction(key.privateKey, { clientKey: key.publicKey, nonce, operation: { type: "put", key: encoder.encode(`k${nonce}`), value: encoder.encode(`v${nonce}`) } });
}

function goodRequest(client: number, nonce = 1): ClientRequest {
  return requestFromTransaction(signedPut(client, nonce));
}

/** The client's real signature, but over another nonce: well formed, and invalid for this body. */
function forgedRequest(client: number, nonce = 1): ClientRequest {
  const genuine = signedPut(client, nonce);
  return requestFromTransaction({ ...genuine, signature: signedPut(client, nonce + 1000).signature });
}

function asInput(request: ClientRequest): StagedInput {
  return { type: "request", request };
}

/** A pool whose batches the test answers (with real verdicts) or fails, when it chooses. */
class ManualPool implements VerdictSource {
  readonly batches: { items: readonly SignedItem[]; resolve: (verdicts: Uint8Array) => void; reject: (error: Error) => void }[] = [];
  private readonly backend = createEd25519VerifyBackend("node:crypto");

  verifyBatch(items: readonly SignedItem[]): Promise<Uint8Array> {
    return new Promise((resolve, reject) => this.batches.push({ items, resolve, reject }));
  }

  /** Answers batch `index` with the real verdicts of its items. */
  async answer(index: number): Promise<void> {
    const batch = this.batches[index];
    assert.ok(batch !== undefined, `no batch ${index}`);
    batch.resolve(Uint8Array.from(batch.items, (item) => (this.backend.verify(item.publicKey, item.message, item.signature) ? 1 : 0)));
    await settled();
  }

  async fail(index: number, error: Error = new Error("worker crashed")): Promise<void> {
    this.batches[index]!.reject(error);
    await settled();
  }
}

/** Lets promise callbacks run. */
function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A stage over `pool` whose end-of-turn flushes run when the test calls `endTurn`. */
function manualStage(pool: VerdictSource | undefined, options: Omit<RequestVerificationOptions<object>, "pool" | "deliver" | "schedule"> = {}) {
  const delivered: StagedInput[] = [];
  const sources: object[] = [];
  const flushes: (() => void)[] = [];
  const stage = new RequestVerification({
    pool,
    deliver: (input, source) => {
      delivered.push(input);
      sources.push(source);
    },
    schedule: (flush) => flushes.push(flush),
    ...options,
  });
  const endTurn = (): void => {
    for (const flush of flushes.splice(0)) flush();
  };
  return { stage, delivered, sources, endTurn };
}

/** The key under which the stage keeps the verdict on `request`'s signature. */
function keyOf(request: ClientRequest): string {
  return signedItemKey(signedItemOfEnvelope(request.operation)!);
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!condition()) {
    assert.ok(Date.now() < deadlineMs, `timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("verification stage: verdicts", () => {
  it("a forged signature is refused even when it arrives in one pool batch with good ones", async (t) => {
    const pool = new VerifyPool({ workerCount: 1 });
    const verdicts: { request: ClientRequest; valid: boolean }[] = [];
    const stage = new RequestVerification({ pool, deliver: (input) => verdicts.push({ request: (input as { request: ClientRequest }).request, valid: crypto.verifyRequest((input as { request: ClientRequest }).request) }) });
    t.after(() => stage.close());
    const crypto = new ReplicaCrypto(cluster.config, cluster.keys[1]!.privateKey, { requestVerifier: stage.verifier });
    const forged = forgedRequest(2);
    const requests = [goodRequest(0), goodRequest(1), forged, goodRequest(3)];
    for (const request of requests) stage.submit({}, asInput(request), 200);
    await until(() => verdicts.length === requests.length, "every request reached the core");
    assert.equal(stage.stats().batchesVerified, 1, "the four signatures of one turn went to the pool as one batch");
    assert.equal(stage.stats().itemsVerified, 4);
    for (const { request, valid } of verdicts) assert.equal(valid, request !== forged, `request of ${request.client.slice(0, 8)}`);
    const cache = stage.verifier.stats();
    assert.equal(cache.misses, 0, "every answer came from a pool verdict, none was verified inline");
    assert.equal(cache.hits, 4);
  });

  it("a backup refuses a pre-prepare whose batch holds one forged request among good ones, and accepts the same batch without it", async (t) => {
    const pool = new VerifyPool({ workerCount: 1 });
    const stage = new RequestVerification({ pool, deliver: (input) => core.step(input) });
    t.after(() => stage.close());
    const core = new PbftReplica({
      id: 1,
      config: { n: cluster.config.n, ...cluster.config.protocol },
      crypto: new ReplicaCrypto(cluster.config, cluster.keys[1]!.privateKey, { requestVerifier: stage.verifier }),
      replies: { lastReply: () => undefined },
    });
    const primary = new ReplicaCrypto(cluster.config, cluster.keys[0]!.privateKey);
    const prePrepare = (seq: number, requests: ClientRequest[]): ReplicaMessage =>
      sign<PrePrepare>(primary, { type: "pre-prepare", view: 0, seq, digest: primary.batchDigest(requests), requests, replica: 0 });

    stage.submit({}, { type: "message", from: 0, message: prePrepare(1, [goodRequest(0), forgedRequest(1), goodRequest(2)]) }, 1_000);
    await until(() => (core.counters()["invalid-pre-prepare"] ?? 0) === 1, "the core refused the pre-prepare");
    assert.deepEqual(core.drain().send, [], "no prepare for a batch with a forged request");

    stage.submit({}, { type: "message", from: 0, message: prePrepare(2, [goodRequest(0), goodRequest(2)]) }, 1_000);
    await until(() => core.drain().send.some((outbound) => outbound.message.type === "prepare"), "the backup prepared the good batch");
    assert.equal(stage.verifier.stats().misses, 0, "the core verified nothing inline");
  });

  it("a pool failure hands the inputs to the core anyway, which then verifies inline with the same verdicts", async () => {
    const pool = new ManualPool();
    const { stage, delivered, endTurn } = manualStage(pool);
    const crypto = new ReplicaCrypto(cluster.config, cluster.keys[1]!.privateKey, { requestVerifier: stage.verifier });
    const good = goodRequest(0);
    const forged = forgedRequest(1);
    stage.submit({}, asInput(good), 100);
    stage.submit({}, asInput(forged), 100);
    endTurn();
    assert.equal(delivered.length, 0);
    await pool.fail(0);
    assert.equal(delivered.length, 2, "both inputs went on");
    assert.equal(stage.stats().batchesFailed, 1);
    assert.equal(crypto.verifyRequest(good), true);
    assert.equal(crypto.verifyRequest(forged), false);
    assert.equal(stage.verifier.stats().misses, 2, "verified inline");
  });

  it("without a pool (--verify-workers 0) every input reaches the core at once", () => {
    const { stage, delivered } = manualStage(undefined);
    stage.submit({}, asInput(goodRequest(0)), 100);
    assert.equal(delivered.length, 1);
    assert.equal(stage.stats().itemsVerified, 0);
  });
});

describe("verification stage: batching and order", () => {
  it("coalesces what arrives in one turn into one batch, a signature seen twice sent once", () => {
    const pool = new ManualPool();
    const { stage, endTurn } = manualStage(pool);
    const shared = goodRequest(0);
    stage.submit({}, asInput(shared), 100);
    stage.submit({}, asInput(goodRequest(1)), 100);
    stage.submit({}, { type: "message", from: 2, message: { type: "request", request: shared } }, 100);
    assert.equal(pool.batches.length, 0, "nothing is sent before the turn ends");
    endTurn();
    assert.equal(pool.batches.length, 1);
    assert.equal(pool.batches[0]!.items.length, 2, "the signature both inputs carry is verified once");
  });

  it("uses the signed item of a client request the caller already decoded, without decoding its envelope again", () => {
    const pool = new ManualPool();
    const { stage, endTurn } = manualStage(pool);
    const request = goodRequest(0);
    const signed = signedItemOfEnvelope(request.operation)!;
    stage.submit({}, asInput(request), 100, signed);
    endTurn();
    assert.equal(pool.batches[0]!.items[0], signed);
  });

  it("sends a batch as soon as it holds batchItemsMax signatures", () => {
    const pool = new ManualPool();
    const { stage } = manualStage(pool, { batchItemsMax: 2 });
    for (let client = 0; client < 3; client++) stage.submit({}, asInput(goodRequest(client)), 100);
    assert.equal(pool.batches.length, 1, "the first two signatures left without waiting for the turn to end");
    assert.equal(pool.batches[0]!.items.length, 2);
    assert.equal(stage.stats().collectingItems, 1);
  });

  it("delivers one source's inputs in arrival order, even one needing no verification behind one that does", async () => {
    const pool = new ManualPool();
    const { stage, delivered, sources, endTurn } = manualStage(pool, { batchItemsMax: 1 });
    const source = {};
    const first = goodRequest(0);
    const second = goodRequest(1);
    const status: StagedInput = { type: "message", from: 2, message: { type: "status", view: 0, normal: true, stableSeq: 0, lastExecuted: 0, replica: 2 } };
    stage.submit(source, asInput(first), 100);
    stage.submit(source, asInput(second), 100);
    stage.submit(source, status, 50);
    endTurn();
    assert.equal(pool.batches.length, 2);
    await pool.answer(1);
    assert.deepEqual(delivered, [], "the second request's verdict is in, but the first one's is not");
    await pool.answer(0);
    assert.deepEqual(delivered, [asInput(first), asInput(second), status]);
    assert.ok(sources.every((delivered) => delivered === source), "each input is delivered with the source it was submitted from");
    assert.deepEqual(stage.stats().waiting, { replica: { inputs: 0, bytes: 0 }, client: { inputs: 0, bytes: 0 } });
  });

  it("does not hold one source's inputs behind another source's", async () => {
    const pool = new ManualPool();
    const { stage, delivered, endTurn } = manualStage(pool, { batchItemsMax: 1 });
    const slow = asInput(goodRequest(0));
    const fast = asInput(goodRequest(1));
    stage.submit({ name: "a" }, slow, 100);
    stage.submit({ name: "b" }, fast, 100);
    endTurn();
    await pool.answer(1);
    assert.deepEqual(delivered, [fast]);
    await pool.answer(0);
    assert.deepEqual(delivered, [fast, slow]);
  });

  it("an input whose signatures already have verdicts goes straight to the core", async () => {
    const pool = new ManualPool();
    const { stage, delivered, endTurn } = manualStage(pool);
    const request = goodRequest(0);
    stage.submit({}, asInput(request), 100);
    endTurn();
    await pool.answer(0);
    const relayed: StagedInput = { type: "message", from: 2, message: { type: "request", request: goodRequest(0) } };
    stage.submit({}, relayed, 100);
    assert.equal(delivered.at(-1), relayed, "delivered synchronously");
    assert.equal(pool.batches.length, 1, "no second batch");
  });
});

describe("verification stage: bounds", () => {
  it("drops and counts a client request over the clients' waiting-inputs bound", () => {
    const pool = new ManualPool();
    const { stage } = manualStage(pool, { clientInputsMax: 2 });
    assert.equal(stage.submit({}, asInput(goodRequest(0)), 100), true);
    assert.equal(stage.submit({}, asInput(goodRequest(1)), 100), true);
    assert.equal(stage.submit({}, asInput(goodRequest(2)), 100), false);
    assert.deepEqual(stage.stats().inputsDropped, { replica: 0, client: 1 });
    assert.equal(stage.stats().waiting.client.inputs, 2);
  });

  it("drops and counts an input over the waiting-bytes bound, and takes input again once verdicts drain the queue", async () => {
    const pool = new ManualPool();
    const { stage, delivered, endTurn } = manualStage(pool, { clientBytesMax: 1_000 });
    assert.equal(stage.submit({}, asInput(goodRequest(0)), 600), true);
    assert.equal(stage.submit({}, asInput(goodRequest(1)), 600), false);
    assert.equal(stage.stats().waiting.client.bytes, 600);
    endTurn();
    await pool.answer(0);
    assert.equal(delivered.length, 1);
    assert.equal(stage.submit({}, asInput(goodRequest(1)), 600), true);
  });

  it("a client flooding forged signatures fills its own connection's share and the clients' budget, never the room of a peer's pre-prepare", () => {
    const pool = new ManualPool();
    const { stage } = manualStage(pool, { clientInputsMax: 4, clientSourceInputsMax: 2, replicaInputsMax: 2 });
    const flooder = {};
    const accepted = Array.from({ length: 10 }, (_, nonce) => stage.submit(flooder, asInput(forgedRequest(0, nonce + 1)), 100));
    assert.deepEqual(accepted.slice(0, 3), [true, true, false], "one connection gets only its share");
    const others = [{}, {}, {}].map((connection, client) => stage.submit(connection, asInput(goodRequest(client + 1)), 100));
    assert.deepEqual(others, [true, true, false], "other clients share what is left of the clients' budget");
    const primary = new ReplicaCrypto(cluster.config, cluster.keys[0]!.privateKey);
    const requests = [goodRequest(5), goodRequest(6)];
    const prePrepare = sign<PrePrepare>(primary, { type: "pre-prepare", view: 0, seq: 1, digest: primary.batchDigest(requests), requests, replica: 0 });
    assert.equal(stage.submit({ peer: 0 }, { type: "message", from: 0, message: prePrepare }, 1_000), true, "the pre-prepare has its own budget");
    assert.deepEqual(stage.stats().inputsDropped, { replica: 0, client: 9 });
    assert.deepEqual(stage.stats().waiting, { replica: { inputs: 1, bytes: 1_000 }, client: { inputs: 4, bytes: 400 } });
  });

  it("forgets the verdicts of requests once their batch executes", async () => {
    const pool = new ManualPool();
    const { stage, endTurn } = manualStage(pool);
    const requests = [goodRequest(0), goodRequest(1), forgedRequest(2)];
    for (const request of requests) stage.submit({}, asInput(request), 100);
    endTurn();
    await pool.answer(0);
    assert.deepEqual([stage.verifier.stats().verdicts, stage.verifier.stats().invalidVerdicts], [2, 1]);
    stage.executed(requests);
    assert.deepEqual([stage.verifier.stats().verdicts, stage.verifier.stats().invalidVerdicts], [0, 0]);
  });

  it("keeps at most verdictsMax verdicts, and an evicted one is verified inline with the same result", async () => {
    const pool = new ManualPool();
    const verifier = new PrecomputedVerifier({ verdictsMax: 1, invalidVerdictsMax: 1 });
    const { stage, endTurn } = manualStage(pool, { verifier });
    const crypto = new ReplicaCrypto(cluster.config, cluster.keys[1]!.privateKey, { requestVerifier: verifier });
    const [good, forged, laterGood, laterForged] = [goodRequest(0), forgedRequest(1), goodRequest(2), forgedRequest(3)];
    for (const request of [good, forged]) stage.submit({}, asInput(request), 100);
    endTurn();
    await pool.answer(0);
    assert.ok(verifier.knows(keyOf(good)) && verifier.knows(keyOf(forged)), "the pool's verdicts were stored");
    for (const request of [laterGood, laterForged]) stage.submit({}, asInput(request), 100);
    endTurn();
    await pool.answer(1);
    assert.ok(!verifier.knows(keyOf(good)) && !verifier.knows(keyOf(forged)), "the first verdicts were evicted");
    assert.equal(verifier.stats().evictions, 2);

    const before = verifier.stats();
    assert.equal(crypto.verifyRequest(good), true, "an evicted valid verdict is recomputed inline: valid");
    assert.equal(crypto.verifyRequest(forged), false, "an evicted invalid verdict is recomputed inline: invalid");
    assert.equal(verifier.stats().misses, before.misses + 2, "both were verified inline");
    assert.equal(crypto.verifyRequest(laterGood), true);
    assert.equal(crypto.verifyRequest(laterForged), false);
    assert.equal(verifier.stats().hits, before.hits + 2, "the kept verdicts answered");
  });

  it("keeps invalid verdicts apart: a flood of forged signatures forgets only other invalid verdicts", () => {
    const verifier = new PrecomputedVerifier({ verdictsMax: 4, invalidVerdictsMax: 2 });
    const good = [goodRequest(0), goodRequest(1)].map(keyOf);
    for (const key of good) verifier.remember(key, true);
    for (let nonce = 1; nonce <= 50; nonce++) verifier.remember(keyOf(forgedRequest(2, nonce)), false);
    assert.ok(good.every((key) => verifier.knows(key)), "the valid verdicts are all kept");
    assert.deepEqual({ ...verifier.stats(), hits: 0, misses: 0 }, { verdicts: 2, invalidVerdicts: 2, hits: 0, misses: 0, evictions: 48 });
  });

  it("names a verdict by a 32-character digest of the whole triple, whatever the message's size", () => {
    const pair = clients[0]!;
    const item = (message: Uint8Array, signature = new Uint8Array(64).fill(1)): SignedItem => ({ publicKey: pair.publicKey, message, signature });
    const long = new Uint8Array(100_000).fill(7);
    const longer = Uint8Array.from(long);
    longer[99_999] = 8;
    const keys = [item(long), item(longer), item(long, new Uint8Array(64).fill(2)), item(new Uint8Array(0))].map(signedItemKey);
    assert.ok(keys.every((key) => key.length === 32));
    assert.equal(new Set(keys).size, keys.length, "triples that differ anywhere have different keys");
    assert.equal(signedItemKey(item(Uint8Array.from(long))), keys[0], "equal triples have equal keys");
    // The lengths are hashed too: moving a byte from the key to the signature changes the key.
    const shifted = { publicKey: pair.publicKey.subarray(0, 31), signature: Uint8Array.from([pair.publicKey[31]!, ...new Uint8Array(64).fill(1)]), message: long };
    assert.notEqual(signedItemKey(shifted), keys[0]);
  });

  it("drops whatever waits when it closes, and takes nothing after", async () => {
    const pool = new ManualPool();
    const { stage, delivered, endTurn } = manualStage(pool);
    stage.submit({}, asInput(goodRequest(0)), 100);
    endTurn();
    await stage.close();
    await pool.answer(0);
    assert.equal(delivered.length, 0);
    assert.equal(stage.submit({}, asInput(goodRequest(1)), 100), false);
  });
});

describe("verification stage: backpressure", () => {
  it("keeps at most batchesInFlightMax batches at the pool; the rest collect and leave as answers come back", async () => {
    const pool = new ManualPool();
    const { stage, delivered, endTurn } = manualStage(pool, { batchItemsMax: 2, batchesInFlightMax: 1 });
    for (let client = 0; client < 5; client++) stage.submit({ client }, asInput(goodRequest(client)), 100);
    endTurn();
    assert.equal(pool.batches.length, 1, "one batch at the pool");
    assert.equal(stage.stats().batchesInFlight, 1);
    assert.equal(stage.stats().collectingItems, 3, "the other signatures wait in the stage");
    await pool.answer(0);
    assert.equal(pool.batches.length, 2, "an answer lets the next batch go");
    await pool.answer(1);
    await pool.answer(2);
    assert.deepEqual(pool.batches.map((batch) => batch.items.length), [2, 2, 1]);
    assert.equal(delivered.length, 5);
    assert.equal(stage.stats().batchesFailed, 0);
  });

  it("takes a pool's 'queue-full' as backpressure: the batch is sent again later, and the core verifies nothing inline", async () => {
    const pool = new ManualPool();
    const { stage, delivered, endTurn } = manualStage(pool, { batchItemsMax: 1 });
    const crypto = new ReplicaCrypto(cluster.config, cluster.keys[1]!.privateKey, { requestVerifier: stage.verifier });
    const requests = [goodRequest(0), forgedRequest(1)];
    for (const request of requests) stage.submit({ request }, asInput(request), 100);
    endTurn();
    assert.equal(pool.batches.length, 2);
    await pool.fail(1, new VerifyPoolError("queue-full", "full"));
    assert.equal(delivered.length, 0, "the refused batch's input still waits");
    assert.equal(stage.stats().batchesDeferred, 1);
    await pool.answer(0);
    assert.equal(pool.batches.length, 3, "the refused batch went again once the pool had room");
    await pool.answer(2);
    assert.deepEqual(delivered, requests.map(asInput));
    assert.deepEqual(delivered.map((input) => crypto.verifyRequest((input as { request: ClientRequest }).request)), [true, false]);
    assert.equal(stage.verifier.stats().misses, 0, "nothing was verified inline");
    assert.equal(stage.stats().batchesFailed, 0);
  });
});

describe("requests carried by core inputs", () => {
  it("finds the requests inside pre-prepares, commit certificates and fetched batches; none in view changes and new views, which go by digest", () => {
    const primary = new ReplicaCrypto(cluster.config, cluster.keys[0]!.privateKey);
    const [a, b, c] = [goodRequest(0), goodRequest(1), goodRequest(2)];
    const pp = sign<PrePrepare>(primary, { type: "pre-prepare", view: 0, seq: 1, digest: primary.batchDigest([a, b]), requests: [a, b], replica: 0 });
    const pp2 = sign<PrePrepare>(primary, { type: "pre-prepare", view: 1, seq: 2, digest: primary.batchDigest([c]), requests: [c], replica: 1 });
    const stable = { type: "checkpoint-proof" as const, seq: 0, stateDigest: "", checkpoints: [] };
    const viewChange = { type: "view-change" as const, view: 1, stable, prepared: [{ prePrepare: pp, prepares: [] }], replica: 2, signature: "" };
    const message = (m: ReplicaMessage): StagedInput => ({ type: "message", from: 1, message: m });
    assert.deepEqual(requestsCarried(message(pp)), [a, b]);
    assert.deepEqual(requestsCarried(message({ type: "commit-certificate", prePrepare: pp, commits: [] })), [a, b]);
    assert.deepEqual(requestsCarried(message({ type: "batch", seq: 2, digest: pp2.digest, requests: [c], replica: 1 })), [c]);
    // A faulty peer's VIEW-CHANGE or NEW-VIEW stuffed with requests: the core refuses it, so the pool is not spent on them.
    assert.deepEqual(requestsCarried(message(viewChange)), []);
    assert.deepEqual(requestsCarried(message({ type: "new-view", view: 1, viewChanges: [viewChange], prePrepares: [pp2], replica: 1, signature: "" })), []);
    assert.deepEqual(requestsCarried(message({ type: "prepare", view: 0, seq: 1, digest: "", replica: 2, signature: "" })), []);
  });
});
