// Garbage at every door (issue 4, "Done when"): random bytes, truncated frames, huge length
// prefixes and a flood of connections at a replica's port, and random bytes, invalid JSON and
// oversized bodies at the gateway. Every process must stay up, and the cluster must keep
// committing through the SDK and the gateway afterwards.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect as tcpConnect } from "node:net";
import { describe, it } from "node:test";

import { pino } from "pino";

import { BulwarkClient } from "../../src/client/index.js";
import { startGateway } from "../../src/gateway/index.js";
import { ProcessCluster } from "../support/process-cluster.js";

/** Longer than the replicas' handshake timeout (5 s): whatever else it does, a replica must close a garbage connection by then. */
const LINGER_MS = 7_000;

/**
 * Opens a TCP connection, writes `chunks` (waiting `gapMs` between them) without ever ending its
 * side, and resolves once the other end closed the connection or after `lingerMs`. `closedByPeer`
 * is true only for a connection that opened and was then closed by the server.
 */
function sendRaw(
  host: string,
  port: number,
  chunks: readonly Uint8Array[],
  options: { gapMs?: number; lingerMs?: number } = {},
): Promise<{ connected: boolean; closedByPeer: boolean; received: string }> {
  const { gapMs = 0, lingerMs = LINGER_MS } = options;
  return new Promise((resolve) => {
    let connected = false;
    let settled = false;
    let received = "";
    const socket = tcpConnect({ host, port });
    const finish = (closedByPeer: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ connected, closedByPeer, received });
    };
    const timer = setTimeout(() => finish(false), lingerMs);
    socket.on("data", (data: Buffer) => {
      if (received.length < 64) received += data.toString("latin1", 0, 64);
    });
    // A reset after the server closed (we may still be writing) is a close by the peer too.
    socket.on("error", () => finish(connected));
    socket.on("close", () => finish(connected));
    socket.on("connect", () => {
      connected = true;
      void (async () => {
        for (const chunk of chunks) {
          if (socket.destroyed) return;
          socket.write(chunk);
          if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
        }
      })();
    });
  });
}

function lengthPrefix(length: number): Uint8Array {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(length);
  return bytes;
}

function hostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(":");
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}

describe("garbage sent to the replicas and the gateway", () => {
  it("leaves every process up and the cluster committing", { timeout: 120_000 }, async (t) => {
    const cluster = await ProcessCluster.create(t, { replicaFlags: ["--verify-workers", "1"] });
    await Promise.all([0, 1, 2, 3].map((id) => cluster.start(id)));
    const sdk = await BulwarkClient.connect({ cluster: cluster.config, privateKey: cluster.authority.privateKey });
    t.after(() => sdk.close());
    const gateway = await startGateway({ cluster: cluster.config, privateKey: cluster.authority.privateKey, port: 0, logger: pino({ level: "silent" }), writerKeys: 2 });
    t.after(() => gateway.close());
    await sdk.put("before", "garbage");

    // Replica ports: every replica gets every kind, the primary (replica 0 in view 0) most of all.
    const attacks: Promise<{ connected: boolean; closedByPeer: boolean; received: string }>[] = [];
    for (const replica of cluster.config.replicas) {
      const { host, port } = hostPort(replica.address);
      attacks.push(
        sendRaw(host, port, [randomBytes(4096)]),
        sendRaw(host, port, [randomBytes(1), randomBytes(3), randomBytes(100)], { gapMs: 20 }),
        // A frame announced at 1,000 bytes that ends after 10.
        sendRaw(host, port, [lengthPrefix(1_000), randomBytes(10)]),
        // The largest length the prefix can carry, then a trickle.
        sendRaw(host, port, [lengthPrefix(0xffff_ffff), randomBytes(64 * 1024)]),
        // A handshake-sized frame of noise, then many small frames of noise.
        sendRaw(host, port, [lengthPrefix(120), randomBytes(120), ...Array.from({ length: 50 }, () => Buffer.concat([lengthPrefix(16), randomBytes(16)]))]),
        // A length prefix just under the transport's limit, left hanging without an end.
        sendRaw(host, port, [lengthPrefix(16 * 1024 * 1024 - 1), randomBytes(1024)]),
      );
    }
    // A flood of connections to one replica, each sending noise.
    const { host: floodHost, port: floodPort } = hostPort(cluster.config.replicas[1]!.address);
    for (let i = 0; i < 200; i += 1) attacks.push(sendRaw(floodHost, floodPort, [randomBytes(1 + (i % 300))]));
    const outcomes = await Promise.all(attacks);
    // Every garbage connection was accepted, and then closed by the replica (a malformed frame at
    // once, a silent or trickling one at the handshake timeout at the latest).
    assert.equal(outcomes.filter((outcome) => outcome.connected).length, outcomes.length, "a replica refused a connection");
    const closed = outcomes.filter((outcome) => outcome.closedByPeer).length;
    assert.equal(closed, outcomes.length, `replicas closed ${closed} of ${outcomes.length} garbage connections within ${LINGER_MS} ms`);

    // The gateway: raw noise on its socket, invalid JSON, wrong types, oversized bodies.
    const { host: gatewayHost, port: gatewayPort } = hostPort(new URL(gateway.url).host);
    const gatewayOutcomes = await Promise.all([
      sendRaw(gatewayHost, gatewayPort, [randomBytes(8192)]),
      sendRaw(gatewayHost, gatewayPort, [Buffer.from("GET /v1/kv/a HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n"), randomBytes(1000)]),
    ]);
    // Node's HTTP server answers a request it cannot parse with a 400 and ends its side.
    for (const outcome of gatewayOutcomes) assert.match(outcome.received, /^HTTP\/1\.1 4\d\d /, `the gateway answers bytes that are not HTTP with a 4xx; got ${JSON.stringify(outcome)}`);
    const answers: { what: string; status: number; body: string }[] = [];
    const ask = async (what: string, path: string, init: RequestInit): Promise<void> => {
      const response = await fetch(`${gateway.url}${path}`, init);
      answers.push({ what, status: response.status, body: await response.text() });
    };
    await ask("invalid JSON transaction", "/v1/transactions", { method: "POST", body: "{not json", headers: { "content-type": "application/json" } });
    await ask("random-bytes transaction", "/v1/transactions", { method: "POST", body: randomBytes(512), headers: { "content-type": "application/json" } });
    await ask("transaction of the wrong type", "/v1/transactions", { method: "POST", body: JSON.stringify({ envelope: 12 }), headers: { "content-type": "application/json" } });
    await ask("transaction that does not decode", "/v1/transactions", { method: "POST", body: JSON.stringify({ envelope: randomBytes(300).toString("base64") }), headers: { "content-type": "application/json" } });
    await ask("invalid JSON cas", "/v1/kv/a/cas", { method: "POST", body: "[[[", headers: { "content-type": "application/json" } });
    await ask("oversized value", "/v1/kv/big", { method: "PUT", body: randomBytes(8 * 1024 * 1024) });
    await ask("bad block height", "/v1/blocks/-1", { method: "GET" });
    await ask("bad account", "/v1/accounts/zz", { method: "GET" });
    for (const answer of answers) {
      assert.ok(answer.status >= 400 && answer.status < 500, `${answer.what}: expected a 4xx, got ${answer.status} ${answer.body.slice(0, 200)}`);
      const body = JSON.parse(answer.body) as { error?: unknown; message?: unknown };
      assert.equal(typeof body.error, "string", `${answer.what}: ${answer.body.slice(0, 200)}`);
      assert.equal(typeof body.message, "string", `${answer.what}: ${answer.body.slice(0, 200)}`);
      t.diagnostic(`${answer.what}: ${answer.status} ${String(body.error)}`);
    }

    // Everyone is still up and serving.
    for (const replica of cluster.config.replicas) assert.ok(cluster.isRunning(replica.id), `replica ${replica.id} died\n${cluster.logTail(replica.id)}`);
    const committed = await sdk.put("after", "garbage");
    assert.ok(committed.replicas.length >= cluster.f + 1);
    const statuses = await sdk.status({ timeoutMs: 2_000 });
    assert.equal(statuses.filter((status) => status.reachable).length, cluster.n, JSON.stringify(statuses));
    const put = await fetch(`${gateway.url}/v1/kv/after-gateway`, { method: "PUT", body: "ok" });
    assert.equal(put.status, 200, await put.text());
    const got = (await (await fetch(`${gateway.url}/v1/kv/after-gateway`)).json()) as { value?: unknown };
    assert.equal(got.value, "ok");
  });
});
