// The frame authenticator (src/net/frame-mac.ts) as a bare object and behind a FrameDecoder:
// the two ends of a connection accept each other's frames in order, and a frame that is altered,
// replayed, reordered, dropped or reflected fails, as does everything after it.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { FrameDecoder, encodeFrame } from "../../src/net/frame.js";
import { FRAME_MAC_KEY_BYTES, FRAME_MAC_TAG_BYTES, frameMac } from "../../src/net/frame-mac.js";
import type { FrameAuthenticator } from "../../src/net/handshake.js";
import type { CryptoBackendName } from "../../src/crypto/sodium.js";
import { Random } from "../../src/sim/random.js";
import { randomBytes } from "../support/random-bytes.js";
import { flipBit } from "./transport-support.js";

const random = new Random(17);
const keyAToB = randomBytes(random, FRAME_MAC_KEY_BYTES);
const keyBToA = randomBytes(random, FRAME_MAC_KEY_BYTES);
const BACKENDS: readonly CryptoBackendName[] = ["sodium-native", "node:crypto"];

/** The two ends of one connection: A sends with the key B receives with, and the other way round. */
function pair(backendA: CryptoBackendName = "sodium-native", backendB: CryptoBackendName = backendA): { a: FrameAuthenticator; b: FrameAuthenticator } {
  return {
    a: frameMac({ sendKey: keyAToB, receiveKey: keyBToA }, backendA),
    b: frameMac({ sendKey: keyBToA, receiveKey: keyAToB }, backendB),
  };
}

function seal(authenticator: FrameAuthenticator, payload: Uint8Array): Uint8Array {
  const tag = new Uint8Array(authenticator.tagBytes);
  authenticator.seal(payload, tag, 0);
  return tag;
}

/** The payload with its tag appended: a frame's body as it travels after the handshake. */
function sealed(authenticator: FrameAuthenticator, payload: Uint8Array): Uint8Array {
  return Uint8Array.from([...payload, ...seal(authenticator, payload)]);
}

/** Opens a frame body as the connection does: the last tagBytes are the tag. */
function openBody(authenticator: FrameAuthenticator, body: Uint8Array): boolean {
  const payloadBytes = body.length - authenticator.tagBytes;
  return payloadBytes >= 0 && authenticator.open(body.subarray(0, payloadBytes), body, payloadBytes);
}

const text = (value: string): Uint8Array => Uint8Array.from(Buffer.from(value, "latin1"));

describe("the frame authenticator", () => {
  it("each end accepts the other's frames in order, in both directions, with 16-byte tags", () => {
    for (const backend of BACKENDS) {
      const { a, b } = pair(backend);
      assert.equal(a.tagBytes, FRAME_MAC_TAG_BYTES);
      for (let index = 0; index < 50; index += 1) {
        const payload = randomBytes(random, random.below(300));
        assert.ok(openBody(b, sealed(a, payload)), `A->B frame ${index} (${backend})`);
        assert.ok(openBody(a, sealed(b, payload)), `B->A frame ${index} (${backend})`);
      }
    }
  });

  it("sodium-native and node:crypto compute the same tags, so ends on different backends interoperate", () => {
    const sodium = pair("sodium-native");
    const node = pair("node:crypto");
    for (const size of [0, 1, 15, 16, 17, 100, 1_000, 70_000]) {
      const payload = randomBytes(random, size);
      assert.deepEqual(seal(sodium.a, payload), seal(node.a, payload), `${size}-byte payload`);
    }
    const mixed = pair("sodium-native", "node:crypto");
    assert.ok(openBody(mixed.b, sealed(mixed.a, text("from sodium"))));
    assert.ok(openBody(mixed.a, sealed(mixed.b, text("from node"))));
  });

  it("the same payload gets a different tag as each frame, so tags are tied to the frame counter", () => {
    const { a } = pair();
    const payload = text("vote");
    assert.notDeepEqual(seal(a, payload), seal(a, payload));
  });

  it("any flipped bit of the payload or the tag fails", () => {
    for (const backend of BACKENDS) {
      const body = sealed(pair(backend).a, text("prepare view 3 sequence 17"));
      for (let bit = 0; bit < body.length * 8; bit += 1) {
        assert.equal(openBody(pair(backend).b, flipBit(body, bit)), false, `bit ${bit} (${backend})`);
      }
      assert.ok(openBody(pair(backend).b, body), "the unflipped frame passes");
    }
  });

  it("a replayed frame fails, and so does a reordered one", () => {
    const { a, b } = pair();
    const first = sealed(a, text("first"));
    assert.ok(openBody(b, first));
    assert.equal(openBody(b, first), false, "the replay");

    const reordered = pair();
    const one = sealed(reordered.a, text("one"));
    const two = sealed(reordered.a, text("two"));
    assert.equal(openBody(reordered.b, two), false, "frame 1 arriving as frame 0");
    assert.equal(openBody(reordered.b, one), false, "and nothing passes after a failure");
  });

  it("a dropped frame makes the next one fail, and every frame after that too, even correct ones", () => {
    const { a, b } = pair();
    const frames = ["zero", "one", "two", "three"].map((name) => sealed(a, text(name)));
    assert.ok(openBody(b, frames[0] as Uint8Array));
    assert.equal(openBody(b, frames[2] as Uint8Array), false, "frame 1 was dropped");
    // A fresh receiver shows frame 1 itself was fine: only the failure latches.
    const fresh = pair().b;
    assert.ok(openBody(fresh, frames[0] as Uint8Array) && openBody(fresh, frames[1] as Uint8Array));
    assert.equal(openBody(b, frames[1] as Uint8Array), false, "the late frame 1 after the failure");
  });

  it("a frame reflected back to its sender fails: the two directions use different keys", () => {
    const { a } = pair();
    assert.equal(openBody(a, sealed(a, text("echo"))), false);
  });

  it("a frame shorter than a tag, or a tag past the end of its buffer, fails without throwing; sealing past the end is a bug", () => {
    const { b } = pair();
    assert.equal(openBody(b, new Uint8Array(FRAME_MAC_TAG_BYTES - 1)), false);
    assert.equal(pair().b.open(text("payload"), new Uint8Array(FRAME_MAC_TAG_BYTES), 1), false, "the tag would run past the end");
    assert.equal(pair("node:crypto").b.open(text("payload"), new Uint8Array(3), 0), false);
    assert.equal(pair().b.open(text("payload"), new Uint8Array(FRAME_MAC_TAG_BYTES), -1), false);
    assert.throws(() => pair().a.seal(text("payload"), new Uint8Array(FRAME_MAC_TAG_BYTES + 3), 4), /no room for a 16-byte tag at offset 4 of 19 bytes/);
  });

  it("keys of the wrong length are a programming error", () => {
    assert.throws(() => frameMac({ sendKey: new Uint8Array(16), receiveKey: keyBToA }), /sendKey is 32 bytes, not 16/);
    assert.throws(() => frameMac({ sendKey: keyAToB, receiveKey: new Uint8Array(33) }), /receiveKey is 32 bytes, not 33/);
  });
});

describe("tagged frames through the receiving side's frame decoder", () => {
  /** Feeds `stream` to a decoder one chunk of `chunkBytes` at a time, opening each frame; returns the payloads that passed, stopping at the first failure. */
  function receive(receiver: FrameAuthenticator, stream: Uint8Array, chunkBytes: number): { payloads: string[]; failed: boolean } {
    const decoder = new FrameDecoder();
    const payloads: string[] = [];
    let failed = false;
    for (let offset = 0; offset < stream.length && !failed; offset += chunkBytes) {
      decoder.push(stream.subarray(offset, offset + chunkBytes), (body) => {
        if (!openBody(receiver, body)) {
          failed = true;
          return false;
        }
        payloads.push(Buffer.from(body.subarray(0, body.length - receiver.tagBytes)).toString("latin1"));
        return true;
      });
    }
    return { payloads, failed };
  }

  const names = ["pre-prepare", "prepare", "commit", "checkpoint"];

  /** The wire bytes of the sender's frames, then `edit` applied to the list of framed bodies. */
  function stream(edit: (bodies: Uint8Array[]) => Uint8Array[]): { bytes: Uint8Array; receiver: FrameAuthenticator } {
    const { a, b } = pair();
    const bodies = names.map((name) => sealed(a, text(name)));
    return { bytes: Uint8Array.from(Buffer.concat(edit(bodies).map((body) => encodeFrame(body)))), receiver: b };
  }

  for (const chunkBytes of [1, 7, 1_000]) {
    it(`in ${chunkBytes}-byte chunks: an untouched stream passes whole; a replayed or dropped frame stops it there`, () => {
      const untouched = stream((bodies) => bodies);
      assert.deepEqual(receive(untouched.receiver, untouched.bytes, chunkBytes), { payloads: names, failed: false });

      const replayed = stream((bodies) => [bodies[0], bodies[1], bodies[1], bodies[2]] as Uint8Array[]);
      assert.deepEqual(receive(replayed.receiver, replayed.bytes, chunkBytes), { payloads: names.slice(0, 2), failed: true });

      const dropped = stream((bodies) => [bodies[0], bodies[2], bodies[3]] as Uint8Array[]);
      assert.deepEqual(receive(dropped.receiver, dropped.bytes, chunkBytes), { payloads: names.slice(0, 1), failed: true });

      const swapped = stream((bodies) => [bodies[1], bodies[0]] as Uint8Array[]);
      assert.deepEqual(receive(swapped.receiver, swapped.bytes, chunkBytes), { payloads: [], failed: true });
    });
  }
});
