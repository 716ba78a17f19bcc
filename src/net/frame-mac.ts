// The frame authenticator of issue 4 §2: after the handshake, every frame in each direction
// carries a 16-byte tag under that direction's key, over the frame's payload and an implicit
// frame counter. Both ends count the frames of each direction from 0, so the counter never
// travels; a frame that is altered, replayed, reordered, dropped or reflected back to its sender
// gives a tag the receiver does not expect.
//
// Primitive: ChaCha20-Poly1305 (RFC 8439) used as a MAC. The tag of frame n is the AEAD tag with
// nonce = 4 zero bytes || u64 n (big-endian), the payload as associated data and an empty
// plaintext: ChaCha20 turns (key, n) into a one-time Poly1305 key, and Poly1305 authenticates the
// payload and its length under it. The counter is the nonce rather than a prefix of the message,
// which binds it just as well (a tag under nonce n says nothing about nonce m), and spares copying
// counter and payload into one buffer. A nonce never repeats under a key: each key serves one
// direction of one connection, and the counter only grows. Nothing is encrypted; issue 4 asks
// for authentication, and the signed consensus messages must stay readable to whoever relays them.
//
// Why this primitive, measured with src/bench/frame-mac-bench.ts on the 2-vCPU CI machine kind
// (Node 20.20, one core, quiet machine, medians of 3 interleaved runs; µs per tag, the
// authenticator's own bookkeeping included for the kept one; shared machines drift ±25 %, and
// under load from other jobs every figure doubled):
//
//   payload                                         64 B    100 B    1 KiB   16 KiB
//   ChaCha20-Poly1305, sodium-native (kept)         0.55    0.55     0.93     5.1
//   keyed BLAKE2b-128, sodium (counter || payload)   0.52    0.53     1.48    16.3
//   HMAC-SHA256, node:crypto KeyObject               2.38    2.47     4.05    12.1
//   ChaCha20-Poly1305, node:crypto (fallback)        3.38    3.23     3.28     5.5
//   HMAC-SHA512-256, sodium crypto_auth             1.40    1.55     3.92    51.3
//
// Keyed BLAKE2b (LIMITS.md's 0.77 µs) ties for consensus-sized frames but is 1.6 times slower at
// 1 KiB and 3 times at 16 KiB (Poly1305 is the faster hash of long inputs, and batches, blocks and
// state-transfer chunks are long). And ChaCha20-Poly1305 has a node:crypto implementation giving
// the same tags, which keyed BLAKE2b does not, so a process whose sodium-native addon failed to
// load still talks to the others, about 3 µs a frame slower. The rest of the transport spends
// ~0.13 µs per small frame sent, so on an authenticated connection the tag is most of the cost;
// connection.ts has the throughput figures.

import { type KeyObject, createCipheriv, createSecretKey } from "node:crypto";
import { type CryptoBackendName, type CryptoBackendPreference, chooseBackend } from "../crypto/sodium.js";
import type { FrameAuthenticator } from "./handshake.js";

export const FRAME_MAC_TAG_BYTES = 16;
export const FRAME_MAC_KEY_BYTES = 32;
const NONCE_BYTES = 12;
// Where the counter sits in the nonce: after 4 zero bytes, as RFC 8439 §2.8's 32-bit constant.
const NONCE_COUNTER_OFFSET = 4;

export interface FrameMacKeys {
  /** Key of the frames this end sends: the peer's `receiveKey`. */
  readonly sendKey: Uint8Array;
  /** Key of the frames this end receives: the peer's `sendKey`. */
  readonly receiveKey: Uint8Array;
}

interface SodiumAead {
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(
    ciphertext: Uint8Array,
    tag: Uint8Array,
    message: Uint8Array,
    associatedData: Uint8Array | null,
    nsec: null,
    nonce: Uint8Array,
    key: Uint8Array,
  ): number;
}

const SODIUM_FUNCTIONS: readonly (keyof SodiumAead)[] = ["crypto_aead_chacha20poly1305_ietf_encrypt_detached"];

/**
 * The authenticator of one end of a connection. `preference` picks the library ("auto":
 * sodium-native when it loads); both compute the same tags.
 */
export function frameMac(keys: FrameMacKeys, preference: CryptoBackendPreference = "auto"): FrameAuthenticator & { readonly backend: CryptoBackendName } {
  for (const [name, key] of [["sendKey", keys.sendKey], ["receiveKey", keys.receiveKey]] as const) {
    if (key.length !== FRAME_MAC_KEY_BYTES) throw new RangeError(`a frame MAC ${name} is ${FRAME_MAC_KEY_BYTES} bytes, not ${key.length}`);
  }
  const chosen = chooseBackend<SodiumAead>(preference, SODIUM_FUNCTIONS, "frame MAC");
  return chosen.sodium === null ? new NodeFrameMac(keys) : new SodiumFrameMac(keys, chosen.sodium);
}

/** The counters, nonces and tag comparison both backends share; a subclass computes tags. */
abstract class CountingFrameMac implements FrameAuthenticator {
  abstract readonly backend: CryptoBackendName;
  readonly tagBytes = FRAME_MAC_TAG_BYTES;
  // Frames sealed and opened so far: the next frame's number in each direction. Numbers, not
  // bigints, on the hot path; 2^53 frames would take 57 years at 5M frames/s.
  private sent = 0;
  private received = 0;
  private failed = false;
  protected readonly sendNonce = Buffer.alloc(NONCE_BYTES);
  protected readonly receiveNonce = Buffer.alloc(NONCE_BYTES);

  // Where a subclass computes each tag before it is copied out or compared: 16 bytes copied per
  // frame cost less than the view of the target that computing in place would need.
  protected readonly tag = Buffer.alloc(FRAME_MAC_TAG_BYTES);

  seal(payload: Uint8Array, target: Uint8Array, offset: number): void {
    if (!(offset >= 0 && offset + FRAME_MAC_TAG_BYTES <= target.length)) {
      throw new RangeError(`frame MAC: no room for a ${FRAME_MAC_TAG_BYTES}-byte tag at offset ${offset} of ${target.length} bytes`);
    }
    if (this.sent >= Number.MAX_SAFE_INTEGER) throw new Error("frame MAC: the send counter is exhausted");
    writeCounter(this.sendNonce, this.sent);
    this.sent += 1;
    this.computeSendTag(payload);
    target.set(this.tag, offset);
  }

  open(payload: Uint8Array, source: Uint8Array, offset: number): boolean {
    if (this.failed || !(offset >= 0 && offset + FRAME_MAC_TAG_BYTES <= source.length) || this.received >= Number.MAX_SAFE_INTEGER) {
      this.failed = true;
      return false;
    }
    writeCounter(this.receiveNonce, this.received);
    this.computeReceiveTag(payload);
    // Constant-time: the loop reads every byte whatever the first difference.
    const expected = this.tag;
    let difference = 0;
    for (let index = 0; index < FRAME_MAC_TAG_BYTES; index++) difference |= (expected[index] as number) ^ (source[offset + index] as number);
    if (difference !== 0) {
      this.failed = true;
      return false;
    }
    this.received += 1;
    return true;
  }

  /** Writes the tag of `payload` under the send key and `sendNonce` into `this.tag`. */
  protected abstract computeSendTag(payload: Uint8Array): void;
  /** Writes the tag of `payload` under the receive key and `receiveNonce` into `this.tag`. */
  protected abstract computeReceiveTag(payload: Uint8Array): void;
}

const EMPTY = Buffer.alloc(0);

class SodiumFrameMac extends CountingFrameMac {
  readonly backend = "sodium-native";
  private readonly sendKey: Buffer;
  private readonly receiveKey: Buffer;

  constructor(
    keys: FrameMacKeys,
    private readonly sodium: SodiumAead,
  ) {
    super();
    this.sendKey = Buffer.from(keys.sendKey);
    this.receiveKey = Buffer.from(keys.receiveKey);
  }

  protected computeSendTag(payload: Uint8Array): void {
    this.sodium.crypto_aead_chacha20poly1305_ietf_encrypt_detached(EMPTY, this.tag, EMPTY, payload, null, this.sendNonce, this.sendKey);
  }

  // Computing the expected tag and comparing it, rather than calling libsodium's decrypt, needs
  // no view of the received tag and no exception for a bad one.
  protected computeReceiveTag(payload: Uint8Array): void {
    this.sodium.crypto_aead_chacha20poly1305_ietf_encrypt_detached(EMPTY, this.tag, EMPTY, payload, null, this.receiveNonce, this.receiveKey);
  }
}

class NodeFrameMac extends CountingFrameMac {
  readonly backend = "node:crypto";
  private readonly sendKey: KeyObject;
  private readonly receiveKey: KeyObject;

  constructor(keys: FrameMacKeys) {
    super();
    this.sendKey = createSecretKey(Buffer.from(keys.sendKey));
    this.receiveKey = createSecretKey(Buffer.from(keys.receiveKey));
  }

  protected computeSendTag(payload: Uint8Array): void {
    this.tag.set(nodeTag(this.sendKey, this.sendNonce, payload));
  }

  protected computeReceiveTag(payload: Uint8Array): void {
    this.tag.set(nodeTag(this.receiveKey, this.receiveNonce, payload));
  }
}

function nodeTag(key: KeyObject, nonce: Buffer, payload: Uint8Array): Buffer {
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: FRAME_MAC_TAG_BYTES });
  cipher.setAAD(payload, { plaintextLength: 0 });
  cipher.final();
  return cipher.getAuthTag();
}

function writeCounter(nonce: Buffer, counter: number): void {
  nonce.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), NONCE_COUNTER_OFFSET);
  nonce.writeUInt32BE(counter >>> 0, NONCE_COUNTER_OFFSET + 4);
}
