// startGateway over real HTTP on a free port, with fake clients handed in: the curl check,
// garbage on the socket, a body that never ends, and what closing closes. And a start against a
// cluster nobody runs, which must fail cleanly.

import assert from "node:assert/strict";
import { type AddressInfo, connect, createServer } from "node:net";
import { describe, it } from "node:test";

import { pino } from "pino";

import { BulwarkClient } from "../../src/client/client.js";
import { ClusterUnavailableError, TooFewReplicasError } from "../../src/client/errors.js";
import { generateEd25519KeyPair } from "../../src/crypto/ed25519.js";
import { startGateway } from "../../src/gateway/gateway.js";
import type { Gateway } from "../../src/gateway/types.js";
import type { ClusterConfig } from "../../src/ledger/cluster.js";
import { Random } from "../../src/sim/random.js";
import { randomBytes } from "../support/random-bytes.js";
import { FakeCluster, FakeLedger } from "./fake-ledger.js";
import { CLUSTER, type Json } from "./fixtures.js";

const silent = pino({ level: "silent" });

async function startFake(): Promise<{ gateway: Gateway; reader: FakeLedger; writers: FakeLedger[] }> {
  const cluster = new FakeCluster();
  const reader = new FakeLedger(cluster, "reader");
  const writers = [new FakeLedger(cluster, "writer-0"), new FakeLedger(cluster, "writer-1")];
  const gateway = await startGateway({ cluster: CLUSTER, privateKey: generateEd25519KeyPair().privateKey, client: reader, writers, port: 0, logger: silent });
  return { gateway, reader, writers };
}

/** Writes `bytes` on a fresh connection and resolves with whatever the server sent before closing it. */
function rawExchange(url: string, bytes: Uint8Array): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const received: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => received.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => resolve(Buffer.concat(received).toString("latin1")));
    socket.end(bytes);
  });
}

describe("startGateway", () => {
  it("serves the issue's check: PUT a value with curl -d, then GET it back with its height", async (t) => {
    const { gateway } = await startFake();
    t.after(() => gateway.close());
    assert.match(gateway.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const put = await fetch(`${gateway.url}/v1/kv/a`, { method: "PUT", body: "1", headers: { "content-type": "application/x-www-form-urlencoded" } });
    assert.equal(put.status, 200);
    assert.deepEqual(await put.json(), { key: "a", height: 1, seq: 1 });
    const get = await fetch(`${gateway.url}/v1/kv/a`);
    assert.equal(get.status, 200);
    assert.deepEqual(await get.json(), { key: "a", value: "1", encoding: "utf8", height: 1, seq: 1 });
  });

  it("stays up when a connection sends random bytes instead of HTTP", async (t) => {
    const { gateway } = await startFake();
    t.after(() => gateway.close());
    const random = new Random(7);
    for (let round = 0; round < 20; round++) {
      const answer = await rawExchange(gateway.url, randomBytes(random, 1 + random.below(4096)));
      // Either no answer at all or an HTTP error; never a success for bytes that are no request.
      if (answer !== "") assert.match(answer, /^HTTP\/1\.1 4\d\d /);
    }
    const status = await fetch(`${gateway.url}/v1/status`);
    assert.equal(status.status, 200);
  });

  it("answers a body that goes on past the limit with 413 and stays up", async (t) => {
    const { gateway } = await startFake();
    t.after(() => gateway.close());
    let sent = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        // Stops by itself after 8 MiB, in case the server kept reading.
        if (sent >= 8 * 1024 * 1024) return controller.close();
        sent += 64 * 1024;
        controller.enqueue(new Uint8Array(64 * 1024));
      },
    });
    const response = await fetch(`${gateway.url}/v1/kv/big`, { method: "PUT", body: endless, duplex: "half" });
    assert.equal(response.status, 413);
    assert.equal(((await response.json()) as Json).error, "too-large");
    assert.equal((await fetch(`${gateway.url}/v1/status`)).status, 200);
  });

  it("closes its server but not the clients it was handed", async () => {
    const { gateway, reader, writers } = await startFake();
    await gateway.close();
    await gateway.close();
    await assert.rejects(fetch(`${gateway.url}/v1/status`));
    assert.equal(reader.closed, false);
    assert.ok(writers.every((writer) => !writer.closed));
  });

  it("refuses a writer count out of range before connecting anything", async () => {
    for (const writerKeys of [0, 257, 1.5]) {
      await assert.rejects(startGateway({ cluster: CLUSTER, privateKey: generateEd25519KeyPair().privateKey, writerKeys, logger: silent }), RangeError);
    }
  });

  it("fails with ClusterUnavailableError when no replica can be reached, and leaves nothing running", async (t) => {
    const ports = await closedPorts(4);
    const cluster: ClusterConfig = { ...CLUSTER, replicas: CLUSTER.replicas.map((replica, index) => ({ ...replica, address: `127.0.0.1:${ports[index]}` })) };
    const connects = t.mock.method(BulwarkClient, "connect");
    const closes = t.mock.method(BulwarkClient.prototype, "close");
    await assert.rejects(
      startGateway({ cluster, privateKey: generateEd25519KeyPair().privateKey, writerKeys: 2, port: 0, logger: silent, clientOptions: { deadlineMs: 300 } }),
      ClusterUnavailableError,
    );
    // The reader and two writers: each tried to connect, and each client was closed (nothing left dialling).
    assert.equal(connects.mock.callCount(), 3);
    assert.equal(closes.mock.callCount(), 3);
  });

  it("closes the clients that did connect when another one fails", async (t) => {
    const cluster = new FakeCluster();
    const connected: FakeLedger[] = [];
    let attempts = 0;
    t.mock.method(BulwarkClient, "connect", () => {
      attempts += 1;
      if (attempts === 2) return Promise.reject(new TooFewReplicasError(1, 2, "after 300 ms"));
      const client = new FakeLedger(cluster, `client-${attempts}`);
      connected.push(client);
      return Promise.resolve(client as unknown as BulwarkClient);
    });
    await assert.rejects(startGateway({ cluster: CLUSTER, privateKey: generateEd25519KeyPair().privateKey, writerKeys: 3, port: 0, logger: silent }), TooFewReplicasError);
    assert.equal(attempts, 4);
    assert.equal(connected.length, 3);
    assert.ok(connected.every((client) => client.closed));
  });

  it("stops waiting on the cluster for an HTTP client that disconnected, but not when a request body has simply ended", async (t) => {
    const { gateway, reader, writers } = await startFake();
    t.after(() => gateway.close());
    let open = (): void => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    for (const ledger of [reader, ...writers]) ledger.gate = gate;
    const put = fetch(`${gateway.url}/v1/kv/a`, { method: "PUT", body: "1" });
    await waitUntil(() => writers.some((writer) => writer.signals.length === 1), "the PUT to reach a writer");
    const leaving = new AbortController();
    const get = fetch(`${gateway.url}/v1/blocks/1`, { signal: leaving.signal }).catch(() => "aborted");
    await waitUntil(() => reader.signals.length === 1, "the GET to reach the reader");
    leaving.abort();
    assert.equal(await get, "aborted");
    await waitUntil(() => reader.signals[0]?.aborted === true, "the GET's cluster call to be aborted");
    const putSignal = writers.find((writer) => writer.signals.length === 1)!.signals[0]!;
    assert.equal(putSignal.aborted, false, "the PUT's client is still waiting for its answer");
    open();
    assert.equal((await put).status, 200);
    assert.equal(putSignal.aborted, false, "an answered request does not abort its call");
  });
});

/** Ports that were free a moment ago and have nothing listening now. */
async function closedPorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let index = 0; index < count; index++) {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    ports.push((server.address() as AddressInfo).port);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return ports;
}

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
