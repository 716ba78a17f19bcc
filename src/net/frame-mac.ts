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
// load still talks to the others, about 3 µs a frame slower; crypto/sodium.ts's cryptoBackends()
// reports it, for the runtime to log. The rest of the transport spends ~0.13 µs per small frame
// sent, so on an authenticated connection the tag is most of the cost; connection.ts has the
// throughput figures.
//
// Measured and deferred: one tag per write batch instead of per frame. A tag over a whole 64 KiB
// batch cost 25 µs with sodium-native (the same bench, --payload-bytes 65536, on a loaded machine
// where a 100-byte tag cost 0.83 µs), under 0.1 µs for each of its several hundred small frames
// against ~0.55-0.83 µs per frame now. It is not done because it changes the wire format: TCP
// does not keep the sender's write boundaries, so batches would need framing of their own, and a
// receiver could deliver no frame of a batch until the batch's tag arrived and checked out, which
// adds a batch's latency and buffer to every connection. At a million tagged frames a second a
// connection already carries over a hundred times what signature verification lets a replica
// order (connection.ts, LIMITS.md).
//
// A direction's frame counter stops short of 2^53 (exact integers), 57 years at 5M frames/s:
// seal() then answers false and the connection closes ("mac-exhausted"); the next one agrees new
// keys. When the connection closes, dispose() zeroes both keys.

import { createCipheriv } from "node:crypto";
import { type CryptoBackendPreference, type SodiumFrameMac, chooseSodium } from "../crypto/sodium.js";
import type { FrameAuthenticator } from "./handshake.js";

export const FRAME_MAC_TAG_BYTES = 16;
export const FRAME_MAC_KEY_BYTES = 32;
const NONCE_BYTES = 12;
// Where the counter sits in the nonce: after 4 zero bytes, as RFC 8439 §2.8's 32-bit constant.
const NONCE_COUNTER_OFFSET = 4;
// Frame numbers are JavaScript numbers, not bigints, on the hot path; a direction stops before
// they stop being exact. 2^53 frames would take 57 years at 5M frames/s.
const FRAME_NUMBER_LIMIT = Number.MAX_SAFE_INTEGER;

export interface FrameMacKeys {
  /** Key of the frames this end sends: the peer's `receiveKey`. */
  readonly sendKey: Uint8Array;
  /** Key of the frames this end receives: the peer's `sendKey`. */
  readonly receiveKey: Uint8Array;
}

/** Writes the tag of `payload` under `key` and `nonce` into `tag`: one such function per library. */
type TagFunction = (key: Buffer, nonce: Buffer, payload: Uint8Array, tag: Buffer) => void;

const EMPTY = Buffer.alloc(0);

// The AEAD's encryption of an empty message; the receiver computes the expected tag the same way
// and compares, which needs no view of the received tag and no exception for a bad one (libsodium's
// decrypt would need both).
function sodiumTagFunction(sodium: SodiumFrameMac): TagFunction {
  return (key, nonce, payload, tag) => {
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt_detached(EMPTY, tag, EMPTY, payload, null, nonce, key);
  };
}

// A raw key rather than a KeyObject: the same speed within noise (~4.7 µs a 100-byte tag either
// way, 3 runs), and a Buffer can be zeroed when the connection closes; a KeyObject cannot.
const nodeTag: TagFunction = (key, nonce, payload, tag) => {
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: FRAME_MAC_TAG_BYTES });
  cipher.setAAD(payload, { plaintextLength: 0 });
  cipher.final();
  tag.set(cipher.getAuthTag());
};

function tagFunction(preference: CryptoBackendPreference): TagFunction {
  const sodium = chooseSodium("mac", preference);
  return sodium === null ? nodeTag : sodiumTagFunction(sodium);
}

// Resolved once, at module load: every connection shares it, and cryptoBackends() (sodium.ts)
// reports it.
const defaultTag = tagFunction("auto");

/**
 * The authenticator of one end of a connection. `backend` picks the library ("auto", the
 * default: sodium-native when it loads); both compute the same tags. `firstFrame` numbers the
 * first frame of each direction: 0 on every connection, higher only in tests of large counters.
 */
export function frameMac(keys: FrameMacKeys, backend: CryptoBackendPreference = "auto", firstFrame = 0): FrameAuthenticator {
  for (const [name, key] of [["sendKey", keys.sendKey], ["receiveKey", keys.receiveKey]] as const) {
    if (key.length !== FRAME_MAC_KEY_BYTES) throw new RangeError(`a frame MAC ${name} is ${FRAME_MAC_KEY_BYTES} bytes, not ${key.length}`);
  }
  if (!Number.isSafeInteger(firstFrame) || firstFrame < 0) throw new RangeError(`a frame MAC's first frame number must be a safe non-negative integer, not ${firstFrame}`);
  return new FrameMac(keys, backend === "auto" ? defaultTag : tagFunction(backend), firstFrame);
}

class FrameMac implements FrameAuthenticator {
  readonly tagBytes = FRAME_MAC_TAG_BYTES;
  // Copies: the handshake zeroes its own once the authenticator exists, and dispose() zeroes these.
  private readonly sendKey: Buffer;
  private readonly receiveKey: Buffer;
  // The next frame's number in each direction.
  private sent: number;
  private received: number;
  private failed = false;
  private disposed = false;
  private readonly sendNonce = Buffer.alloc(NONCE_BYTES);
  private readonly receiveNonce = Buffer.alloc(NONCE_BYTES);
  // Where each tag is computed before it is copied out or compared: 16 bytes copied per frame cost
  // less than the view of the target that computing in place would need.
  private readonly tag = Buffer.alloc(FRAME_MAC_TAG_BYTES);

  constructor(
    keys: FrameMacKeys,
    private readonly computeTag: TagFunction,
    firstFrame: number,
  ) {
    this.sendKey = Buffer.from(keys.sendKey);
    this.receiveKey = Buffer.from(keys.receiveKey);
    this.sent = firstFrame;
    this.received = firstFrame;
  }

  get framesOpened(): number {
    return this.received;
  }

  seal(payload: Uint8Array, target: Uint8Array, offset: number): boolean {
    if (!(offset >= 0 && offset + FRAME_MAC_TAG_BYTES <= target.length)) {
      throw new RangeError(`frame MAC: no room for a ${FRAME_MAC_TAG_BYTES}-byte tag at offset ${offset} of ${target.length} bytes`);
    }
    if (this.disposed || this.sent >= FRAME_NUMBER_LIMIT) return false;
    writeCounter(this.sendNonce, this.sent);
    this.sent += 1;
    this.computeTag(this.sendKey, this.sendNonce, payload, this.tag);
    target.set(this.tag, offset);
    return true;
  }

  open(payload: Uint8Array, source: Uint8Array, offset: number): boolean {
    if (this.failed || !(offset >= 0 && offset + FRAME_MAC_TAG_BYTES <= source.length) || this.received >= FRAME_NUMBER_LIMIT) {
      this.failed = true;
      return false;
    }
    writeCounter(this.receiveNonce, this.received);
    this.computeTag(this.receiveKey, this.receiveNonce, payload, this.tag);
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

  dispose(): void {
    this.disposed = true;
    this.failed = true;
    this.sendKey.fill(0);
    this.receiveKey.fill(0);
    this.tag.fill(0);
  }
}

function writeCounter(nonce: Buffer, counter: number): void {
  nonce.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), NONCE_COUNTER_OFFSET);
  nonce.writeUInt32BE(counter >>> 0, NONCE_COUNTER_OFFSET + 4);
}
