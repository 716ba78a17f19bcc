// The routes beyond the key-value store against fake clients: pre-signed transactions, accounts,
// blocks and status.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { type Operation, TRANSACTION_BYTES_MAX, encodeTransaction, signTransaction, transactionId } from "../../src/app/transaction.js";
import type { ReplicaStatus } from "../../src/client/types.js";
import { Random } from "../../src/sim/random.js";
import { keyPair } from "../ledger/fixtures.js";
import { type Json, allCalls, fakeGateway } from "./fixtures.js";

const signer = keyPair(new Random(41));
const recipient = keyPair(new Random(42));

function envelope(nonce: number, operation: Operation): Buffer {
  return Buffer.from(encodeTransaction(signTransaction(signer.privateKey, { clientKey: signer.publicKey, nonce, operation })));
}

const PUT_X = { type: "put", key: Buffer.from("x"), value: Buffer.from("y") } as const;
const OCTETS = { "content-type": "application/octet-stream" };

describe("POST /v1/transactions", () => {
  it("sends a raw envelope as it is and answers its committed result with height and sequence number", async (t) => {
    const gateway = await fakeGateway(t);
    const bytes = envelope(1, PUT_X);
    const response = await gateway.app.inject({ method: "POST", url: "/v1/transactions", payload: bytes, headers: OCTETS });
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(response.json(), {
      id: Buffer.from(transactionId(bytes)).toString("hex"),
      clientKey: Buffer.from(signer.publicKey).toString("hex"),
      nonce: 1,
      operation: "put",
      result: { ok: true, kind: "done" },
      height: 1,
      seq: 1,
      replicas: [0, 1],
    });
    // Envelopes have their signer's lane: they go to the reader, not to a writer key.
    assert.deepEqual(gateway.reader.calls, ["submitEnvelope"]);
    assert.deepEqual(Buffer.from(gateway.cluster.blocks[0]!.transactions[0]!), bytes);
  });

  it("takes the envelope as base64 in JSON too", async (t) => {
    const { app } = await fakeGateway(t);
    const response = await app.inject({ method: "POST", url: "/v1/transactions", payload: { envelope: envelope(1, PUT_X).toString("base64") } });
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(response.json<Json>().nonce, 1);
  });

  it("answers a refused transaction 409 for a nonce error and 422 otherwise, with the result and where it committed", async (t) => {
    const { app } = await fakeGateway(t);
    const post = (bytes: Buffer) => app.inject({ method: "POST", url: "/v1/transactions", payload: bytes, headers: OCTETS });
    assert.equal((await post(envelope(1, PUT_X))).statusCode, 200);
    const stale = await post(envelope(1, PUT_X));
    assert.equal(stale.statusCode, 409);
    assert.equal(stale.json<Json>().error, "stale-nonce");
    assert.deepEqual(stale.json<Json>().result, { ok: false, error: "stale-nonce", nextNonce: 2 });
    const gap = await post(envelope(9, PUT_X));
    assert.equal(gap.statusCode, 409);
    assert.equal(gap.json<Json>().error, "nonce-gap");
    const poor = await post(envelope(2, { type: "transfer", to: recipient.publicKey, amount: 5n }));
    assert.equal(poor.statusCode, 422);
    const body = poor.json<Json>();
    assert.equal(body.error, "insufficient-balance");
    assert.match(String(body.message), /insufficient-balance/);
    assert.equal(body.height, 2);
    assert.equal(body.seq, 2);
    assert.equal(body.nonce, 2);
  });

  it("refuses an envelope whose signature does not verify with 422, without sending it", async (t) => {
    const gateway = await fakeGateway(t);
    const bytes = envelope(1, PUT_X);
    bytes[bytes.length - 1]! ^= 0x01;
    const response = await gateway.app.inject({ method: "POST", url: "/v1/transactions", payload: bytes, headers: OCTETS });
    assert.equal(response.statusCode, 422);
    assert.equal(response.json<Json>().error, "bad-signature");
    assert.deepEqual(allCalls(gateway), []);
  });

  it("refuses bytes that are no envelope, an oversized body, an empty body and other content types, without sending anything", async (t) => {
    const gateway = await fakeGateway(t);
    const cases: [string, string | Buffer, Record<string, string>, number, string][] = [
      ["garbage", Buffer.from("not an envelope"), OCTETS, 400, "malformed-envelope"],
      ["trailing byte", Buffer.concat([envelope(1, PUT_X), Buffer.from([0])]), OCTETS, 400, "malformed-envelope"],
      ["empty", Buffer.alloc(0), OCTETS, 400, "invalid-request"],
      ["envelope too long", Buffer.alloc(TRANSACTION_BYTES_MAX + 1, 1), OCTETS, 413, "too-large"],
      ["body beyond the route's limit", Buffer.alloc(400 * 1024, 1), OCTETS, 413, "too-large"],
      ["bad base64", JSON.stringify({ envelope: "***" }), { "content-type": "application/json" }, 400, "invalid-request"],
      ["JSON without envelope", JSON.stringify({ tx: "AAAA" }), { "content-type": "application/json" }, 400, "invalid-request"],
      ["text", "AAAA", { "content-type": "text/plain" }, 415, "unsupported-media-type"],
      ["form", "envelope=AAAA", { "content-type": "application/x-www-form-urlencoded" }, 415, "unsupported-media-type"],
    ];
    for (const [what, payload, headers, status, error] of cases) {
      const response = await gateway.app.inject({ method: "POST", url: "/v1/transactions", payload, headers });
      assert.equal(response.statusCode, status, `${what}: ${response.body}`);
      assert.equal(response.json<Json>().error, error, what);
    }
    assert.deepEqual(allCalls(gateway), []);
  });
});

describe("GET /v1/accounts/:id", () => {
  it("answers balance (as decimal text), next nonce and height, linearizable on a writer by default and by proof on the reader", async (t) => {
    const gateway = await fakeGateway(t, { writers: 1 });
    gateway.cluster.account(signer.publicKey).balance = 2n ** 64n - 1n;
    const id = Buffer.from(signer.publicKey).toString("hex");
    const linearizable = await gateway.app.inject({ method: "GET", url: `/v1/accounts/${id.toUpperCase()}` });
    assert.equal(linearizable.statusCode, 200, linearizable.body);
    assert.deepEqual(linearizable.json(), { id, balance: "18446744073709551615", nextNonce: 1, height: 0, seq: 0 });
    assert.equal((await gateway.app.inject({ method: "GET", url: `/v1/accounts/${id}?consistency=proof` })).statusCode, 200);
    assert.deepEqual(gateway.writers[0]!.calls, ["account:linearizable"]);
    assert.deepEqual(gateway.reader.calls, ["account:proof"]);
  });

  it("refuses an id that is not 64 hex digits with 400", async (t) => {
    const gateway = await fakeGateway(t);
    for (const id of ["abc", "g".repeat(64), "a".repeat(66)]) {
      const response = await gateway.app.inject({ method: "GET", url: `/v1/accounts/${id}` });
      assert.equal(response.statusCode, 400, id);
      assert.equal(response.json<Json>().error, "invalid-account");
    }
    assert.deepEqual(allCalls(gateway), []);
  });
});

describe("GET /v1/blocks", () => {
  it("answers a block with its transactions decoded and its results readable", async (t) => {
    const { app } = await fakeGateway(t);
    const bytes = envelope(1, PUT_X);
    await app.inject({ method: "POST", url: "/v1/transactions", payload: bytes, headers: OCTETS });
    const response = await app.inject({ method: "GET", url: "/v1/blocks/1" });
    assert.equal(response.statusCode, 200, response.body);
    const block = response.json<Json>();
    assert.equal(block.height, 1);
    assert.equal(block.seq, 1);
    assert.equal(block.transactionCount, 1);
    assert.equal(block.hash, "1".padStart(64, "0"));
    assert.deepEqual(block.signers, [0, 1, 2]);
    assert.equal(block.bodyPruned, false);
    assert.deepEqual(block.transactions, [
      {
        id: Buffer.from(transactionId(bytes)).toString("hex"),
        envelope: bytes.toString("base64"),
        resultBytes: Buffer.from([0]).toString("base64"),
        clientKey: Buffer.from(signer.publicKey).toString("hex"),
        nonce: 1,
        operation: "put",
        result: { ok: true, kind: "done" },
      },
    ]);
  });

  it("shows an envelope that does not decode as bytes only", async (t) => {
    const { app } = await fakeGateway(t);
    // The fake's own writes record a three-byte envelope, as a block may record a malformed one.
    await app.inject({ method: "PUT", url: "/v1/kv/a", payload: "1" });
    const [transaction] = (await app.inject({ method: "GET", url: "/v1/blocks/1" })).json<{ transactions: Json[] }>().transactions;
    assert.deepEqual(Object.keys(transaction!).sort(), ["envelope", "id", "result", "resultBytes"]);
  });

  it("answers 404 for a block no replica has, and 400 for a height that is not one", async (t) => {
    const gateway = await fakeGateway(t);
    const missing = await gateway.app.inject({ method: "GET", url: "/v1/blocks/5" });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json<Json>().error, "not-found");
    for (const height of ["0", "-1", "abc", "1.5", "9".repeat(16)]) {
      const response = await gateway.app.inject({ method: "GET", url: `/v1/blocks/${height}` });
      assert.equal(response.statusCode, 400, height);
    }
    assert.deepEqual(allCalls(gateway), ["block"]);
  });

  it("pages consecutive blocks with from and limit, 10 from height 1 by default", async (t) => {
    const { app } = await fakeGateway(t);
    for (let index = 0; index < 12; index++) await app.inject({ method: "PUT", url: `/v1/kv/k${index}`, payload: "v" });
    const heights = async (url: string): Promise<number[]> => (await app.inject({ method: "GET", url })).json<{ blocks: Json[] }>().blocks.map((block) => Number(block.height));
    assert.deepEqual(await heights("/v1/blocks?from=3&limit=2"), [3, 4]);
    assert.deepEqual(await heights("/v1/blocks"), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(await heights("/v1/blocks?from=11&limit=100"), [11, 12]);
    for (const query of ["limit=0", "limit=101", "from=0", "from=x", "limit=-1", "page=2"]) {
      const response = await app.inject({ method: "GET", url: `/v1/blocks?${query}` });
      assert.equal(response.statusCode, 400, query);
      assert.equal(typeof response.json<Json>().message, "string");
    }
  });
});

describe("GET /v1/status", () => {
  it("reports every replica with its role, and the view and heights f + 1 replicas vouch for", async (t) => {
    const { app, cluster } = await fakeGateway(t);
    const statuses: ReplicaStatus[] = [
      { replica: 0, address: "127.0.0.1:7000", reachable: false },
      { replica: 1, address: "127.0.0.1:7001", reachable: true, view: 5, primary: 1, normal: true, executedHeight: 40, stableCheckpoint: 30, certifiedHeight: 39 },
      { replica: 2, address: "127.0.0.1:7002", reachable: true, view: 5, primary: 1, normal: true, executedHeight: 38, stableCheckpoint: 30, certifiedHeight: 38 },
      // A faulty replica's claims alone move nothing.
      { replica: 3, address: "127.0.0.1:7003", reachable: true, view: 99, primary: 3, normal: false, executedHeight: 1_000_000, stableCheckpoint: 999_990, certifiedHeight: 0 },
    ];
    cluster.statuses = statuses;
    const response = await app.inject({ method: "GET", url: "/v1/status" });
    assert.equal(response.statusCode, 200, response.body);
    const body = response.json<{ replicas: Json[] } & Json>();
    assert.equal(body.n, 4);
    assert.equal(body.f, 1);
    assert.equal(body.reachable, 3);
    assert.equal(body.quorumReachable, true);
    assert.equal(body.view, 5);
    assert.equal(body.primary, 1);
    assert.equal(body.executedHeight, 40);
    assert.equal(body.stableCheckpoint, 30);
    assert.equal(body.certifiedHeight, 38);
    assert.equal(body.quorum, 3);
    assert.deepEqual(
      body.replicas.map((replica) => replica.role),
      ["unreachable", "primary", "backup", "view-change"],
    );
    assert.deepEqual(body.replicas[0], { replica: 0, address: "127.0.0.1:7000", reachable: false, role: "unreachable" });
    assert.equal(body.replicas[1]!.certifiedHeight, 39);
  });

  it("vouches for nothing when fewer than f + 1 replicas answered", async (t) => {
    const { app, cluster } = await fakeGateway(t);
    cluster.statuses = [
      { replica: 0, address: "a:1", reachable: true, view: 2, primary: 2, normal: true, executedHeight: 7, stableCheckpoint: 0, certifiedHeight: 7 },
      { replica: 1, address: "a:2", reachable: false },
      { replica: 2, address: "a:3", reachable: false },
      { replica: 3, address: "a:4", reachable: false },
    ];
    const body = (await app.inject({ method: "GET", url: "/v1/status" })).json<Json>();
    assert.equal(body.quorumReachable, false);
    assert.equal(body.view, null);
    assert.equal(body.primary, null);
    assert.equal(body.executedHeight, null);
  });
});
