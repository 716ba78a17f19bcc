import { test } from "node:test";
import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify } from "node:crypto";
import {
  ED25519_KEY_CACHE_ENTRIES_DEFAULT,
  ED25519_SIGNATURE_BYTES,
  Ed25519Verifier,
  ed25519KeyPairFromSeed,
  ed25519PublicKeyOf,
  ed25519PublicKeyProblem,
  ed25519Sign,
  ed25519SigningBackend,
  ed25519Verify,
  exportEd25519PublicKey,
  exportEd25519Seed,
  generateEd25519KeyPair,
  importEd25519PublicKey,
} from "../../src/crypto/ed25519.js";
import { Random } from "../../src/sim/random.js";
import { fromHex, hex, randomBytes } from "../support/random-bytes.js";

// RFC 8032 §7.1, tests 1 and 2.
const RFC8032_VECTORS = [
  {
    seed: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    publicKey: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    message: "",
    signature:
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
  },
  {
    seed: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
    publicKey: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    message: "72",
    signature:
      "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
  },
];

const SMALL_ORDER_KEYS = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const copy = bytes.slice();
  copy[bit >> 3] = (copy[bit >> 3] as number) ^ (1 << (bit & 7));
  return copy;
}

test("keys from seeds and signatures match RFC 8032's test vectors", () => {
  for (const vector of RFC8032_VECTORS) {
    const pair = ed25519KeyPairFromSeed(fromHex(vector.seed));
    assert.equal(hex(pair.publicKey), vector.publicKey);
    const signature = ed25519Sign(pair.privateKey, fromHex(vector.message));
    assert.equal(hex(signature), vector.signature);
    assert.ok(ed25519Verify(fromHex(vector.publicKey), fromHex(vector.message), fromHex(vector.signature)));
  }
});

/** The DER prefix of a PKCS#8 Ed25519 private key (RFC 8410); the 32-byte seed follows. */
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

test("ed25519Sign (sodium-native here) gives node:crypto's bytes for any key and message, the same on every call", () => {
  assert.equal(ed25519SigningBackend(), "sodium-native");
  const random = new Random(41);
  for (let i = 0; i < 50; i++) {
    const seed = randomBytes(random, 32);
    // A KeyObject of its own, whose public key nothing has derived yet: signing fills that cache.
    const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: "der", type: "pkcs8" });
    const message = randomBytes(random, random.below(301));
    const expected = hex(nodeSign(null, message, privateKey));
    assert.equal(hex(ed25519Sign(privateKey, message)), expected);
    assert.equal(hex(ed25519Sign(privateKey, message)), expected, "the cached secret key signs alike");
    assert.equal(hex(ed25519PublicKeyOf(privateKey)), hex(ed25519KeyPairFromSeed(seed).publicKey), "the public key the signing key pair gave");
  }
});

test("seeds and raw public keys round-trip through KeyObjects", () => {
  const random = new Random(8032);
  for (let round = 0; round < 20; round += 1) {
    const seed = randomBytes(random, 32);
    const pair = ed25519KeyPairFromSeed(seed);
    assert.equal(hex(exportEd25519Seed(pair.privateKey)), hex(seed));
    assert.equal(hex(ed25519PublicKeyOf(pair.privateKey)), hex(pair.publicKey));
    assert.equal(hex(exportEd25519PublicKey(importEd25519PublicKey(pair.publicKey))), hex(pair.publicKey));
    // The imported key is the one OpenSSL derives itself.
    assert.equal(hex(exportEd25519PublicKey(createPublicKey(pair.privateKey))), hex(pair.publicKey));
  }
  const generated = generateEd25519KeyPair();
  assert.equal(generated.publicKey.length, 32);
  assert.equal(hex(ed25519KeyPairFromSeed(exportEd25519Seed(generated.privateKey)).publicKey), hex(generated.publicKey));
});

test("returned byte strings are plain Uint8Arrays the caller owns", () => {
  const pair = ed25519KeyPairFromSeed(new Uint8Array(32).fill(7));
  const signature = ed25519Sign(pair.privateKey, Uint8Array.of(1, 2, 3));
  for (const bytes of [pair.publicKey, signature, exportEd25519Seed(pair.privateKey)]) {
    assert.equal(Object.getPrototypeOf(bytes), Uint8Array.prototype);
  }
  ed25519PublicKeyOf(pair.privateKey).fill(0);
  assert.equal(hex(ed25519PublicKeyOf(pair.privateKey)), hex(pair.publicKey));
});

test("a signature fails after any single bit of the message, signature or key changes", () => {
  const random = new Random(25519);
  const pair = ed25519KeyPairFromSeed(randomBytes(random, 32));
  const message = randomBytes(random, 48);
  const signature = ed25519Sign(pair.privateKey, message);
  assert.ok(ed25519Verify(pair.publicKey, message, signature));
  for (let bit = 0; bit < 8 * message.length; bit += 3) {
    assert.equal(ed25519Verify(pair.publicKey, flipBit(message, bit), signature), false, `message bit ${bit}`);
  }
  for (let bit = 0; bit < 8 * ED25519_SIGNATURE_BYTES; bit += 1) {
    assert.equal(ed25519Verify(pair.publicKey, message, flipBit(signature, bit)), false, `signature bit ${bit}`);
  }
  for (let bit = 0; bit < 256; bit += 1) {
    assert.equal(ed25519Verify(flipBit(pair.publicKey, bit), message, signature), false, `key bit ${bit}`);
  }
});

test("a signature with S + L (a malleated, non-canonical S) is refused", () => {
  const pair = ed25519KeyPairFromSeed(fromHex(RFC8032_VECTORS[0]?.seed ?? ""));
  const message = Uint8Array.of(9);
  const signature = ed25519Sign(pair.privateKey, message);
  const groupOrder = (1n << 252n) + 27742317777372353535851937790883648493n;
  let s = 0n;
  for (let index = 63; index >= 32; index -= 1) s = (s << 8n) | BigInt(signature[index] as number);
  let malleated = s + groupOrder;
  const forged = signature.slice();
  for (let index = 32; index < 64; index += 1) {
    forged[index] = Number(malleated & 0xffn);
    malleated >>= 8n;
  }
  assert.equal(malleated, 0n, "S + L still fits in 32 bytes for this signature");
  assert.equal(ed25519Verify(pair.publicKey, message, forged), false);
});

test("small-order public keys are refused, though OpenSSL alone would accept forgeries under them", () => {
  // With the all-zero key and the all-zero signature, OpenSSL's check [S]B = R + [k]A passes
  // whenever k ≡ 3 (mod 4): about one message in four. Find one to show the danger is real.
  const zeroKey = new Uint8Array(32);
  const zeroSignature = new Uint8Array(64);
  const rawZeroKey = createPublicKey({
    key: Buffer.concat([fromHex("302a300506032b6570032100"), zeroKey]),
    format: "der",
    type: "spki",
  });
  let forgedMessage: Uint8Array | undefined;
  for (let counter = 0; counter < 64 && forgedMessage === undefined; counter += 1) {
    const message = Uint8Array.of(counter);
    if (nodeVerify(null, message, rawZeroKey, zeroSignature)) forgedMessage = message;
  }
  assert.ok(forgedMessage !== undefined, "OpenSSL accepted no forgery under the zero key");
  assert.equal(ed25519Verify(zeroKey, forgedMessage, zeroSignature), false);

  for (const key of SMALL_ORDER_KEYS) {
    for (const signBit of [0, 0x80]) {
      const raw = fromHex(key);
      raw[31] = (raw[31] as number) | signBit;
      assert.equal(ed25519PublicKeyProblem(raw), "small-order", key);
      assert.throws(() => importEd25519PublicKey(raw), /small order/);
    }
  }
});

test("non-canonical public key encodings (y ≥ 2^255 - 19) are refused", () => {
  for (let low = 0xed; low <= 0xff; low += 1) {
    const raw = new Uint8Array(32).fill(0xff);
    raw[0] = low;
    raw[31] = 0x7f;
    assert.equal(ed25519PublicKeyProblem(raw), "non-canonical", `low byte ${low}`);
    assert.throws(() => importEd25519PublicKey(raw), /not canonically encoded/);
  }
  const largestCanonical = new Uint8Array(32).fill(0xff);
  largestCanonical[0] = 0xec;
  largestCanonical[31] = 0x7f;
  assert.equal(ed25519PublicKeyProblem(largestCanonical), "small-order"); // p - 1, order 2
  largestCanonical[0] = 0xeb;
  assert.equal(ed25519PublicKeyProblem(largestCanonical), null);
});

test("malformed inputs give false from verify, never an exception", () => {
  const pair = ed25519KeyPairFromSeed(new Uint8Array(32).fill(1));
  const message = Uint8Array.of(1, 2, 3);
  const signature = ed25519Sign(pair.privateKey, message);
  assert.equal(ed25519Verify(pair.publicKey.subarray(0, 31), message, signature), false);
  assert.equal(ed25519Verify(new Uint8Array(33), message, signature), false);
  assert.equal(ed25519Verify(pair.publicKey, message, signature.subarray(0, 63)), false);
  assert.equal(ed25519Verify(pair.publicKey, message, new Uint8Array(65)), false);
  assert.equal(ed25519Verify(pair.publicKey, message, new Uint8Array(0)), false);
  const untyped = ed25519Verify as (...args: unknown[]) => boolean;
  assert.equal(untyped("key", message, signature), false);
  assert.equal(untyped(pair.publicKey, "message", signature), false);
  assert.equal(untyped(pair.publicKey, message, null), false);
  // Random 32-byte strings are often not points on the curve at all.
  const random = new Random(404);
  for (let round = 0; round < 200; round += 1) {
    assert.equal(ed25519Verify(randomBytes(random, 32), message, randomBytes(random, 64)), false);
  }
});

test("a verifier's key cache stays within its bound and answers correctly after evictions", () => {
  const verifier = new Ed25519Verifier({ keyCacheEntriesMax: 3 });
  const random = new Random(3);
  const message = Uint8Array.of(42);
  const signers = Array.from({ length: 5 }, () => ed25519KeyPairFromSeed(randomBytes(random, 32)));
  const signatures = signers.map((pair) => ed25519Sign(pair.privateKey, message));
  for (let round = 0; round < 4; round += 1) {
    signers.forEach((pair, index) => {
      assert.ok(verifier.verify(pair.publicKey, message, signatures[index] as Uint8Array));
      const other = signatures[(index + 1) % signers.length] as Uint8Array;
      assert.equal(verifier.verify(pair.publicKey, message, other), false);
      assert.ok(verifier.cachedKeyCount <= 3);
    });
  }
  assert.equal(verifier.cachedKeyCount, 3);
  // Refused keys are never cached.
  verifier.verify(new Uint8Array(32), message, new Uint8Array(64));
  assert.equal(verifier.cachedKeyCount, 3);
  assert.ok(ED25519_KEY_CACHE_ENTRIES_DEFAULT >= 1024);
});

test("a verifier refuses a cache bound that is not a positive integer", () => {
  for (const bound of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => new Ed25519Verifier({ keyCacheEntriesMax: bound }), /positive integer/);
  }
});

test("misuse of keys is refused with a message that says what is wrong", () => {
  const pair = ed25519KeyPairFromSeed(new Uint8Array(32).fill(2));
  assert.throws(() => ed25519KeyPairFromSeed(new Uint8Array(31)), /seed is 32 bytes, not 31/);
  assert.throws(() => importEd25519PublicKey(new Uint8Array(31)), /public key is 32 bytes, not 31/);
  const publicKeyObject = importEd25519PublicKey(pair.publicKey);
  assert.throws(() => ed25519Sign(publicKeyObject, Uint8Array.of(1)), /expected an Ed25519 private key/);
  assert.throws(() => exportEd25519PublicKey(pair.privateKey), /expected an Ed25519 public key/);
});
