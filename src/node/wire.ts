// The one canonical binary encoding of the frames a replica's port carries after the handshake
// (wire-types.ts). Equal frames give equal bytes and every byte string decodes to at most one
// frame: presence and boolean bytes must be 0 or 1, integers must be safe, fixed-size fields have
// their size, and trailing bytes are refused. So a peer cannot make two replicas read different
// frames from the same bytes, and a frame re-encodes to exactly the bytes it came from.
//
// Layout: u8 format version (1) | u8 frame tag | body. Integers are big-endian: u64 holds a safe
// integer (0 .. 2^53 - 1, larger is refused when decoding), replica ids are u16, counts are u32.
// `bytes` is a u32 length and the bytes; `opt bytes` is a presence byte (0 absent, 1 present)
// followed, when present, by `bytes`.
//
//   tag  kind               body
//   1    consensus          the net/codec.ts encoding of the message, to the end of the frame
//   2    block-signature    u64 height | 64 bytes signature
//   3    state-request      u64 requestId | u64 seq | opt bytes after
//   4    state-chunk        u64 requestId | u64 seq | bytes header | u32 count (<= WIRE_STATE_ENTRIES_MAX)
//                           | count x (bytes key | bytes value) | u8 done (0 or 1)
//   5    state-unavailable  u64 requestId | u64 seq
//   6    blocks-request     u64 requestId | u64 from | u64 to
//   7    blocks             u64 requestId | u32 count (<= WIRE_BLOCKS_MAX)
//                           | count x (u64 height | bytes header | opt bytes body | opt bytes certificate)
//   8    client-request     bytes transaction
//   9    client-reply       u16 replica | u64 view | u64 height | 32 bytes client | u64 nonce | bytes result
//   10   signatures-request u64 from | u64 to
//   11   status-request     u64 requestId
//   12   status             u64 requestId | u16 replica | u64 view | u16 primary | u8 normal (0 or 1)
//                           | u64 executedHeight | u64 stableCheckpoint | u64 certifiedHeight
//   13   read-request       u64 requestId | bytes key (<= WIRE_READ_KEY_BYTES_MAX)
//   14   read-proof         u64 requestId | u64 height | bytes header | bytes certificate | opt bytes value
//                           | bytes proof (<= WIRE_READ_PROOF_BYTES_MAX)
//   15   read-unavailable   u64 requestId | u8 reason (1 uncertified, 2 overloaded, 3 stopping)
//   16   session-attach     32 bytes key | 64 bytes signature (client to replica; session-attach.ts)
//
// Decoding trusts nothing. Every length and count is checked against the bytes that remain before
// anything is allocated for it, so a hostile length or count costs nothing. Decoded byte fields
// are fresh plain Uint8Arrays that own their memory: the transport reuses its socket buffers, so a
// view into the input would change under the frame that holds it. A consensus body is copied once
// and decoded from that private copy (net/codec.ts returns request operations as views into the
// bytes it decodes, which then no one else holds).
//
// `decodeWireFrame` throws only WireDecodeError, and only from explicit checks: it does not catch
// and rewrap other errors, because one would be a bug here that the fuzz tests should expose.
// `encodeWireFrame` throws RangeError or TypeError for values no correct node produces. Each
// encoding first measures the frame (which validates every field) and then writes it into one
// allocation of exactly that size; the hot kinds (client-request, client-reply, consensus) build
// no intermediate arrays.

import { CodecError, decodeMessage, encodeMessage } from "../net/codec.js";
import type { ReadUnavailableReason, WireBlock, WireFrame, WireFrameKind } from "./wire-types.js";
import { READ_UNAVAILABLE_REASONS, WIRE_BLOCKS_MAX, WIRE_READ_KEY_BYTES_MAX, WIRE_READ_PROOF_BYTES_MAX, WIRE_STATE_ENTRIES_MAX } from "./wire-types.js";

export const WIRE_FORMAT_VERSION = 1;

/** Bytes of an Ed25519 signature (block-signature) and of a raw Ed25519 public key (client-reply). */
const SIGNATURE_BYTES = 64;
const CLIENT_KEY_BYTES = 32;
const HEADER_BYTES = 2;
const U16_MAX = 0xffff;
const U32_MAX = 0xffff_ffff;
const TWO_TO_32 = 2 ** 32;
/** The largest high word of a u64 that still holds a safe integer (2^53 - 1 >> 32). */
const U64_SAFE_HIGH_MAX = 0x1f_ffff;
/** The fewest bytes one state entry (two empty byte strings) and one block can take. */
const STATE_ENTRY_BYTES_MIN = 4 + 4;
const BLOCK_BYTES_MIN = 8 + 4 + 1 + 1;

// Tag 0 is left unused so that a zero-filled buffer never decodes.
const TAGS = {
  consensus: 1,
  "block-signature": 2,
  "state-request": 3,
  "state-chunk": 4,
  "state-unavailable": 5,
  "blocks-request": 6,
  blocks: 7,
  "client-request": 8,
  "client-reply": 9,
  "signatures-request": 10,
  "status-request": 11,
  status: 12,
  "read-request": 13,
  "read-proof": 14,
  "read-unavailable": 15,
  "session-attach": 16,
} as const satisfies Record<WireFrameKind, number>;

export class WireDecodeError extends Error {
  override readonly name = "WireDecodeError";
}

// ---------------------------------------------------------------------------------------------
// Measuring: validates every field and returns the bytes it takes.

function u64Bytes(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${field} must be a safe non-negative integer; got ${value}`);
  return 8;
}

function u16Bytes(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 0 || value > U16_MAX) throw new RangeError(`${field} must be an integer in [0, ${U16_MAX}]; got ${value}`);
  return 2;
}

function rawBytes(value: Uint8Array, field: string): number {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${field} must be a Uint8Array`);
  return value.length;
}

function fixedBytes(value: Uint8Array, length: number, field: string): number {
  if (rawBytes(value, field) !== length) throw new RangeError(`${field} must be exactly ${length} bytes; got ${value.length}`);
  return length;
}

function stringBytes(value: Uint8Array, field: string): number {
  const length = rawBytes(value, field);
  if (length > U32_MAX) throw new RangeError(`${field} of ${length} bytes exceeds the u32 length prefix`);
  return 4 + length;
}

/** A byte string whose length the format bounds (the decoder refuses longer ones). */
function boundedStringBytes(value: Uint8Array, lengthMax: number, field: string): number {
  const bytes = stringBytes(value, field);
  if (value.length > lengthMax) throw new RangeError(`${field} of ${value.length} bytes exceeds the maximum of ${lengthMax}`);
  return bytes;
}

function flagBytes(value: boolean, field: string): number {
  if (typeof value !== "boolean") throw new TypeError(`${field} must be a boolean; got ${typeof value}`);
  return 1;
}

function reasonCode(reason: ReadUnavailableReason): number {
  const index = READ_UNAVAILABLE_REASONS.indexOf(reason);
  if (index < 0) throw new RangeError(`unknown read-unavailable reason ${String(reason)}`);
  return index + 1;
}

function optionalBytes(value: Uint8Array | undefined, field: string): number {
  return value === undefined ? 1 : 1 + stringBytes(value, field);
}

function countBytes(count: number, countMax: number, field: string): number {
  if (count > countMax) throw new RangeError(`${count} ${field} exceed the maximum of ${countMax} per frame`);
  return 4;
}

/** Bytes of the body of any frame but consensus (whose encoder measures itself). */
function measureBody(frame: Exclude<WireFrame, { kind: "consensus" }>): number {
  switch (frame.kind) {
    case "block-signature":
      return u64Bytes(frame.height, "height") + fixedBytes(frame.signature, SIGNATURE_BYTES, "signature");
    case "state-request":
      return u64Bytes(frame.requestId, "requestId") + u64Bytes(frame.seq, "seq") + optionalBytes(frame.after, "after");
    case "state-chunk": {
      let bytes = u64Bytes(frame.requestId, "requestId") + u64Bytes(frame.seq, "seq") + stringBytes(frame.header, "header");
      bytes += countBytes(frame.entries.length, WIRE_STATE_ENTRIES_MAX, "state entries") + flagBytes(frame.done, "done");
      for (const [key, value] of frame.entries) bytes += stringBytes(key, "entry key") + stringBytes(value, "entry value");
      return bytes;
    }
    case "state-unavailable":
      return u64Bytes(frame.requestId, "requestId") + u64Bytes(frame.seq, "seq");
    case "blocks-request":
      return u64Bytes(frame.requestId, "requestId") + u64Bytes(frame.from, "from") + u64Bytes(frame.to, "to");
    case "signatures-request":
      return u64Bytes(frame.from, "from") + u64Bytes(frame.to, "to");
    case "blocks": {
      let bytes = u64Bytes(frame.requestId, "requestId") + countBytes(frame.blocks.length, WIRE_BLOCKS_MAX, "blocks");
      for (const block of frame.blocks) {
        bytes += u64Bytes(block.height, "block height") + stringBytes(block.header, "block header");
        bytes += optionalBytes(block.body, "block body") + optionalBytes(block.certificate, "block certificate");
      }
      return bytes;
    }
    case "client-request":
      return stringBytes(frame.transaction, "transaction");
    case "session-attach":
      return fixedBytes(frame.key, CLIENT_KEY_BYTES, "key") + fixedBytes(frame.signature, SIGNATURE_BYTES, "signature");
    case "client-reply":
      return (
        u16Bytes(frame.replica, "replica") +
        u64Bytes(frame.view, "view") +
        u64Bytes(frame.height, "height") +
        fixedBytes(frame.client, CLIENT_KEY_BYTES, "client") +
        u64Bytes(frame.nonce, "nonce") +
        stringBytes(frame.result, "result")
      );
    case "status-request":
      return u64Bytes(frame.requestId, "requestId");
    case "status":
      return (
        u64Bytes(frame.requestId, "requestId") +
        u16Bytes(frame.replica, "replica") +
        u64Bytes(frame.view, "view") +
        u16Bytes(frame.primary, "primary") +
        flagBytes(frame.normal, "normal") +
        u64Bytes(frame.executedHeight, "executedHeight") +
        u64Bytes(frame.stableCheckpoint, "stableCheckpoint") +
        u64Bytes(frame.certifiedHeight, "certifiedHeight")
      );
    case "read-request":
      return u64Bytes(frame.requestId, "requestId") + boundedStringBytes(frame.key, WIRE_READ_KEY_BYTES_MAX, "key");
    case "read-proof":
      return (
        u64Bytes(frame.requestId, "requestId") +
        u64Bytes(frame.height, "height") +
        stringBytes(frame.header, "header") +
        stringBytes(frame.certificate, "certificate") +
        optionalBytes(frame.value, "value") +
        boundedStringBytes(frame.proof, WIRE_READ_PROOF_BYTES_MAX, "proof")
      );
    case "read-unavailable":
      reasonCode(frame.reason);
      return u64Bytes(frame.requestId, "requestId") + 1;
    default:
      throw new TypeError(`unknown wire frame kind ${String((frame as { kind: unknown }).kind)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Writing: into a buffer of the measured size; the values were validated by measuring.

class Writer {
  readonly bytes: Uint8Array;
  private offset = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
  }

  u8(value: number): void {
    this.bytes[this.offset++] = value;
  }

  u16(value: number): void {
    this.bytes[this.offset++] = value >>> 8;
    this.bytes[this.offset++] = value & 0xff;
  }

  u32(value: number): void {
    this.bytes[this.offset++] = value >>> 24;
    this.bytes[this.offset++] = (value >>> 16) & 0xff;
    this.bytes[this.offset++] = (value >>> 8) & 0xff;
    this.bytes[this.offset++] = value & 0xff;
  }

  u64(value: number): void {
    this.u32(Math.floor(value / TWO_TO_32));
    this.u32(value >>> 0);
  }

  raw(value: Uint8Array): void {
    this.bytes.set(value, this.offset);
    this.offset += value.length;
  }

  string(value: Uint8Array): void {
    this.u32(value.length);
    this.raw(value);
  }

  optional(value: Uint8Array | undefined): void {
    this.u8(value === undefined ? 0 : 1);
    if (value !== undefined) this.string(value);
  }

  finish(): Uint8Array {
    // Measuring and writing must agree; a mismatch is a bug in this file.
    if (this.offset !== this.bytes.length) throw new Error(`wire encoder wrote ${this.offset} bytes into a ${this.bytes.length}-byte frame`);
    return this.bytes;
  }
}

function writeBody(w: Writer, frame: Exclude<WireFrame, { kind: "consensus" }>): void {
  switch (frame.kind) {
    case "block-signature":
      w.u64(frame.height);
      w.raw(frame.signature);
      return;
    case "state-request":
      w.u64(frame.requestId);
      w.u64(frame.seq);
      w.optional(frame.after);
      return;
    case "state-chunk":
      w.u64(frame.requestId);
      w.u64(frame.seq);
      w.string(frame.header);
      w.u32(frame.entries.length);
      for (const [key, value] of frame.entries) {
        w.string(key);
        w.string(value);
      }
      w.u8(frame.done ? 1 : 0);
      return;
    case "state-unavailable":
      w.u64(frame.requestId);
      w.u64(frame.seq);
      return;
    case "blocks-request":
      w.u64(frame.requestId);
      w.u64(frame.from);
      w.u64(frame.to);
      return;
    case "signatures-request":
      w.u64(frame.from);
      w.u64(frame.to);
      return;
    case "blocks":
      w.u64(frame.requestId);
      w.u32(frame.blocks.length);
      for (const block of frame.blocks) {
        w.u64(block.height);
        w.string(block.header);
        w.optional(block.body);
        w.optional(block.certificate);
      }
      return;
    case "client-request":
      w.string(frame.transaction);
      return;
    case "session-attach":
      w.raw(frame.key);
      w.raw(frame.signature);
      return;
    case "client-reply":
      w.u16(frame.replica);
      w.u64(frame.view);
      w.u64(frame.height);
      w.raw(frame.client);
      w.u64(frame.nonce);
      w.string(frame.result);
      return;
    case "status-request":
      w.u64(frame.requestId);
      return;
    case "status":
      w.u64(frame.requestId);
      w.u16(frame.replica);
      w.u64(frame.view);
      w.u16(frame.primary);
      w.u8(frame.normal ? 1 : 0);
      w.u64(frame.executedHeight);
      w.u64(frame.stableCheckpoint);
      w.u64(frame.certifiedHeight);
      return;
    case "read-request":
      w.u64(frame.requestId);
      w.string(frame.key);
      return;
    case "read-proof":
      w.u64(frame.requestId);
      w.u64(frame.height);
      w.string(frame.header);
      w.string(frame.certificate);
      w.optional(frame.value);
      w.string(frame.proof);
      return;
    case "read-unavailable":
      w.u64(frame.requestId);
      w.u8(reasonCode(frame.reason));
      return;
  }
}

/** Encodes a frame; throws RangeError or TypeError for values no correct node produces. */
export function encodeWireFrame(frame: WireFrame): Uint8Array {
  if (frame.kind === "consensus") {
    let message: Uint8Array;
    try {
      message = encodeMessage(frame.message);
    } catch (error) {
      if (error instanceof CodecError) throw new RangeError(`consensus message cannot be encoded: ${error.message}`, { cause: error });
      throw error;
    }
    // net/codec.ts grows its own buffer, so its bytes are copied once behind the frame header.
    const w = new Writer(HEADER_BYTES + message.length);
    w.u8(WIRE_FORMAT_VERSION);
    w.u8(TAGS.consensus);
    w.raw(message);
    return w.finish();
  }
  const w = new Writer(HEADER_BYTES + measureBody(frame));
  w.u8(WIRE_FORMAT_VERSION);
  w.u8(TAGS[frame.kind]);
  writeBody(w, frame);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// Reading

class Reader {
  private offset = 0;

  constructor(private readonly input: Uint8Array) {}

  private remaining(): number {
    return this.input.length - this.offset;
  }

  private need(count: number, field: string): void {
    if (count > this.remaining()) {
      throw new WireDecodeError(`truncated ${field}: needs ${count} bytes at offset ${this.offset}, ${this.remaining()} remain`);
    }
  }

  u8(field: string): number {
    this.need(1, field);
    return this.input[this.offset++]!;
  }

  u16(field: string): number {
    this.need(2, field);
    const value = (this.input[this.offset]! << 8) | this.input[this.offset + 1]!;
    this.offset += 2;
    return value;
  }

  private u32At(offset: number): number {
    const b = this.input;
    return b[offset]! * 0x100_0000 + ((b[offset + 1]! << 16) | (b[offset + 2]! << 8) | b[offset + 3]!);
  }

  u32(field: string): number {
    this.need(4, field);
    const value = this.u32At(this.offset);
    this.offset += 4;
    return value;
  }

  u64(field: string): number {
    this.need(8, field);
    const high = this.u32At(this.offset);
    if (high > U64_SAFE_HIGH_MAX) throw new WireDecodeError(`${field} at offset ${this.offset} is above 2^53 - 1`);
    const value = high * TWO_TO_32 + this.u32At(this.offset + 4);
    this.offset += 8;
    return value;
  }

  /** A byte that must be 0 or 1: `done` flags and presence bytes. */
  flag(field: string): boolean {
    const value = this.u8(field);
    if (value > 1) throw new WireDecodeError(`${field} byte must be 0 or 1; got ${value}`);
    return value === 1;
  }

  /** `length` bytes copied into memory of their own (the input buffer is reused by the transport). */
  fixed(length: number, field: string): Uint8Array {
    this.need(length, field);
    const copy = new Uint8Array(length);
    copy.set(this.input.subarray(this.offset, this.offset + length));
    this.offset += length;
    return copy;
  }

  string(field: string): Uint8Array {
    return this.fixed(this.u32(`${field} length`), field);
  }

  /** A byte string refused, before anything is allocated, when longer than `lengthMax`. */
  bounded(lengthMax: number, field: string): Uint8Array {
    const length = this.u32(`${field} length`);
    if (length > lengthMax) throw new WireDecodeError(`${field} of ${length} bytes exceeds the maximum of ${lengthMax}`);
    return this.fixed(length, field);
  }

  optional(field: string): Uint8Array | undefined {
    return this.flag(`${field} presence`) ? this.string(field) : undefined;
  }

  /** A u32 count, refused unless it is within `countMax` and its elements could fit in what remains. */
  count(countMax: number, elementBytesMin: number, field: string): number {
    const count = this.u32(`${field} count`);
    if (count > countMax) throw new WireDecodeError(`${count} ${field} exceed the maximum of ${countMax} per frame`);
    if (count * elementBytesMin > this.remaining()) {
      throw new WireDecodeError(`declares ${count} ${field}, needing at least ${count * elementBytesMin} bytes, but ${this.remaining()} remain`);
    }
    return count;
  }

  /** Everything after the current offset, copied. */
  rest(field: string): Uint8Array {
    return this.fixed(this.remaining(), field);
  }

  end(): void {
    if (this.remaining() !== 0) throw new WireDecodeError(`${this.remaining()} trailing bytes after the frame`);
  }
}

function readBlock(r: Reader): WireBlock {
  const height = r.u64("block height");
  const header = r.string("block header");
  const body = r.optional("block body");
  const certificate = r.optional("block certificate");
  // Absent fields are left out rather than set to undefined, as the sender's objects have them.
  if (body === undefined) return certificate === undefined ? { height, header } : { height, header, certificate };
  return certificate === undefined ? { height, header, body } : { height, header, body, certificate };
}

function readConsensus(r: Reader): WireFrame {
  try {
    return { kind: "consensus", message: decodeMessage(r.rest("consensus message")) };
  } catch (error) {
    if (error instanceof CodecError) throw new WireDecodeError(`consensus message: ${error.message}`, { cause: error });
    throw error;
  }
}

function readBody(r: Reader, tag: number): WireFrame {
  switch (tag) {
    case TAGS.consensus:
      return readConsensus(r);
    case TAGS["block-signature"]:
      return { kind: "block-signature", height: r.u64("height"), signature: r.fixed(SIGNATURE_BYTES, "signature") };
    case TAGS["state-request"]: {
      const requestId = r.u64("requestId");
      const seq = r.u64("seq");
      const after = r.optional("after");
      return after === undefined ? { kind: "state-request", requestId, seq } : { kind: "state-request", requestId, seq, after };
    }
    case TAGS["state-chunk"]: {
      const requestId = r.u64("requestId");
      const seq = r.u64("seq");
      const header = r.string("header");
      const count = r.count(WIRE_STATE_ENTRIES_MAX, STATE_ENTRY_BYTES_MIN, "state entries");
      const entries: [Uint8Array, Uint8Array][] = [];
      for (let index = 0; index < count; index++) entries.push([r.string("entry key"), r.string("entry value")]);
      return { kind: "state-chunk", requestId, seq, header, entries, done: r.flag("done") };
    }
    case TAGS["state-unavailable"]:
      return { kind: "state-unavailable", requestId: r.u64("requestId"), seq: r.u64("seq") };
    case TAGS["blocks-request"]:
      return { kind: "blocks-request", requestId: r.u64("requestId"), from: r.u64("from"), to: r.u64("to") };
    case TAGS["signatures-request"]:
      return { kind: "signatures-request", from: r.u64("from"), to: r.u64("to") };
    case TAGS.blocks: {
      const requestId = r.u64("requestId");
      const count = r.count(WIRE_BLOCKS_MAX, BLOCK_BYTES_MIN, "blocks");
      const blocks: WireBlock[] = [];
      for (let index = 0; index < count; index++) blocks.push(readBlock(r));
      return { kind: "blocks", requestId, blocks };
    }
    case TAGS["client-request"]:
      return { kind: "client-request", transaction: r.string("transaction") };
    case TAGS["session-attach"]:
      return { kind: "session-attach", key: r.fixed(CLIENT_KEY_BYTES, "key"), signature: r.fixed(SIGNATURE_BYTES, "signature") };
    case TAGS["client-reply"]:
      return {
        kind: "client-reply",
        replica: r.u16("replica"),
        view: r.u64("view"),
        height: r.u64("height"),
        client: r.fixed(CLIENT_KEY_BYTES, "client"),
        nonce: r.u64("nonce"),
        result: r.string("result"),
      };
    case TAGS["status-request"]:
      return { kind: "status-request", requestId: r.u64("requestId") };
    case TAGS.status:
      return {
        kind: "status",
        requestId: r.u64("requestId"),
        replica: r.u16("replica"),
        view: r.u64("view"),
        primary: r.u16("primary"),
        normal: r.flag("normal"),
        executedHeight: r.u64("executedHeight"),
        stableCheckpoint: r.u64("stableCheckpoint"),
        certifiedHeight: r.u64("certifiedHeight"),
      };
    case TAGS["read-request"]:
      return { kind: "read-request", requestId: r.u64("requestId"), key: r.bounded(WIRE_READ_KEY_BYTES_MAX, "key") };
    case TAGS["read-proof"]: {
      const requestId = r.u64("requestId");
      const height = r.u64("height");
      const header = r.string("header");
      const certificate = r.string("certificate");
      const value = r.optional("value");
      const proof = r.bounded(WIRE_READ_PROOF_BYTES_MAX, "proof");
      return value === undefined
        ? { kind: "read-proof", requestId, height, header, certificate, proof }
        : { kind: "read-proof", requestId, height, header, certificate, value, proof };
    }
    case TAGS["read-unavailable"]: {
      const requestId = r.u64("requestId");
      const code = r.u8("reason");
      const reason = READ_UNAVAILABLE_REASONS[code - 1];
      if (reason === undefined) throw new WireDecodeError(`unknown read-unavailable reason code ${code}`);
      return { kind: "read-unavailable", requestId, reason };
    }
    default:
      throw new WireDecodeError(`unknown wire frame tag ${tag}`);
  }
}

/** Decodes one frame; throws WireDecodeError, and nothing else, for any malformed input. */
export function decodeWireFrame(bytes: Uint8Array): WireFrame {
  const r = new Reader(bytes);
  const version = r.u8("format version");
  if (version !== WIRE_FORMAT_VERSION) throw new WireDecodeError(`unsupported wire format version ${version}`);
  const frame = readBody(r, r.u8("frame tag"));
  r.end();
  return frame;
}
