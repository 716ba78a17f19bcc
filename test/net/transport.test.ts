// Connections and the listener over real TCP on 127.0.0.1.

import { test } from "node:test";
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { type CloseReason, type Connection, type ConnectionHandlers, type ConnectionSettings } from "../../src/net/connection.js";
import { FrameDecoder, encodeFrame } from "../../src/net/frame.js";
import { type HandshakeFactory, noHandshake } from "../../src/net/handshake.js";
import { Listener } from "../../src/net/listener.js";
import { RateLimitedLog } from "../../src/net/log.js";
import { PeerLink } from "../../src/net/peer-link.js";
import { Random } from "../../src/sim/random.js";
import { randomBytes } from "../support/random-bytes.js";
import { HOST, RecordingLogger, closed, helloHandshake, numbered, rawConnect, sequenceOf, waitFor } from "./transport-support.js";

interface Server<Session> {
  readonly listener: Listener<Session>;
  readonly port: number;
  readonly received: Uint8Array[];
  readonly closes: CloseReason[];
  readonly logger: RecordingLogger;
}

async function startServer<Session>(
  handshake: HandshakeFactory<Session>,
  options: { settings?: Partial<ConnectionSettings>; onFrame?: ConnectionHandlers<Session>["onFrame"]; connectionsMax?: number } = {},
): Promise<Server<Session>> {
  const received: Uint8Array[] = [];
  const closes: CloseReason[] = [];
  const logger = new RecordingLogger();
  const listener = new Listener<Session>(
    { host: HOST, port: 0, handshake, connectionsMax: options.connectionsMax, settings: { log: new RateLimitedLog({ logger, intervalMs: 60_000 }), ...options.settings } },
    {
      onFrame:
        options.onFrame ??
        ((_connection, payload) => {
          received.push(Uint8Array.from(payload));
        }),
      onClose: (_connection, reason) => closes.push(reason),
    },
  );
  const { port } = await listener.listen();
  return { listener, port, received, closes, logger };
}

function startLink<Session>(port: number, handshake: HandshakeFactory<Session>, settings: Partial<ConnectionSettings> = {}): PeerLink<Session> {
  const random = new Random(port);
  const link = new PeerLink<Session>({ host: HOST, port, handshake, random: () => random.float(), settings, backoff: { initialMs: 10, maxMs: 100 } }, { onFrame: () => undefined });
  link.start();
  return link;
}

/** Writes `bytes` in chunks of random sizes, yielding between them so they leave as separate segments. */
async function writeInRandomChunks(socket: Socket, bytes: Uint8Array, random: Random): Promise<void> {
  for (let offset = 0; offset < bytes.length; ) {
    const end = Math.min(bytes.length, offset + random.between(1, 2_000));
    socket.write(bytes.subarray(offset, end));
    offset = end;
    if (random.chance(0.3)) await new Promise((resolve) => setImmediate(resolve));
  }
}

test("frames round-trip over TCP in both directions across random chunking", async () => {
  const random = new Random(21);
  const payloads = Array.from({ length: 300 }, (_, index) => randomBytes(random, index % 50 === 0 ? random.between(10_000, 100_000) : random.below(200)));
  const server = await startServer(noHandshake, {
    onFrame: (connection, payload) => {
      // Echo: the server side sends through the coalescing path.
      server.received.push(Uint8Array.from(payload));
      connection.send(Uint8Array.from(payload));
    },
  });
  const client = await rawConnect(server.port);
  try {
    const echoed: Uint8Array[] = [];
    const decoder = new FrameDecoder();
    client.on("data", (chunk: Buffer) => {
      decoder.push(chunk, (payload) => {
        echoed.push(Uint8Array.from(payload));
        return true;
      });
    });
    await writeInRandomChunks(client, Buffer.concat(payloads.map((payload) => encodeFrame(payload))), random);
    await waitFor(() => echoed.length === payloads.length, "every frame echoed");
    assert.deepEqual(server.received, payloads);
    assert.deepEqual(echoed, payloads);
  } finally {
    client.destroy();
    await server.listener.close();
  }
});

test("100,000 small frames arrive complete and in order over one connection, coalesced into few writes", async () => {
  const frames = 100_000;
  const server = await startServer(noHandshake);
  const link = startLink(server.port, noHandshake, { sendQueueFramesMax: frames });
  try {
    for (let sequence = 0; sequence < frames; sequence++) assert.ok(link.send(numbered(sequence, 16)));
    await waitFor(() => server.received.length === frames, "all frames", 8_000);
    server.received.forEach((payload, index) => assert.equal(sequenceOf(payload), index));
    assert.equal(link.counters.framesSent, frames);
    assert.equal(link.counters.framesDropped, 0);
    assert.equal(server.listener.counters.framesReceived, frames);
    assert.ok(link.counters.socketWrites < frames / 100, `${link.counters.socketWrites} writes for ${frames} frames`);
  } finally {
    link.close();
    await server.listener.close();
  }
});

test("an oversized length prefix closes that connection, logged, and the listener keeps serving others", async () => {
  const server = await startServer(noHandshake, { settings: { frameBytesMax: 1024 } });
  const link = startLink(server.port, noHandshake, { frameBytesMax: 1024 });
  const attacker = await rawConnect(server.port);
  try {
    link.send(Uint8Array.of(1));
    await waitFor(() => server.received.length === 1, "the honest frame before the attack");
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1025);
    attacker.write(header);
    await closed(attacker);
    assert.equal(server.closes.find((reason) => reason.kind === "frame-too-large")?.detail, "the peer announced a 1025-byte frame; the limit is 1024");
    assert.equal(server.logger.warnings("frame-too-large").length, 1);
    assert.equal(server.listener.counters.connectionsFailed, 1);

    link.send(Uint8Array.of(2));
    const late = await rawConnect(server.port);
    late.write(encodeFrame(Uint8Array.of(3)));
    await waitFor(() => server.received.length === 3, "frames on the surviving and a new connection");
    late.destroy();
    assert.equal(link.state, "open");
  } finally {
    attacker.destroy();
    link.close();
    await server.listener.close();
  }
});

test("random garbage, truncated frames and huge prefixes never crash the process or stop the listener", async () => {
  const random = new Random(99);
  const server = await startServer(helloHandshake("server"), { settings: { frameBytesMax: 4096, handshakeTimeoutMs: 200 } });
  const sockets: Socket[] = [];
  try {
    for (let index = 0; index < 40; index++) {
      const socket = await rawConnect(server.port);
      socket.on("error", () => undefined); // the server may reset us mid-write
      sockets.push(socket);
      const kind = index % 4;
      if (kind === 0) socket.write(randomBytes(random, random.between(1, 8192)));
      if (kind === 1) socket.write(encodeFrame(randomBytes(random, random.below(100)))); // a well-framed bad handshake
      if (kind === 2) socket.write(encodeFrame(randomBytes(random, 1000)).subarray(0, random.between(1, 999))); // truncated
      if (kind === 3) socket.write(Buffer.from([0xff, 0xff, 0xff, random.below(256)]));
      if (random.chance(0.5)) socket.end();
    }
    // A truncated frame within the toy handshake's 64-byte limit ends with the handshake timeout;
    // everything else sooner (a longer announced length at its prefix).
    await waitFor(() => server.listener.connectionCount === 0, "every hostile connection closed");
    assert.equal(server.received.length, 0, "no hostile frame reached the application");
    assert.equal(server.closes.length, 40);
    // A truncated frame followed by a FIN is an ordinary hang-up; everything else is a peer fault.
    const expected = new Set(["frame-too-large", "handshake-failed", "handshake-timeout", "remote-end"]);
    for (const reason of server.closes) assert.ok(expected.has(reason.kind), `${reason.kind}: ${reason.detail}`);
    assert.ok(server.listener.counters.connectionsFailed >= 30, `${server.listener.counters.connectionsFailed} failed`);
    const link = startLink(server.port, helloHandshake("client"));
    try {
      link.send(Uint8Array.of(42));
      await waitFor(() => server.received.length === 1, "an honest frame after the garbage");
    } finally {
      link.close();
    }
  } finally {
    for (const socket of sockets) socket.destroy();
    await server.listener.close();
  }
});

test("the handshake runs first: frames queued before it wait, and a peer that fails it never reaches the application", async () => {
  let serverSession: string | undefined;
  const server = await startServer(helloHandshake("replica-0"), {
    settings: { handshakeTimeoutMs: 150 },
    onFrame: (connection, payload) => {
      serverSession = connection.session;
      server.received.push(Uint8Array.from(payload));
    },
  });
  const link = startLink(server.port, helloHandshake("replica-1"));
  const impostor = await rawConnect(server.port);
  const silent = await rawConnect(server.port);
  try {
    assert.ok(link.send(Uint8Array.of(7)), "queued while the link connects");
    await waitFor(() => server.received.length === 1, "the queued frame after the handshake");
    assert.equal(serverSession, "replica-1");
    assert.equal(link.session, "replica-0");

    impostor.write(encodeFrame(Uint8Array.of(8))); // normal traffic without a hello
    await closed(impostor);
    await closed(silent);
    const kinds = server.closes.map((reason) => reason.kind).sort();
    assert.deepEqual(kinds, ["handshake-failed", "handshake-timeout"]);
    assert.equal(server.received.length, 1);
  } finally {
    impostor.destroy();
    silent.destroy();
    link.close();
    await server.listener.close();
  }
});

test("a protocol error from the application closes the connection, logging once per interval", async () => {
  const server = await startServer(noHandshake, {
    onFrame: (connection: Connection<null>, payload) => {
      if (payload[0] !== 1) connection.protocolError(`unknown message tag ${payload[0]}`);
      else server.received.push(payload);
    },
  });
  const sockets: Socket[] = [];
  try {
    for (let index = 0; index < 5; index++) {
      const socket = await rawConnect(server.port);
      sockets.push(socket);
      socket.write(encodeFrame(Uint8Array.of(9)));
    }
    await Promise.all(sockets.map((socket) => closed(socket)));
    assert.equal(server.closes.filter((reason) => reason.kind === "protocol-error").length, 5);
    const warnings = server.logger.warnings("protocol-error");
    assert.equal(warnings.length, 1, "five failures, one log line");
    assert.equal(warnings[0]?.fields["detail"], "unknown message tag 9");
  } finally {
    for (const socket of sockets) socket.destroy();
    await server.listener.close();
  }
});

test("a frame handler that throws closes only that connection", async () => {
  const server = await startServer(noHandshake, {
    onFrame: (_connection, payload) => {
      if (payload.length === 0) throw new Error("handler bug");
      server.received.push(payload);
    },
  });
  const bad = await rawConnect(server.port);
  const good = await rawConnect(server.port);
  try {
    bad.write(encodeFrame(new Uint8Array(0)));
    await closed(bad);
    assert.equal(server.closes[0]?.kind, "handler-error");
    good.write(encodeFrame(Uint8Array.of(1)));
    await waitFor(() => server.received.length === 1, "the other connection's frame");
  } finally {
    bad.destroy();
    good.destroy();
    await server.listener.close();
  }
});

test("the listener refuses connections beyond connectionsMax", async () => {
  const server = await startServer(noHandshake, { connectionsMax: 2 });
  const sockets: Socket[] = [];
  try {
    for (let index = 0; index < 3; index++) sockets.push(await rawConnect(server.port));
    await closed(sockets[2] as Socket);
    assert.equal(server.listener.counters.connectionsRefused, 1);
    assert.equal(server.listener.connectionCount, 2);
  } finally {
    for (const socket of sockets) socket.destroy();
    await server.listener.close();
  }
});
