// Outgoing peer links over real TCP on 127.0.0.1: backpressure, reconnection, clean shutdown.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { type AddressInfo, type Socket, createServer } from "node:net";
import { promisify } from "node:util";
import { type Connection, WRITE_BATCH_BYTES } from "../../src/net/connection.js";
import { FRAME_HEADER_BYTES, FrameDecoder } from "../../src/net/frame.js";
import { noHandshake } from "../../src/net/handshake.js";
import { Listener } from "../../src/net/listener.js";
import { PeerLink } from "../../src/net/peer-link.js";
import { Random } from "../../src/sim/random.js";
import { HOST, numbered, sequenceOf, unusedPort, waitFor } from "./transport-support.js";

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test("a slow reader fills the sender's bounded queue: drops are counted and queued bytes stay under the bound", async () => {
  // A server that accepts and then does not read until told to.
  let serverSocket: Socket | undefined;
  const server = createServer((socket) => {
    socket.pause();
    serverSocket = socket;
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const port = (server.address() as AddressInfo).port;
  const queueBytesMax = 256 * 1024;
  const payloadBytes = 1024;
  let connection: Connection<null> | undefined;
  const random = new Random(5);
  const link = new PeerLink<null>(
    { host: HOST, port, handshake: noHandshake, random: () => random.float(), settings: { frameBytesMax: 64 * 1024, sendQueueBytesMax: queueBytesMax } },
    { onOpen: (opened) => (connection = opened), onFrame: () => undefined },
  );
  link.start();
  try {
    await waitFor(() => connection !== undefined && serverSocket !== undefined, "the connection");
    const open = connection as Connection<null>;
    const accepted: number[] = [];
    let offered = 0;
    let queuedBytesMax = 0;
    let socketBytesMax = 0;
    // Offer 64 KiB per event-loop turn until the kernel's buffers and then our queue are full.
    for (let turns = 0; turns < 2_000 && link.counters.framesDropped < 500; turns++) {
      for (let index = 0; index < 64; index++, offered++) {
        if (link.send(numbered(offered, payloadBytes))) accepted.push(offered);
        queuedBytesMax = Math.max(queuedBytesMax, link.sendQueueBytes);
      }
      socketBytesMax = Math.max(socketBytesMax, open.socketBufferedBytes);
      await turn();
    }
    assert.ok(link.counters.framesDropped >= 500, `the queue filled (${link.counters.framesDropped} dropped of ${offered})`);
    assert.equal(link.counters.framesDropped, offered - accepted.length);
    assert.equal(link.counters.bytesDropped, link.counters.framesDropped * (FRAME_HEADER_BYTES + payloadBytes));
    assert.ok(queuedBytesMax <= queueBytesMax, `queued ${queuedBytesMax} bytes`);
    assert.ok(queuedBytesMax > queueBytesMax - (FRAME_HEADER_BYTES + payloadBytes), "the queue did reach its bound");
    // Beyond the queue, the socket holds at most one write batch past its high-water mark.
    assert.ok(socketBytesMax <= WRITE_BATCH_BYTES + 16 * 1024, `socket buffered ${socketBytesMax} bytes`);

    // The reader wakes up: every accepted frame arrives, in order, and nothing else.
    const received: number[] = [];
    const decoder = new FrameDecoder();
    const reader = serverSocket as Socket;
    reader.on("data", (chunk: Buffer) => {
      decoder.push(chunk, (payload) => {
        received.push(sequenceOf(payload));
        return true;
      });
    });
    reader.resume();
    await waitFor(() => received.length === accepted.length, `${accepted.length} accepted frames`, 5_000);
    assert.deepEqual(received, accepted);
    assert.equal(link.sendQueueBytes, 0);
  } finally {
    link.close();
    serverSocket?.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test("a peer link reconnects after the server restarts, and frames queued meanwhile flow in order", async () => {
  const received: number[] = [];
  const handlers = { onFrame: (_connection: Connection<null>, payload: Uint8Array) => void received.push(sequenceOf(payload)) };
  const first = new Listener<null>({ host: HOST, port: 0, handshake: noHandshake }, handlers);
  const { port } = await first.listen();
  const random = new Random(8);
  const link = new PeerLink<null>({ host: HOST, port, handshake: noHandshake, random: () => random.float(), backoff: { initialMs: 10, maxMs: 100 } }, { onFrame: () => undefined });
  link.start();
  let second: Listener<null> | undefined;
  try {
    link.send(numbered(0, 8));
    await waitFor(() => received.length === 1, "the first frame");
    await first.close();
    await waitFor(() => link.state !== "open", "the link to notice");
    assert.equal(link.counters.connected, false);
    for (let sequence = 1; sequence <= 10; sequence++) assert.ok(link.send(numbered(sequence, 8)));
    assert.equal(link.sendQueueFrames, 10, "frames wait in the link's queue while the peer is away");

    second = new Listener<null>({ host: HOST, port, handshake: noHandshake }, handlers);
    await second.listen();
    await waitFor(() => received.length === 11, "the queued frames after reconnecting");
    assert.deepEqual(received, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(link.state, "open");
    assert.equal(link.counters.connected, true);
    assert.equal(link.counters.reconnects, 1);
    assert.ok(link.counters.connectAttempts >= 2);
  } finally {
    link.close();
    await first.close();
    await second?.close();
  }
});

test("closing links and listeners leaves no handles: a process that used them exits on its own", async () => {
  const module = (name: string): string => JSON.stringify(new URL(`../../src/net/${name}.js`, import.meta.url).href);
  const deadPort = await unusedPort();
  // Open traffic both ways, a link stuck redialling a dead port, and a link closed mid-handshake;
  // then close everything and let the event loop run dry.
  const script = `
    import { Listener } from ${module("listener")};
    import { PeerLink } from ${module("peer-link")};
    import { noHandshake } from ${module("handshake")};
    const wait = async (condition) => { for (let i = 0; i < 400 && !condition(); i++) await new Promise((r) => setTimeout(r, 5)); if (!condition()) throw new Error("timed out"); };
    let received = 0;
    const listener = new Listener({ host: "127.0.0.1", port: 0, handshake: noHandshake }, { onFrame: (connection) => { received += 1; connection.send(Uint8Array.of(1)); } });
    const { port } = await listener.listen();
    let echoes = 0;
    const link = new PeerLink({ host: "127.0.0.1", port, handshake: noHandshake, random: Math.random }, { onFrame: () => { echoes += 1; } });
    const dead = new PeerLink({ host: "127.0.0.1", port: ${deadPort}, handshake: noHandshake, random: Math.random, backoff: { initialMs: 5, maxMs: 20 } }, { onFrame: () => {} });
    link.start();
    dead.start();
    for (let i = 0; i < 100; i++) link.send(Uint8Array.of(i));
    await wait(() => echoes === 100 && dead.counters.connectFailures >= 2);
    const late = new PeerLink({ host: "127.0.0.1", port, handshake: noHandshake, random: Math.random }, { onFrame: () => {} });
    late.start();
    link.close();
    dead.close();
    late.close();
    await listener.close();
    console.log("closed", received, echoes);
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], { timeout: 5_000 });
  assert.equal(stdout.trim(), "closed 100 100");
});
