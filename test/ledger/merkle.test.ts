import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  MERKLE_AUDIT_PATH_LENGTH_MAX,
  MERKLE_HASH_BYTES,
  MerkleTree,
  inclusionProof,
  merkleLeafHash,
  merkleNodeHash,
  merkleRoot,
  verifyInclusion,
} from "../../src/ledger/merkle.js";
import { Random } from "../../src/sim/random.js";
import { fromHex, hex, randomBytes } from "../support/random-bytes.js";

// A reference written straight from RFC 6962 §2.1's recursive definitions (MTH and PATH), with
// its own hashing, so the fast bottom-up code is checked against the text, not against itself.
function referenceHash(...parts: Uint8Array[]): Uint8Array {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return Uint8Array.from(hash.digest());
}

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function referenceRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return referenceHash();
  if (leaves.length === 1) return referenceHash(Uint8Array.of(0), leaves[0] as Uint8Array);
  const k = largestPowerOfTwoBelow(leaves.length);
  return referenceHash(Uint8Array.of(1), referenceRoot(leaves.slice(0, k)), referenceRoot(leaves.slice(k)));
}

function referencePath(index: number, leaves: readonly Uint8Array[]): Uint8Array[] {
  if (leaves.length <= 1) return [];
  const k = largestPowerOfTwoBelow(leaves.length);
  return index < k
    ? [...referencePath(index, leaves.slice(0, k)), referenceRoot(leaves.slice(k))]
    : [...referencePath(index - k, leaves.slice(k)), referenceRoot(leaves.slice(0, k))];
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const copy = bytes.slice();
  copy[bit >> 3] = (copy[bit >> 3] as number) ^ (1 << (bit & 7));
  return copy;
}

function leavesOf(count: number, random: Random): Uint8Array[] {
  return Array.from({ length: count }, () => randomBytes(random, random.below(80)));
}

// The test vectors of Certificate Transparency's reference implementation (merkle_tree_test.cc,
// reused by Trillian's rfc6962 tests): eight leaves, and the root of each prefix of them.
const CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"].map(
  fromHex,
);
const CT_ROOTS = [
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

test("the empty tree's root is SHA-256 of the empty string", () => {
  assert.equal(hex(merkleRoot([])), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(hex(MerkleTree.fromLeaves([]).root), hex(merkleRoot([])));
  assert.equal(MerkleTree.fromLeaves([]).leafCount, 0);
});

test("roots match Certificate Transparency's test vectors for every size from 1 to 8", () => {
  for (let size = 1; size <= CT_LEAVES.length; size += 1) {
    assert.equal(hex(merkleRoot(CT_LEAVES.slice(0, size))), CT_ROOTS[size - 1], `size ${size}`);
  }
});

test("inclusion proofs match Certificate Transparency's test vectors", () => {
  assert.deepEqual(inclusionProof(CT_LEAVES, 0).map(hex), [
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
  ]);
  assert.deepEqual(inclusionProof(CT_LEAVES.slice(0, 5), 4).map(hex), [
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  ]);
  assert.deepEqual(inclusionProof(CT_LEAVES.slice(0, 1), 0), []);
});

test("roots equal RFC 6962's recursive definition for every size from 0 to 300", () => {
  const random = new Random(6962);
  const leaves = leavesOf(300, random);
  for (let size = 0; size <= leaves.length; size += 1) {
    const subset = leaves.slice(0, size);
    assert.equal(hex(merkleRoot(subset)), hex(referenceRoot(subset)), `size ${size}`);
  }
});

test("a tree over the digests of items equals the tree over those digests as leaves, for every size from 0 to 300", () => {
  const random = new Random(256);
  const items = Array.from({ length: 300 }, (_, index) => randomBytes(random, index % 7 === 0 ? 0 : random.between(1, 200)));
  const digests = items.map((item) => referenceHash(item));
  for (let size = 0; size <= items.length; size += 1) {
    const tree = MerkleTree.fromDigestsOf(items.slice(0, size));
    assert.equal(hex(tree.root), hex(referenceRoot(digests.slice(0, size))), `size ${size}`);
    assert.equal(tree.leafCount, size);
    if (size > 0) {
      const index = random.below(size);
      assert.deepEqual(tree.inclusionProof(index).map(hex), referencePath(index, digests.slice(0, size)).map(hex), `size ${size}, leaf ${index}`);
    }
  }
});

test("every inclusion proof equals RFC 6962's PATH and verifies, for every size up to 70", () => {
  const random = new Random(9162);
  const leaves = leavesOf(70, random);
  for (let size = 1; size <= leaves.length; size += 1) {
    const subset = leaves.slice(0, size);
    const tree = MerkleTree.fromLeaves(subset);
    assert.equal(hex(tree.root), hex(merkleRoot(subset)));
    for (let index = 0; index < size; index += 1) {
      const proof = tree.inclusionProof(index);
      assert.deepEqual(proof.map(hex), referencePath(index, subset).map(hex), `size ${size} index ${index}`);
      assert.ok(verifyInclusion(tree.root, subset[index] as Uint8Array, index, size, proof), `size ${size} index ${index}`);
    }
  }
});

test("an odd last leaf is promoted, never paired with itself (CVE-2012-2459)", () => {
  const [a, b, c] = CT_LEAVES.slice(1, 4) as [Uint8Array, Uint8Array, Uint8Array];
  // Bitcoin's rule would make these two lists share a root.
  assert.notEqual(hex(merkleRoot([a, b, c])), hex(merkleRoot([a, b, c, c])));
  assert.equal(
    hex(merkleRoot([a, b, c])),
    hex(merkleNodeHash(merkleNodeHash(merkleLeafHash(a), merkleLeafHash(b)), merkleLeafHash(c))),
  );
  // Duplicating a whole odd tail does not collide either.
  const five = CT_LEAVES.slice(0, 5);
  assert.notEqual(hex(merkleRoot(five)), hex(merkleRoot([...five, five[4] as Uint8Array])));
});

test("a leaf that spells out an interior node does not share its hash (domain separation)", () => {
  const [a, b] = CT_LEAVES.slice(1, 3) as [Uint8Array, Uint8Array];
  const forgedLeaf = new Uint8Array([...merkleLeafHash(a), ...merkleLeafHash(b)]);
  assert.notEqual(hex(merkleRoot([forgedLeaf])), hex(merkleRoot([a, b])));
  // Nor can the pair's root be "proved" to contain that leaf as a one-leaf tree.
  assert.equal(verifyInclusion(merkleRoot([a, b]), forgedLeaf, 0, 1, []), false);
});

test("random trees: every sampled proof verifies, and fails for any other leaf or index", () => {
  const random = new Random(2459);
  for (let round = 0; round < 40; round += 1) {
    const size = random.between(1, 2000);
    const leaves = leavesOf(size, random);
    const tree = MerkleTree.fromLeaves(leaves);
    for (let sample = 0; sample < 5; sample += 1) {
      const index = random.below(size);
      const leaf = leaves[index] as Uint8Array;
      const proof = tree.inclusionProof(index);
      assert.ok(verifyInclusion(tree.root, leaf, index, size, proof));
      const otherLeaf = new Uint8Array([...leaf, 0]);
      assert.equal(verifyInclusion(tree.root, otherLeaf, index, size, proof), false);
      if (size > 1) {
        const otherIndex = (index + 1 + random.below(size - 1)) % size;
        // Equal leaves at two positions would legitimately share a proof only if their paths
        // matched, which a random tree of distinct leaves never gives.
        assert.equal(verifyInclusion(tree.root, leaf, otherIndex, size, proof), false);
      }
    }
  }
});

test("a proof with any bit flipped, an entry missing or an entry added does not verify", () => {
  const random = new Random(12);
  const leaves = leavesOf(37, random);
  const tree = MerkleTree.fromLeaves(leaves);
  for (const index of [0, 17, 31, 32, 36]) {
    const leaf = leaves[index] as Uint8Array;
    const proof = tree.inclusionProof(index);
    assert.ok(verifyInclusion(tree.root, leaf, index, leaves.length, proof));
    for (let entry = 0; entry < proof.length; entry += 1) {
      for (let bit = 0; bit < 8 * MERKLE_HASH_BYTES; bit += 1) {
        const tampered = proof.map((hash, at) => (at === entry ? flipBit(hash, bit) : hash));
        assert.equal(verifyInclusion(tree.root, leaf, index, leaves.length, tampered), false);
      }
      assert.equal(verifyInclusion(tree.root, leaf, index, leaves.length, proof.filter((_, at) => at !== entry)), false);
    }
    assert.equal(verifyInclusion(tree.root, leaf, index, leaves.length, [...proof, tree.root]), false);
    assert.equal(verifyInclusion(tree.root, leaf, index, leaves.length, [tree.root, ...proof]), false);
    assert.equal(verifyInclusion(flipBit(tree.root, 0), leaf, index, leaves.length, proof), false);
  }
});

test("a path longer than the claimed tree's height is refused, even when it hashes to the root", () => {
  // Leaf b "as the only leaf of a one-leaf tree", with a's leaf hash as a surplus entry, hashes
  // to exactly the root of [a, b]. RFC 9162's check (a level with one node ends the path) stops it.
  const [a, b] = CT_LEAVES.slice(1, 3) as [Uint8Array, Uint8Array];
  const root = merkleRoot([a, b]);
  assert.equal(hex(merkleNodeHash(merkleLeafHash(a), merkleLeafHash(b))), hex(root));
  assert.equal(verifyInclusion(root, b, 0, 1, [merkleLeafHash(a)]), false);
  assert.ok(verifyInclusion(root, b, 1, 2, [merkleLeafHash(a)]));
});

test("a proof does not bind the tree size: the verifier must take leafCount from a trusted header", () => {
  // Leaf 0's path in a tree of 5 leaves has the same shape as in a tree of 6 (its last entry is
  // the right subtree's root either way), so the same proof "verifies" under either size; and
  // leaf 4 of 5 checks out as leaf 2 of 3. RFC 6962 proofs are only as good as the size they are
  // checked against, which is why a block header must commit to its transaction count.
  const five = CT_LEAVES.slice(0, 5);
  const root = merkleRoot(five);
  assert.ok(verifyInclusion(root, five[0] as Uint8Array, 0, 5, inclusionProof(five, 0)));
  assert.ok(verifyInclusion(root, five[0] as Uint8Array, 0, 6, inclusionProof(five, 0)));
  assert.ok(verifyInclusion(root, five[4] as Uint8Array, 2, 3, inclusionProof(five, 4)));
  // A size that changes the path's shape does not verify.
  assert.equal(verifyInclusion(root, five[0] as Uint8Array, 0, 9, inclusionProof(five, 0)), false);
  assert.equal(verifyInclusion(root, five[4] as Uint8Array, 4, 6, inclusionProof(five, 4)), false);
});

test("malformed verification inputs give false, never an exception", () => {
  const leaves = CT_LEAVES;
  const root = merkleRoot(leaves);
  const leaf = leaves[3] as Uint8Array;
  const proof = inclusionProof(leaves, 3);
  const good = (): boolean => verifyInclusion(root, leaf, 3, 8, proof);
  assert.ok(good());
  const cases: [string, () => boolean][] = [
    ["negative index", () => verifyInclusion(root, leaf, -1, 8, proof)],
    ["index equal to size", () => verifyInclusion(root, leaf, 8, 8, proof)],
    ["fractional index", () => verifyInclusion(root, leaf, 2.5, 8, proof)],
    ["NaN index", () => verifyInclusion(root, leaf, Number.NaN, 8, proof)],
    ["infinite size", () => verifyInclusion(root, leaf, 3, Number.POSITIVE_INFINITY, proof)],
    ["unsafe size", () => verifyInclusion(root, leaf, 3, 2 ** 60, proof)],
    ["empty tree", () => verifyInclusion(root, leaf, 0, 0, [])],
    ["short root", () => verifyInclusion(root.subarray(0, 31), leaf, 3, 8, proof)],
    ["long entry", () => verifyInclusion(root, leaf, 3, 8, [new Uint8Array(33), ...proof.slice(1)])],
    ["short entry", () => verifyInclusion(root, leaf, 3, 8, [new Uint8Array(0), ...proof.slice(1)])],
    ["empty proof", () => verifyInclusion(root, leaf, 3, 8, [])],
    ["proof over the length bound", () => verifyInclusion(root, leaf, 3, 8, new Array<Uint8Array>(MERKLE_AUDIT_PATH_LENGTH_MAX + 1).fill(root))],
    ["a million entries", () => verifyInclusion(root, leaf, 3, 8, new Array<Uint8Array>(1_000_000).fill(root))],
  ];
  // Inputs that only untyped callers (decoded JSON) can produce.
  const untyped = verifyInclusion as (...args: unknown[]) => boolean;
  cases.push(
    ["entry that is not bytes", () => untyped(root, leaf, 3, 8, ["00".repeat(32), ...proof.slice(1)])],
    ["null entry", () => untyped(root, leaf, 3, 8, [null, ...proof.slice(1)])],
    ["proof that is not an array", () => untyped(root, leaf, 3, 8, { length: 3 })],
    ["root that is not bytes", () => untyped(hex(root), leaf, 3, 8, proof)],
    ["leaf that is not bytes", () => untyped(root, "leaf", 3, 8, proof)],
    ["index that is a string", () => untyped(root, leaf, "3", 8, proof)],
  );
  for (const [name, run] of cases) assert.equal(run(), false, name);
});

test("indices beyond 2^31 verify: the arithmetic does not use 32-bit bit operators", () => {
  // A tree of 2^33 + 5 leaves splits into a perfect subtree of 2^33 leaves and one of 5. The last
  // leaf's path is [root of the other four in its subtree, root of the big subtree]; with
  // arbitrary values for those two, the root follows from the definition.
  const random = new Random(33);
  const leafCount = 2 ** 33 + 5;
  const index = leafCount - 1;
  const leaf = randomBytes(random, 40);
  const firstFour = randomBytes(random, MERKLE_HASH_BYTES);
  const bigSubtree = randomBytes(random, MERKLE_HASH_BYTES);
  const root = merkleNodeHash(bigSubtree, merkleNodeHash(firstFour, merkleLeafHash(leaf)));
  assert.ok(verifyInclusion(root, leaf, index, leafCount, [firstFour, bigSubtree]));
  assert.equal(verifyInclusion(root, leaf, index - 1, leafCount, [firstFour, bigSubtree]), false);
  assert.equal(verifyInclusion(root, leaf, index, leafCount + 1, [firstFour, bigSubtree]), false);
});

test("inclusionProof refuses an index outside the tree with a RangeError", () => {
  const tree = MerkleTree.fromLeaves(CT_LEAVES);
  for (const index of [-1, 8, 1.5, Number.NaN]) {
    assert.throws(() => tree.inclusionProof(index), RangeError);
  }
  assert.throws(() => inclusionProof([], 0), /outside the tree's 0 leaves/);
});

test("roots and proofs are copies: changing them changes nothing else", () => {
  const tree = MerkleTree.fromLeaves(CT_LEAVES);
  const root = hex(tree.root);
  merkleRoot([]).fill(0);
  tree.inclusionProof(0)[0]?.fill(0);
  assert.equal(hex(merkleRoot([])), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.equal(tree.inclusionProof(0)[0]?.[0], 0x96);
  assert.equal(hex(tree.root), root);
});

test("merkleNodeHash refuses children that are not 32-byte hashes", () => {
  assert.throws(() => merkleNodeHash(new Uint8Array(31), new Uint8Array(32)), /left child is 31 bytes/);
  assert.throws(() => merkleNodeHash(new Uint8Array(32), new Uint8Array(33)), /right child is 33 bytes/);
});
