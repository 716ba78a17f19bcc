// The frame authenticator (src/net/frame-mac.ts) as a bare object and behind a FrameDecoder:
// the tags are the documented ChaCha20-Poly1305 construction, at any frame counter; the two ends
// of a connection accept each other's frames in order, and a frame that is altered, replayed,
// reordered, dropped or reflected fails, as does everything after it.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createCipheriv } from "node:crypto";
import { FRAME_BYTES_MAX_DEFAULT, FrameDecoder, encodeFrame } from "../../src/net/frame.js";
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

/**
 * The tag frame-mac.ts's header documents, computed here without it: ChaCha20-Poly1305 under
 * `key` with nonce = 4 zero bytes || u64 counter (big-endian), the payload as associated data and
 * an empty plaintext.
 */
function documentedTag(key: Uint8Array, counter: bigint, payload: Uint8Array): Uint8Array {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64BE(counter, 4);
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
  cipher.setAAD(payload, { plaintextLength: 0 });
  cipher.final();
  return new Uint8Array(cipher.getAuthTag());
}

describe("the frame tag format", () => {
  it("frame n's tag is ChaCha20-Poly1305 with nonce 0^4 || u64 n and the payload as AAD, for counters across 2^32, on both backends", () => {
    const firstFrame = 2 ** 32 - 2;
    for (const backend of BACKENDS) {
      const sender = frameMac({ sendKey: keyAToB, receiveKey: keyBToA }, backend, firstFrame);
      for (let frame = 0; frame < 4; frame += 1) {
        const payload = randomBytes(random, 1 + frame * 50);
        const counter = BigInt(firstFrame + frame);
        assert.deepEqual(seal(sender, payload), documentedTag(keyAToB, counter, payload), `${backend}, frame ${counter}`);
      }
    }
  });

  it("a fixed key, payload and counter give the pinned tag", () => {
    const key = Uint8Array.from({ length: FRAME_MAC_KEY_BYTES }, (_, index) => index);
    const counter = 2 ** 40 + 3;
    // From Python's cryptography package: ChaCha20Poly1305(bytes(range(32))).encrypt(
    // b"\0" * 4 + (2**40 + 3).to_bytes(8, "big"), b"", b"bulwark frame").hex()
    const expected = "207e7a3f07e8880459f7973e3683cc6e";
    assert.equal(Buffer.from(documentedTag(key, BigInt(counter), text("bulwark frame"))).toString("hex"), expected, "the construction itself");
    for (const backend of BACKENDS) {
      assert.equal(Buffer.from(seal(frameMac({ sendKey: key, receiveKey: key }, backend, counter), text("bulwark frame"))).toString("hex"), expected, backend);
    }
  });
});

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
    assert.throws(() => frameMac({ sendKey: keyAToB, receiveKey: keyBToA }, "auto", -1), /first frame number/);
  });

  it("counts the frames it opened", () => {
    const { a, b } = pair();
    assert.equal(b.framesOpened, 0);
    for (let frame = 0; frame < 3; frame += 1) assert.ok(openBody(b, sealed(a, text(`frame ${frame}`))));
    assert.equal(b.framesOpened, 3);
    assert.equal(openBody(b, sealed(a, text("frame 3")).fill(0, 0, 1)), false);
    assert.equal(b.framesOpened, 3, "a failed frame is not counted");
  });

  it("at the end of the counter, sealing answers false instead of throwing, and opening fails", () => {
    for (const backend of BACKENDS) {
      const last = Number.MAX_SAFE_INTEGER - 1;
      const a = frameMac({ sendKey: keyAToB, receiveKey: keyBToA }, backend, last);
      const b = frameMac({ sendKey: keyBToA, receiveKey: keyAToB }, backend, last);
      const tag = new Uint8Array(FRAME_MAC_TAG_BYTES);
      assert.ok(a.seal(text("last"), tag, 0), `the last frame is sealed (${backend})`);
      assert.ok(b.open(text("last"), tag, 0), "and opened");
      const untouched = new Uint8Array(FRAME_MAC_TAG_BYTES).fill(9);
      assert.equal(a.seal(text("one too many"), untouched, 0), false);
      assert.deepEqual(untouched, new Uint8Array(FRAME_MAC_TAG_BYTES).fill(9), "nothing written");
      assert.equal(b.open(text("one too many"), tag, 0), false);
    }
  });

  it("once disposed, it seals and opens nothing", () => {
    for (const backend of BACKENDS) {
      const { a, b } = pair(backend);
      assert.ok(openBody(b, sealed(a, text("before"))));
      const body = sealed(a, text("after"));
      a.dispose();
      b.dispose();
      assert.equal(a.seal(text("after"), new Uint8Array(FRAME_MAC_TAG_BYTES), 0), false, backend);
      assert.equal(openBody(b, body), false, backend);
    }
  });
});

describe("tagged frames through the receiving side's frame decoder", () => {
  /**
   * Feeds `stream` to a decoder whose frames have the tag as trailer, as a connection's do, one
   * chunk of `chunkBytes` at a time, opening each frame; returns the payloads that passed,
   * stopping at the first failure.
   */
  function receive(receiver: FrameAuthenticator, stream: Uint8Array, chunkBytes: number): { payloads: string[]; failed: boolean } {
    const decoder = new FrameDecoder();
    decoder.setLimits(FRAME_BYTES_MAX_DEFAULT, receiver.tagBytes);
    const payloads: string[] = [];
    let failed = false;
    for (let offset = 0; offset < stream.length && !failed; offset += chunkBytes) {
      decoder.push(stream.subarray(offset, offset + chunkBytes), (payload, source, tagOffset) => {
        if (!receiver.open(payload, source, tagOffset)) {
          failed = true;
          return false;
        }
        payloads.push(Buffer.from(payload).toString("latin1"));
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
