// SHA-256 through node:crypto, the one hash function of the ledger (transaction ids, Merkle
// trees). One place chooses the fastest call the running Node offers.

import * as nodeCrypto from "node:crypto";

/** Length of a SHA-256 digest. */
export const SHA256_DIGEST_BYTES = 32;

type Sha256Function = (data: Uint8Array) => Buffer;

// `crypto.hash` (Node 20.12+) skips the Hash object that `createHash` allocates, which matters
// for short inputs: LIMITS.md measures 0.95 µs per 32-byte hash, and a Merkle tree over 10,000
// leaves makes about 20,000 such calls. `engines` admits earlier Node 20 releases, which lack
// it, so fall back to `createHash` there. The namespace import lets us probe for the function
// without a static import that would fail to link on those releases.
const oneShotHash = (nodeCrypto as { hash?: typeof nodeCrypto.hash }).hash;

const sha256Implementation: Sha256Function =
  oneShotHash !== undefined
    ? (data) => oneShotHash("sha256", data, "buffer")
    : (data) => nodeCrypto.createHash("sha256").update(data).digest();

/**
 * SHA-256 of `data`: a fresh 32-byte array the caller owns. It is a plain Uint8Array, not a
 * Buffer, like every byte string Bulwark's APIs return, so that equality checks and structured
 * clones see one type.
 */
export function sha256(data: Uint8Array): Uint8Array {
  const digest = sha256Implementation(data);
  // node:crypto allocates each digest on its own (never from Buffer's shared pool), so the
  // view below covers exactly the digest's memory and costs no copy.
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.length);
}

/**
 * Writes SHA-256 of `data` into `target` at `targetOffset`. For loops that pack many digests
 * into one array (Merkle levels): it skips wrapping each digest in a view, which costs about a
 * tenth of a short hash.
 */
export function sha256Into(data: Uint8Array, target: Uint8Array, targetOffset: number): void {
  target.set(sha256Implementation(data), targetOffset);
}
