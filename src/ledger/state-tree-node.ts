// The nodes of the state tree (state-tree.ts) and the rules that keep their cached hashes right.
//
// Dirty tracking. A node's `hash` is undefined while something below it changed since the last
// commit, and then
//
//   (1) every ancestor of a dirty node is dirty, and
//   (2) a dirty internal node's `dirtyMask` has the bit of every child slot that holds a dirty
//       child (it may have more bits: a slot whose child went away, or came back clean).
//
// A change marks the nodes above it until it meets one that is dirty already: by (1) everything
// above that one is dirty too. `hashOf` then rehashes a node from the input it kept at the last
// commit (state-tree-hash.ts) by visiting only the slots in its mask, never the clean children, so
// a commit touches only what changed. Nodes know their parent and slot, which lets a caller that
// holds a leaf (`StateTree.rewrite`) mark its path upwards without walking down from the root.

import { type HashString, InternalNodeHashInput, STATE_TREE_DEPTH_MAX, STATE_TREE_RADIX, bitCount16, leafNodeHash, nibbleAt, sha256 } from "./state-tree-hash.js";

export class LeafNode {
  /** Undefined while the value changed since the last commit. */
  hash: HashString | undefined = undefined;
  parent: InternalNode | undefined = undefined;
  /** The slot of this node in `parent`. */
  slotInParent = 0;
  /** Set when the key is deleted: a holder of this leaf must not write through it any more. */
  removed = false;
  constructor(
    readonly keyHash: HashString,
    readonly key: Uint8Array,
    public value: Uint8Array,
  ) {}
}

export class InternalNode {
  readonly children: Array<TreeNode | undefined> = new Array<TreeNode | undefined>(STATE_TREE_RADIX).fill(undefined);
  /** Bit n is set when `children[n]` is present. */
  childBitmap = 0;
  /** Undefined while something below changed since the last commit. */
  hash: HashString | undefined = undefined;
  /** While dirty: the slots that may hold dirty children (rule 2 in the file comment). */
  dirtyMask = 0;
  parent: InternalNode | undefined = undefined;
  slotInParent = 0;
  /**
   * The bytes hashed at the last commit. Value updates below leave it in place, so the next
   * commit rewrites only the children whose hashes changed. `setChild` keeps it in step when the
   * children change: it shifts the others' hashes when one comes or goes, and writes the hash of
   * a clean child that takes a slot at once (a dirty one has no hash yet; the commit writes it).
   */
  hashInput: InternalNodeHashInput | undefined = undefined;

  get childCount(): number {
    return bitCount16(this.childBitmap);
  }

  /** Puts `child` in `slot` (undefined: empties it). The caller marks this node dirty. */
  setChild(slot: number, child: TreeNode | undefined): void {
    const bit = 1 << slot;
    const present = (this.childBitmap & bit) !== 0;
    this.children[slot] = child;
    this.dirtyMask |= bit;
    const input = this.hashInput;
    if (child === undefined) {
      if (!present) return;
      this.childBitmap &= ~bit;
      if (input !== undefined && !input.removeChild(bitCount16(this.childBitmap & (bit - 1)), this.childBitmap)) this.hashInput = undefined;
      return;
    }
    child.parent = this;
    child.slotInParent = slot;
    const position = bitCount16(this.childBitmap & (bit - 1));
    if (!present) {
      this.childBitmap |= bit;
      input?.insertChild(position, this.childBitmap);
    }
    if (input !== undefined && child.hash !== undefined) input.setChildHash(position, child.hash);
  }
}

export type TreeNode = LeafNode | InternalNode;

/** Marks `node` dirty in its parent, and the nodes above, until one that is dirty already. */
export function markAncestorsDirty(node: TreeNode): void {
  let child: TreeNode = node;
  for (let parent = child.parent; parent !== undefined; parent = child.parent) {
    parent.dirtyMask |= 1 << child.slotInParent;
    if (parent.hash === undefined) return;
    parent.hash = undefined;
    child = parent;
  }
}

/** The node's hash, computing it (and any dirty hashes below it) first. */
export function hashOf(node: TreeNode): HashString {
  if (node.hash !== undefined) return node.hash;
  if (node instanceof LeafNode) {
    node.hash = leafNodeHash(node.keyHash, sha256(node.value));
    return node.hash;
  }
  const { children, childBitmap } = node;
  const kept = node.hashInput;
  if (kept !== undefined) {
    // The kept input holds every clean child's hash at its place, so only the slots in the mask
    // can need writing (rule 2).
    for (let rest = node.dirtyMask & childBitmap; rest !== 0; rest &= rest - 1) {
      const bit = rest & -rest;
      const child = children[31 - Math.clz32(bit)]!;
      if (child.hash === undefined) kept.setChildHash(bitCount16(childBitmap & (bit - 1)), hashOf(child));
    }
  } else {
    const input = new InternalNodeHashInput(childBitmap);
    let position = 0;
    for (const child of children) {
      if (child === undefined) continue;
      input.setChildHash(position, hashOf(child));
      position++;
    }
    node.hashInput = input;
  }
  node.dirtyMask = 0;
  node.hash = node.hashInput!.hash();
  return node.hash;
}

/**
 * The subtree at `depth` holding exactly two leaves: one-child internal nodes down to the first
 * nibble where their key hashes differ, and a node there with both leaves.
 */
export function splitLeaf(existing: LeafNode, added: LeafNode, depth: number): InternalNode {
  const top = new InternalNode();
  let node = top;
  for (let level = depth; level < STATE_TREE_DEPTH_MAX; level++) {
    const existingSlot = nibbleAt(existing.keyHash, level);
    const addedSlot = nibbleAt(added.keyHash, level);
    if (existingSlot !== addedSlot) {
      node.setChild(existingSlot, existing);
      node.setChild(addedSlot, added);
      return top;
    }
    const next = new InternalNode();
    node.setChild(existingSlot, next);
    node = next;
  }
  throw new Error("StateTree: two distinct keys have the same SHA-256 hash");
}
