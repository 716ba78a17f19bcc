// Connections whose handshake hands them a frame authenticator, over real TCP on 127.0.0.1: every
// frame after the handshake carries a tag, the application sees payloads without it, and a frame
// whose tag fails closes that connection with "bad-mac", counted and logged through the rate
// limiter. Before the handshake is done only frames of the handshake's size are accepted; a send
// counter that runs out closes the connection; closing forgets the keys.

import { test } from "node:test";
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { type CloseReason, LARGE_PAYLOAD_BYTES } from "../../src/net/connection.js";
import { FRAME_HEADER_BYTES, FrameDecoder, encodeFrame } from "../../src/net/frame.js";
import { FRAME_MAC_TAG_BYTES } from "../../src/net/frame-mac.js";
import type { FrameAuthenticator, HandshakeFactory, HandshakeRole } from "../../src/net/handshake.js";
import { Listener } from "../../src/net/listener.js";
import { RateLimitedLog } from "../../src/net/log.js";
import { PeerLink } from "../../src/net/peer-link.js";
import { Random } from "../../src/sim/random.js";
import { randomBytes } from "../support/random-bytes.js";
import { HELLO_FRAME_BYTES_MAX, HOST, RecordingLogger, closed, flipBit, macHandshake, rawConnect, testFrameMac, waitFor } from "./transport-support.js";

const bytes = (value: string): Uint8Array => Uint8Array.from(Buffer.from(value, "latin1"));

interface EchoServer {
  readonly listener: Listener<string>;
  readonly port: number;
  readonly received: Uint8Array[];
  readonly closes: CloseReason[];
  readonly logger: RecordingLogger;
}

/** A listener with the tagging toy handshake (or `handshake`) that echoes every frame back. */
async function echoServer(frameBytesMax?: number, handshake: HandshakeFactory<string> = macHandshake("server")): Promise<EchoServer> {
  const received: Uint8Array[] = [];
  const closes: CloseReason[] = [];
  const logger = new RecordingLogger();
  const listener = new Listener<string>(
    { host: HOST, port: 0, handshake, settings: { log: new RateLimitedLog({ logger, intervalMs: 60_000 }), frameBytesMax } },
    {
      onFrame: (connection, payload) => {
        received.push(Uint8Array.from(payload));
        connection.send(Uint8Array.from(payload));
      },
      onClose: (_connection, reason) => void closes.push(reason),
    },
  );
  const { port } = await listener.listen();
  return { listener, port, received, closes, logger };
}

/** A raw socket that has done the toy handshake by hand and holds the initiator's authenticator. */
async function handshakenSocket(port: number): Promise<{ socket: Socket; authenticator: FrameAuthenticator }> {
  const socket = await rawConnect(port);
  socket.on("error", () => undefined);
  const welcomed = new Promise<void>((resolve) => {
    const decoder = new FrameDecoder();
    socket.on("data", (chunk: Buffer) => decoder.push(chunk, () => (resolve(), true)));
  });
  socket.write(encodeFrame(bytes("hello:raw")));
  await welcomed;
  return { socket, authenticator: testFrameMac("initiator") };
}

function sealedFrame(authenticator: FrameAuthenticator, payload: Uint8Array): Buffer {
  const tag = new Uint8Array(authenticator.tagBytes);
  authenticator.seal(payload, tag, 0);
  return encodeFrame(Uint8Array.from([...payload, ...tag]));
}

test("tagged frames round-trip in both directions, sizes around the large-frame threshold included, and the wire carries the tags", async () => {
  const random = new Random(31);
  const threshold = LARGE_PAYLOAD_BYTES - FRAME_MAC_TAG_BYTES;
  const sizes = [0, 1, 100, threshold - 1, threshold, threshold + 1, LARGE_PAYLOAD_BYTES, 200_000];
  for (let index = 0; index < 300; index++) sizes.push(random.below(300));
  const payloads = sizes.map((size) => randomBytes(random, size));
  const server = await echoServer();
  const echoed: Uint8Array[] = [];
  const link = new PeerLink<string>(
    { host: HOST, port: server.port, handshake: macHandshake("client"), random: () => random.float() },
    { onFrame: (_connection, payload) => void echoed.push(Uint8Array.from(payload)) },
  );
  link.start();
  try {
    for (const payload of payloads) assert.ok(link.send(payload));
    await waitFor(() => echoed.length === payloads.length, "every frame echoed", 8_000);
    assert.deepEqual(server.received, payloads);
    assert.deepEqual(echoed, payloads);
    assert.deepEqual(server.closes, []);
    const payloadBytes = payloads.reduce((sum, payload) => sum + payload.length, 0);
    const helloBytes = FRAME_HEADER_BYTES + "hello:client".length;
    assert.equal(server.listener.counters.bytesReceived, helloBytes + payloads.length * (FRAME_HEADER_BYTES + FRAME_MAC_TAG_BYTES) + payloadBytes);
    assert.equal(server.listener.counters.framesBadMac, 0);
  } finally {
    link.close();
    await server.listener.close();
  }
});

test("a flipped bit closes only that connection with bad-mac: the frame is not delivered, each is counted, and the log gets one line per interval", async () => {
  const server = await echoServer();
  const random = new Random(5);
  const honestEchoes: string[] = [];
  const honest = new PeerLink<string>(
    { host: HOST, port: server.port, handshake: macHandshake("honest"), random: () => random.float() },
    { onFrame: (_connection, payload) => void honestEchoes.push(Buffer.from(payload).toString("latin1")) },
  );
  honest.start();
  const attackers: Socket[] = [];
  try {
    honest.send(bytes("before"));
    await waitFor(() => honestEchoes.includes("before"), "the honest echo before the attacks");
    for (let index = 0; index < 3; index++) {
      const { socket, authenticator } = await handshakenSocket(server.port);
      attackers.push(socket);
      socket.write(sealedFrame(authenticator, bytes("good frame")));
      const bad = sealedFrame(authenticator, bytes("commit 42"));
      // Flip a bit in the payload, the tag, or the payload's last byte next to the tag.
      const bit = [FRAME_HEADER_BYTES * 8, (bad.length - 1) * 8 + 7, (FRAME_HEADER_BYTES + 8) * 8 + 3][index] as number;
      socket.write(flipBit(bad, bit));
      await closed(socket);
    }
    const badMacCloses = server.closes.filter((reason) => reason.kind === "bad-mac");
    assert.equal(badMacCloses.length, 3);
    assert.equal(badMacCloses[0]?.detail, "frame 1 after the handshake failed its MAC check: altered, replayed, reordered, or a frame before it was lost");
    assert.equal(server.listener.counters.framesBadMac, 3);
    assert.equal(server.listener.counters.connectionsFailed, 3);
    assert.equal(server.logger.warnings("bad-mac").length, 1, "three failures, one log line");
    const delivered = server.received.map((payload) => Buffer.from(payload).toString("latin1"));
    assert.equal(delivered.filter((payload) => payload === "good frame").length, 3);
    assert.ok(!delivered.some((payload) => payload.startsWith("commit")), "no altered frame reached the application");

    honest.send(bytes("after"));
    await waitFor(() => honestEchoes.includes("after"), "the honest connection's echo after the attacks");
  } finally {
    for (const socket of attackers) socket.destroy();
    honest.close();
    await server.listener.close();
  }
});

test("an untagged frame, or one shorter than a tag, after the handshake closes with bad-mac", async () => {
  const server = await echoServer();
  try {
    const untagged = await handshakenSocket(server.port);
    untagged.socket.write(encodeFrame(bytes("no tag on this frame at all")));
    await closed(untagged.socket);
    const short = await handshakenSocket(server.port);
    short.socket.write(encodeFrame(new Uint8Array(FRAME_MAC_TAG_BYTES - 1)));
    await closed(short.socket);
    assert.deepEqual(
      server.closes.map((reason) => reason.kind),
      ["bad-mac", "bad-mac"],
    );
    assert.equal(server.closes[1]?.detail, `a ${FRAME_MAC_TAG_BYTES - 1}-byte frame is shorter than its ${FRAME_MAC_TAG_BYTES}-byte MAC tag`);
    assert.deepEqual(server.received, []);
  } finally {
    await server.listener.close();
  }
});

test("on a tagged connection the frame limit counts the tag: a payload of frameBytesMax passes, one byte more is too large", async () => {
  const frameBytesMax = 1024;
  const server = await echoServer(frameBytesMax);
  try {
    const { socket, authenticator } = await handshakenSocket(server.port);
    socket.write(sealedFrame(authenticator, new Uint8Array(frameBytesMax).fill(7)));
    await waitFor(() => server.received.length === 1, "the full-size frame");
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    header.writeUInt32BE(frameBytesMax + FRAME_MAC_TAG_BYTES + 1);
    socket.write(header);
    await closed(socket);
    assert.deepEqual(server.closes, [{ kind: "frame-too-large", detail: `the peer announced a ${frameBytesMax + FRAME_MAC_TAG_BYTES + 1}-byte frame; the limit is ${frameBytesMax + FRAME_MAC_TAG_BYTES}` }]);
  } finally {
    await server.listener.close();
  }
});

test("before the handshake is done, a frame above the handshake's own limit is refused at its length prefix, not buffered up to frameBytesMax", async () => {
  const server = await echoServer();
  try {
    const atLimit = await rawConnect(server.port);
    atLimit.on("error", () => undefined);
    atLimit.write(encodeFrame(new Uint8Array(HELLO_FRAME_BYTES_MAX).fill(0x41)));
    await closed(atLimit);
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    header.writeUInt32BE(HELLO_FRAME_BYTES_MAX + 1);
    const above = await rawConnect(server.port);
    above.on("error", () => undefined);
    above.write(header);
    await closed(above);
    assert.deepEqual(server.closes, [
      { kind: "handshake-failed", detail: "expected hello" },
      { kind: "frame-too-large", detail: `the peer announced a ${HELLO_FRAME_BYTES_MAX + 1}-byte frame; the limit is ${HELLO_FRAME_BYTES_MAX}` },
    ]);
  } finally {
    await server.listener.close();
  }
});

test("a connection whose send counter runs out closes with mac-exhausted instead of throwing, and the frame it could not tag is not sent", async () => {
  const lastFrame = Number.MAX_SAFE_INTEGER - 1;
  const nearTheEnd = (role: HandshakeRole): FrameAuthenticator => testFrameMac(role, lastFrame);
  const server = await echoServer(undefined, macHandshake("server", nearTheEnd));
  const random = new Random(3);
  const echoed: string[] = [];
  const closes: CloseReason[] = [];
  const link = new PeerLink<string>(
    { host: HOST, port: server.port, handshake: macHandshake("client", nearTheEnd), random: () => random.float(), backoff: { initialMs: 60_000, maxMs: 60_000 } },
    { onFrame: (_connection, payload) => void echoed.push(Buffer.from(payload).toString("latin1")), onClose: (_connection, reason) => void closes.push(reason) },
  );
  link.start();
  try {
    link.send(bytes("last"));
    await waitFor(() => echoed.length === 1, "the echo of the last frame either side can tag");
    link.send(bytes("one too many"));
    await waitFor(() => closes.length === 1 && server.closes.length === 1, "both ends to close");
    assert.equal(closes[0]?.kind, "mac-exhausted");
    assert.equal(server.closes[0]?.kind, "remote-end");
    assert.deepEqual(echoed, ["last"]);
    assert.deepEqual(server.received.map((payload) => Buffer.from(payload).toString("latin1")), ["last"]);
  } finally {
    link.close();
    await server.listener.close();
  }
});

test("closing a connection disposes of its authenticator's keys, and closing one mid-handshake abandons the handshake", async () => {
  let disposed = 0;
  const counting = (role: HandshakeRole): FrameAuthenticator => {
    const inner = testFrameMac(role);
    const dispose = inner.dispose.bind(inner);
    return Object.assign(inner, { dispose: () => ((disposed += 1), dispose()) });
  };
  let abandoned = 0;
  const tagged = macHandshake("server", counting);
  const server = await echoServer(undefined, (role) => ({ ...tagged(role), abandon: () => void (abandoned += 1) }));
  const random = new Random(4);
  const link = new PeerLink<string>({ host: HOST, port: server.port, handshake: macHandshake("client", counting), random: () => random.float() }, { onFrame: () => undefined });
  link.start();
  try {
    link.send(bytes("ping"));
    await waitFor(() => server.received.length === 1, "a frame through the open connection");
    link.close();
    await waitFor(() => disposed === 2, "both ends to dispose of their keys");
    assert.equal(abandoned, 0, "a finished handshake is not abandoned");

    const silent = await rawConnect(server.port);
    silent.on("error", () => undefined);
    await waitFor(() => server.listener.connectionCount === 1, "the silent connection to be accepted");
    silent.destroy();
    await waitFor(() => abandoned === 1, "the server to abandon the unfinished handshake");
  } finally {
    link.close();
    await server.listener.close();
  }
});
