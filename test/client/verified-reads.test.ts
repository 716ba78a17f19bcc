// Proof reads, blocks and status from the client's side, against fake replicas over the real
// transport (the replicas' handshake, the wire codec) serving an in-memory certified ledger
// (test/support/certified-ledger.ts), honestly or forged as each test decides. What is checked is
// the client's rule: nothing a single replica serves is believed unless it verifies against the
// cluster's keys; a replica that serves something else is skipped and counted, and only when every
// replica failed does the call fail, saying why for each.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { BulwarkClient } from "../../src/client/client.js";
import { connect } from "../../src/client/connect.js";
import { BulwarkClientError, ReplicasFailedError } from "../../src/client/errors.js";
import type { ClientOptions } from "../../src/client/types.js";
import type { Ed25519KeyPair } from "../../src/crypto/ed25519.js";
import { sha256 } from "../../src/crypto/sha256.js";
import { encodeBlockBody } from "../../src/ledger/block.js";
import { encodeBlockHeader } from "../../src/ledger/block-header.js";
import { encodeCertificate } from "../../src/ledger/certificate.js";
import { clusterConfigToJson, parseClusterConfig } from "../../src/ledger/cluster-json.js";
import type { Connection } from "../../src/net/connection.js";
import { Listener } from "../../src/net/listener.js";
import { replicaListenerHandshake } from "../../src/node/handshake.js";
import { writeKeyFile } from "../../src/node/keys.js";
import { decodeWireFrame, encodeWireFrame } from "../../src/node/wire.js";
import type { PeerSession, WireFrame } from "../../src/node/wire-types.js";
import { Random } from "../../src/sim/random.js";
import { type TestCluster, certify, clusterJson, flipByte, keyPair, testCluster } from "../ledger/fixtures.js";
import { CertifiedLedger } from "../support/certified-ledger.js";

const HOST = "127.0.0.1";
const utf8 = new TextEncoder();

type Query = Extract<WireFrame, { kind: "status-request" | "read-request" | "blocks-request" }>;
/** What a fake replica answers to a query; undefined: it stays silent. */
type Serve = (query: Query, ledger: CertifiedLedger) => WireFrame | undefined;

/** The answer an honest replica gives. */
const honest: Serve = (query, ledger) => {
  switch (query.kind) {
    case "read-request":
      return ledger.readProof(query.requestId, query.key);
    case "blocks-request":
      return { kind: "blocks", requestId: query.requestId, blocks: ledger.wireBlocks(query.from, Math.min(query.to, query.from + 63)) };
    case "status-request":
      return { kind: "status", requestId: query.requestId, replica: 0, view: 1, primary: 1, normal: true, executedHeight: ledger.height, stableCheckpoint: 0, certifiedHeight: ledger.height };
  }
};

/** An honest read answer changed by `forge`; other queries answered honestly. */
function forgedRead(forge: (answer: Extract<WireFrame, { kind: "read-proof" }>, ledger: CertifiedLedger) => WireFrame): Serve {
  return (query, ledger) => (query.kind === "read-request" ? forge(ledger.readProof(query.requestId, query.key), ledger) : honest(query, ledger));
}

/** Honest blocks with each changed by `forge`. */
function forgedBlocks(forge: (block: Extract<WireFrame, { kind: "blocks" }>["blocks"][number], ledger: CertifiedLedger) => Extract<WireFrame, { kind: "blocks" }>["blocks"][number]): Serve {
  return (query, ledger) => {
    const answer = honest(query, ledger);
    return answer?.kind === "blocks" ? { ...answer, blocks: answer.blocks.map((block) => forge(block, ledger)) } : answer;
  };
}

/** A replica that serves `old` (an earlier state of the ledger) for everything, its status included. */
function lagging(old: CertifiedLedger): Serve {
  return (query) => honest(query, old);
}

/** Honest, but a blocks request is answered with no blocks: "I do not have them". */
const lacking: Serve = (query, ledger) => (query.kind === "blocks-request" ? { kind: "blocks", requestId: query.requestId, blocks: [] } : honest(query, ledger));

/** Honest, but every block's certificate is broken. */
const brokenCertificates = forgedBlocks((block) => ({ ...block, certificate: flipByte(block.certificate!, 20) }));

class FakeCluster {
  readonly serve: Serve[];
  readonly listeners: Listener<PeerSession>[] = [];
  readonly ledger: CertifiedLedger;
  readonly test: TestCluster;
  /** The replica each read request went to, in order. */
  readonly readsAsked: number[] = [];

  private constructor(test: TestCluster, listeners: Listener<PeerSession>[], serve: Serve[]) {
    this.test = test;
    this.listeners = listeners;
    this.serve = serve;
    this.ledger = new CertifiedLedger(test);
  }

  static async start(n = 4, seed = 21): Promise<FakeCluster> {
    const { json, keys, authority } = clusterJson(n, seed);
    const serve: Serve[] = Array.from({ length: n }, () => honest);
    const holder: { cluster?: FakeCluster } = {};
    const listeners: Listener<PeerSession>[] = [];
    const ports: number[] = [];
    for (let id = 0; id < n; id++) {
      const listener = new Listener<PeerSession>(
        { host: HOST, port: 0, handshake: (role) => replicaListenerHandshake({ cluster: holder.cluster!.test.config, id, privateKey: keys[id]!.privateKey })(role) },
        { onFrame: (connection, payload) => holder.cluster!.onFrame(id, connection, payload) },
      );
      listeners.push(listener);
      ports.push((await listener.listen()).port);
    }
    (json["replicas"] as { address: string }[]).forEach((replica, id) => (replica.address = `${HOST}:${ports[id]}`));
    const cluster = new FakeCluster({ config: parseClusterConfig(json), keys, authority }, listeners, serve);
    holder.cluster = cluster;
    return cluster;
  }

  get config(): TestCluster["config"] {
    return this.test.config;
  }

  async close(): Promise<void> {
    await Promise.all(this.listeners.map((listener) => listener.close()));
  }

  private onFrame(id: number, connection: Connection<PeerSession>, payload: Uint8Array): void {
    const frame = decodeWireFrame(payload);
    if (frame.kind !== "status-request" && frame.kind !== "read-request" && frame.kind !== "blocks-request") return;
    if (frame.kind === "read-request") this.readsAsked.push(id);
    const answer = this.serve[id]!(frame, this.ledger);
    if (answer === undefined) return;
    // An honest status names replica 0 (`honest` does not know who answers): put in the answering
    // replica's id, unless the test's answer named another one on purpose.
    connection.send(encodeWireFrame(answer.kind === "status" && answer.replica === 0 ? { ...answer, replica: id } : answer));
  }
}

const random = new Random(77);
const clientKeys: Ed25519KeyPair[] = Array.from({ length: 40 }, () => keyPair(random));
let nextKey = 0;

async function connectClient(cluster: FakeCluster, options: Partial<ClientOptions> = {}): Promise<BulwarkClient> {
  const client = await BulwarkClient.connect({
    cluster: cluster.config,
    privateKey: clientKeys[nextKey++]!.privateKey,
    deadlineMs: 5_000,
    // 0: reads start at replica 0, so each test knows which replica a read asks first.
    transport: { backoff: { initialMs: 5, maxMs: 20 }, random: () => 0 },
    ...options,
  });
  await waitFor(() => client.connectedReplicas === cluster.config.n, "every link to open");
  return client;
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** A cluster and a connected client, both closed after the test. */
async function setup(): Promise<{ cluster: FakeCluster; client: BulwarkClient }> {
  const cluster = await FakeCluster.start();
  const opened: { client?: BulwarkClient } = {};
  // Registered before connecting, so a failed connect still closes the fake replicas.
  after(async () => {
    await opened.client?.close();
    await cluster.close();
  });
  opened.client = await connectClient(cluster);
  return { cluster, client: opened.client };
}

const text = (bytes: Uint8Array | undefined): string | undefined => (bytes === undefined ? undefined : Buffer.from(bytes).toString("utf8"));

describe("proof reads", () => {
  it("return the value and height an honest replica proves, and absence for a key with no value", async () => {
    const { cluster, client } = await setup();
    cluster.ledger.put("colour", "green");
    cluster.ledger.put("size", "large");
    const read = await client.read("colour", { consistency: "proof" });
    assert.deepEqual({ value: text(read.value), height: read.height }, { value: "green", height: 2 });
    assert.equal(await client.get("missing", { consistency: "proof" }), undefined);
    assert.equal(client.height, 2, "the client remembers the height it has seen");
    assert.equal(client.counters.answersRejected, 0);
  });

  it("skip and count replicas that serve a forged value, a false absence or a certificate of other keys, and use the next one's proof", async () => {
    const { cluster, client } = await setup();
    cluster.ledger.put("colour", "green");
    const impostor = testCluster(4, 99);
    cluster.serve[0] = forgedRead((answer, ledger) => ({ ...answer, certificate: encodeCertificate(certify(impostor, ledger.chain[0]!.block)) }));
    cluster.serve[1] = forgedRead((answer) => ({ ...answer, value: utf8.encode("red") }));
    cluster.serve[2] = forgedRead((answer) => ({ kind: "read-proof", requestId: answer.requestId, height: answer.height, header: answer.header, certificate: answer.certificate, proof: answer.proof }));
    const read = await client.read("colour", { consistency: "proof" });
    assert.equal(text(read.value), "green");
    assert.equal(client.counters.answersRejected, 3, "each forgery was refused and counted");
  });

  it("verify a header's certificate once: a later proof under the same header is checked against its state root only", async () => {
    const { cluster, client } = await setup();
    cluster.ledger.put("colour", "green");
    assert.equal(text(await client.get("colour", { consistency: "proof" })), "green");
    // The same header with a certificate that verifies nothing: the header is already known certified.
    for (let id = 0; id < 4; id++) cluster.serve[id] = forgedRead((answer) => ({ ...answer, certificate: flipByte(answer.certificate, 20) }));
    assert.equal(text(await client.get("colour", { consistency: "proof" })), "green");
    // A forged value under that header is still refused by its state proof (reads rotate: this one starts at replica 2).
    cluster.serve[2] = forgedRead((answer) => ({ ...answer, value: utf8.encode("red") }));
    assert.equal(text(await client.get("colour", { consistency: "proof" })), "green");
    assert.equal(client.counters.answersRejected, 1);
    // A header the client has not verified gets its certificate checked.
    cluster.ledger.put("size", "large");
    for (let id = 0; id < 4; id++) cluster.serve[id] = forgedRead((answer) => ({ ...answer, certificate: flipByte(answer.certificate, 20) }));
    await assert.rejects(client.get("size", { consistency: "proof" }), (error: unknown) => error instanceof ReplicasFailedError && error.reasons.every((failure) => /malformed|bad-signature/.test(failure.reason)));
  });

  it("fail with ClusterUnavailableError naming each replica's reason when none serves a proof that verifies", async () => {
    const { cluster, client } = await setup();
    cluster.ledger.put("colour", "green");
    cluster.serve[0] = forgedRead((answer) => ({ ...answer, value: utf8.encode("red") }));
    cluster.serve[1] = forgedRead((answer) => ({ kind: "read-unavailable", requestId: answer.requestId, reason: "uncertified" }));
    cluster.serve[2] = forgedRead((answer) => ({ kind: "status", requestId: answer.requestId, replica: 2, view: 0, primary: 0, normal: true, executedHeight: 0, stableCheckpoint: 0, certifiedHeight: 0 }));
    cluster.serve[3] = forgedRead((answer) => ({ ...answer, header: encodeBlockHeader({ ...cluster.ledger.header(1), txCount: 5 }) }));
    await assert.rejects(client.read("colour", { consistency: "proof" }), (error: unknown) => {
      assert.ok(error instanceof ReplicasFailedError, String(error));
      const reasons = new Map(error.reasons.map((failure) => [failure.replica, failure.reason]));
      assert.match(reasons.get(0)!, /state-proof-mismatch/);
      assert.match(reasons.get(1)!, /cannot prove its state now \(uncertified\)/);
      assert.match(reasons.get(2)!, /answered with a status frame/);
      assert.match(reasons.get(3)!, /bad-signature/);
      assert.match(error.message, /no replica served a proof of state key .* that verified: replica \d/);
      return true;
    });
  });

  it("refuse a proof of state older than the client has already seen, and accept genesis only before anything was seen", async () => {
    const { cluster, client } = await setup();
    assert.equal(await client.get("k", { consistency: "proof" }), undefined, "height 0: absent in the empty genesis state");
    cluster.ledger.put("k", "one");
    cluster.ledger.put("k", "two");
    assert.equal(text(await client.get("k", { consistency: "proof" })), "two");
    // Replica 0 now serves height 1, replica 1 the genesis state; both are older than height 2.
    const old = new CertifiedLedger(cluster.test);
    old.put("k", "one");
    cluster.serve[0] = (query) => (query.kind === "read-request" ? old.readProof(query.requestId, query.key) : undefined);
    cluster.serve[1] = (query) => (query.kind === "read-request" ? new CertifiedLedger(cluster.test).readProof(query.requestId, query.key) : undefined);
    cluster.serve[2] = cluster.serve[0];
    cluster.serve[3] = cluster.serve[1];
    await assert.rejects(client.get("k", { consistency: "proof" }), (error: unknown) => error instanceof ReplicasFailedError && error.reasons.every((failure) => /older than height 2/.test(failure.reason)));
  });

  it("read an account's balance and next nonce by proof, and a fresh account as balance 0, nonce 1", async () => {
    const { cluster, client } = await setup();
    const owner = clientKeys[15]!.publicKey;
    cluster.ledger.setAccount(owner, 1_234n, 9);
    assert.deepEqual(await client.account(owner, { consistency: "proof" }), { balance: 1_234n, nextNonce: 9, height: 1 });
    assert.deepEqual(await client.account(clientKeys[16]!.publicKey, { consistency: "proof" }), { balance: 0n, nextNonce: 1, height: 1 });
    await assert.rejects(client.account(new Uint8Array(31), { consistency: "proof" }), RangeError);
  });
});

describe("proof reads at a minimum height", () => {
  it("refuse a proof older than the caller's minHeight and use a replica that is recent enough", async () => {
    const { cluster, client } = await setup();
    const old = new CertifiedLedger(cluster.test);
    old.put("k", "one");
    cluster.ledger.put("k", "one");
    cluster.ledger.put("k", "two");
    cluster.serve[0] = lagging(old);
    const read = await client.read("k", { consistency: "proof", minHeight: 2 });
    assert.deepEqual({ value: text(read.value), height: read.height }, { value: "two", height: 2 });
    assert.equal(client.counters.answersStale, 1, "replica 0's proof at height 1 was refused as stale");
    await assert.rejects(client.read("k", { consistency: "proof", minHeight: -1 }), RangeError);
  });

  it("refuse an answer whose header is of another height than the answer names", async () => {
    const { cluster, client } = await setup();
    cluster.ledger.put("k", "one");
    cluster.ledger.put("k", "two");
    cluster.serve[0] = forgedRead((answer, ledger) => ({ ...answer, header: encodeBlockHeader(ledger.header(1)) }));
    assert.equal(text(await client.get("k", { consistency: "proof" })), "two");
    assert.equal(client.counters.answersRejected, 1);
    for (let id = 0; id < 4; id++) cluster.serve[id] = cluster.serve[0]!;
    await assert.rejects(client.get("k", { consistency: "proof" }), (error: unknown) => error instanceof ReplicasFailedError && error.reasons.every((failure) => /names height 2 but sent the header of block 1/.test(failure.reason)));
  });

  it("start a new client's reads at a random replica", async () => {
    const cluster = await FakeCluster.start();
    after(() => cluster.close());
    for (const [random, first] of [[0.6, 2], [0.99, 3], [0, 0]] as const) {
      const client = await connectClient(cluster, { transport: { backoff: { initialMs: 5, maxMs: 20 }, random: () => random } });
      after(() => client.close());
      cluster.readsAsked.length = 0;
      await client.get("k", { consistency: "proof" });
      await client.get("k", { consistency: "proof" });
      assert.deepEqual(cluster.readsAsked, [first, (first + 1) % 4], `random ${random}`);
    }
  });
});

describe("connect", () => {
  it("discovers the next nonce of a key already used, by a proof read of its account", async () => {
    const cluster = await FakeCluster.start();
    after(() => cluster.close());
    const key = clientKeys[nextKey++]!;
    cluster.ledger.setAccount(key.publicKey, 10n, 42);
    const client = await connect({ cluster: cluster.config, key: key.privateKey, transport: { backoff: { initialMs: 5, maxMs: 20 } } });
    after(() => client.close());
    assert.equal(client.nonce, 42);
    const fixed = await connect({ cluster: cluster.config, key: key.privateKey, firstNonce: 3 });
    after(() => fixed.close());
    assert.equal(fixed.nonce, 3, "a numeric firstNonce is used as given");
  });

  it("discovers the nonce at a height f + 1 replicas vouch for, so a lagging replica's old account is refused", async () => {
    const cluster = await FakeCluster.start();
    after(() => cluster.close());
    const key = clientKeys[nextKey++]!;
    cluster.ledger.setAccount(key.publicKey, 10n, 41);
    const old = new CertifiedLedger(cluster.test);
    // Replica 0 is behind: it has not seen the account at all (nonce 1), and says so in its status too.
    old.put("unrelated", "x");
    for (let height = 1; height <= 3; height++) cluster.ledger.put(`k${height}`, "v");
    cluster.serve[0] = lagging(old);
    // Reads start at replica 0.
    const client = await connect({ cluster: cluster.config, key: key.privateKey, transport: { backoff: { initialMs: 5, maxMs: 20 }, random: () => 0 } });
    after(() => client.close());
    assert.equal(client.nonce, 41);
    assert.equal(client.counters.answersStale, 1, "replica 0's proof was refused as older than the vouched height");
  });

  it("fails to discover the nonce when fewer than f + 1 replicas say where the cluster is", async () => {
    const cluster = await FakeCluster.start();
    after(() => cluster.close());
    for (let id = 1; id < 4; id++) cluster.serve[id] = (query, ledger) => (query.kind === "status-request" ? undefined : honest(query, ledger));
    const client = await connectClient(cluster);
    after(() => client.close());
    await assert.rejects(client.discoverNonce(), (error: unknown) => error instanceof ReplicasFailedError && /f \+ 1 = 2 replicas vouch for/.test(error.message));
  });

  it("reads cluster.json and the client.key beside it, and starts a fresh account at nonce 1 from the genesis state", async () => {
    const cluster = await FakeCluster.start();
    after(() => cluster.close());
    const directory = mkdtempSync(join(tmpdir(), "bulwark-connect-"));
    after(() => rmSync(directory, { recursive: true, force: true }));
    writeFileSync(join(directory, "cluster.json"), clusterConfigToJson(cluster.config));
    const key = clientKeys[nextKey++]!;
    await writeKeyFile(join(directory, "client.key"), { role: "client", ...key });
    const client = await connect({ cluster: join(directory, "cluster.json") });
    after(() => client.close());
    assert.deepEqual(client.publicKey, key.publicKey);
    assert.equal(client.nonce, 1);
    await assert.rejects(connect({ cluster: cluster.config }), { name: "TypeError", message: /pass `key`/ });
  });
});

describe("blocks", () => {
  it("return contiguous verified blocks with their bodies and signers, skipping a replica whose certificates do not verify", async () => {
    const { cluster, client } = await setup();
    for (let height = 1; height <= 5; height++) cluster.ledger.put(`k${height}`, `v${height}`);
    cluster.serve[0] = forgedBlocks((block) => ({ ...block, certificate: flipByte(block.certificate!, 20) }));
    const blocks = await client.blocks(2, 10);
    assert.deepEqual(blocks.map((block) => block.height), [2, 3, 4, 5], "up to the tip");
    const block = blocks[0]!;
    const expected = cluster.ledger.chain[1]!.block;
    assert.deepEqual(block.transactions, expected.transactions);
    assert.deepEqual(block.results, expected.results);
    assert.deepEqual(block.signers, [0, 1, 2]);
    assert.equal(block.bodyPruned, false);
    assert.equal(block.previousHash, Buffer.from(expected.header.prevHash).toString("hex"));
    assert.equal(blocks[1]!.previousHash, block.hash, "each block's previous hash is the one before it");
    assert.equal(client.counters.answersRejected, 1);
  });

  it("refuse a block whose body does not hash to its header's roots", async () => {
    const { cluster, client } = await setup();
    cluster.ledger.put("a", "1");
    cluster.ledger.put("b", "2");
    const otherBody = encodeBlockBody([utf8.encode("not this block's")], [Uint8Array.of(0)]);
    for (let id = 0; id < 4; id++) cluster.serve[id] = forgedBlocks((block) => ({ ...block, body: otherBody }));
    await assert.rejects(client.block(2), (error: unknown) => error instanceof ReplicasFailedError && error.reasons.length === 4 && error.reasons.every((failure) => /tx-root-mismatch/.test(failure.reason)));
  });

  it("gather a range when a replica answers only its top (a byte bound), asking again below what it got", async () => {
    const { cluster, client } = await setup();
    for (let height = 1; height <= 9; height++) cluster.ledger.put(`k${height}`, "v");
    for (let id = 0; id < 4; id++) {
      cluster.serve[id] = (query, ledger) => {
        const answer = honest(query, ledger);
        return answer?.kind === "blocks" ? { ...answer, blocks: answer.blocks.slice(-2) } : answer;
      };
    }
    const blocks = await client.blocks(1, 9);
    assert.deepEqual(blocks.map((block) => block.height), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("block(height): undefined when no replica has it; a pruned body is replaced by a replica that has it", async () => {
    const { cluster, client } = await setup();
    cluster.ledger.put("a", "1");
    assert.equal(await client.block(2), undefined);
    for (let id = 0; id < 3; id++) cluster.serve[id] = forgedBlocks((block) => ({ height: block.height, header: block.header, certificate: block.certificate! }));
    const full = await client.block(1);
    assert.equal(full?.bodyPruned, false);
    assert.equal(full?.transactions.length, 1);
    cluster.serve[3] = cluster.serve[0]!;
    const pruned = await client.block(1);
    assert.equal(pruned?.bodyPruned, true);
    assert.deepEqual(pruned?.transactions, []);
    assert.equal(pruned?.transactionCount, 1);
    await assert.rejects(client.blocks(1, 101), RangeError);
  });

  it("block(height) is absent only when f + 1 replicas lack it; one replica's word is not enough", async () => {
    const { cluster, client } = await setup();
    cluster.ledger.put("a", "1");
    cluster.serve[0] = lacking;
    for (let id = 1; id < 4; id++) cluster.serve[id] = brokenCertificates;
    await assert.rejects(client.block(1), (error: unknown) => error instanceof ReplicasFailedError && /replica 0: does not have block 1/.test(error.message));
    await assert.rejects(client.blocks(1, 5), (error: unknown) => error instanceof ReplicasFailedError && /replica 0: has no certified block 1/.test(error.message));
    cluster.serve[1] = lacking;
    assert.equal(await client.block(1), undefined);
    assert.deepEqual(await client.blocks(1, 5), []);
  });

  it("blocks(): a body a replica left out is fetched from another replica that has it", async () => {
    const { cluster, client } = await setup();
    for (let height = 1; height <= 4; height++) cluster.ledger.put(`k${height}`, "v");
    cluster.serve[0] = forgedBlocks((block) => ({ height: block.height, header: block.header, certificate: block.certificate! }));
    const blocks = await client.blocks(1, 4);
    assert.deepEqual(blocks.map((block) => block.height), [1, 2, 3, 4]);
    assert.ok(blocks.every((block) => !block.bodyPruned && block.transactions.length === 1), "every body is there");
    assert.deepEqual(blocks[0]!.transactions, cluster.ledger.chain[0]!.block.transactions);
    assert.equal(blocks[0]!.transactionIds[0], Buffer.from(sha256(blocks[0]!.transactions[0]!)).toString("hex"));
    // When no replica has the bodies, the blocks come without them.
    for (let id = 1; id < 4; id++) cluster.serve[id] = cluster.serve[0]!;
    const pruned = await client.blocks(1, 4);
    assert.ok(pruned.every((block) => block.bodyPruned && block.transactions.length === 0 && block.transactionIds.length === 0));
  });

  it("refuse certified blocks that do not chain: more than f replicas are faulty", async () => {
    const { cluster, client } = await setup();
    cluster.ledger.put("a", "1");
    cluster.ledger.put("b", "2");
    // Another history, signed by the same keys: its block 2 does not follow this ledger's block 1.
    const fork = new CertifiedLedger(cluster.test);
    fork.put("a", "other");
    fork.put("b", "2");
    for (let id = 0; id < 4; id++) {
      cluster.serve[id] = forgedBlocks((block, ledger) => (block.height === 2 ? fork.wireBlock(2) : ledger.wireBlock(block.height)));
    }
    await assert.rejects(client.blocks(1, 2), (error: unknown) => error instanceof BulwarkClientError && /certified blocks 1 and 2 do not chain/.test(error.message));
  });

  it("give up on a block or a range within the client's deadline, however many replicas stay silent", async () => {
    const cluster = await FakeCluster.start();
    after(() => cluster.close());
    const client = await connectClient(cluster, { deadlineMs: 400 });
    after(() => client.close());
    cluster.ledger.put("a", "1");
    for (let id = 0; id < 4; id++) cluster.serve[id] = (query, ledger) => (query.kind === "blocks-request" ? undefined : honest(query, ledger));
    for (const read of [() => client.block(1), () => client.blocks(1, 10)]) {
      const started = Date.now();
      await assert.rejects(read(), (error: unknown) => error instanceof ReplicasFailedError && /no answer within \d+ ms/.test(error.message) && /not asked/.test(error.message));
      assert.ok(Date.now() - started < 1_500, `gave up after ${Date.now() - started} ms`);
    }
  });

  it("an uncertified block is not served as verified", async () => {
    const { cluster, client } = await setup();
    cluster.ledger.put("a", "1");
    for (let id = 0; id < 4; id++) cluster.serve[id] = forgedBlocks((block, ledger) => ledger.wireBlock(block.height, { certificate: false }));
    assert.equal(await client.block(1), undefined);
    assert.deepEqual(await client.blocks(1, 5), []);
  });
});

describe("status", () => {
  it("lists every replica, answering or not, with what each says about itself", async () => {
    const { cluster, client } = await setup();
    cluster.ledger.put("a", "1");
    cluster.serve[2] = () => undefined;
    const statuses = await client.status({ timeoutMs: 300 });
    assert.equal(statuses.length, 4);
    assert.deepEqual(statuses[2], { replica: 2, address: cluster.config.replicas[2]!.address, reachable: false });
    assert.deepEqual(statuses[0], {
      replica: 0,
      address: cluster.config.replicas[0]!.address,
      reachable: true,
      view: 1,
      primary: 1,
      normal: true,
      executedHeight: 1,
      stableCheckpoint: 0,
      certifiedHeight: 1,
    });
    assert.deepEqual(
      statuses.map((status) => status.reachable),
      [true, true, false, true],
    );
  });

  it("drops a status that names another replica than the connection's, so that replica counts as unreachable", async () => {
    const { cluster, client } = await setup();
    cluster.serve[1] = (query, ledger) => {
      const answer = honest(query, ledger);
      return answer?.kind === "status" ? { ...answer, replica: 3 } : answer;
    };
    const misattributed = client.counters.repliesMisattributed;
    const statuses = await client.status({ timeoutMs: 300 });
    assert.deepEqual(
      statuses.map((status) => status.reachable),
      [true, false, true, true],
    );
    assert.equal(client.counters.repliesMisattributed, misattributed + 1);
  });
});
