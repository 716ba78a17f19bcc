// What the gateway adds around its routes: the status each SDK error becomes, the bound on calls
// waiting for the cluster, answers to garbage, the metrics and the OpenAPI document.

import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";

import { pino } from "pino";

import {
  BulwarkClientError,
  ClientClosedError,
  NonceError,
  RejectedError,
  ReplicasFailedError,
  RequestAbortedError,
  TimeoutError,
  TooFewReplicasError,
} from "../../src/client/errors.js";
import { Random } from "../../src/sim/random.js";
import { randomBytes } from "../support/random-bytes.js";
import { type Json, allCalls, fakeGateway } from "./fixtures.js";

describe("SDK errors", () => {
  const cases: [string, Error, number, string][] = [
    ["a deadline that passed", new TimeoutError(30_000, 4, 2, [{ result: "ok done", replicas: [1] }], "sent 3 times"), 504, "timeout"],
    ["too few replicas", new TooFewReplicasError(1, 2, "after 30000 ms"), 503, "cluster-unavailable"],
    ["a read no replica served", new ReplicasFailedError("block 3", [{ replica: 0, reason: "no answer within 3000 ms" }]), 503, "cluster-unavailable"],
    ["a nonce the cluster refused", new NonceError("stale-nonce", 3, 9, "tried 4 nonces"), 503, "nonce-conflict"],
    ["a refused transaction", new RejectedError("not-authority", "mint", { result: { ok: false, error: "not-authority" }, height: 12, nonce: 3, replicas: [0, 1] }), 422, "not-authority"],
    ["a refused nonce", new RejectedError("nonce-gap", "get", { result: { ok: false, error: "nonce-gap", nextNonce: 2 }, height: 0, nonce: 3, replicas: [0, 1] }), 409, "nonce-gap"],
    ["a closing client", new ClientClosedError(), 503, "shutting-down"],
    ["an aborted call", new RequestAbortedError(new Error("gone")), 503, "aborted"],
    ["an impossible answer from the cluster", new BulwarkClientError("certified blocks 3 and 4 do not chain"), 502, "cluster-error"],
  ];
  for (const [what, error, status, code] of cases) {
    it(`answers ${what} with ${status} ${code} and the SDK's explanation`, async (t) => {
      const gateway = await fakeGateway(t, { writers: 1 });
      gateway.writers[0]!.failNext = error;
      const response = await gateway.app.inject({ method: "GET", url: "/v1/kv/a" });
      assert.equal(response.statusCode, status);
      const body = response.json<Json>();
      assert.equal(body.error, code);
      assert.equal(body.message, error.message);
      if (status === 503) assert.equal(response.headers["retry-after"], "1");
    });
  }

  it("reports a refused transaction's height", async (t) => {
    const gateway = await fakeGateway(t, { writers: 1 });
    gateway.writers[0]!.failNext = cases.find(([what]) => what === "a refused transaction")![1];
    const body = (await gateway.app.inject({ method: "GET", url: "/v1/kv/a" })).json<Json>();
    assert.equal(body.height, 12);
    assert.equal(body.seq, 12);
  });

  it("answers an unexpected error with a bare 500 and logs it", async (t) => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const gateway = await fakeGateway(t, { writers: 1, logger: pino({ level: "error" }, sink) });
    gateway.writers[0]!.failNext = new Error("secret internal detail");
    const response = await gateway.app.inject({ method: "PUT", url: "/v1/kv/a", payload: "1" });
    assert.equal(response.statusCode, 500);
    assert.equal(response.json<Json>().error, "internal");
    assert.doesNotMatch(response.body, /secret/);
    assert.ok(lines.some((line) => line.includes("secret internal detail")), "the error is in the log");
    // The gateway goes on serving.
    assert.equal((await gateway.app.inject({ method: "PUT", url: "/v1/kv/a", payload: "1" })).statusCode, 200);
  });
});

describe("the bound on calls into the cluster", () => {
  it("answers 503 overloaded beyond callsPendingMax, and serves again once calls finish", async (t) => {
    const gateway = await fakeGateway(t, { writers: 2, callsPendingMax: 2 });
    let open = (): void => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    for (const writer of gateway.writers) writer.gate = gate;
    const waiting = [0, 1].map((index) => gateway.app.inject({ method: "PUT", url: `/v1/kv/k${index}`, payload: "v" }));
    while (gateway.pool.pending < 2) await new Promise((resolve) => setImmediate(resolve));
    const refused = await gateway.app.inject({ method: "GET", url: "/v1/status" });
    assert.equal(refused.statusCode, 503);
    assert.equal(refused.json<Json>().error, "overloaded");
    assert.equal(refused.headers["retry-after"], "1");
    assert.equal(gateway.pool.overloaded, 1);
    open();
    for (const response of await Promise.all(waiting)) assert.equal(response.statusCode, 200);
    assert.equal(gateway.pool.pending, 0);
    assert.equal((await gateway.app.inject({ method: "GET", url: "/v1/status" })).statusCode, 200);
  });
});

describe("garbage", () => {
  it("answers random bodies, content types and paths with JSON 4xx (or a stored value), never 5xx", async (t) => {
    const gateway = await fakeGateway(t);
    const random = new Random(20_251);
    const routes = [
      ["PUT", "/v1/kv/g"],
      ["POST", "/v1/kv/g/cas"],
      ["POST", "/v1/transactions"],
      ["GET", "/v1/kv/g"],
      ["DELETE", "/v1/kv/g"],
      ["GET", "/v1/blocks"],
      ["POST", "/v1/status"],
      ["PATCH", "/v1/kv/g"],
    ] as const;
    const types = [undefined, "application/json", "application/octet-stream", "text/plain", "application/x-www-form-urlencoded", "image/png", "\u0001;;=", "application/json; charset=utf-16"];
    const statuses = new Map<number, number>();
    for (let round = 0; round < 300; round++) {
      const [method, path] = routes[random.below(routes.length)]!;
      const type = types[random.below(types.length)];
      // Mostly small bodies, sometimes larger than any limit.
      const length = random.chance(0.05) ? 300 * 1024 + random.below(1024) : random.below(512);
      const pathNoise = random.chance(0.2) ? `%${random.below(256).toString(16)}` : "";
      const response = await gateway.app.inject({
        method,
        url: `${path}${pathNoise}`,
        payload: Buffer.from(randomBytes(random, length)),
        headers: type === undefined ? {} : { "content-type": type },
      });
      statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
      const context = `${method} ${path}${pathNoise} (${type}, ${length} bytes): ${response.statusCode} ${response.body.slice(0, 200)}`;
      assert.ok(response.statusCode < 500, context);
      if (response.statusCode >= 400) {
        const body = response.json<Json>();
        assert.equal(typeof body.error, "string", context);
        assert.equal(typeof body.message, "string", context);
      }
    }
    // The rounds reached both the routes and the refusals.
    assert.ok((statuses.get(200) ?? 0) > 0 && (statuses.get(400) ?? 0) > 0 && (statuses.get(413) ?? 0) > 0, JSON.stringify([...statuses]));
    assert.ok(allCalls(gateway).length > 0);
    assert.equal((await gateway.app.inject({ method: "GET", url: "/v1/status" })).statusCode, 200);
  });

  it("answers an unknown route or method with a JSON 404", async (t) => {
    const { app } = await fakeGateway(t);
    for (const [method, url] of [
      ["GET", "/"],
      ["GET", "/v2/kv/a"],
      ["POST", "/v1/kv/a"],
      ["HEAD", "/v1/kv/a"],
    ] as const) {
      const response = await app.inject({ method, url });
      assert.equal(response.statusCode, 404, `${method} ${url}`);
      if (method !== "HEAD") assert.equal(response.json<Json>().error, "not-found");
    }
  });
});

describe("GET /metrics", () => {
  it("serves process metrics, requests by route and status with their latency, and the clients' counters", async (t) => {
    const { app } = await fakeGateway(t, { writers: 2 });
    await app.inject({ method: "PUT", url: "/v1/kv/a", payload: "1" });
    await app.inject({ method: "PUT", url: "/v1/kv/b", payload: "1" });
    await app.inject({ method: "GET", url: "/v1/kv/missing" });
    await app.inject({ method: "GET", url: "/nowhere" });
    const response = await app.inject({ method: "GET", url: "/metrics" });
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers["content-type"]), /^text\/plain/);
    const text = response.body;
    for (const line of [
      'bulwark_gateway_http_request_duration_seconds_count{method="PUT",route="/v1/kv/:key",status_code="200"} 2',
      'bulwark_gateway_http_request_duration_seconds_count{method="GET",route="/v1/kv/:key",status_code="404"} 1',
      'bulwark_gateway_http_request_duration_seconds_count{method="GET",route="unmatched",status_code="404"} 1',
      'bulwark_gateway_client_replies_received{client="writer-1"} 3',
      'bulwark_gateway_client_rebroadcasts{client="reader"} 2',
      'bulwark_gateway_client_connected_replicas{client="writer-0"} 4',
      "bulwark_gateway_cluster_calls_pending 0",
      "bulwark_gateway_cluster_calls_overloaded 0",
    ]) {
      assert.ok(text.split("\n").includes(line), `missing: ${line}`);
    }
    assert.match(text, /^process_cpu_user_seconds_total \d/m);
    assert.match(text, /^nodejs_heap_size_used_bytes \d/m);
  });
});

describe("GET /docs/json", () => {
  it("is an OpenAPI document listing every route with its responses", async (t) => {
    const { app } = await fakeGateway(t);
    const response = await app.inject({ method: "GET", url: "/docs/json" });
    assert.equal(response.statusCode, 200);
    const document = response.json<{ openapi: string; paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }>();
    assert.match(document.openapi, /^3\./);
    const operations = Object.entries(document.paths)
      .flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`))
      .sort();
    assert.deepEqual(operations, [
      "DELETE /v1/kv/{key}",
      "GET /docs/json",
      "GET /metrics",
      "GET /v1/accounts/{id}",
      "GET /v1/blocks",
      "GET /v1/blocks/{height}",
      "GET /v1/kv/{key}",
      "GET /v1/status",
      "POST /v1/kv/{key}/cas",
      "POST /v1/transactions",
      "PUT /v1/kv/{key}",
    ]);
    for (const [path, methods] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        assert.ok("200" in operation.responses, `${method} ${path} documents its answer`);
        if (path.startsWith("/v1/")) assert.ok("4XX" in operation.responses, `${method} ${path} documents its errors`);
      }
    }
    // Every documented operation is served (none is a 404 from the router).
    for (const operation of operations) {
      const [method, path] = operation.split(" ") as ["GET", string];
      const url = path.replace("{key}", "k").replace("{id}", "0".repeat(64)).replace("{height}", "1");
      const answer = await app.inject({ method, url, payload: method === "GET" || method === "DELETE" ? undefined : "{}", headers: { "content-type": "application/json" } });
      assert.ok(!(answer.statusCode === 404 && answer.body.includes("no route")), operation);
    }
  });
});
