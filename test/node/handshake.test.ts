// The signed connection handshake (src/node/handshake.ts): over real TCP on 127.0.0.1 with the
// transport's Listener and PeerLink, replicas and clients get the sessions they proved, impostors
// are refused before any application frame flows, and a man in the middle who alters, replays or
// drops a frame after the handshake gets the connection closed; and, as bare state machines, the
// two ends agree per-direction MAC keys that an attacker swapping ephemeral keys cannot make them
// accept, recorded frames cannot be replayed and no malformed frame makes the handshake throw.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { type Ed25519KeyPair, ed25519Sign } from "../../src/crypto/ed25519.js";
import { x25519KeyPair } from "../../src/crypto/x25519.js";
import type { CloseReason, Connection, ConnectionHandlers } from "../../src/net/connection.js";
import { encodeFrame } from "../../src/net/frame.js";
import type { FrameAuthenticator, Handshake, HandshakeFactory, HandshakeStep } from "../../src/net/handshake.js";
import { Listener } from "../../src/net/listener.js";
import { PeerLink } from "../../src/net/peer-link.js";
import {
  HANDSHAKE_FRAME_BYTES_MAX,
  type ReplicaIdentity,
  clientDialHandshake,
  deriveFrameMacKeys,
  replicaDialHandshake,
  replicaListenerHandshake,
} from "../../src/node/handshake.js";
import type { PeerSession } from "../../src/node/wire-types.js";
import { Random } from "../../src/sim/random.js";
import { keyPair, testCluster } from "../ledger/fixtures.js";
import { randomBytes } from "../support/random-bytes.js";
import { HOST, closed, flipBit, frameRelay, rawConnect, sleep, waitFor } from "../net/transport-support.js";

/** A session without its `binding` (the transcript hash, different on every connection; session-attach tests check it). */
function withoutBinding(session: PeerSession | undefined): PeerSession | undefined {
  if (session === undefined) return undefined;
  assert.equal(session.binding?.length, 32, "every completed handshake binds its session to the transcript");
  const { binding: _binding, ...rest } = session;
  return rest;
}

const cluster = testCluster(4);
// The same keys (same seed) under another cluster id: only the id tells the two apart.
const otherCluster = testCluster(4, 1, "other-cluster");
const keyRandom = new Random(41);
const stranger = keyPair(keyRandom);
const client = keyPair(keyRandom);

function replica(id: number, keys: Ed25519KeyPair = cluster.keys[id] as Ed25519KeyPair, config = cluster.config): ReplicaIdentity {
  return { cluster: config, id, privateKey: keys.privateKey };
}

const bytes = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, "latin1"));
const text = (payload: Uint8Array): string => Buffer.from(payload).toString("latin1");

// ------------------------------------------------------------------------------------------
// Over TCP

/** What one end saw: sessions opened, application frames received, closes. */
interface Observed {
  readonly opened: Connection<PeerSession>[];
  readonly frames: string[];
  readonly closes: CloseReason[];
}

function observer(onFrame?: (connection: Connection<PeerSession>, frame: string) => void): Observed & { handlers: ConnectionHandlers<PeerSession> } {
  const observed: Observed = { opened: [], frames: [], closes: [] };
  return {
    ...observed,
    handlers: {
      onOpen: (connection) => void observed.opened.push(connection),
      onFrame: (connection, payload) => {
        observed.frames.push(text(payload));
        onFrame?.(connection, text(payload));
      },
      onClose: (_connection, reason) => void observed.closes.push(reason),
    },
  };
}

/** A replica's listener on an ephemeral port that answers "ping" with "pong". */
async function listen(self: ReplicaIdentity): Promise<Observed & { listener: Listener<PeerSession>; port: number }> {
  const observed = observer((connection, frame) => {
    if (frame === "ping") connection.send(bytes("pong"));
  });
  const listener = new Listener<PeerSession>({ host: HOST, port: 0, handshake: replicaListenerHandshake(self) }, observed.handlers);
  const { port } = await listener.listen();
  return { ...observed, listener, port };
}

let linkSeed = 1;

/** The handshake failures among `observed`'s closes from index `since` on. */
function handshakeFailures(observed: Observed, since: number): CloseReason[] {
  return observed.closes.slice(since).filter((reason) => reason.kind === "handshake-failed");
}

/** A link that sends "ping" at once (it waits in the queue until the handshake is done). Back-off is long, so a failed dial is not retried during a test. */
function dial(port: number, handshake: HandshakeFactory<PeerSession>): Observed & { link: PeerLink<PeerSession> } {
  const observed = observer();
  const random = new Random(linkSeed++);
  const link = new PeerLink<PeerSession>(
    { host: HOST, port, handshake, random: () => random.float(), backoff: { initialMs: 60_000, maxMs: 60_000 } },
    observed.handlers,
  );
  link.start();
  link.send(bytes("ping"));
  return { ...observed, link };
}

describe("the handshake over TCP", () => {
  let replica0: Awaited<ReturnType<typeof listen>>;

  before(async () => {
    replica0 = await listen(replica(0));
  });

  after(async () => {
    await replica0.listener.close();
  });

  it("replica 1 dialling replica 0: each side's session names the other, then frames flow both ways", async () => {
    const framesBefore = replica0.frames.length;
    const openedBefore = replica0.opened.length;
    const dialler = dial(replica0.port, replicaDialHandshake(replica(1), 0));
    try {
      await waitFor(() => dialler.frames.includes("pong"), "the pong");
      assert.deepEqual(withoutBinding(dialler.link.session), { kind: "replica", id: 0 });
      const accepted = replica0.opened.slice(openedBefore);
      assert.equal(accepted.length, 1);
      assert.deepEqual(withoutBinding(accepted[0]?.session), { kind: "replica", id: 1 });
      assert.deepEqual(replica0.frames.slice(framesBefore), ["ping"]);
      assert.deepEqual(dialler.closes, []);
    } finally {
      dialler.link.close();
    }
  });

  it("a client dialling replica 0 is seen as a client with its own key", async () => {
    const openedBefore = replica0.opened.length;
    const dialler = dial(replica0.port, clientDialHandshake({ cluster: cluster.config, privateKey: client.privateKey }, 0));
    try {
      await waitFor(() => dialler.frames.includes("pong"), "the pong");
      assert.deepEqual(withoutBinding(dialler.link.session), { kind: "replica", id: 0 });
      const session = replica0.opened[openedBefore]?.session;
      assert.equal(session?.kind, "client");
      assert.deepEqual(session.kind === "client" ? session.key : undefined, client.publicKey);
    } finally {
      dialler.link.close();
    }
  });

  it("a dial expecting replica 2 that reaches replica 0 fails on both sides and delivers no frame", async () => {
    const framesBefore = replica0.frames.length;
    const closesBefore = replica0.closes.length;
    const dialler = dial(replica0.port, replicaDialHandshake(replica(1), 2));
    try {
      await waitFor(() => handshakeFailures(replica0, closesBefore).length > 0 && dialler.closes.length > 0, "both sides to close");
      assert.deepEqual(handshakeFailures(replica0, closesBefore), [{ kind: "handshake-failed", detail: "the peer expected replica 2, but this is replica 0" }]);
      assert.equal(dialler.opened.length, 0, "the dialler never opened");
      assert.equal(dialler.link.counters.connected, false);
      await sleep(20);
      assert.deepEqual(replica0.frames.slice(framesBefore), [], "the queued ping never reached the application");
    } finally {
      dialler.link.close();
    }
  });

  it("a listener holding replica 0's key that answers as replica 2 cannot prove it, and the dialler refuses it", async () => {
    const impostor = await listen(replica(2, cluster.keys[0]));
    const dialler = dial(impostor.port, replicaDialHandshake(replica(1), 2));
    try {
      await waitFor(() => dialler.closes.length > 0 && impostor.closes.length > 0, "both sides to close");
      assert.deepEqual(dialler.closes[0], { kind: "handshake-failed", detail: "expected replica 2, reached a peer that could not prove it" });
      assert.equal(dialler.opened.length, 0);
      assert.equal(impostor.opened.length, 0);
      assert.notEqual(impostor.closes[0]?.kind, "handshake-failed", "the impostor's side saw the dialler hang up");
      await sleep(20);
      assert.deepEqual(impostor.frames, []);
    } finally {
      dialler.link.close();
      await impostor.listener.close();
    }
  });

  it("a replica signing with the wrong private key for its claimed id is refused", async () => {
    const framesBefore = replica0.frames.length;
    const closesBefore = replica0.closes.length;
    const openedBefore = replica0.opened.length;
    const dialler = dial(replica0.port, replicaDialHandshake(replica(1, stranger), 0));
    try {
      await waitFor(() => handshakeFailures(replica0, closesBefore).length > 0 && dialler.closes.length > 0, "both sides to close");
      assert.deepEqual(handshakeFailures(replica0, closesBefore), [{ kind: "handshake-failed", detail: "the peer claimed to be replica 1 but could not prove it" }]);
      assert.equal(replica0.opened.length, openedBefore, "the listener never opened the connection");
      await sleep(20);
      assert.deepEqual(replica0.frames.slice(framesBefore), [], "the dialler's ping never reached the application");
    } finally {
      dialler.link.close();
    }
  });

  it("a replica of a cluster with another id is refused, though it holds the same key", async () => {
    const closesBefore = replica0.closes.length;
    const openedBefore = replica0.opened.length;
    const dialler = dial(replica0.port, replicaDialHandshake(replica(1, cluster.keys[1], otherCluster.config), 0));
    try {
      await waitFor(() => handshakeFailures(replica0, closesBefore).length > 0 && dialler.closes.length > 0, "both sides to close");
      assert.deepEqual(handshakeFailures(replica0, closesBefore), [
        { kind: "handshake-failed", detail: 'the peer is in cluster "other-cluster", not in cluster "test-cluster"' },
      ]);
      assert.equal(replica0.opened.length, openedBefore);
      assert.equal(dialler.opened.length, 0);
    } finally {
      dialler.link.close();
    }
  });

  it("a listener refuses a length prefix above the handshake's limit as soon as it arrives, before buffering any of it", async () => {
    const closesBefore = replica0.closes.length;
    const socket = await rawConnect(replica0.port);
    socket.on("error", () => undefined);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(HANDSHAKE_FRAME_BYTES_MAX + 1);
    socket.write(header);
    await closed(socket); // well before the 5 s handshake timeout
    await waitFor(() => replica0.closes.length > closesBefore, "the listener to record the close");
    assert.deepEqual(replica0.closes.slice(closesBefore), [
      { kind: "frame-too-large", detail: `the peer announced a ${HANDSHAKE_FRAME_BYTES_MAX + 1}-byte frame; the limit is ${HANDSHAKE_FRAME_BYTES_MAX}` },
    ]);
  });

  it("a listener closes a connection that sends random bytes or a truncated HELLO, and keeps serving a good one", async () => {
    const closesBefore = replica0.closes.length;
    const random = new Random(7);
    const garbage = await rawConnect(replica0.port);
    garbage.on("error", () => undefined);
    garbage.write(encodeFrame(randomBytes(random, 40)));
    await closed(garbage);

    const hello = firstFrame(replicaDialHandshake(replica(1), 0)("initiator").start());
    const truncated = await rawConnect(replica0.port);
    truncated.on("error", () => undefined);
    truncated.write(encodeFrame(hello.subarray(0, hello.length - 1)));
    await closed(truncated);

    await waitFor(() => handshakeFailures(replica0, closesBefore).length === 2, "the listener to record both failures");
    const failures = handshakeFailures(replica0, closesBefore);
    assert.match(failures[0]?.detail ?? "", /^(expected a handshake HELLO|malformed handshake HELLO)/);
    assert.equal(failures[1]?.detail, "malformed handshake HELLO: truncated at the expected replica id (2 bytes needed, 1 left)");

    const openedBefore = replica0.opened.length;
    const good = dial(replica0.port, replicaDialHandshake(replica(2), 0));
    try {
      await waitFor(() => good.frames.includes("pong"), "the good connection's pong");
      assert.deepEqual(withoutBinding(replica0.opened[openedBefore]?.session), { kind: "replica", id: 2 });
    } finally {
      good.link.close();
    }
  });
});

describe("frames after the handshake, through a man in the middle", () => {
  let replica0: Awaited<ReturnType<typeof listen>>;

  before(async () => {
    replica0 = await listen(replica(0));
  });

  after(async () => {
    await replica0.listener.close();
  });

  // Frames replica 1 sends through the relay: 0 is the HELLO, 1 the PROOF, 2 the first tagged one.
  const FIRST_TAGGED_FRAME = 2;

  /**
   * Replica 1 dials replica 0 through a relay that applies `edit` to replica 1's frames, and sends
   * "ping" then "second"; resolves once replica 0 has closed that connection or answered both.
   */
  async function throughRelay(edit: (index: number, frame: Uint8Array) => readonly Uint8Array[]): Promise<{ frames: string[]; closes: CloseReason[]; badMacFrames: number }> {
    const framesBefore = replica0.frames.length;
    const closesBefore = replica0.closes.length;
    const badMacBefore = replica0.listener.counters.framesBadMac;
    const relay = await frameRelay(replica0.port, edit);
    const dialler = dial(relay.port, replicaDialHandshake(replica(1), 0));
    dialler.link.send(bytes("second"));
    try {
      await waitFor(() => replica0.closes.length > closesBefore || replica0.frames.slice(framesBefore).length === 2, "replica 0 to close or to get both frames");
      await sleep(20); // anything still in flight would arrive now
      return { frames: replica0.frames.slice(framesBefore), closes: replica0.closes.slice(closesBefore), badMacFrames: replica0.listener.counters.framesBadMac - badMacBefore };
    } finally {
      dialler.link.close();
      await relay.close();
      // The next test must not see this connection's close.
      await waitFor(() => replica0.listener.connectionCount === 0, "replica 0 to drop the relayed connection");
    }
  }

  it("a relay that forwards every frame unchanged disturbs nothing: both frames arrive", async () => {
    const seen = await throughRelay((_index, frame) => [frame]);
    assert.deepEqual(seen, { frames: ["ping", "second"], closes: [], badMacFrames: 0 });
  });

  it("a flipped bit in the first frame after the handshake closes the connection with bad-mac, and no frame is delivered", async () => {
    for (const bit of [0, 8 * 4 - 1]) {
      const seen = await throughRelay((index, frame) => [index === FIRST_TAGGED_FRAME ? flipBit(frame, bit) : frame]);
      assert.deepEqual(seen.frames, [], `bit ${bit}`);
      assert.deepEqual(seen.closes.map((reason) => reason.kind), ["bad-mac"]);
      assert.equal(seen.badMacFrames, 1);
    }
  });

  it("a replayed frame after the handshake closes the connection with bad-mac after the original is delivered", async () => {
    const seen = await throughRelay((index, frame) => (index === FIRST_TAGGED_FRAME ? [frame, frame] : [frame]));
    assert.deepEqual(seen.frames, ["ping"]);
    assert.deepEqual(seen.closes.map((reason) => reason.kind), ["bad-mac"]);
  });

  it("a dropped frame after the handshake makes the next one fail: bad-mac, and nothing delivered", async () => {
    const seen = await throughRelay((index, frame) => (index === FIRST_TAGGED_FRAME ? [] : [frame]));
    assert.deepEqual(seen.frames, []);
    assert.deepEqual(seen.closes.map((reason) => reason.kind), ["bad-mac"]);
  });

  it("a frame injected after the handshake, tagged with a key the relay made up, closes with bad-mac", async () => {
    const seen = await throughRelay((index, frame) => (index === FIRST_TAGGED_FRAME ? [Uint8Array.from([...bytes("forged"), ...new Uint8Array(16)]), frame] : [frame]));
    assert.deepEqual(seen.frames, []);
    assert.deepEqual(seen.closes.map((reason) => reason.kind), ["bad-mac"]);
  });
});

// ------------------------------------------------------------------------------------------
// The state machines, without sockets

function firstFrame(step: HandshakeStep<PeerSession>): Uint8Array {
  assert.notEqual(step.kind, "fail", step.kind === "fail" ? step.detail : "");
  const frame = step.kind === "fail" ? undefined : step.send?.[0];
  assert.ok(frame !== undefined, "the step sends a frame");
  return frame;
}

interface Run {
  readonly hello: Uint8Array;
  readonly challenge: Uint8Array;
  readonly proof: Uint8Array;
  readonly initiatorStep: HandshakeStep<PeerSession>;
  readonly responderStep: HandshakeStep<PeerSession>;
}

/** One complete, correct exchange between fresh state machines; returns its frames and final steps. */
function run(initiator: Handshake<PeerSession>, responder: Handshake<PeerSession>): Run {
  assert.deepEqual(responder.start(), { kind: "continue" });
  const hello = firstFrame(initiator.start());
  const challenge = firstFrame(responder.receive(hello));
  const initiatorStep = initiator.receive(challenge);
  const proof = firstFrame(initiatorStep);
  const responderStep = responder.receive(proof);
  return { hello, challenge, proof, initiatorStep, responderStep };
}

const listener0 = replicaListenerHandshake(replica(0));
const dial1To0 = replicaDialHandshake(replica(1), 0);

/** A fresh responder (replica 0) that has accepted `hello`, ready for a PROOF. */
function responderAfter(hello: Uint8Array): Handshake<PeerSession> {
  const responder = listener0("responder");
  responder.start();
  firstFrame(responder.receive(hello));
  return responder;
}

/** A fresh responder (replica 0) that has received `initiator`'s HELLO, and its answer. */
function responderAfterOwn(initiator: Handshake<PeerSession>): { responder: Handshake<PeerSession>; receiveHello: HandshakeStep<PeerSession> } {
  const responder = listener0("responder");
  responder.start();
  return { responder, receiveHello: responder.receive(firstFrame(initiator.start())) };
}

function expectFail(step: HandshakeStep<PeerSession>, detail?: RegExp): void {
  assert.equal(step.kind, "fail", `expected a failure, got ${step.kind}`);
  if (detail !== undefined && step.kind === "fail") assert.match(step.detail, detail);
  if (step.kind === "fail") assert.ok(!step.detail.includes("\n"), "the reason is one line");
}

/** `frame` with byte `position` replaced by `value`. */
function patched(frame: Uint8Array, position: number, ...values: number[]): Uint8Array {
  const copy = new Uint8Array(frame);
  copy.set(values, position);
  return copy;
}

// In a HELLO from this cluster: tag, version, cluster id length, the id, then the role; a
// replica's role (tag, u16 id) is followed by the ephemeral key. In a CHALLENGE: tag, u16 id, key.
const ROLE_OFFSET = 3 + cluster.config.clusterId.length;
const HELLO_EPHEMERAL_OFFSET = ROLE_OFFSET + 3;
const CHALLENGE_EPHEMERAL_OFFSET = 3;
const EPHEMERAL_BYTES = 32;

/** The authenticator a `done` step hands the transport. */
function authenticatorOf(step: HandshakeStep<PeerSession>): FrameAuthenticator {
  assert.equal(step.kind, "done", step.kind === "fail" ? step.detail : step.kind);
  const authenticator = step.kind === "done" ? step.authenticator : undefined;
  assert.ok(authenticator !== undefined, "the done step carries an authenticator");
  return authenticator;
}

function tagOf(authenticator: FrameAuthenticator, payload: Uint8Array): Uint8Array {
  const tag = new Uint8Array(authenticator.tagBytes);
  authenticator.seal(payload, tag, 0);
  return tag;
}

/**
 * The transcript body of a handshake with replica 0, from the documented layout: u8 c || cluster
 * id || role || initiator key || responder key || u16 responder id; role and initiator key are
 * taken from `hello`.
 */
function transcriptOf(hello: Uint8Array, responderKey: Uint8Array): Uint8Array {
  const clusterId = bytes(cluster.config.clusterId);
  return Uint8Array.from([
    clusterId.length,
    ...clusterId,
    ...hello.subarray(ROLE_OFFSET, HELLO_EPHEMERAL_OFFSET),
    ...hello.subarray(HELLO_EPHEMERAL_OFFSET, HELLO_EPHEMERAL_OFFSET + EPHEMERAL_BYTES),
    ...responderKey,
    0x00,
    0x00,
  ]);
}

describe("the handshake state machines", () => {
  it("a correct exchange gives the initiator the replica it dialled and the responder the initiator's claim", () => {
    const exchange = run(dial1To0("initiator"), listener0("responder"));
    assert.equal(exchange.initiatorStep.kind, "done");
    assert.deepEqual(withoutBinding(exchange.initiatorStep.kind === "done" ? exchange.initiatorStep.session : undefined), { kind: "replica", id: 0 });
    assert.equal(exchange.responderStep.kind, "done");
    assert.deepEqual(withoutBinding(exchange.responderStep.kind === "done" ? exchange.responderStep.session : undefined), { kind: "replica", id: 1 });
    assert.equal(exchange.responderStep.kind === "done" ? exchange.responderStep.send : "not done", undefined, "the responder's last step sends nothing");
    for (const frame of [exchange.hello, exchange.challenge, exchange.proof]) assert.ok(frame.length <= HANDSHAKE_FRAME_BYTES_MAX);
  });

  it("a PROOF recorded from one run is refused by a new responder, even with the same HELLO replayed", () => {
    const recorded = run(dial1To0("initiator"), listener0("responder"));
    assert.equal(recorded.responderStep.kind, "done");
    const responder = listener0("responder");
    responder.start();
    const freshChallenge = firstFrame(responder.receive(recorded.hello));
    assert.notDeepEqual(freshChallenge, recorded.challenge, "the new responder chose a new nonce");
    expectFail(responder.receive(recorded.proof), /^the peer claimed to be replica 1 but could not prove it$/);
  });

  it("a CHALLENGE recorded from one run is refused by a new initiator", () => {
    const recorded = run(dial1To0("initiator"), listener0("responder"));
    const initiator = dial1To0("initiator");
    initiator.start();
    expectFail(initiator.receive(recorded.challenge), /^expected replica 0, reached a peer that could not prove it$/);
  });

  it("a client's session carries a copy of its key, not a view of the HELLO it came in", () => {
    const responder = listener0("responder");
    const initiator = clientDialHandshake({ cluster: cluster.config, privateKey: client.privateKey }, 0)("initiator");
    responder.start();
    // The socket hands the handshake Buffers, whose `slice` is a view: the key must not be one.
    const hello = Buffer.from(firstFrame(initiator.start()));
    const proof = firstFrame(initiator.receive(firstFrame(responder.receive(hello))));
    hello.fill(0);
    const step = responder.receive(proof);
    assert.equal(step.kind, "done");
    const session = step.kind === "done" ? step.session : undefined;
    assert.equal(session?.kind, "client");
    assert.ok(session.kind === "client" && Object.getPrototypeOf(session.key) === Uint8Array.prototype, "a plain Uint8Array");
    assert.deepEqual(withoutBinding(session), { kind: "client", key: client.publicKey });
  });

  it("the responder refuses a HELLO claiming a replica outside the cluster, or its own id", () => {
    const hello = firstFrame(dial1To0("initiator").start());
    const start = (): Handshake<PeerSession> => {
      const responder = listener0("responder");
      responder.start();
      return responder;
    };
    expectFail(start().receive(patched(hello, ROLE_OFFSET + 1, 0x00, 0x07)), /^the peer claims to be replica 7, but the cluster has 4 replicas$/);
    expectFail(start().receive(patched(hello, ROLE_OFFSET + 1, 0x00, 0x00)), /^the peer claims to be replica 0, which is this replica$/);
    expectFail(start().receive(patched(hello, 1, 1)), /^malformed handshake HELLO: unsupported handshake version 1; this build speaks version 2$/);
    expectFail(start().receive(patched(hello, ROLE_OFFSET, 0x05)), /unknown initiator role 0x05/);
    expectFail(start().receive(patched(hello, 2, 0)), /a cluster id is 1 to 64 bytes, not 0/);
  });

  it("the responder refuses a client key of small order before signing anything", () => {
    const hello = firstFrame(clientDialHandshake({ cluster: cluster.config, privateKey: client.privateKey }, 0)("initiator").start());
    const responder = listener0("responder");
    responder.start();
    expectFail(responder.receive(patched(hello, ROLE_OFFSET + 1, ...new Uint8Array(32))), /^the client's public key is refused \(small-order\)$/);
  });

  it("every truncation, extension and oversized form of each frame fails without throwing", () => {
    const exchange = run(dial1To0("initiator"), listener0("responder"));
    const feeds: readonly [string, Uint8Array, () => Handshake<PeerSession>][] = [
      ["HELLO", exchange.hello, () => {
        const responder = listener0("responder");
        responder.start();
        return responder;
      }],
      ["CHALLENGE", exchange.challenge, () => {
        const initiator = dial1To0("initiator");
        initiator.start();
        return initiator;
      }],
      ["PROOF", exchange.proof, () => responderAfter(exchange.hello)],
    ];
    for (const [name, frame, fresh] of feeds) {
      for (let length = 0; length < frame.length; length += 1) {
        expectFail(fresh().receive(frame.subarray(0, length)));
      }
      expectFail(fresh().receive(Uint8Array.from([...frame, 0])), new RegExp(`^malformed handshake ${name}: 1 unexpected bytes after the end$`));
      expectFail(fresh().receive(new Uint8Array(1_000).fill(frame[0] as number)), /too large for a handshake/);
    }
  });

  it("any changed byte of a CHALLENGE or a PROOF makes the handshake fail", () => {
    // Each position gets a fresh pair mid-exchange, so the unchanged frame would have been
    // accepted (position -1 checks exactly that) and only the flipped byte is to blame.
    const flip = (frame: Uint8Array, position: number): Uint8Array => (position < 0 ? frame : patched(frame, position, (frame[position] as number) ^ 0x01));
    const challengeBytes = run(dial1To0("initiator"), listener0("responder")).challenge.length;
    for (let position = -1; position < challengeBytes; position += 1) {
      const initiator = dial1To0("initiator");
      const challenge = firstFrame(responderAfterOwn(initiator).receiveHello);
      const step = initiator.receive(flip(challenge, position));
      if (position < 0) assert.equal(step.kind, "done");
      else expectFail(step);
    }
    const proofBytes = run(dial1To0("initiator"), listener0("responder")).proof.length;
    for (let position = -1; position < proofBytes; position += 1) {
      const initiator = dial1To0("initiator");
      const { responder, receiveHello } = responderAfterOwn(initiator);
      const proof = firstFrame(initiator.receive(firstFrame(receiveHello)));
      const step = responder.receive(flip(proof, position));
      if (position < 0) assert.equal(step.kind, "done");
      else expectFail(step);
    }
  });

  it("random frames fed to either side in any phase give a failure, never an exception", () => {
    const random = new Random(3);
    const exchange = run(dial1To0("initiator"), listener0("responder"));
    for (let trial = 0; trial < 300; trial += 1) {
      const frame = randomBytes(random, random.between(0, 160));
      if (frame.length > 0) frame[0] = random.between(0, 4);
      expectFail(listener0("responder").receive(frame), /before the handshake started/);
      const responder = listener0("responder");
      responder.start();
      expectFail(responder.receive(frame));
      expectFail(responderAfter(exchange.hello).receive(frame));
      const initiator = dial1To0("initiator");
      initiator.start();
      expectFail(initiator.receive(frame));
    }
  });

  it("a frame after the handshake ended is refused", () => {
    const initiator = dial1To0("initiator");
    const responder = listener0("responder");
    const exchange = run(initiator, responder);
    expectFail(initiator.receive(exchange.challenge), /after the handshake ended/);
    expectFail(responder.receive(exchange.proof), /after the handshake ended/);
  });

  it("an abandoned handshake (its connection timed out or closed) refuses whatever arrives after", () => {
    const initiator = dial1To0("initiator");
    const { responder, receiveHello } = responderAfterOwn(initiator);
    const challenge = firstFrame(receiveHello);
    initiator.abandon?.();
    expectFail(initiator.receive(challenge), /after the handshake ended/);
    responder.abandon?.();
    expectFail(responder.receive(Uint8Array.from([0x03, ...new Uint8Array(64)])), /after the handshake ended/);
    assert.equal(listener0("responder").frameBytesMax, HANDSHAKE_FRAME_BYTES_MAX);
    assert.equal(dial1To0("initiator").frameBytesMax, HANDSHAKE_FRAME_BYTES_MAX);
  });

  it("a factory asked for the side it does not serve throws, as do ids outside the cluster", () => {
    assert.throws(() => listener0("initiator"), /serves only the responder side/);
    assert.throws(() => dial1To0("responder"), /serves only the initiator side/);
    assert.throws(() => clientDialHandshake({ cluster: cluster.config, privateKey: client.privateKey }, 0)("responder"), /serves only the initiator side/);
    assert.throws(() => replicaDialHandshake(replica(1), 4), /the dialled replica must be a replica id/);
    assert.throws(() => replicaDialHandshake(replica(1), 1), /cannot dial itself/);
    assert.throws(() => replicaListenerHandshake({ ...replica(0), id: -1 }), /the listening replica must be a replica id/);
  });
});

describe("the keys the handshake agrees", () => {
  it("both ends derive the same key for each direction: each accepts the other's frames, in both directions", () => {
    for (const dialler of [dial1To0, clientDialHandshake({ cluster: cluster.config, privateKey: client.privateKey }, 0)]) {
      const exchange = run(dialler("initiator"), listener0("responder"));
      const initiator = authenticatorOf(exchange.initiatorStep);
      const responder = authenticatorOf(exchange.responderStep);
      for (let frame = 0; frame < 3; frame += 1) {
        const payload = bytes(`frame ${frame}`);
        assert.ok(responder.open(payload, tagOf(initiator, payload), 0), `initiator -> responder, frame ${frame}`);
        assert.ok(initiator.open(payload, tagOf(responder, payload), 0), `responder -> initiator, frame ${frame}`);
      }
    }
  });

  it("the two directions' keys differ, so a frame reflected back to its sender fails", () => {
    const exchange = run(dial1To0("initiator"), listener0("responder"));
    const initiator = authenticatorOf(exchange.initiatorStep);
    const responder = authenticatorOf(exchange.responderStep);
    const payload = bytes("prepare");
    assert.notDeepEqual(tagOf(initiator, payload), tagOf(responder, payload), "frame 0 of each direction, same payload");
    const reflected = bytes("commit");
    assert.equal(initiator.open(reflected, tagOf(initiator, reflected), 0), false);

    const keys = deriveFrameMacKeys(new Uint8Array(32).fill(5), bytes("transcript body"));
    assert.equal(keys.initiatorToResponder.length, 32);
    assert.notDeepEqual(keys.initiatorToResponder, keys.responderToInitiator);
  });

  it("the keys depend on the shared secret and on every byte of the transcript", () => {
    const secret = new Uint8Array(32).fill(5);
    const body = bytes("transcript body");
    const keys = deriveFrameMacKeys(secret, body);
    assert.deepEqual(deriveFrameMacKeys(secret, body), keys, "deterministic");
    assert.notDeepEqual(deriveFrameMacKeys(flipBit(secret, 0), body), keys);
    for (let bit = 0; bit < body.length * 8; bit += 8) assert.notDeepEqual(deriveFrameMacKeys(secret, flipBit(body, bit)).initiatorToResponder, keys.initiatorToResponder);
  });

  it("the keys are the documented HKDF-SHA256 output: 64 bytes under the transcript's SHA-256, initiator's direction first", () => {
    // RFC 5869 by hand: PRK = HMAC(salt, secret); T(1) = HMAC(PRK, info || 1); T(2) = HMAC(PRK, T(1) || info || 2).
    const secret = new Uint8Array(32).fill(9);
    const body = bytes("transcript body");
    const hmac = (key: Uint8Array, ...parts: Uint8Array[]): Buffer => parts.reduce((mac, part) => mac.update(part), createHmac("sha256", key)).digest();
    const prk = hmac(createHash("sha256").update(body).digest(), secret);
    const info = bytes("bulwark/handshake/v2/mac");
    const first = hmac(prk, info, Uint8Array.of(1));
    const second = hmac(prk, first, info, Uint8Array.of(2));
    assert.deepEqual(deriveFrameMacKeys(secret, body), { initiatorToResponder: new Uint8Array(first), responderToInitiator: new Uint8Array(second) });
  });

  it("every handshake agrees fresh keys: a frame tagged on one connection fails on another between the same replicas", () => {
    const first = run(dial1To0("initiator"), listener0("responder"));
    const second = run(dial1To0("initiator"), listener0("responder"));
    const payload = bytes("view-change");
    assert.equal(authenticatorOf(second.responderStep).open(payload, tagOf(authenticatorOf(first.initiatorStep), payload), 0), false);
  });

  it("a man in the middle who swaps the initiator's ephemeral key for his own is refused by the initiator", () => {
    const mitm = x25519KeyPair();
    const initiator = dial1To0("initiator");
    const responder = listener0("responder");
    responder.start();
    const hello = firstFrame(initiator.start());
    // The responder cannot tell: it signs a transcript holding the attacker's key...
    const challenge = firstFrame(responder.receive(patched(hello, HELLO_EPHEMERAL_OFFSET, ...mitm.publicKey)));
    // ...which the initiator, whose own key is not in it, refuses; swapping the responder's key
    // as well (a full man in the middle) changes nothing.
    expectFail(initiator.receive(challenge), /^expected replica 0, reached a peer that could not prove it$/);
    const again = dial1To0("initiator");
    const fresh = listener0("responder");
    fresh.start();
    const forwarded = firstFrame(fresh.receive(patched(firstFrame(again.start()), HELLO_EPHEMERAL_OFFSET, ...mitm.publicKey)));
    expectFail(again.receive(patched(forwarded, CHALLENGE_EPHEMERAL_OFFSET, ...x25519KeyPair().publicKey)), /could not prove it/);
  });

  it("a man in the middle who swaps the responder's ephemeral key for his own is refused by the initiator", () => {
    const initiator = dial1To0("initiator");
    const { receiveHello } = responderAfterOwn(initiator);
    const challenge = patched(firstFrame(receiveHello), CHALLENGE_EPHEMERAL_OFFSET, ...x25519KeyPair().publicKey);
    expectFail(initiator.receive(challenge), /^expected replica 0, reached a peer that could not prove it$/);
  });

  it("a HELLO with an ephemeral key of small order is answered, and refused only after a valid PROOF: no key agreement before it", () => {
    for (const key of [new Uint8Array(EPHEMERAL_BYTES), Uint8Array.from([1, ...new Uint8Array(EPHEMERAL_BYTES - 1)])]) {
      const hello = patched(firstFrame(dial1To0("initiator").start()), HELLO_EPHEMERAL_OFFSET, ...key);
      const responder = listener0("responder");
      responder.start();
      // The responder signs a CHALLENGE without computing a shared secret...
      const challenge = firstFrame(responder.receive(hello));
      const responderKey = challenge.subarray(CHALLENGE_EPHEMERAL_OFFSET, CHALLENGE_EPHEMERAL_OFFSET + EPHEMERAL_BYTES);
      // ...and refuses the key once replica 1 has signed it (by hand: an honest initiator never would).
      const signature = ed25519Sign((cluster.keys[1] as Ed25519KeyPair).privateKey, Uint8Array.from([...bytes("bulwark/handshake/v2/initiator\0"), ...transcriptOf(hello, responderKey)]));
      expectFail(responder.receive(Uint8Array.from([0x03, ...signature])), /^the peer's ephemeral key is of small order$/);
      // A PROOF that does not verify is refused as such: the signature is checked first.
      const unproven = listener0("responder");
      unproven.start();
      firstFrame(unproven.receive(hello));
      expectFail(unproven.receive(Uint8Array.from([0x03, ...new Uint8Array(64)])), /^the peer claimed to be replica 1 but could not prove it$/);
    }
  });

  it("a CHALLENGE built by hand from the documented layout is accepted; signed with a small-order key, it is refused", () => {
    const challengeWith = (hello: Uint8Array, responderKey: Uint8Array): Uint8Array => {
      const body = transcriptOf(hello, responderKey);
      const signature = ed25519Sign((cluster.keys[0] as Ed25519KeyPair).privateKey, Uint8Array.from([...bytes("bulwark/handshake/v2/responder\0"), ...body]));
      return Uint8Array.from([0x02, 0x00, 0x00, ...responderKey, ...signature]);
    };
    const honest = dial1To0("initiator");
    const step = honest.receive(challengeWith(firstFrame(honest.start()), x25519KeyPair().publicKey));
    assert.equal(step.kind, "done", step.kind === "fail" ? step.detail : "");
    const cheated = dial1To0("initiator");
    expectFail(cheated.receive(challengeWith(firstFrame(cheated.start()), new Uint8Array(EPHEMERAL_BYTES))), /^replica 0 sent an ephemeral key of small order$/);
  });
});
