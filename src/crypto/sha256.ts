// SHA-256 through node:crypto, the one hash function of the ledger (transaction ids, Merkle
// trees, the state tree). One place chooses the fastest call the running Node offers.

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
 * SHA-256 of `data` as a 32-character latin1 string: character i is byte i of the digest. The
 * fast form for hot loops. Measured on this project's 2-vCPU machines (Node 20.20), with results
 * kept alive, `crypto.hash` costs ~0.5-1.0 µs returning a string but ~1.9-3.2 µs returning a
 * Buffer: each Buffer made in C++ carries its own backing store, which is slow to allocate and to
 * collect. The state tree keeps every hash in this form (ledger/state-tree-hash.ts).
 */
export const sha256Latin1: (data: Uint8Array) => string =
  oneShotHash !== undefined
    ? (data) => oneShotHash("sha256", data, "binary")
    : (data) => nodeCrypto.createHash("sha256").update(data).digest("binary");

/**
 * Writes SHA-256 of `data` into `target` at `targetOffset`, for loops that pack many digests
 * into one array (Merkle levels, ledger/merkle.ts). The digest comes as a string
 * (`sha256Latin1`) and is copied byte by byte, so no Buffer is made, neither for the digest nor
 * as a view of `target`.
 */
export function sha256Into(data: Uint8Array, target: Uint8Array, targetOffset: number): void {
  const digest = sha256Latin1(data);
  for (let index = 0; index < SHA256_DIGEST_BYTES; index++) target[targetOffset + index] = digest.charCodeAt(index);
}
