import { test } from "node:test";
import assert from "node:assert/strict";

import type { PersistRecord } from "../../src/consensus/pbft/types.js";
import { Random } from "../../src/sim/random.js";
import { RECORD_CODEC_VERSION, RecordDecodeError, decodeRecord, encodeRecord } from "../../src/storage/index.js";
import { oneOfEachKind } from "./record-fixtures.js";

test("every record kind decodes to a deep-equal record, including odd strings and counts near 2^53", () => {
  const random = new Random(101);
  for (let round = 0; round < 200; round++) {
    for (const record of oneOfEachKind(random)) {
      assert.deepEqual(decodeRecord(encodeRecord(record)), record);
    }
  }
});

test("the encoding is canonical: re-encoding a decoded record gives the same bytes", () => {
  const random = new Random(102);
  for (let round = 0; round < 50; round++) {
    for (const record of oneOfEachKind(random)) {
      const bytes = encodeRecord(record);
      assert.deepEqual(encodeRecord(decodeRecord(bytes)), bytes);
    }
  }
});

test("fields outside the record type are not stored", () => {
  const record = { kind: "view", view: 3, normal: true, extra: "dropped" } as PersistRecord;
  assert.deepEqual(decodeRecord(encodeRecord(record)), { kind: "view", view: 3, normal: true });
});

test("every truncation of an encoded record is rejected with RecordDecodeError", () => {
  const random = new Random(103);
  for (const record of oneOfEachKind(random)) {
    const bytes = encodeRecord(record);
    for (let length = 0; length < bytes.length; length++) {
      assert.throws(() => decodeRecord(bytes.subarray(0, length)), RecordDecodeError, `${record.kind} cut to ${length} bytes`);
    }
  }
});

test("trailing bytes, unknown kinds, other codec versions and overlong integers are rejected", () => {
  const bytes = encodeRecord({ kind: "view", view: 5, normal: false });
  assert.throws(() => decodeRecord(Uint8Array.of(...bytes, 0)), /trailing/);
  assert.throws(() => decodeRecord(Uint8Array.of(RECORD_CODEC_VERSION, 99)), /kind tag 99/);
  assert.throws(() => decodeRecord(Uint8Array.of(RECORD_CODEC_VERSION + 1, ...bytes.subarray(1))), /codec version/);
  // view = 5 as a two-byte LEB128 (0x85 0x00) is the same number in a non-canonical form.
  assert.throws(() => decodeRecord(Uint8Array.of(RECORD_CODEC_VERSION, 1, 0x85, 0x00, 0)), /overlong/);
  assert.throws(() => decodeRecord(Uint8Array.of(RECORD_CODEC_VERSION, 1, 5, 2)), /boolean/);
});

test("a count larger than the bytes left is rejected before anything is allocated", () => {
  // A pre-prepare claiming 2^40 requests in a few bytes.
  const hostile = Uint8Array.of(RECORD_CODEC_VERSION, 2, 0, 1, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20);
  assert.throws(() => decodeRecord(hostile), /count/);
});

test("a well-formed string stored in the UTF-16 form is rejected as non-canonical", () => {
  // view-change-free record with one string: a checkpoint (seq 1, stateDigest "ab" in form 1, replica 0, signature "").
  const checkpoint = Uint8Array.of(RECORD_CODEC_VERSION, 6, 1, 1, 4, 0x61, 0, 0x62, 0, 0, 0, 0);
  assert.throws(() => decodeRecord(checkpoint), /not canonical/);
});

test("values outside the record type fail to encode instead of being stored altered", () => {
  assert.throws(() => encodeRecord({ kind: "view", view: -1, normal: true }), RangeError);
  assert.throws(() => encodeRecord({ kind: "view", view: 1.5, normal: true }), RangeError);
  assert.throws(() => encodeRecord({ kind: "view", view: 2 ** 53, normal: true }), RangeError);
});
