// Ed25519 keys and signatures through node:crypto (OpenSSL; signing through sodium-native when it
// loads, see ed25519Sign), with public keys handled as raw
// 32-byte strings (RFC 8032 §5.1.5), which is how transactions, accounts and cluster configs
// carry them.
//
// Verification dominates a replica's CPU (LIMITS.md: over 90 % per transaction), and
// node:crypto can only verify against a KeyObject. Building one from raw bytes on every call
// (`createPublicKey`) halves throughput (5.1K/s against 8.6K/s per core), so a verifier keeps
// the KeyObjects of recently seen keys in a bounded least-recently-used cache. A replica verifies
// the same clients over and over, so the hit rate is high; the bound keeps a flood of fresh keys
// from growing memory.

import {
  type KeyObject,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as nodeSign,
  verify as nodeVerify,
} from "node:crypto";

import { type CryptoBackendName, SODIUM_SIGN_SECRET_KEY_BYTES, type SodiumEd25519Signing, chooseSodium } from "./sodium.js";

export const ED25519_PUBLIC_KEY_BYTES = 32;
/** The 32-byte secret seed from which RFC 8032 derives the signing key. */
export const ED25519_SEED_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;

/**
 * Default bound of a verifier's KeyObject cache. A cached key costs a few hundred bytes of
 * native memory, so 8192 keys is a few MiB: room for every active client of a busy cluster.
 */
export const ED25519_KEY_CACHE_ENTRIES_DEFAULT = 8192;

/** A private key as node:crypto holds it; its secret never leaves OpenSSL's memory unasked. */
export type Ed25519PrivateKey = KeyObject;

export interface Ed25519KeyPair {
  /** Raw 32-byte public key. */
  readonly publicKey: Uint8Array;
  readonly privateKey: Ed25519PrivateKey;
}

// DER prefixes that wrap a raw key in the structures OpenSSL imports: SubjectPublicKeyInfo
// (RFC 8410 §4) for a public key, PKCS #8 OneAsymmetricKey (RFC 8410 §7) for a seed. Both are
// fixed for Ed25519, so wrapping is a concatenation rather than general ASN.1 encoding.
const SPKI_DER_PREFIX = Uint8Array.from([
  0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
]);
const PKCS8_DER_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

// Encodings of the eight points of small order, with the sign bit (bit 255) ignored; the list
// libsodium uses (`has_small_order`). For such a "public key" no secret is needed: signatures
// that verify under it can be made by anyone (OpenSSL accepts the all-zero key with an all-zero
// signature for a quarter of all messages). An account with such a key would be owned by
// everybody, and funds sent to it could be taken by anybody, so Bulwark refuses these keys.
// Refusing them explicitly also keeps every replica's verdict the same whichever Ed25519 library
// it runs: libsodium rejects them, OpenSSL does not.
const SMALL_ORDER_ENCODINGS: readonly Uint8Array[] = [
  "0000000000000000000000000000000000000000000000000000000000000000", // 0: order 4
  "0100000000000000000000000000000000000000000000000000000000000000", // 1: order 1 (identity)
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p - 1: order 2
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p (≡ 0): order 4
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p + 1 (≡ 1): order 1
].map((hex) => Uint8Array.from(Buffer.from(hex, "hex")));

/** Why `publicKeyProblem` refused a key, or null for a usable key. */
export type Ed25519PublicKeyProblem = "length" | "non-canonical" | "small-order" | null;

/**
 * Whether `raw` can identify an owner: 32 bytes, a canonical encoding (y < p = 2^255 - 19, so
 * one point has one encoding and one account one address), and not a point of small order.
 * It does not decompress the point: a key that is not on the curve is harmless (no signature
 * verifies under it) and checking costs a square root. Cheap enough for every decoded key.
 */
export function ed25519PublicKeyProblem(raw: Uint8Array): Ed25519PublicKeyProblem {
  if (raw.length !== ED25519_PUBLIC_KEY_BYTES) return "length";
  if (!isCanonicalFieldElement(raw)) return "non-canonical";
  if (SMALL_ORDER_ENCODINGS.some((encoding) => equalIgnoringSignBit(raw, encoding))) return "small-order";
  return null;
}

export function generateEd25519KeyPair(): Ed25519KeyPair {
  const { privateKey } = generateKeyPairSync("ed25519");
  return { publicKey: ed25519PublicKeyOf(privateKey), privateKey };
}

/**
 * The key pair derived from a 32-byte seed (RFC 8032 §5.1.5). Seeds are how keys are stored in
 * files, and how tests and the simulator make reproducible keys.
 */
export function ed25519KeyPairFromSeed(seed: Uint8Array): Ed25519KeyPair {
  if (seed.length !== ED25519_SEED_BYTES) {
    throw new RangeError(`an Ed25519 seed is ${ED25519_SEED_BYTES} bytes, not ${seed.length}`);
  }
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_DER_PREFIX, seed]),
    format: "der",
    type: "pkcs8",
  });
  return { publicKey: ed25519PublicKeyOf(privateKey), privateKey };
}

/** The 32-byte seed of a private key, for writing it to a key file. */
export function exportEd25519Seed(privateKey: Ed25519PrivateKey): Uint8Array {
  assertEd25519Key(privateKey, "private");
  const der = privateKey.export({ format: "der", type: "pkcs8" });
  return Uint8Array.from(der.subarray(der.length - ED25519_SEED_BYTES));
}

// Deriving the public key takes an OpenSSL round trip; clients sign many transactions with one
// key, and the WeakMap forgets a key when the KeyObject itself is collected.
const publicKeyOfPrivateKey = new WeakMap<KeyObject, Uint8Array>();

/** The raw public key of a private key (a fresh copy the caller may keep or change). */
export function ed25519PublicKeyOf(privateKey: Ed25519PrivateKey): Uint8Array {
  assertEd25519Key(privateKey, "private");
  let publicKey = publicKeyOfPrivateKey.get(privateKey);
  if (publicKey === undefined) {
    publicKey = exportEd25519PublicKey(createPublicKey(privateKey));
    publicKeyOfPrivateKey.set(privateKey, publicKey);
  }
  return publicKey.slice();
}

/** A raw 32-byte public key from a public KeyObject. */
export function exportEd25519PublicKey(publicKey: KeyObject): Uint8Array {
  assertEd25519Key(publicKey, "public");
  const der = publicKey.export({ format: "der", type: "spki" });
  return Uint8Array.from(der.subarray(der.length - ED25519_PUBLIC_KEY_BYTES));
}

/**
 * A KeyObject for a raw public key. Throws a RangeError naming the problem for a key that
 * `ed25519PublicKeyProblem` refuses. To verify, use an `Ed25519Verifier`, which caches these.
 */
export function importEd25519PublicKey(raw: Uint8Array): KeyObject {
  const problem = ed25519PublicKeyProblem(raw);
  if (problem !== null) throw new RangeError(describePublicKeyProblem(problem, raw));
  return createPublicKey({ key: Buffer.concat([SPKI_DER_PREFIX, raw]), format: "der", type: "spki" });
}

// Signing goes to sodium-native when it loads: Ed25519 is deterministic, so the bytes are the
// ones node:crypto gives (a test checks), at half the cost (19.6 against 38.5 µs for 150 bytes on
// the CI machine kind; OpenSSL sets up a signing context on every call). A replica signs three
// messages per batch, and a client every transaction. libsodium's 64-byte secret key (seed then
// public key) is derived once per KeyObject; the WeakMap drops it with the KeyObject.
// The choice is made once per thread; the benchmark's raw-seed keys (bench/bench-keys.ts) share it.
let signing: { readonly sodium: SodiumEd25519Signing | null } | undefined;
const sodiumSecretKeys = new WeakMap<KeyObject, Uint8Array>();

/** sodium-native's signing functions as "auto" chooses them in this thread, or null when node:crypto signs. */
export function sodiumSigning(): SodiumEd25519Signing | null {
  signing ??= { sodium: chooseSodium("sign", "auto") };
  return signing.sodium;
}

/** Which library `ed25519Sign` (and the benchmark's keys) use in this thread. */
export function ed25519SigningBackend(): CryptoBackendName {
  return sodiumSigning() === null ? "node:crypto" : "sodium-native";
}

/** The 64-byte signature of `message` (Ed25519 is deterministic: same key and message, same bytes). */
export function ed25519Sign(privateKey: Ed25519PrivateKey, message: Uint8Array): Uint8Array {
  assertEd25519Key(privateKey, "private");
  const sodium = sodiumSigning();
  if (sodium !== null) {
    let secretKey = sodiumSecretKeys.get(privateKey);
    if (secretKey === undefined) {
      secretKey = new Uint8Array(SODIUM_SIGN_SECRET_KEY_BYTES);
      const publicKey = new Uint8Array(ED25519_PUBLIC_KEY_BYTES);
      sodium.crypto_sign_seed_keypair(publicKey, secretKey, exportEd25519Seed(privateKey));
      sodiumSecretKeys.set(privateKey, secretKey);
      // The key pair gives the public key too: ed25519PublicKeyOf need not ask OpenSSL for it.
      if (!publicKeyOfPrivateKey.has(privateKey)) publicKeyOfPrivateKey.set(privateKey, publicKey);
    }
    const signature = new Uint8Array(ED25519_SIGNATURE_BYTES);
    sodium.crypto_sign_detached(signature, message, secretKey);
    return signature;
  }
  // The algorithm argument must be null: Ed25519 hashes internally (RFC 8032 "PureEdDSA").
  const signature = nodeSign(null, message, privateKey);
  // A plain Uint8Array over the signature's own memory (OpenSSL's output is never pooled).
  return new Uint8Array(signature.buffer, signature.byteOffset, signature.length);
}

export interface Ed25519VerifierOptions {
  /** Most KeyObjects kept; the least recently used is dropped beyond it. */
  readonly keyCacheEntriesMax?: number;
}

/**
 * Verifies signatures under raw public keys, caching their KeyObjects. One per thread: a
 * worker of the verification pool holds its own (KeyObjects are per isolate).
 */
export class Ed25519Verifier {
  private readonly keyCacheEntriesMax: number;
  // A Map iterates in insertion order, so re-inserting on every hit makes its first entry the
  // least recently used: an LRU cache without a linked list.
  private readonly keyCache = new Map<string, KeyObject>();

  constructor(options: Ed25519VerifierOptions = {}) {
    const entriesMax = options.keyCacheEntriesMax ?? ED25519_KEY_CACHE_ENTRIES_DEFAULT;
    if (!Number.isSafeInteger(entriesMax) || entriesMax < 1) {
      throw new RangeError(`keyCacheEntriesMax must be a positive integer, not ${entriesMax}`);
    }
    this.keyCacheEntriesMax = entriesMax;
  }

  /** Number of KeyObjects cached now (for metrics and tests). */
  get cachedKeyCount(): number {
    return this.keyCache.size;
  }

  /**
   * Whether `signature` is a valid signature of `message` under `publicKey`. Inputs come from
   * the network, so anything malformed (lengths, refused keys, non-canonical signatures, which
   * OpenSSL rejects) yields false, never an exception.
   */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    if (!(publicKey instanceof Uint8Array) || !(message instanceof Uint8Array)) return false;
    if (!(signature instanceof Uint8Array) || !ed25519SignaturePolicyAllows(publicKey, signature)) return false;
    const keyObject = this.keyObjectFor(publicKey);
    if (keyObject === null) return false;
    try {
      return nodeVerify(null, message, keyObject, signature);
    } catch {
      // OpenSSL reports some malformed inputs as errors rather than a false verdict.
      return false;
    }
  }

  private keyObjectFor(publicKey: Uint8Array): KeyObject | null {
    // latin1 maps each byte to one UTF-16 unit: the shortest string key with no collisions.
    const cacheKey = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.length).toString("latin1");
    const cached = this.keyCache.get(cacheKey);
    if (cached !== undefined) {
      this.keyCache.delete(cacheKey);
      this.keyCache.set(cacheKey, cached);
      return cached;
    }
    if (ed25519PublicKeyProblem(publicKey) !== null) return null;
    let keyObject: KeyObject;
    try {
      keyObject = createPublicKey({
        key: Buffer.concat([SPKI_DER_PREFIX, publicKey]),
        format: "der",
        type: "spki",
      });
    } catch {
      return null;
    }
    if (this.keyCache.size >= this.keyCacheEntriesMax) {
      const leastRecent = this.keyCache.keys().next();
      if (leastRecent.done !== true) this.keyCache.delete(leastRecent.value);
    }
    this.keyCache.set(cacheKey, keyObject);
    return keyObject;
  }
}

const defaultVerifier = new Ed25519Verifier();

/** `Ed25519Verifier.verify` on this thread's shared verifier. Never throws. */
export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  return defaultVerifier.verify(publicKey, message, signature);
}

/** A message for a refused public key that says what is wrong with it. */
export function describePublicKeyProblem(problem: Exclude<Ed25519PublicKeyProblem, null>, raw: Uint8Array): string {
  switch (problem) {
    case "length":
      return `an Ed25519 public key is ${ED25519_PUBLIC_KEY_BYTES} bytes, not ${raw.length}`;
    case "non-canonical":
      return "the Ed25519 public key is not canonically encoded (its y coordinate is not below 2^255 - 19)";
    case "small-order":
      return "the Ed25519 public key is a point of small order, under which anyone can forge signatures";
  }
}

function assertEd25519Key(key: KeyObject, type: "private" | "public"): void {
  if (key.type !== type || key.asymmetricKeyType !== "ed25519") {
    throw new TypeError(`expected an Ed25519 ${type} key, got a ${key.asymmetricKeyType ?? "symmetric"} ${key.type} key`);
  }
}

/** Whether the little-endian 255-bit y coordinate (sign bit masked off) is below p = 2^255 - 19. */
function isCanonicalFieldElement(raw: Uint8Array): boolean {
  // y ≥ p only when bytes 31..1 are 0x7f, 0xff, ..., 0xff and byte 0 is at least 0xed.
  if (((raw[31] as number) & 0x7f) !== 0x7f) return true;
  for (let index = 30; index >= 1; index -= 1) {
    if (raw[index] !== 0xff) return true;
  }
  return (raw[0] as number) < 0xed;
}

function equalIgnoringSignBit(raw: Uint8Array, encoding: Uint8Array): boolean {
  for (let index = 0; index < 31; index += 1) {
    if (raw[index] !== encoding[index]) return false;
  }
  return ((raw[31] as number) & 0x7f) === encoding[31];
}

/**
 * The one verdict policy every verifier applies before the curve arithmetic. OpenSSL accepts a
 * signature whose R is a small-order point (S = k·a mod L, which the key's owner can make), while
 * libsodium refuses it; replicas on different libraries would then disagree on whether a
 * transaction is valid, and diverge. So R must pass the same checks as a public key: canonical
 * and not of small order, exactly libsodium's rule.
 */
export function ed25519SignaturePolicyAllows(publicKey: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== ED25519_SIGNATURE_BYTES || publicKey.length !== ED25519_PUBLIC_KEY_BYTES) return false;
  if (ed25519PublicKeyProblem(publicKey) !== null) return false;
  return ed25519PublicKeyProblem(signature.subarray(0, ED25519_PUBLIC_KEY_BYTES)) === null;
}
