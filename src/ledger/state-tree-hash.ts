// The hashing rules of the state tree, shared by the tree that builds roots and the verifier that
// checks proofs against them: one definition, so the two can never drift apart.
//
//   keyHash       = SHA-256(key)                      the key's 64-nibble path in the tree
//   valueHash     = SHA-256(value)
//   leaf hash     = SHA-256(0x00 || keyHash || valueHash)
//   internal hash = SHA-256(0x01 || childBitmap (u16, big-endian) || hashes of present children,
//                           in nibble order)
//   empty root    = SHA-256(0x02)
//
// The prefixes separate the three domains, so a leaf can never be presented as an internal node
// (or the reverse) to "prove" a value nobody stored: the same second-preimage defence as the
// 0x00/0x01 prefixes of RFC 6962 in merkle.ts. The bitmap is hashed so that the same child hashes
// in different slots give different parents.
//
// An internal node hashes all its children in one flat call rather than as a binary tree of 15
// two-child hashes inside the node (Diem's Jellyfish Merkle Tree does the latter). Measured on
// this project's 2-vCPU machines (Node 20.20), one `crypto.hash` call costs ~0.5-0.7 µs for 65
// bytes and ~0.7-1.1 µs for 515 bytes: the call dominates, not the bytes. Flat hashing makes a dirty node one call instead of up to 15,
// which is what the commit path pays for, at the price of proofs ~3.5x larger (up to 15 sibling
// hashes per level instead of 4).

import { sha256Latin1 } from "../crypto/sha256.js";

export const STATE_HASH_BYTES = 32;
/** A key hash is 64 nibbles, so no path in the tree is longer than 64 internal nodes. */
export const STATE_TREE_DEPTH_MAX = 2 * STATE_HASH_BYTES;
/** Children per internal node: one per nibble value. */
export const STATE_TREE_RADIX = 16;

/**
 * A 32-byte hash held as a 32-character latin1 string (character i is byte i), the tree's
 * internal form of every hash: the form SHA-256 is fastest to produce in (`sha256Latin1` in
 * crypto/sha256.ts says why). Strings are also smaller in memory, compare with `===`, and sort
 * with `<` in byte order. Hashes cross the public API as Uint8Arrays (`hashBytes`, `hashString`).
 */
export type HashString = string;

const LEAF_PREFIX = 0x00;
const INTERNAL_PREFIX = 0x01;
const EMPTY_PREFIX = 0x02;

/** SHA-256 in the tree's form. */
export const sha256: (data: Uint8Array) => HashString = sha256Latin1;

/** The root of a tree holding no keys. */
export const EMPTY_STATE_ROOT: HashString = sha256(Uint8Array.of(EMPTY_PREFIX));

// The leaf input is assembled in one preallocated buffer: hashing is the hot path of a commit,
// and nothing here re-enters itself.
const leafInput = Buffer.alloc(1 + 2 * STATE_HASH_BYTES);
leafInput[0] = LEAF_PREFIX;

export function leafNodeHash(keyHash: HashString, valueHash: HashString): HashString {
  leafInput.write(keyHash, 1, "latin1");
  leafInput.write(valueHash, 1 + STATE_HASH_BYTES, "latin1");
  return sha256(leafInput);
}

/**
 * The bytes an internal node hashes: prefix, bitmap and the hashes of its present children. The
 * tree keeps one per node, so that a commit after value updates rewrites only the children that
 * changed: writing a hash string costs ~60 ns, and a node has up to 16 of them. A child added or
 * removed shifts the others in place (`insertChild`, `removeChild`) instead of rewriting them all,
 * with room to grow kept by doubling, so a growing tree rarely allocates a new input either.
 */
export class InternalNodeHashInput {
  private count: number;
  /** Room for `capacity` children; the first 3 + count × 32 bytes are the message. */
  private bytes: Buffer;
  /** `bytes` cut to the message: what `hash` hashes, kept to save a view per hash. */
  private message: Buffer;

  constructor(childBitmap: number) {
    const childCount = bitCount16(childBitmap);
    if (childCount === 0 || childBitmap > 0xffff) throw new Error(`InternalNodeHashInput: bitmap ${childBitmap}`);
    this.count = childCount;
    // Small unsafe allocations come from Node's shared pool, which matters at one per node. Every
    // byte is written before the first hash: the header here, each child by the caller.
    this.bytes = Buffer.allocUnsafe(messageBytes(childCount));
    this.bytes[0] = INTERNAL_PREFIX;
    this.message = this.bytes;
    this.writeBitmap(childBitmap);
  }

  get childCount(): number {
    return this.count;
  }

  /** Sets the hash of the child at `position` among the present children (not its slot). */
  setChildHash(position: number, childHash: HashString): void {
    if (position >= this.count || childHash.length !== STATE_HASH_BYTES) {
      throw new Error(`InternalNodeHashInput: child ${position} of ${this.count}`);
    }
    this.bytes.write(childHash, 3 + position * STATE_HASH_BYTES, "latin1");
  }

  /** `setChildHash` for a hash in byte form, as proofs carry them; saves converting to a string. */
  setChildHashBytes(position: number, childHash: Uint8Array): void {
    if (position >= this.count || childHash.length !== STATE_HASH_BYTES) {
      throw new Error(`InternalNodeHashInput: child ${position} of ${this.count}`);
    }
    this.bytes.set(childHash, 3 + position * STATE_HASH_BYTES);
  }

  /**
   * A child was added at `position`, giving the node `childBitmap`: the children from there on
   * move up one place, and the new child's hash is unset until `setChildHash`.
   */
  insertChild(position: number, childBitmap: number): void {
    const count = this.count + 1;
    if (position >= count || bitCount16(childBitmap) !== count) throw new Error(`InternalNodeHashInput: insert at ${position} for bitmap ${childBitmap}`);
    const from = 3 + position * STATE_HASH_BYTES;
    const end = messageBytes(this.count);
    if (messageBytes(count) > this.bytes.length) {
      const grown = Buffer.allocUnsafe(messageBytes(Math.min(STATE_TREE_RADIX, 2 * count)));
      this.bytes.copy(grown, 0, 0, from);
      this.bytes.copy(grown, from + STATE_HASH_BYTES, from, end);
      this.bytes = grown;
    } else {
      this.bytes.copyWithin(from + STATE_HASH_BYTES, from, end);
    }
    this.count = count;
    this.message = this.bytes.subarray(0, messageBytes(count));
    this.writeBitmap(childBitmap);
  }

  /**
   * The child at `position` was removed, leaving the node `childBitmap`: the children after it
   * move down one place. Returns false when no child is left (the input is then unusable).
   */
  removeChild(position: number, childBitmap: number): boolean {
    const count = this.count - 1;
    if (position > count || bitCount16(childBitmap) !== count) throw new Error(`InternalNodeHashInput: remove at ${position} for bitmap ${childBitmap}`);
    if (count === 0) return false;
    const to = 3 + position * STATE_HASH_BYTES;
    this.bytes.copyWithin(to, to + STATE_HASH_BYTES, messageBytes(this.count));
    this.count = count;
    this.message = this.bytes.subarray(0, messageBytes(count));
    this.writeBitmap(childBitmap);
    return true;
  }

  hash(): HashString {
    return sha256(this.message);
  }

  private writeBitmap(childBitmap: number): void {
    this.bytes[1] = childBitmap >>> 8;
    this.bytes[2] = childBitmap & 0xff;
  }
}

function messageBytes(childCount: number): number {
  return 3 + childCount * STATE_HASH_BYTES;
}

/**
 * The hash of an internal node whose present children are the set bits of `childBitmap` (bit n
 * for nibble n) with hashes `childHashes`, in nibble order. Callers check that the counts agree;
 * a mismatch here is a bug.
 */
export function internalNodeHash(childBitmap: number, childHashes: readonly HashString[]): HashString {
  const input = new InternalNodeHashInput(childBitmap);
  if (childHashes.length !== input.childCount) {
    throw new Error(`internalNodeHash: bitmap ${childBitmap} does not match ${childHashes.length} child hashes`);
  }
  childHashes.forEach((childHash, position) => input.setChildHash(position, childHash));
  return input.hash();
}

/** A hash as a fresh Uint8Array, for callers outside the tree. */
export function hashBytes(hashString: HashString): Uint8Array {
  const bytes = new Uint8Array(hashString.length);
  for (let index = 0; index < hashString.length; index++) bytes[index] = hashString.charCodeAt(index);
  return bytes;
}

/** A hash from outside the tree in the tree's string form. */
export function hashString(bytes: Uint8Array): HashString {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

/** Nibble `depth` (0 = the high half of byte 0) of a key hash: the child slot at `depth`. */
export function nibbleAt(keyHash: HashString, depth: number): number {
  const byte = keyHash.charCodeAt(depth >>> 1);
  return (depth & 1) === 0 ? byte >>> 4 : byte & 0x0f;
}

export function bitCount16(bitmap: number): number {
  // A branch-free population count (Hacker's Delight 5-1): it runs for every dirty child at
  // every commit, where a loop over the set bits would take up to 16 rounds.
  let bits = bitmap & 0xffff;
  bits -= (bits >>> 1) & 0x5555;
  bits = (bits & 0x3333) + ((bits >>> 2) & 0x3333);
  bits = (bits + (bits >>> 4)) & 0x0f0f;
  return (bits + (bits >>> 8)) & 0x1f;
}

/**
 * A copy that shares no memory with `bytes`. (`.slice()` will not do: callers may pass Buffers,
 * and `Buffer.prototype.slice` returns a view.)
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}
