import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ClientRequest, ReplicaMessage } from "../../src/consensus/pbft/types.js";
import { Random } from "../../src/sim/random.js";
import { WireDecodeError, decodeWireFrame, encodeWireFrame } from "../../src/node/wire.js";
import { WIRE_BLOCKS_MAX, WIRE_READ_KEY_BYTES_MAX, WIRE_READ_PROOF_BYTES_MAX, WIRE_STATE_ENTRIES_MAX } from "../../src/node/wire-types.js";
import type { WireFrame } from "../../src/node/wire-types.js";
import { fromHex, hex, randomBytes } from "../support/random-bytes.js";

const MAX = Number.MAX_SAFE_INTEGER;

/** Distinct filler bytes, so a field read from the wrong offset shows in the comparison. */
function bytes(length: number, first: number): Uint8Array {
  return Uint8Array.from({ length }, (_, index) => (first + index) & 0xff);
}

// net/codec.ts decodes request operations as Buffers, so the samples use Buffers there too.
function clientRequest(client: string, timestamp: number): ClientRequest {
  return { client, timestamp, operation: Buffer.from(`op-${client}-${timestamp}`), signature: `sig-${client}` };
}

const prepare: ReplicaMessage = { type: "prepare", view: 3, seq: 17, digest: "d".repeat(64), replica: 2, signature: "s".repeat(128) };
const prePrepare: ReplicaMessage = {
  type: "pre-prepare",
  view: 0,
  seq: 1,
  digest: "ab12",
  requests: [clientRequest("alice", 1), clientRequest("bob", MAX)],
  replica: 0,
  signature: "pp-sig",
};

/** Every kind of frame, with optional fields present and absent, empty lists and the largest integers. */
const samples: readonly (readonly [name: string, frame: WireFrame])[] = [
  ["consensus prepare", { kind: "consensus", message: prepare }],
  ["consensus pre-prepare", { kind: "consensus", message: prePrepare }],
  ["block-signature", { kind: "block-signature", height: MAX, signature: bytes(64, 1) }],
  ["state-request without after", { kind: "state-request", requestId: 0, seq: MAX }],
  ["state-request with after", { kind: "state-request", requestId: 7, seq: 40, after: bytes(5, 9) }],
  ["state-request with an empty after", { kind: "state-request", requestId: MAX, seq: 0, after: new Uint8Array(0) }],
  [
    "state-chunk of several entries",
    {
      kind: "state-chunk",
      requestId: 9,
      seq: 128,
      header: bytes(40, 3),
      entries: [
        [bytes(1, 0x10), bytes(3, 0x20)],
        [bytes(2, 0x30), new Uint8Array(0)],
        [bytes(4, 0x40), bytes(300, 0x50)],
      ],
      done: false,
    },
  ],
  ["state-chunk of no entries", { kind: "state-chunk", requestId: MAX, seq: MAX, header: new Uint8Array(0), entries: [], done: true }],
  ["state-unavailable", { kind: "state-unavailable", requestId: 5, seq: MAX }],
  ["blocks-request", { kind: "blocks-request", requestId: 1, from: 0, to: MAX }],
  ["signatures-request", { kind: "signatures-request", from: 1, to: MAX }],
  ["blocks, none", { kind: "blocks", requestId: 2, blocks: [] }],
  [
    "blocks with and without body and certificate",
    {
      kind: "blocks",
      requestId: MAX,
      blocks: [
        { height: 1, header: bytes(8, 1) },
        { height: 2, header: bytes(8, 2), body: bytes(20, 3) },
        { height: 3, header: bytes(8, 4), certificate: bytes(12, 5) },
        { height: MAX, header: bytes(8, 6), body: new Uint8Array(0), certificate: bytes(12, 7) },
      ],
    },
  ],
  ["client-request", { kind: "client-request", transaction: bytes(90, 11) }],
  ["client-request, empty", { kind: "client-request", transaction: new Uint8Array(0) }],
  ["client-reply", { kind: "client-reply", replica: 3, view: 12, height: 99, client: bytes(32, 200), nonce: MAX, result: bytes(6, 8) }],
  ["client-reply from the reply cache", { kind: "client-reply", replica: 0xffff, view: MAX, height: 0, client: bytes(32, 0), nonce: 0, result: new Uint8Array(0) }],
  ["status-request", { kind: "status-request", requestId: MAX }],
  [
    "status in a view change",
    { kind: "status", requestId: 4, replica: 2, view: MAX, primary: 0xffff, normal: false, executedHeight: 90, stableCheckpoint: 64, certifiedHeight: 89 },
  ],
  ["status of a fresh replica", { kind: "status", requestId: 0, replica: 0, view: 0, primary: 0, normal: true, executedHeight: 0, stableCheckpoint: 0, certifiedHeight: 0 }],
  ["read-request", { kind: "read-request", requestId: 12, key: bytes(40, 0x61) }],
  ["read-request of the longest key", { kind: "read-request", requestId: 0, key: bytes(WIRE_READ_KEY_BYTES_MAX, 1) }],
  [
    "read-proof of a present value",
    { kind: "read-proof", requestId: 13, height: MAX, header: bytes(158, 2), certificate: bytes(209, 3), value: bytes(10, 4), proof: bytes(99, 5) },
  ],
  [
    "read-proof of absence at genesis",
    { kind: "read-proof", requestId: 0, height: 0, header: new Uint8Array(0), certificate: new Uint8Array(0), proof: bytes(3, 1) },
  ],
  ["read-proof of an empty value", { kind: "read-proof", requestId: 1, height: 1, header: bytes(2, 2), certificate: bytes(2, 3), value: new Uint8Array(0), proof: new Uint8Array(0) }],
  ["read-unavailable, uncertified", { kind: "read-unavailable", requestId: 14, reason: "uncertified" }],
  ["read-unavailable, overloaded", { kind: "read-unavailable", requestId: MAX, reason: "overloaded" }],
  ["read-unavailable, stopping", { kind: "read-unavailable", requestId: 0, reason: "stopping" }],
  ["session-attach", { kind: "session-attach", key: new Uint8Array(32).fill(7), signature: new Uint8Array(64).fill(9) }],
];

function sample(name: string): WireFrame {
  const found = samples.find(([sampleName]) => sampleName === name);
  assert.ok(found, `no sample named ${name}`);
  return found[1];
}

/** Decodes `input`; returns the frame, or the WireDecodeError it raised (anything else fails the test). */
function decodeOrError(input: Uint8Array): WireFrame | WireDecodeError {
  try {
    return decodeWireFrame(input);
  } catch (error) {
    assert.ok(error instanceof WireDecodeError, `decoding threw ${String(error)}`);
    return error;
  }
}

/** Every Uint8Array inside a decoded frame (byte fields, entries and blocks). */
function byteFields(value: unknown): Uint8Array[] {
  if (value instanceof Uint8Array) return [value];
  if (value === null || typeof value !== "object") return [];
  return Object.values(value).flatMap(byteFields);
}

/**
 * Runs `action` while counting the largest Uint8Array allocated by length, so a test can show a
 * hostile length was refused before any memory was reserved for it.
 */
function largestUint8ArrayAllocated(action: () => void): number {
  const original = globalThis.Uint8Array;
  let largest = 0;
  globalThis.Uint8Array = new Proxy(original, {
    construct(target, args: unknown[], newTarget: new (...args: never[]) => unknown): object {
      if (typeof args[0] === "number") largest = Math.max(largest, args[0]);
      return Reflect.construct(target, args, newTarget) as object;
    },
  });
  try {
    action();
  } finally {
    globalThis.Uint8Array = original;
  }
  return largest;
}

describe("wire frames", () => {
  it("round-trip every kind of frame", () => {
    const kinds = new Set(samples.map(([, frame]) => frame.kind));
    assert.equal(kinds.size, 16, "the samples cover every kind of frame");
    for (const [name, frame] of samples) {
      assert.deepEqual(decodeWireFrame(encodeWireFrame(frame)), frame, name);
    }
  });

  it("round-trip a state chunk of the most entries and a blocks frame of the most blocks", () => {
    const empty = new Uint8Array(0);
    const entries = Array.from({ length: WIRE_STATE_ENTRIES_MAX }, (): [Uint8Array, Uint8Array] => [empty, empty]);
    const chunk: WireFrame = { kind: "state-chunk", requestId: 1, seq: 2, header: empty, entries, done: true };
    assert.deepEqual(decodeWireFrame(encodeWireFrame(chunk)), chunk);
    const blocks: WireFrame = { kind: "blocks", requestId: 1, blocks: Array.from({ length: WIRE_BLOCKS_MAX }, (_, height) => ({ height, header: empty })) };
    assert.deepEqual(decodeWireFrame(encodeWireFrame(blocks)), blocks);
  });

  it("lay a state-request and a client-request out byte for byte as the header comment says", () => {
    const request = encodeWireFrame({ kind: "state-request", requestId: 258, seq: 2 ** 32 + 1, after: Uint8Array.of(0xaa, 0xbb) });
    // version | tag | u64 requestId | u64 seq | presence | u32 length | after
    assert.equal(hex(request), "01" + "03" + "0000000000000102" + "0000000100000001" + "01" + "00000002" + "aabb");
    const absent = encodeWireFrame({ kind: "state-request", requestId: 0, seq: 0 });
    assert.equal(hex(absent), "0103" + "00".repeat(16) + "00");
    const transaction = encodeWireFrame({ kind: "client-request", transaction: Uint8Array.of(1, 2, 3) });
    assert.equal(hex(transaction), "01" + "08" + "00000003" + "010203");
  });

  it("encode the hot-path kinds into one allocation of exactly the frame's size", () => {
    for (const name of ["consensus pre-prepare", "client-request", "client-reply"]) {
      const encoded = encodeWireFrame(sample(name));
      assert.equal(Object.getPrototypeOf(encoded), Uint8Array.prototype, name);
      assert.equal(encoded.buffer.byteLength, encoded.length, `${name} owns a buffer of exactly its size`);
    }
  });

  it("decode byte fields into fresh copies that outlive the reuse of the input buffer", () => {
    for (const [name, frame] of samples) {
      const encoded = encodeWireFrame(frame);
      // The transport hands the decoder a view into a larger, reused socket buffer.
      const socketBuffer = Buffer.alloc(encoded.length + 16);
      socketBuffer.set(encoded, 8);
      const decoded = decodeWireFrame(socketBuffer.subarray(8, 8 + encoded.length));
      socketBuffer.fill(0xee);
      assert.deepEqual(decoded, frame, `${name} is unchanged after the input is overwritten`);
      if (frame.kind === "consensus") continue; // net/codec.ts's types; they decode from a private copy
      for (const field of byteFields(decoded)) {
        assert.equal(Object.getPrototypeOf(field), Uint8Array.prototype, `${name}: a plain Uint8Array`);
        assert.equal(field.buffer.byteLength, field.length, `${name}: a field owns its memory`);
      }
    }
  });

  it("refuse every truncation of every sample frame", () => {
    for (const [name, frame] of samples) {
      const encoded = encodeWireFrame(frame);
      for (let length = 0; length < encoded.length; length++) {
        assert.throws(() => decodeWireFrame(encoded.subarray(0, length)), WireDecodeError, `${name} cut to ${length} bytes`);
      }
    }
  });

  it("refuse a trailing byte after any sample frame", () => {
    for (const [name, frame] of samples) {
      const extended = Uint8Array.from([...encodeWireFrame(frame), 0]);
      assert.throws(() => decodeWireFrame(extended), (error) => error instanceof WireDecodeError && /trailing/.test(error.message), name);
    }
  });

  it("refuse unknown format versions and frame tags", () => {
    const valid = encodeWireFrame(sample("state-unavailable"));
    for (const version of [0, 2, 255]) {
      const bytes = Uint8Array.from(valid);
      bytes[0] = version;
      assert.throws(() => decodeWireFrame(bytes), /unsupported wire format version/);
    }
    for (const tag of [0, 17, 255]) {
      const bytes = Uint8Array.from(valid);
      bytes[1] = tag;
      assert.throws(() => decodeWireFrame(bytes), /unknown wire frame tag/);
    }
  });

  it("refuse integers above 2^53 - 1, presence and done bytes other than 0 or 1, and a malformed consensus body", () => {
    const unavailable = Uint8Array.from(encodeWireFrame({ kind: "state-unavailable", requestId: MAX, seq: 1 }));
    assert.equal(hex(unavailable.subarray(2, 10)), "001fffffffffffff");
    unavailable[3] = 0x20;
    assert.throws(() => decodeWireFrame(unavailable), /requestId .*above 2\^53 - 1/);

    const request = Uint8Array.from(encodeWireFrame({ kind: "state-request", requestId: 1, seq: 1 }));
    request[18] = 2;
    assert.throws(() => decodeWireFrame(request), /after presence byte must be 0 or 1; got 2/);

    const chunk = Uint8Array.from(encodeWireFrame(sample("state-chunk of no entries")));
    chunk[chunk.length - 1] = 2;
    assert.throws(() => decodeWireFrame(chunk), /done byte must be 0 or 1; got 2/);

    const status = Uint8Array.from(encodeWireFrame(sample("status of a fresh replica")));
    status[2 + 8 + 2 + 8 + 2] = 2; // the normal byte
    assert.throws(() => decodeWireFrame(status), /normal byte must be 0 or 1; got 2/);

    for (const code of [0, 4, 255]) {
      const unavailable = Uint8Array.from(encodeWireFrame(sample("read-unavailable, stopping")));
      unavailable[unavailable.length - 1] = code;
      assert.throws(() => decodeWireFrame(unavailable), new RegExp(`unknown read-unavailable reason code ${code}`));
    }

    const consensus = Uint8Array.from(encodeWireFrame(sample("consensus prepare")));
    consensus[3] = 99; // net/codec.ts's message tag
    assert.throws(() => decodeWireFrame(consensus), (error) => error instanceof WireDecodeError && /^consensus message: unknown message tag 99/.test(error.message));
  });

  it("refuse a huge declared count or length in a short frame without allocating for it", () => {
    const requestId = "0000000000000001";
    const cases: readonly (readonly [frameHex: string, reason: RegExp])[] = [
      // blocks: count 0xffffffff in a 20-byte frame
      ["0107" + requestId + "ffffffff" + "00".repeat(6), /4294967295 blocks exceed the maximum of 1024/],
      // blocks: the largest allowed count, far more than 6 bytes can hold
      ["0107" + requestId + "00000400" + "00".repeat(6), /declares 1024 blocks, needing at least 14336 bytes, but 6 remain/],
      // state-chunk: empty header, the largest allowed count of entries, 2 bytes left
      ["0104" + requestId + requestId + "00000000" + "00010000" + "0000", /declares 65536 state entries, needing at least 524288 bytes, but 2 remain/],
      // client-request: a 4 GiB transaction in a 20-byte frame
      ["0108" + "ffffffff" + "00".repeat(14), /truncated transaction: needs 4294967295 bytes at offset 6, 14 remain/],
      // state-chunk: a 4 GiB header
      ["0104" + requestId + requestId + "fffffff0" + "00", /truncated header: needs 4294967280 bytes/],
      // read-request: a key one byte above the bound, refused by its length alone
      ["010d" + requestId + "00000801" + "00".repeat(8), /key of 2049 bytes exceeds the maximum of 2048/],
      // read-proof: empty header and certificate, no value, a 4 GiB proof
      ["010e" + requestId + requestId + "00000000" + "00000000" + "00" + "ffffffff" + "00", /proof of 4294967295 bytes exceeds the maximum/],
    ];
    for (const [frameHex, reason] of cases) {
      const frame = fromHex(frameHex);
      const largest = largestUint8ArrayAllocated(() => {
        assert.throws(() => decodeWireFrame(frame), (error) => error instanceof WireDecodeError && reason.test(error.message), frameHex);
      });
      assert.ok(largest <= frame.length, `decoding ${frameHex} allocated ${largest} bytes`);
    }
    assert.equal(fromHex(cases[0]![0]).length, 20);
  });

  it("throw nothing but WireDecodeError for thousands of seeded random inputs", () => {
    const random = new Random(20_240_601);
    let decoded = 0;
    for (let input = 0; input < 5_000; input++) {
      const bytes = randomBytes(random, random.below(96));
      // Half the inputs get a valid version and tag, so the fuzz reaches every body decoder.
      if (bytes.length >= 2 && random.chance(0.5)) {
        bytes[0] = 1;
        bytes[1] = random.between(1, 15);
      }
      if (!(decodeOrError(bytes) instanceof WireDecodeError)) decoded++;
    }
    // Random bytes almost never form a valid frame; the point is that nothing else escapes.
    assert.ok(decoded < 5_000);
  });

  it("decode a valid frame with one byte changed to a frame that re-encodes to those bytes, or refuse it", () => {
    const random = new Random(7);
    const encoded = samples.map(([, frame]) => encodeWireFrame(frame));
    let decoded = 0;
    let rejected = 0;
    for (let flip = 0; flip < 5_000; flip++) {
      const bytes = Uint8Array.from(encoded[random.below(encoded.length)]!);
      const position = random.below(bytes.length);
      bytes[position] = bytes[position]! ^ random.between(1, 255);
      const result = decodeOrError(bytes);
      if (result instanceof WireDecodeError) {
        rejected++;
        continue;
      }
      // Canonical: the bytes that decoded are the only encoding of what they decoded to.
      assert.equal(hex(encodeWireFrame(result)), hex(bytes));
      decoded++;
    }
    assert.ok(decoded > 500 && rejected > 500, `decoded ${decoded}, rejected ${rejected}`);
  });

  it("refuse to encode values no correct node produces", () => {
    const signature = (length: number): WireFrame => ({ kind: "block-signature", height: 1, signature: new Uint8Array(length) });
    assert.throws(() => encodeWireFrame(signature(63)), { name: "RangeError", message: /signature must be exactly 64 bytes; got 63/ });
    assert.throws(() => encodeWireFrame(signature(65)), RangeError);
    const reply = sample("client-reply");
    assert.throws(() => encodeWireFrame({ ...reply, client: new Uint8Array(31) } as WireFrame), /client must be exactly 32 bytes/);
    assert.throws(() => encodeWireFrame({ ...reply, replica: 0x10000 } as WireFrame), /replica must be an integer in \[0, 65535\]/);

    for (const height of [2 ** 53, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => encodeWireFrame({ kind: "block-signature", height, signature: new Uint8Array(64) }), { name: "RangeError", message: /height must be a safe non-negative integer/ });
    }
    assert.throws(() => encodeWireFrame({ kind: "blocks-request", requestId: 1, from: 0, to: MAX + 1 }), /to must be a safe/);

    const empty = new Uint8Array(0);
    const entries = Array.from({ length: WIRE_STATE_ENTRIES_MAX + 1 }, (): [Uint8Array, Uint8Array] => [empty, empty]);
    assert.throws(() => encodeWireFrame({ kind: "state-chunk", requestId: 1, seq: 1, header: empty, entries, done: true }), { name: "RangeError", message: /65537 state entries exceed the maximum of 65536/ });
    const blocks = Array.from({ length: WIRE_BLOCKS_MAX + 1 }, (_, height) => ({ height, header: empty }));
    assert.throws(() => encodeWireFrame({ kind: "blocks", requestId: 1, blocks }), { name: "RangeError", message: /1025 blocks exceed the maximum of 1024/ });

    const notBytes = "aabb" as unknown as Uint8Array;
    assert.throws(() => encodeWireFrame({ kind: "state-request", requestId: 1, seq: 1, after: notBytes }), { name: "TypeError", message: /after must be a Uint8Array/ });
    const notBoolean = 1 as unknown as boolean;
    assert.throws(() => encodeWireFrame({ kind: "state-chunk", requestId: 1, seq: 1, header: empty, entries: [], done: notBoolean }), TypeError);

    const longKey = new Uint8Array(WIRE_READ_KEY_BYTES_MAX + 1);
    assert.throws(() => encodeWireFrame({ kind: "read-request", requestId: 1, key: longKey }), { name: "RangeError", message: /key of 2049 bytes exceeds the maximum of 2048/ });
    const longProof = new Uint8Array(WIRE_READ_PROOF_BYTES_MAX + 1);
    assert.throws(() => encodeWireFrame({ ...(sample("read-proof of a present value") as Extract<WireFrame, { kind: "read-proof" }>), proof: longProof }), { name: "RangeError", message: /proof of \d+ bytes exceeds the maximum/ });
    const unknownReason = "bored" as unknown as "stopping";
    assert.throws(() => encodeWireFrame({ kind: "read-unavailable", requestId: 1, reason: unknownReason }), { name: "RangeError", message: /unknown read-unavailable reason bored/ });
    assert.throws(() => encodeWireFrame({ ...(sample("status of a fresh replica") as Extract<WireFrame, { kind: "status" }>), normal: notBoolean }), { name: "TypeError", message: /normal must be a boolean/ });
    assert.throws(() => encodeWireFrame({ ...(sample("status of a fresh replica") as Extract<WireFrame, { kind: "status" }>), primary: 0x10000 }), /primary must be an integer in \[0, 65535\]/);

    const negativeView: ReplicaMessage = { ...prepare, view: -1 };
    assert.throws(() => encodeWireFrame({ kind: "consensus", message: negativeView }), { name: "RangeError", message: /consensus message cannot be encoded/ });
  });
});
