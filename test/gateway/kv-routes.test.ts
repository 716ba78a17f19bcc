// The key-value routes against fake clients: what each answers, which client serves it, and how
// keys and values cross HTTP.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { TRANSACTION_KEY_BYTES_MAX, TRANSACTION_VALUE_BYTES_MAX } from "../../src/app/transaction.js";
import { type Json, allCalls, fakeGateway } from "./fixtures.js";

const FORM = { "content-type": "application/x-www-form-urlencoded" };

describe("PUT and GET /v1/kv/:key", () => {
  it("stores a curl -d body byte for byte, and GET answers it with its height and sequence number", async (t) => {
    const { app } = await fakeGateway(t);
    const put = await app.inject({ method: "PUT", url: "/v1/kv/a", payload: "1", headers: FORM });
    assert.equal(put.statusCode, 200, put.body);
    assert.deepEqual(put.json(), { key: "a", height: 1, seq: 1 });
    const get = await app.inject({ method: "GET", url: "/v1/kv/a" });
    assert.equal(get.statusCode, 200, get.body);
    assert.deepEqual(get.json(), { key: "a", value: "1", encoding: "utf8", height: 1, seq: 1 });
  });

  it("treats a body as the value whatever its Content-Type says, or when it has none or a malformed one", async (t) => {
    const { app, cluster } = await fakeGateway(t);
    const cases: [string, Record<string, string>][] = [
      ['{"not":"parsed"}', { "content-type": "application/json" }],
      ["plain", { "content-type": "text/plain" }],
      ["no type", {}],
      ["odd type", { "content-type": ";;garbage/" }],
      ["multi", { "content-type": "multipart/form-data; boundary=x" }],
    ];
    for (const [index, [value, headers]] of cases.entries()) {
      const response = await app.inject({ method: "PUT", url: `/v1/kv/k${index}`, payload: value, headers });
      assert.equal(response.statusCode, 200, `${JSON.stringify(headers)}: ${response.body}`);
      assert.equal(Buffer.from(cluster.values.get(Buffer.from(`k${index}`).toString("hex"))!).toString(), value);
    }
  });

  it("stores an empty body as an empty value, which reads back as present", async (t) => {
    const { app } = await fakeGateway(t);
    assert.equal((await app.inject({ method: "PUT", url: "/v1/kv/empty" })).statusCode, 200);
    const get = await app.inject({ method: "GET", url: "/v1/kv/empty" });
    assert.equal(get.statusCode, 200);
    assert.equal(get.json<Json>().value, "");
  });

  it("accepts a value of exactly 64 KiB and refuses a larger one with 413 before it reaches the cluster", async (t) => {
    const gateway = await fakeGateway(t);
    const largest = await gateway.app.inject({ method: "PUT", url: "/v1/kv/big", payload: Buffer.alloc(TRANSACTION_VALUE_BYTES_MAX, 7) });
    assert.equal(largest.statusCode, 200, largest.body);
    const callsBefore = allCalls(gateway).length;
    const tooLarge = await gateway.app.inject({ method: "PUT", url: "/v1/kv/big", payload: Buffer.alloc(TRANSACTION_VALUE_BYTES_MAX + 1, 7) });
    assert.equal(tooLarge.statusCode, 413);
    assert.equal(tooLarge.json<Json>().error, "too-large");
    assert.match(String(tooLarge.json<Json>().message), /65536 bytes/);
    assert.equal(allCalls(gateway).length, callsBefore);
  });

  it("answers 404 with the height for an absent key", async (t) => {
    const { app } = await fakeGateway(t);
    await app.inject({ method: "PUT", url: "/v1/kv/other", payload: "x" });
    const response = await app.inject({ method: "GET", url: "/v1/kv/missing" });
    assert.equal(response.statusCode, 404);
    const body = response.json<Json>();
    assert.equal(body.error, "not-found");
    assert.equal(body.height, 1);
    assert.equal(body.seq, 1);
    assert.equal(typeof body.message, "string");
  });

  it("answers a value that is not UTF-8 as base64", async (t) => {
    const { app } = await fakeGateway(t);
    const bytes = Buffer.from([0xff, 0x00, 0xfe, 0x80]);
    await app.inject({ method: "PUT", url: "/v1/kv/bin", payload: bytes, headers: { "content-type": "application/octet-stream" } });
    const body = (await app.inject({ method: "GET", url: "/v1/kv/bin" })).json<Json>();
    assert.equal(body.encoding, "base64");
    assert.deepEqual(Buffer.from(String(body.value), "base64"), bytes);
  });

  it("answers the raw value with Bulwark-Height when the client accepts application/octet-stream over JSON", async (t) => {
    const { app } = await fakeGateway(t);
    const bytes = Buffer.from([0xff, 0x00, 0x41]);
    await app.inject({ method: "PUT", url: "/v1/kv/raw", payload: bytes });
    const raw = await app.inject({ method: "GET", url: "/v1/kv/raw", headers: { accept: "application/octet-stream" } });
    assert.equal(raw.statusCode, 200);
    assert.match(String(raw.headers["content-type"]), /^application\/octet-stream/);
    assert.equal(raw.headers["bulwark-height"], "1");
    assert.equal(raw.headers["bulwark-seq"], "1");
    assert.deepEqual(raw.rawPayload, bytes);
    const preferJson = await app.inject({ method: "GET", url: "/v1/kv/raw", headers: { accept: "application/octet-stream;q=0.5, application/json" } });
    assert.match(String(preferJson.headers["content-type"]), /^application\/json/);
    const wildcard = await app.inject({ method: "GET", url: "/v1/kv/raw", headers: { accept: "*/*" } });
    assert.match(String(wildcard.headers["content-type"]), /^application\/json/);
  });

  it("reads through consensus on a writer by default, and by proof on the reader when asked", async (t) => {
    const gateway = await fakeGateway(t, { writers: 1 });
    await gateway.app.inject({ method: "PUT", url: "/v1/kv/a", payload: "1" });
    assert.equal((await gateway.app.inject({ method: "GET", url: "/v1/kv/a" })).statusCode, 200);
    assert.equal((await gateway.app.inject({ method: "GET", url: "/v1/kv/a?consistency=linearizable" })).statusCode, 200);
    assert.equal((await gateway.app.inject({ method: "GET", url: "/v1/kv/a?consistency=proof" })).statusCode, 200);
    assert.deepEqual(gateway.writers[0]!.calls, ["submit:put", "read:linearizable", "read:linearizable"]);
    assert.deepEqual(gateway.reader.calls, ["read:proof"]);
  });

  it("a proof read sees the gateway's own writes, even when the reader's replicas lag", async (t) => {
    const gateway = await fakeGateway(t, { writers: 2 });
    // The reader's proof reads answer from a state 5 blocks old unless told to be newer.
    gateway.reader.proofLagBlocks = 5;
    for (let index = 0; index < 4; index++) await gateway.app.inject({ method: "PUT", url: `/v1/kv/k${index}`, payload: "old" });
    assert.equal((await gateway.app.inject({ method: "PUT", url: "/v1/kv/a", payload: "1" })).statusCode, 200);
    assert.equal((await gateway.app.inject({ method: "PUT", url: "/v1/kv/a", payload: "2" })).statusCode, 200);
    const read = await gateway.app.inject({ method: "GET", url: "/v1/kv/a?consistency=proof" });
    assert.equal(read.statusCode, 200, read.body);
    assert.deepEqual(read.json<Json>(), { key: "a", value: "2", encoding: "utf8", height: 6, seq: 6 });
    assert.equal(gateway.pool.committedHeight, 6);
  });

  it("refuses an unknown consistency or query parameter with 400", async (t) => {
    const gateway = await fakeGateway(t);
    for (const url of ["/v1/kv/a?consistency=eventual", "/v1/kv/a?consistency=proof&consistency=proof", "/v1/kv/a?fast=1"]) {
      const response = await gateway.app.inject({ method: "GET", url });
      assert.equal(response.statusCode, 400, url);
      assert.equal(response.json<Json>().error, "invalid-request", url);
    }
    assert.deepEqual(allCalls(gateway), []);
  });

  it("spreads concurrent writes over the writers, the least busy first", async (t) => {
    const gateway = await fakeGateway(t, { writers: 4 });
    let open = (): void => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    for (const writer of gateway.writers) writer.gate = gate;
    const puts = Array.from({ length: 8 }, (_, index) => gateway.app.inject({ method: "PUT", url: `/v1/kv/k${index}`, payload: "v" }));
    await waitUntil(() => gateway.pool.pending === 8);
    open();
    for (const response of await Promise.all(puts)) assert.equal(response.statusCode, 200);
    assert.deepEqual(
      gateway.writers.map((writer) => writer.calls.length),
      [2, 2, 2, 2],
    );
  });
});

describe("keys in the path", () => {
  it("are the UTF-8 bytes of the percent-decoded segment, so / and any text round-trip", async (t) => {
    const { app, cluster } = await fakeGateway(t);
    const url = `/v1/kv/${encodeURIComponent("a/b €?")}`;
    assert.equal((await app.inject({ method: "PUT", url, payload: "v" })).statusCode, 200);
    assert.ok(cluster.values.has(Buffer.from("a/b €?").toString("hex")));
    assert.equal((await app.inject({ method: "GET", url })).json<Json>().key, "a/b €?");
  });

  it("may be 1 to 1024 bytes; an empty or longer key is a 400 that never reaches the cluster", async (t) => {
    const gateway = await fakeGateway(t);
    const longest = "k".repeat(TRANSACTION_KEY_BYTES_MAX);
    assert.equal((await gateway.app.inject({ method: "PUT", url: `/v1/kv/${longest}`, payload: "v" })).statusCode, 200);
    const callsBefore = allCalls(gateway).length;
    // 342 three-byte characters: 1026 bytes in 342 characters.
    for (const key of ["", `${longest}k`, "€".repeat(342)]) {
      const response = await gateway.app.inject({ method: "PUT", url: `/v1/kv/${encodeURIComponent(key)}`, payload: "v" });
      assert.equal(response.statusCode, 400, `key of ${key.length} characters`);
      assert.equal(response.json<Json>().error, "invalid-key");
    }
    assert.equal(allCalls(gateway).length, callsBefore);
  });

  it("answers a malformed percent-encoding with a JSON 400 and a segment far beyond any key's length with a JSON 414", async (t) => {
    const gateway = await fakeGateway(t);
    const bad = await gateway.app.inject({ method: "GET", url: "/v1/kv/%FF%" });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json<Json>().error, "invalid-url");
    const huge = await gateway.app.inject({ method: "GET", url: `/v1/kv/${"%41".repeat(5 * TRANSACTION_KEY_BYTES_MAX)}` });
    assert.equal(huge.statusCode, 414);
    assert.equal(huge.json<Json>().error, "uri-too-long");
    // Neither message repeats the URL back.
    assert.ok(bad.body.length < 200 && huge.body.length < 200);
    assert.deepEqual(allCalls(gateway), []);
  });
});

describe("DELETE /v1/kv/:key", () => {
  it("commits a delete and says whether the key was present", async (t) => {
    const { app } = await fakeGateway(t);
    await app.inject({ method: "PUT", url: "/v1/kv/a", payload: "1" });
    assert.deepEqual((await app.inject({ method: "DELETE", url: "/v1/kv/a" })).json(), { key: "a", deleted: true, height: 2, seq: 2 });
    assert.deepEqual((await app.inject({ method: "DELETE", url: "/v1/kv/a" })).json(), { key: "a", deleted: false, height: 3, seq: 3 });
    assert.equal((await app.inject({ method: "GET", url: "/v1/kv/a" })).statusCode, 404);
  });
});

describe("POST /v1/kv/:key/cas", () => {
  it("swaps when the expected value matches (null: absent) and reports a mismatch as a committed swapped: false", async (t) => {
    const { app } = await fakeGateway(t);
    const cas = (body: Json) => app.inject({ method: "POST", url: "/v1/kv/c/cas", payload: body });
    assert.deepEqual((await cas({ expected: null, value: "one" })).json(), { key: "c", swapped: true, height: 1, seq: 1 });
    assert.deepEqual((await cas({ expected: null, value: "two" })).json(), { key: "c", swapped: false, height: 2, seq: 2 });
    assert.deepEqual((await cas({ expected: "one", value: "two" })).json(), { key: "c", swapped: true, height: 3, seq: 3 });
    assert.equal((await app.inject({ method: "GET", url: "/v1/kv/c" })).json<Json>().value, "two");
  });

  it("takes base64 values when encoding is base64", async (t) => {
    const { app, cluster } = await fakeGateway(t);
    const response = await app.inject({ method: "POST", url: "/v1/kv/c/cas", payload: { expected: null, value: Buffer.from([0xff, 0]).toString("base64"), encoding: "base64" } });
    assert.equal(response.json<Json>().swapped, true);
    assert.deepEqual(Buffer.from(cluster.values.get(Buffer.from("c").toString("hex"))!), Buffer.from([0xff, 0]));
  });

  it("refuses a body that is not the documented JSON with 400 (or 413 for a value above 64 KiB), without a call into the cluster", async (t) => {
    const gateway = await fakeGateway(t);
    const json = { "content-type": "application/json" };
    const cases: [string, string | Buffer, Record<string, string>, number, string][] = [
      ["invalid JSON", "{expected: null", json, 400, "invalid-json"],
      ["empty JSON", "", json, 400, "invalid-json"],
      ["not an object", '"swap"', json, 400, "invalid-request"],
      ["expected missing", '{"value":"v"}', json, 400, "invalid-request"],
      ["unknown field", '{"expected":null,"value":"v","ttl":5}', json, 400, "invalid-request"],
      ["number value", '{"expected":null,"value":5}', json, 400, "invalid-request"],
      ["null value", '{"expected":null,"value":null}', json, 400, "invalid-request"],
      ["unknown encoding", '{"expected":null,"value":"v","encoding":"hex"}', json, 400, "invalid-request"],
      ["invalid base64", '{"expected":null,"value":"@@@","encoding":"base64"}', json, 400, "invalid-request"],
      ["prototype pollution", '{"expected":null,"value":"v","__proto__":{"x":1}}', json, 400, "invalid-json"],
      ["text body", "expected=null", { "content-type": "text/plain" }, 400, "invalid-request"],
      ["form body", "expected=null", FORM, 415, "unsupported-media-type"],
      ["value too large", JSON.stringify({ expected: null, value: "v".repeat(TRANSACTION_VALUE_BYTES_MAX + 1) }), json, 413, "too-large"],
    ];
    for (const [what, payload, headers, status, error] of cases) {
      const response = await gateway.app.inject({ method: "POST", url: "/v1/kv/c/cas", payload, headers });
      assert.equal(response.statusCode, status, `${what}: ${response.body}`);
      assert.equal(response.json<Json>().error, error, what);
      assert.equal(typeof response.json<Json>().message, "string", what);
    }
    assert.deepEqual(allCalls(gateway), []);
  });
});

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 1_000 && !condition(); attempt++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(condition(), "the condition never held");
}
