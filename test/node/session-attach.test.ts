// Session attachments (src/node/session-attach.ts): a client key authenticates one connection by
// signing that connection's handshake binding, and from then on the connection carries the key's
// unsigned (version 2) requests. What must hold: only a signature by the key over this very
// binding attaches it; an attachment names one connection only; a connection may try at most
// `keysMax` attachments, failed ones included; both ends of a real handshake agree on the binding
// (and two handshakes never do); and the wire frame round-trips while every truncation or
// extension of it is refused with a WireDecodeError.

import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { requestFromTransaction } from "../../src/app/request.js";
import { sessionTransaction } from "../../src/app/transaction.js";
import type { ClientRequest } from "../../src/consensus/pbft/types.js";
import { type Ed25519KeyPair, ed25519KeyPairFromSeed, ed25519Sign } from "../../src/crypto/ed25519.js";
import type { HandshakeStep } from "../../src/net/handshake.js";
import { clientDialHandshake, replicaListenerHandshake } from "../../src/node/handshake.js";
import { SESSION_KEYS_PER_CONNECTION_MAX, SessionAttachments, sessionAttachFrame, sessionAttachMessage } from "../../src/node/session-attach.js";
import { WireDecodeError, decodeWireFrame, encodeWireFrame } from "../../src/node/wire.js";
import type { PeerSession } from "../../src/node/wire-types.js";
import { testCluster } from "../ledger/fixtures.js";

const cluster = testCluster(4);
const keys: Ed25519KeyPair[] = Array.from({ length: 4 }, (_, index) => ed25519KeyPairFromSeed(new Uint8Array(32).fill(index + 41)));
const [ALICE, BOB, CAROL] = keys as [Ed25519KeyPair, Ed25519KeyPair, Ed25519KeyPair, Ed25519KeyPair];
const BINDING = new Uint8Array(32).fill(7);
const OTHER_BINDING = new Uint8Array(32).fill(8);

/** A stand-in connection: the attachments only need an object identity. */
function connection(): object {
  return {};
}

function requestOf(key: Ed25519KeyPair, nonce = 1): ClientRequest {
  return requestFromTransaction(sessionTransaction({ clientKey: key.publicKey, nonce, operation: { type: "noop" } }));
}

function attachmentOf(key: Ed25519KeyPair, binding: Uint8Array): { key: Uint8Array; signature: Uint8Array } {
  const frame = sessionAttachFrame(key.privateKey, binding);
  return { key: frame.key, signature: frame.signature };
}

describe("session attachments: what attaches a key", () => {
  it("a signature by the key over the connection's binding attaches it: the connection carries the key's requests, not others'", () => {
    const attachments = new SessionAttachments<object>();
    const conn = connection();
    const { key, signature } = attachmentOf(ALICE, BINDING);
    assert.equal(attachments.carries(conn, requestOf(ALICE)), false, "nothing is attached before the attachment");
    assert.equal(attachments.attach(conn, BINDING, key, signature), "attached");
    assert.equal(attachments.carries(conn, requestOf(ALICE)), true);
    assert.equal(attachments.carries(conn, requestOf(ALICE, 99)), true, "any nonce of the key");
    assert.equal(attachments.carries(conn, requestOf(BOB)), false, "another key is not carried");
  });

  it("an attachment names one connection: the same frame on another connection attaches nothing there", () => {
    const attachments = new SessionAttachments<object>();
    const first = connection();
    const second = connection();
    const { key, signature } = attachmentOf(ALICE, BINDING);
    assert.equal(attachments.attach(first, BINDING, key, signature), "attached");
    assert.equal(attachments.carries(second, requestOf(ALICE)), false);
    // Replayed on a connection with another binding, the signature is over the wrong bytes.
    assert.equal(attachments.attach(second, OTHER_BINDING, key, signature), "bad-signature");
    assert.equal(attachments.carries(second, requestOf(ALICE)), false);
  });

  it("one connection carries several keys, each attached by its own signature", () => {
    const attachments = new SessionAttachments<object>();
    const conn = connection();
    for (const key of [ALICE, BOB]) {
      const attachment = attachmentOf(key, BINDING);
      assert.equal(attachments.attach(conn, BINDING, attachment.key, attachment.signature), "attached");
    }
    assert.equal(attachments.carries(conn, requestOf(ALICE)), true);
    assert.equal(attachments.carries(conn, requestOf(BOB)), true);
    assert.equal(attachments.carries(conn, requestOf(CAROL)), false);
  });

  it("a signature over another binding, by another key, or over the bare binding without the domain is bad-signature", () => {
    const attachments = new SessionAttachments<object>();
    const conn = connection();
    const overOther = attachmentOf(ALICE, OTHER_BINDING);
    assert.equal(attachments.attach(conn, BINDING, overOther.key, overOther.signature), "bad-signature", "over another binding");
    const byBob = attachmentOf(BOB, BINDING);
    assert.equal(attachments.attach(conn, BINDING, ALICE.publicKey, byBob.signature), "bad-signature", "Bob's signature claimed for Alice's key");
    const bare = ed25519Sign(ALICE.privateKey, BINDING);
    assert.equal(attachments.attach(conn, BINDING, ALICE.publicKey, bare), "bad-signature", "no domain prefix");
    const tampered = attachmentOf(ALICE, BINDING).signature.slice();
    tampered[10]! ^= 1;
    assert.equal(attachments.attach(conn, BINDING, ALICE.publicKey, tampered), "bad-signature", "one bit flipped");
    assert.equal(attachments.carries(conn, requestOf(ALICE)), false);
    assert.equal(attachments.carries(conn, requestOf(BOB)), false);
  });

  it("a key or signature of the wrong length is bad-signature, without throwing", () => {
    const attachments = new SessionAttachments<object>();
    const conn = connection();
    const { key, signature } = attachmentOf(ALICE, BINDING);
    assert.equal(attachments.attach(conn, BINDING, key.subarray(0, 31), signature), "bad-signature");
    assert.equal(attachments.attach(conn, BINDING, Uint8Array.from([...key, 0]), signature), "bad-signature");
    assert.equal(attachments.attach(conn, BINDING, key, signature.subarray(0, 63)), "bad-signature");
    assert.equal(attachments.attach(conn, BINDING, key, Uint8Array.from([...signature, 0])), "bad-signature");
    assert.equal(attachments.attach(conn, BINDING, new Uint8Array(0), new Uint8Array(0)), "bad-signature");
    assert.equal(attachments.carries(conn, requestOf(ALICE)), false);
  });

  it("a connection may try keysMax attachments, refused ones included; past that every one is too-many, per connection", () => {
    const attachments = new SessionAttachments<object>(3);
    const conn = connection();
    const bad = attachmentOf(BOB, OTHER_BINDING);
    assert.equal(attachments.attach(conn, BINDING, bad.key, bad.signature), "bad-signature");
    for (const key of [ALICE, BOB]) {
      const attachment = attachmentOf(key, BINDING);
      assert.equal(attachments.attach(conn, BINDING, attachment.key, attachment.signature), "attached");
    }
    const carol = attachmentOf(CAROL, BINDING);
    assert.equal(attachments.attach(conn, BINDING, carol.key, carol.signature), "too-many", "the fourth try, though valid");
    assert.equal(attachments.carries(conn, requestOf(CAROL)), false);
    assert.equal(attachments.carries(conn, requestOf(ALICE)), true, "what was attached stays attached");
    const other = connection();
    assert.equal(attachments.attach(other, BINDING, carol.key, carol.signature), "attached", "another connection has its own count");
  });

  it("the default allows the documented number of keys per connection", () => {
    assert.equal(SESSION_KEYS_PER_CONNECTION_MAX, 16_384);
  });
});

describe("session attachments: the handshake binding", () => {
  function firstFrame(step: HandshakeStep<PeerSession>): Uint8Array {
    assert.notEqual(step.kind, "fail", step.kind === "fail" ? step.detail : "");
    const frame = step.kind === "fail" ? undefined : step.send?.[0];
    assert.ok(frame !== undefined, "the step sends a frame");
    return frame;
  }

  /** One client-to-replica-0 handshake, run as bare state machines; each side's session. */
  function handshake(client: Ed25519KeyPair): { client: PeerSession; replica: PeerSession } {
    const initiator = clientDialHandshake({ cluster: cluster.config, privateKey: client.privateKey }, 0)("initiator");
    const responder = replicaListenerHandshake({ cluster: cluster.config, id: 0, privateKey: cluster.keys[0]!.privateKey })("responder");
    responder.start();
    const challenge = firstFrame(responder.receive(firstFrame(initiator.start())));
    const initiatorStep = initiator.receive(challenge);
    const responderStep = responder.receive(firstFrame(initiatorStep));
    assert.equal(initiatorStep.kind, "done");
    assert.equal(responderStep.kind, "done");
    if (initiatorStep.kind !== "done" || responderStep.kind !== "done") assert.fail("the handshake did not finish");
    return { client: initiatorStep.session, replica: responderStep.session };
  }

  it("both ends of a handshake hold the same 32-byte binding, and two handshakes of the same keys hold different ones", () => {
    const first = handshake(ALICE);
    const second = handshake(ALICE);
    assert.equal(first.replica.kind, "client");
    assert.ok(first.client.binding !== undefined && first.replica.binding !== undefined);
    assert.equal(first.client.binding.length, 32);
    assert.deepEqual(first.client.binding, first.replica.binding);
    assert.notDeepEqual(first.client.binding, second.client.binding, "fresh ephemeral keys name a fresh connection");
  });

  it("an attachment the client signs over its binding attaches at the replica, and does not attach on another connection", () => {
    const attachments = new SessionAttachments<object>();
    const first = handshake(ALICE);
    const second = handshake(ALICE);
    const conn1 = connection();
    const conn2 = connection();
    const attachment = attachmentOf(BOB, first.client.binding!);
    assert.equal(attachments.attach(conn1, first.replica.binding!, attachment.key, attachment.signature), "attached");
    assert.equal(attachments.attach(conn2, second.replica.binding!, attachment.key, attachment.signature), "bad-signature");
    assert.equal(attachments.carries(conn1, requestOf(BOB)), true);
    assert.equal(attachments.carries(conn2, requestOf(BOB)), false);
  });

  it("the signed message is a domain prefix followed by the binding", () => {
    const message = sessionAttachMessage(BINDING);
    assert.deepEqual(message.subarray(message.length - BINDING.length), BINDING);
    assert.equal(Buffer.from(message.subarray(0, message.length - BINDING.length)).toString("latin1"), "bulwark/session-attach/v1\0");
  });
});

describe("session attachments: the wire frame", () => {
  it("a session-attach frame round-trips with its key and signature", () => {
    const frame = sessionAttachFrame(ALICE.privateKey, BINDING);
    const encoded = encodeWireFrame(frame);
    const decoded = decodeWireFrame(encoded);
    assert.deepEqual(decoded, frame);
    assert.deepEqual(decoded, { kind: "session-attach", key: ALICE.publicKey, signature: frame.signature });
    const attachments = new SessionAttachments<object>();
    const conn = connection();
    if (decoded.kind !== "session-attach") assert.fail("decoded another kind of frame");
    assert.equal(attachments.attach(conn, BINDING, decoded.key, decoded.signature), "attached", "what decodes still verifies");
  });

  it("every truncation of a session-attach frame, and a trailing byte, are refused with WireDecodeError", () => {
    const encoded = encodeWireFrame(sessionAttachFrame(ALICE.privateKey, BINDING));
    for (let length = 0; length < encoded.length; length++) {
      assert.throws(() => decodeWireFrame(encoded.subarray(0, length)), WireDecodeError, `cut to ${length} bytes`);
    }
    assert.throws(() => decodeWireFrame(Uint8Array.from([...encoded, 0])), WireDecodeError, "one byte more");
  });

  it("encoding refuses a key or signature of the wrong length instead of writing a frame the decoder would misread", () => {
    const frame = sessionAttachFrame(ALICE.privateKey, BINDING);
    assert.throws(() => encodeWireFrame({ ...frame, key: frame.key.subarray(0, 31) }), RangeError);
    assert.throws(() => encodeWireFrame({ ...frame, signature: Uint8Array.from([...frame.signature, 0]) }), RangeError);
  });
});
