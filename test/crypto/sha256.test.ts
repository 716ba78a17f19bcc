import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";

import { SHA256_DIGEST_BYTES, sha256, sha256Into, sha256Latin1 } from "../../src/crypto/sha256.js";
import { Random } from "../../src/sim/random.js";
import { randomBytes } from "../support/random-bytes.js";

const reference = (data: Uint8Array): Buffer => createHash("sha256").update(data).digest();

test("sha256, sha256Latin1 and sha256Into give node:crypto's digest for inputs of every length up to 300 bytes", () => {
  const random = new Random(256);
  for (let length = 0; length <= 300; length++) {
    const data = randomBytes(random, length);
    const expected = reference(data);
    assert.deepEqual(sha256(data), new Uint8Array(expected), `sha256, ${length} bytes`);
    assert.equal(sha256Latin1(data), expected.toString("latin1"), `sha256Latin1, ${length} bytes`);
    const target = new Uint8Array(SHA256_DIGEST_BYTES);
    sha256Into(data, target, 0);
    assert.deepEqual(target, new Uint8Array(expected), `sha256Into, ${length} bytes`);
  }
});

test("sha256Into writes the digest at the offset and leaves every other byte of the target alone", () => {
  const data = new TextEncoder().encode("abc");
  const target = new Uint8Array(3 * SHA256_DIGEST_BYTES).fill(0xaa);
  sha256Into(data, target, 40);
  assert.deepEqual(target.subarray(40, 40 + SHA256_DIGEST_BYTES), new Uint8Array(reference(data)));
  assert.ok(target.subarray(0, 40).every((byte) => byte === 0xaa));
  assert.ok(target.subarray(40 + SHA256_DIGEST_BYTES).every((byte) => byte === 0xaa));
  // FIPS 180-2's example: SHA-256("abc").
  assert.equal(Buffer.from(target.subarray(40, 72)).toString("hex"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});

test("sha256Into reads a view of a larger array from its offset, and may hash into the array it reads", () => {
  const backing = new Uint8Array(100).map((_, index) => index);
  const view = backing.subarray(10, 50);
  const expected = new Uint8Array(reference(view));
  const target = new Uint8Array(SHA256_DIGEST_BYTES);
  sha256Into(view, target, 0);
  assert.deepEqual(target, expected);
  // Merkle levels hash a scratch array and write the digest into another part of memory; the
  // digest is taken before any byte is written, so even overlapping input and output agree.
  sha256Into(backing.subarray(0, 64), backing, 16);
  assert.deepEqual(backing.subarray(16, 48), new Uint8Array(reference(new Uint8Array(64).map((_, index) => index))));
});
