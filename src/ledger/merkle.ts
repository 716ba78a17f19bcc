// Binary Merkle trees over lists of byte strings, exactly as Certificate Transparency defines
// them (RFC 6962 §2.1; RFC 9162 §2.1 restates the same tree). A block's `txRoot` is the root
// over its encoded transactions, and an inclusion proof lets a client that trusts only a block
// header check that one transaction is in that block (DESIGN.md, "Data model").
//
// The definition, for a list D of n byte strings:
//
//   MTH({})     = SHA-256()                          the empty tree
//   MTH({d0})   = SHA-256(0x00 || d0)                a leaf
//   MTH(D[n])   = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))
//                 where k is the largest power of two smaller than n
//
// Two decisions in it matter for safety:
//
// * Domain separation. A leaf hashes with prefix 0x00 and an interior node with 0x01, so a
//   64-byte leaf equal to `left || right` does not hash to the same value as that interior node.
//   Without the prefixes, anyone could present an interior node as a leaf of a shorter tree and
//   "prove" the inclusion of data nobody put there (a second-preimage attack on the tree).
//
// * No duplicated last node. When a level has an odd number of nodes, the last one moves up
//   unchanged instead of being paired with a copy of itself. Bitcoin pairs it with itself, so
//   the lists [a, b, c] and [a, b, c, c] have the same root. CVE-2012-2459 exploited that: a
//   peer could relay a block with a duplicated transaction that had the same header hash as a
//   valid block, the duplicate made it invalid, and nodes that cached "this header hash is
//   invalid" then rejected the real block as well, splitting the network. Under RFC 6962 two
//   different lists (including lists of different lengths) have different roots unless SHA-256
//   has a collision.
//
// The bottom-up computation below (pair neighbours left to right, promote a lone last node)
// builds the same tree as the recursive definition with its "largest power of two" split; the
// tests check the two against each other for every size up to a few hundred leaves.

import { SHA256_DIGEST_BYTES, sha256, sha256Into } from "../crypto/sha256.js";

/** Length of every hash in a tree: a leaf hash, a node hash, a root, an audit-path entry. */
export const MERKLE_HASH_BYTES = SHA256_DIGEST_BYTES;

/**
 * The longest audit path `verifyInclusion` accepts. A path has one entry per level above the
 * leaf, so it is at most ceil(log2(leafCount)) long, and leaf counts are safe integers (< 2^53).
 * Checking the bound first stops a hostile proof with a million entries before any hashing.
 */
export const MERKLE_AUDIT_PATH_LENGTH_MAX = 64;

/**
 * An inclusion proof (RFC 6962's "audit path"): the sibling hashes needed to recompute the root
 * from one leaf, ordered from the leaf's level up to the level just below the root.
 */
export type MerkleAuditPath = readonly Uint8Array[];

const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;

/** The root of the empty tree, SHA-256 of the empty string (RFC 6962 §2.1). */
const EMPTY_TREE_ROOT: Uint8Array = sha256(new Uint8Array(0));

/** SHA-256(0x00 || data): the hash of one leaf. */
export function merkleLeafHash(data: Uint8Array): Uint8Array {
  const input = new Uint8Array(1 + data.length);
  input[0] = LEAF_PREFIX;
  input.set(data, 1);
  return sha256(input);
}

/** SHA-256(0x01 || left || right): the hash of an interior node. */
export function merkleNodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  assertHashLength(left, "left child");
  assertHashLength(right, "right child");
  const input = new Uint8Array(1 + 2 * MERKLE_HASH_BYTES);
  input[0] = NODE_PREFIX;
  input.set(left, 1);
  input.set(right, 1 + MERKLE_HASH_BYTES);
  return sha256(input);
}

/** The Merkle tree hash (RFC 6962 MTH) of `leaves`; the empty list has `SHA-256()` as its root. */
export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return EMPTY_TREE_ROOT.slice();
  // Only the current level is kept: computing a root needs no more than n hashes of memory.
  let level = hashLeaves(leaves);
  let count = leaves.length;
  while (count > 1) {
    level = parentLevel(level, count);
    count = Math.ceil(count / 2);
  }
  return level.slice(0, MERKLE_HASH_BYTES);
}

/**
 * The audit path proving that `leaves[index]` is in the tree over `leaves` (RFC 6962 §2.1.1).
 * For several proofs over the same leaves, build a `MerkleTree` once instead.
 */
export function inclusionProof(leaves: readonly Uint8Array[], index: number): MerkleAuditPath {
  return MerkleTree.fromLeaves(leaves).inclusionProof(index);
}

/**
 * Whether `proof` shows that `leaf` is the leaf at `index` of a tree of `leafCount` leaves with
 * root `root` (the algorithm of RFC 9162 §2.1.3.2). Proofs come from untrusted replicas, so this
 * never throws: a wrong length, a bad index, a malformed entry or a mismatch all give false.
 *
 * `leafCount` must come from the same trusted source as `root` (a certified block header), not
 * from the prover: a path does not bind the tree size, and the same path can verify under
 * several sizes whose trees have the same shape along it (leaf 4 of 5 checks out as leaf 2 of
 * 3). The leaf is in the tree either way; only the position and size claims would be wrong.
 */
export function verifyInclusion(
  root: Uint8Array,
  leaf: Uint8Array,
  index: number,
  leafCount: number,
  proof: MerkleAuditPath,
): boolean {
  if (!isHash(root) || !(leaf instanceof Uint8Array)) return false;
  if (!Number.isSafeInteger(leafCount) || !Number.isSafeInteger(index)) return false;
  if (index < 0 || index >= leafCount) return false;
  if (!Array.isArray(proof) || proof.length > MERKLE_AUDIT_PATH_LENGTH_MAX) return false;

  // `nodeIndex` is the position of the running hash within its level and `lastIndex` the
  // position of that level's last node. Division instead of `>>` because indices may exceed
  // 2^31, where JavaScript's bit operators would truncate them.
  let nodeIndex = index;
  let lastIndex = leafCount - 1;
  let hash = merkleLeafHash(leaf);
  for (const sibling of proof as readonly unknown[]) {
    if (!isHash(sibling)) return false;
    // A level with one node is the root's: a path entry beyond it is surplus.
    if (lastIndex === 0) return false;
    if (nodeIndex % 2 === 1 || nodeIndex === lastIndex) {
      hash = merkleNodeHash(sibling, hash);
      // A last node without a right sibling was promoted unchanged, possibly through several
      // levels; skip those levels, which contribute no path entry.
      while (nodeIndex % 2 === 0 && nodeIndex !== 0) {
        nodeIndex /= 2;
        lastIndex = Math.floor(lastIndex / 2);
      }
    } else {
      hash = merkleNodeHash(hash, sibling);
    }
    nodeIndex = Math.floor(nodeIndex / 2);
    lastIndex = Math.floor(lastIndex / 2);
  }
  // A path that stops early leaves us below the root.
  return lastIndex === 0 && Buffer.compare(hash, root) === 0;
}

/**
 * All levels of one tree, kept so that any number of inclusion proofs cost no hashing: a block
 * producer builds it once per block and serves a proof for each of its transactions.
 * Memory is about 2 × leafCount × 32 bytes.
 */
export class MerkleTree {
  /** The tree hash (RFC 6962 MTH) of the leaves. */
  readonly root: Uint8Array;

  /** levels[0] holds the leaf hashes, each later level the parents of the one before. */
  private constructor(
    readonly leafCount: number,
    private readonly levels: readonly Uint8Array[],
  ) {
    const top = levels[levels.length - 1];
    this.root = top === undefined ? EMPTY_TREE_ROOT.slice() : top.slice(0, MERKLE_HASH_BYTES);
  }

  static fromLeaves(leaves: readonly Uint8Array[]): MerkleTree {
    return MerkleTree.fromLeafHashes(leaves.length, hashLeaves(leaves));
  }

  /**
   * The tree whose leaves are the SHA-256 digests of `items` (a block's transaction ids), without
   * making an array per digest: the same tree as `fromLeaves(items.map(sha256))`.
   */
  static fromDigestsOf(items: readonly Uint8Array[]): MerkleTree {
    const hashes = new Uint8Array(items.length * MERKLE_HASH_BYTES);
    const input = new Uint8Array(1 + MERKLE_HASH_BYTES);
    input[0] = LEAF_PREFIX;
    items.forEach((item, index) => {
      sha256Into(item, input, 1);
      sha256Into(input, hashes, index * MERKLE_HASH_BYTES);
    });
    return MerkleTree.fromLeafHashes(items.length, hashes);
  }

  private static fromLeafHashes(leafCount: number, leafHashes: Uint8Array): MerkleTree {
    if (leafCount === 0) return new MerkleTree(0, []);
    const levels: Uint8Array[] = [leafHashes];
    let level = leafHashes;
    let count = leafCount;
    while (count > 1) {
      level = parentLevel(level, count);
      count = Math.ceil(count / 2);
      levels.push(level);
    }
    return new MerkleTree(leafCount, levels);
  }

  /** The audit path for the leaf at `index`; entries are fresh copies the caller owns. */
  inclusionProof(index: number): MerkleAuditPath {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.leafCount) {
      throw new RangeError(`leaf index ${index} is outside the tree's ${this.leafCount} leaves`);
    }
    const path: Uint8Array[] = [];
    let nodeIndex = index;
    let count = this.leafCount;
    // The top level is the root, which has no sibling.
    for (let depth = 0; depth < this.levels.length - 1; depth += 1) {
      const level = this.levels[depth] as Uint8Array;
      // The sibling of an even index is to its right and may not exist (a promoted last node);
      // the sibling of an odd index is to its left and always exists.
      const siblingIndex = nodeIndex % 2 === 0 ? nodeIndex + 1 : nodeIndex - 1;
      if (siblingIndex < count) {
        const start = siblingIndex * MERKLE_HASH_BYTES;
        path.push(level.slice(start, start + MERKLE_HASH_BYTES));
      }
      nodeIndex = Math.floor(nodeIndex / 2);
      count = Math.ceil(count / 2);
    }
    return path;
  }
}

// Hashing below writes each digest straight into the packed level (`sha256Into`): a digest
// returned as a Buffer costs an allocation of its own that is slower than the hash, and a block
// builds two trees of a few hundred leaves each.

/**
 * The leaf hashes of `leaves`, packed into one array of leaves.length × 32 bytes. Packing keeps
 * the two children of a node adjacent, so a parent's hash input is one 64-byte copy.
 */
function hashLeaves(leaves: readonly Uint8Array[]): Uint8Array {
  let dataBytesMax = 0;
  for (const leaf of leaves) dataBytesMax = Math.max(dataBytesMax, leaf.length);
  // One scratch buffer for every leaf's `0x00 || data` instead of one allocation per leaf.
  const scratch = new Uint8Array(1 + dataBytesMax);
  scratch[0] = LEAF_PREFIX;
  const hashes = new Uint8Array(leaves.length * MERKLE_HASH_BYTES);
  for (let index = 0; index < leaves.length; index += 1) {
    const leaf = leaves[index] as Uint8Array;
    scratch.set(leaf, 1);
    sha256Into(scratch.subarray(0, 1 + leaf.length), hashes, index * MERKLE_HASH_BYTES);
  }
  return hashes;
}

/** The level above a packed level of `count` hashes (count ≥ 2). */
function parentLevel(level: Uint8Array, count: number): Uint8Array {
  const parentCount = Math.ceil(count / 2);
  const parents = new Uint8Array(parentCount * MERKLE_HASH_BYTES);
  const scratch = new Uint8Array(1 + 2 * MERKLE_HASH_BYTES);
  scratch[0] = NODE_PREFIX;
  const pairCount = Math.floor(count / 2);
  for (let pair = 0; pair < pairCount; pair += 1) {
    const start = pair * 2 * MERKLE_HASH_BYTES;
    scratch.set(level.subarray(start, start + 2 * MERKLE_HASH_BYTES), 1);
    sha256Into(scratch, parents, pair * MERKLE_HASH_BYTES);
  }
  if (count % 2 === 1) {
    // The lone last node moves up unchanged (see the header: never pair it with itself).
    const start = (count - 1) * MERKLE_HASH_BYTES;
    parents.set(level.subarray(start, start + MERKLE_HASH_BYTES), pairCount * MERKLE_HASH_BYTES);
  }
  return parents;
}

function isHash(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.length === MERKLE_HASH_BYTES;
}

function assertHashLength(hash: Uint8Array, what: string): void {
  if (hash.length !== MERKLE_HASH_BYTES) {
    throw new RangeError(`${what} is ${hash.length} bytes; a Merkle hash is ${MERKLE_HASH_BYTES}`);
  }
}
