// The authenticated state map behind a block's `stateRoot` (issue 3, "Ledger"): a radix-16 Merkle
// tree keyed by SHA-256(key), after Diem's Jellyfish Merkle Tree and Ethereum's hexary Patricia
// trie. Its root commits to every key/value pair, and `prove` yields a proof that one key has a
// value, or has none, which a third party checks with `verifyStateProof` holding only the root.
//
// Shape. Internal nodes branch on one nibble of the key hash and have up to 16 children. A leaf
// sits at the shallowest depth where it is alone in its subtree (JMT's leaf compression), so for
// random key hashes the depth is about log16(N): 5 levels at 100,000 keys, not the 256 of a
// sparse Merkle tree. Keys sharing a longer prefix get a chain of one-child internal nodes down to
// the nibble where they part; SHA-256 keeps such prefixes short, and grinding for a k-nibble
// prefix costs 16^k hashes for k extra levels. The shape is canonical: it depends only on the set
// of keys, never on the order of operations, because `delete` collapses a subtree left with one
// leaf back into that leaf. Equal contents therefore always give equal roots, which is what lets
// replicas compare state digests.
//
// Cost. `put` and `delete` only mark the path they touch as dirty; `root` (alias `commit`) then
// rehashes each dirty node once, rewriting only the dirty children's hashes in the input each node
// kept (state-tree-node.ts). A block of updates shares its upper levels, so it costs far fewer
// than depth hashes per update. A caller that writes the same keys again and again (the ledger's
// accounts) keeps their hashes (`HashedKey`) and their entries (`StateLeafHandle`), and then pays
// neither the key's SHA-256 nor the walk from the root. See state-tree-hash.ts for the hash
// definitions.

import { EMPTY_STATE_ROOT, STATE_HASH_BYTES, STATE_TREE_RADIX, type HashString, copyBytes, hashBytes, hashString, nibbleAt, sha256 } from "./state-tree-hash.js";
import { InternalNode, LeafNode, type TreeNode, hashOf, markAncestorsDirty, splitLeaf } from "./state-tree-node.js";
import type { StateProof, StateProofLevel } from "./state-tree-proof.js";
import { type StateEntry, StateSnapshotDecodeError, decodeSnapshotChunk, encodeSnapshotChunk } from "./state-tree-snapshot.js";

export {
  type StateProof,
  type StateProofLevel,
  type StateProofTerminal,
  STATE_PROOF_BYTES_MAX,
  StateProofDecodeError,
  decodeStateProof,
  encodeStateProof,
  verifyStateProof,
} from "./state-tree-proof.js";
export { type StateEntry, StateSnapshotDecodeError, decodeSnapshotChunk, encodeSnapshotChunk } from "./state-tree-snapshot.js";

/**
 * A state key with its SHA-256, the key's path in the tree. Hashing a key costs about as much as
 * the rest of a lookup, so a caller that touches one key many times (the ledger's account and
 * reply entries, once per transaction) hashes it once and keeps one of these. Only `of` and
 * `adopt` make one, so the hash always belongs to the key.
 */
export class HashedKey {
  private constructor(
    /** Owned by this object (and, once put, by the tree): never modified. */
    readonly key: Uint8Array,
    readonly keyHash: HashString,
  ) {}

  /** `key`, copied, with its hash. */
  static of(key: Uint8Array): HashedKey {
    return HashedKey.adopt(copyBytes(key));
  }

  /** `key` itself, with its hash: the caller hands the array over and never modifies it again. */
  static adopt(key: Uint8Array): HashedKey {
    if (!(key instanceof Uint8Array)) throw new TypeError("HashedKey: a key must be a Uint8Array");
    return new HashedKey(key, sha256(key));
  }
}

declare const stateLeafBrand: unique symbol;

/**
 * An entry of one tree as its holder keeps it between uses: `StateTree.rewrite` writes through it
 * without walking down from the root. Opaque; only the tree that made it may use it.
 */
export interface StateLeafHandle {
  readonly [stateLeafBrand]: true;
}

/** The handle of `leaf`: the leaf itself, behind a type that exposes nothing of it. */
function handleOf(leaf: LeafNode): StateLeafHandle {
  return leaf as unknown as StateLeafHandle;
}

/** One chunk of a key-hash-ordered export (see `StateTree.exportChunk`). */
export interface StateSnapshotChunk {
  readonly bytes: Uint8Array;
  readonly entryCount: number;
  /** The key hash of the chunk's last entry, the cursor for the next chunk; undefined if empty. */
  readonly lastKeyHash: Uint8Array | undefined;
  /** True when no entry follows this chunk. */
  readonly done: boolean;
}

export class StateTree {
  private rootNode: TreeNode | undefined = undefined;
  private entryCount = 0;
  /** Bumped on every change, so an iterator can refuse to walk a tree changed under it. */
  private mutationCount = 0;
  /**
   * The keys `put` or `delete` touched since the last `drainChanges`, by key hash; undefined until
   * `recordChanges` turns the journal on (trees that are never persisted pay nothing for it).
   */
  private changedKeys: Map<HashString, LeafNode> | undefined = undefined;

  /** A tree holding `entries`; a key that appears twice takes its later value, as in a Map. */
  static fromEntries(entries: Iterable<StateEntry>): StateTree {
    const tree = new StateTree();
    for (const [key, value] of entries) tree.put(key, value);
    return tree;
  }

  /** A tree holding the entries of `snapshot()` output; throws `StateSnapshotDecodeError`. */
  static fromSnapshot(bytes: Uint8Array): StateTree {
    const tree = new StateTree();
    tree.importChunk(bytes);
    return tree;
  }

  get size(): number {
    return this.entryCount;
  }

  /**
   * A number that changes with every put and delete: a cache of decoded entries (the ledger's)
   * compares it with the value after its own last write to notice a change it did not make.
   */
  get version(): number {
    return this.mutationCount;
  }

  get(key: Uint8Array): Uint8Array | undefined {
    const leaf = this.findLeaf(sha256(key));
    return leaf === undefined ? undefined : copyBytes(leaf.value);
  }

  /** `get` for a key whose hash the caller kept; a copy of the value, or undefined. */
  getHashed(key: HashedKey): Uint8Array | undefined {
    const leaf = this.findLeaf(key.keyHash);
    return leaf === undefined ? undefined : copyBytes(leaf.value);
  }

  /** The entry of `key`, to read and update through; undefined when the key is absent. */
  findHashed(key: HashedKey): StateLeafHandle | undefined {
    const leaf = this.findLeaf(key.keyHash);
    return leaf === undefined ? undefined : handleOf(leaf);
  }

  /** A copy of the value of the entry `handle`. */
  valueOf(handle: StateLeafHandle): Uint8Array {
    return copyBytes(this.ownLeaf(handle).value);
  }

  /** Sets `key` to `value`. Both are copied: a caller reusing its buffers cannot change the tree. */
  put(key: Uint8Array, value: Uint8Array): void {
    if (!(key instanceof Uint8Array) || !(value instanceof Uint8Array)) {
      throw new TypeError("StateTree.put: key and value must be Uint8Arrays");
    }
    this.putHashed(HashedKey.of(key), copyBytes(value));
  }

  /**
   * `put` for a key whose hash the caller kept; returns the entry, for `rewrite`. The tree takes
   * `value` itself, not a copy: the caller hands it over and never uses it again (the tree may
   * write over it, see `rewrite`; the key is immutable in a HashedKey).
   */
  putHashed(key: HashedKey, value: Uint8Array): StateLeafHandle {
    if (!(value instanceof Uint8Array)) throw new TypeError("StateTree.putHashed: a value must be a Uint8Array");
    const leaf = this.insert(key.keyHash, key.key, value);
    this.changedKeys?.set(leaf.keyHash, leaf);
    return handleOf(leaf);
  }

  /**
   * Sets the value of the entry `handle` (from `findHashed` or `putHashed` on this tree, its key
   * not deleted since) to a copy of `bytes`, written over the entry's own array when it has the
   * same length: a caller that encodes into a scratch buffer then allocates nothing. (The tree lends
   * its arrays to nobody and takes only arrays handed over for good, so nobody else sees them
   * change.) It marks only the nodes above the entry that are not marked already, where a put
   * walks down from the root.
   */
  rewrite(handle: StateLeafHandle, bytes: Uint8Array): void {
    const leaf = this.ownLeaf(handle);
    if (leaf.value.length === bytes.length) leaf.value.set(bytes);
    else leaf.value = copyBytes(bytes);
    this.changed(leaf);
  }

  /**
   * Starts journaling which keys change, so that a store can persist exactly the entries a block
   * changed (`drainChanges`). Idempotent.
   */
  recordChanges(): void {
    this.changedKeys ??= new Map();
  }

  /**
   * Every key put or deleted since the last call (or since `recordChanges`), each once, with its
   * current value, or null when it is now absent; clears the journal. A key put and then deleted
   * again reports null, which deletes nothing in a store that never held it. The keys and values
   * are the tree's own arrays, not copies, and later changes to the tree may overwrite them: the
   * caller copies what it keeps at once (the block pipeline hands them to the store, which frames
   * each one before it returns).
   */
  drainChanges(): Array<[key: Uint8Array, value: Uint8Array | null]> {
    const changedKeys = this.changedKeys;
    if (changedKeys === undefined) throw new Error("StateTree.drainChanges: call recordChanges first");
    const changes: Array<[Uint8Array, Uint8Array | null]> = [];
    for (const [keyHash, changed] of changedKeys) {
      // The leaf of the key's last change holds its value, unless that change deleted it.
      const leaf = changed.removed ? this.findLeaf(keyHash) : changed;
      changes.push([changed.key, leaf === undefined ? null : leaf.value]);
    }
    changedKeys.clear();
    return changes;
  }

  /** Removes `key`; returns whether it was present. */
  delete(key: Uint8Array): boolean {
    const keyHash = sha256(key);
    const path: InternalNode[] = [];
    const slots: number[] = [];
    let node = this.rootNode;
    while (node instanceof InternalNode) {
      const slot = nibbleAt(keyHash, path.length);
      path.push(node);
      slots.push(slot);
      node = node.children[slot];
    }
    if (node === undefined || node.keyHash !== keyHash) return false;

    this.changedKeys?.set(keyHash, node);
    this.mutationCount++;
    this.entryCount--;
    node.removed = true;
    node.parent = undefined;
    path.forEach((ancestor, depth) => {
      ancestor.hash = undefined;
      ancestor.dirtyMask |= 1 << slots[depth]!;
    });
    // Restore the canonical shape bottom-up: a node left with a single leaf below it is replaced
    // by that leaf, exactly as if the deleted key had never been inserted. A node whose only
    // child is internal stays: it is a chain node above at least two leaves.
    let replacement: TreeNode | undefined = undefined;
    for (let depth = path.length - 1; depth >= 0; depth--) {
      const ancestor = path[depth]!;
      ancestor.setChild(slots[depth]!, replacement);
      if (ancestor.childCount !== 1) return true;
      const onlyChild = ancestor.children.find((child) => child !== undefined);
      if (!(onlyChild instanceof LeafNode)) return true;
      replacement = onlyChild;
    }
    this.setRoot(replacement);
    return true;
  }

  /** The root hash, rehashing every node changed since the last call (and only those). */
  root(): Uint8Array {
    return hashBytes(this.rootNode === undefined ? EMPTY_STATE_ROOT : hashOf(this.rootNode));
  }

  /** Same as `root()`; the name a block builder uses after applying a block's updates. */
  commit(): Uint8Array {
    return this.root();
  }

  /** A proof of `key`'s current value, or of its absence, against `root()`. */
  prove(key: Uint8Array): StateProof {
    const keyHash = sha256(key);
    const levels: StateProofLevel[] = [];
    if (this.rootNode === undefined) return { levels, terminal: { kind: "empty-slot" } };
    hashOf(this.rootNode);
    let node: TreeNode = this.rootNode;
    while (node instanceof InternalNode) {
      const slot = nibbleAt(keyHash, levels.length);
      const siblingHashes: Uint8Array[] = [];
      node.children.forEach((child, childSlot) => {
        if (child !== undefined && childSlot !== slot) siblingHashes.push(hashBytes(hashOf(child)));
      });
      levels.push({ childBitmap: node.childBitmap, siblingHashes });
      const next = node.children[slot];
      if (next === undefined) return { levels, terminal: { kind: "empty-slot" } };
      node = next;
    }
    if (node.keyHash === keyHash) return { levels, terminal: { kind: "present" } };
    return { levels, terminal: { kind: "other-leaf", keyHash: hashBytes(node.keyHash), valueHash: hashBytes(sha256(node.value)) } };
  }

  /** Every entry as a copied [key, value] pair, in ascending order of SHA-256(key). */
  *entries(): Generator<[key: Uint8Array, value: Uint8Array]> {
    for (const leaf of this.leavesAfter(undefined)) yield [copyBytes(leaf.key), copyBytes(leaf.value)];
  }

  /** Every entry in one deterministic byte string: the snapshot format with all entries. */
  snapshot(): Uint8Array {
    return this.exportChunk(undefined, Math.max(1, this.entryCount)).bytes;
  }

  /**
   * Up to `entryCountMax` entries whose key hashes follow `afterKeyHash` (from the start when
   * undefined), encoded as a snapshot chunk. Passing each chunk's `lastKeyHash` as the next
   * cursor walks the whole state; the caller must not change the tree between chunks (export
   * from a checkpoint's tree, not the live one), and must validate a cursor a peer sent.
   */
  exportChunk(afterKeyHash: Uint8Array | undefined, entryCountMax: number): StateSnapshotChunk {
    if (!Number.isSafeInteger(entryCountMax) || entryCountMax < 1) {
      throw new RangeError(`StateTree.exportChunk: entryCountMax ${entryCountMax} must be a positive integer`);
    }
    if (afterKeyHash !== undefined && afterKeyHash.length !== STATE_HASH_BYTES) {
      throw new RangeError(`StateTree.exportChunk: a cursor is a ${STATE_HASH_BYTES}-byte key hash`);
    }
    const entries: StateEntry[] = [];
    let lastKeyHash: HashString | undefined;
    let done = true;
    for (const leaf of this.leavesAfter(afterKeyHash && hashString(afterKeyHash))) {
      if (entries.length === entryCountMax) {
        done = false;
        break;
      }
      entries.push([leaf.key, leaf.value]);
      lastKeyHash = leaf.keyHash;
    }
    const bytes = encodeSnapshotChunk(entries);
    return { bytes, entryCount: entries.length, lastKeyHash: lastKeyHash === undefined ? undefined : hashBytes(lastKeyHash), done };
  }

  /**
   * Installs a chunk from `exportChunk`. Its key hashes must ascend and follow every key already
   * here, which is what a key-hash-ordered transfer delivers, so `lastKeyHash()` is the cursor to
   * resume from. The chunk is checked whole before any of it is installed: a rejected chunk
   * (`StateSnapshotDecodeError`) leaves the tree unchanged. A peer can still omit entries or send
   * wrong values; comparing the final `root()` with the certified state root catches that.
   */
  importChunk(bytes: Uint8Array): void {
    const entries = decodeSnapshotChunk(bytes);
    let previous = this.lastLeaf()?.keyHash;
    const keyHashes = entries.map(([key], index) => {
      const keyHash = sha256(key);
      if (previous !== undefined && keyHash <= previous) {
        throw new StateSnapshotDecodeError(`state snapshot: entry ${index} is out of key-hash order`);
      }
      previous = keyHash;
      return keyHash;
    });
    entries.forEach(([key, value], index) => this.insert(keyHashes[index]!, key, value));
  }

  /** The largest key hash in the tree (its last entry in export order), or undefined if empty. */
  lastKeyHash(): Uint8Array | undefined {
    const leaf = this.lastLeaf();
    return leaf === undefined ? undefined : hashBytes(leaf.keyHash);
  }

  private lastLeaf(): LeafNode | undefined {
    let node = this.rootNode;
    while (node instanceof InternalNode) node = node.children.findLast((child) => child !== undefined);
    return node;
  }

  /** `key` and `value` are owned by the tree from here on; returns the key's leaf. */
  private insert(keyHash: HashString, key: Uint8Array, value: Uint8Array): LeafNode {
    this.mutationCount++;
    let parent: InternalNode | undefined;
    let parentSlot = 0;
    let node = this.rootNode;
    for (let depth = 0; ; depth++) {
      if (node === undefined) {
        // Only an empty tree leads here; an empty slot inside the tree is filled below.
        const leaf = new LeafNode(keyHash, key, value);
        this.setRoot(leaf);
        this.entryCount++;
        return leaf;
      }
      if (node instanceof LeafNode) {
        if (node.keyHash === keyHash) {
          // The leaf stays, so a handle to it stays valid; its key is the same bytes.
          node.value = value;
          node.hash = undefined;
          return node;
        }
        const leaf = new LeafNode(keyHash, key, value);
        const branch = splitLeaf(node, leaf, depth);
        if (parent === undefined) this.setRoot(branch);
        else parent.setChild(parentSlot, branch);
        this.entryCount++;
        return leaf;
      }
      const slot = nibbleAt(keyHash, depth);
      node.hash = undefined;
      node.dirtyMask |= 1 << slot;
      const child = node.children[slot];
      if (child === undefined) {
        const leaf = new LeafNode(keyHash, key, value);
        node.setChild(slot, leaf);
        this.entryCount++;
        return leaf;
      }
      parent = node;
      parentSlot = slot;
      node = child;
    }
  }

  /** Records that `leaf`'s value changed in place. */
  private changed(leaf: LeafNode): void {
    this.mutationCount++;
    if (leaf.hash !== undefined) {
      leaf.hash = undefined;
      markAncestorsDirty(leaf);
    }
    this.changedKeys?.set(leaf.keyHash, leaf);
  }

  private setRoot(node: TreeNode | undefined): void {
    if (node !== undefined) node.parent = undefined;
    this.rootNode = node;
  }

  /** The leaf behind a handle from this tree whose key was not deleted since. */
  private ownLeaf(handle: StateLeafHandle): LeafNode {
    const leaf: unknown = handle;
    if (!(leaf instanceof LeafNode) || leaf.removed) throw new Error("StateTree: a handle to an entry that is not in the tree");
    return leaf;
  }

  private findLeaf(keyHash: HashString): LeafNode | undefined {
    let node = this.rootNode;
    for (let depth = 0; node instanceof InternalNode; depth++) node = node.children[nibbleAt(keyHash, depth)];
    return node !== undefined && node.keyHash === keyHash ? node : undefined;
  }

  /**
   * Leaves in ascending key-hash order, starting after `afterKeyHash` when given. An explicit
   * stack rather than recursive generators: one resumption per leaf instead of one per level.
   * Stack index equals depth, because every child of a node at depth d sits at depth d + 1.
   */
  private *leavesAfter(afterKeyHash: HashString | undefined): Generator<LeafNode> {
    const mutationCountAtStart = this.mutationCount;
    const assertUnchanged = (): void => {
      if (this.mutationCount !== mutationCountAtStart) {
        throw new Error("StateTree changed during iteration; finish iterating before put or delete");
      }
    };
    const root = this.rootNode;
    if (root === undefined) return;
    if (root instanceof LeafNode) {
      if (afterKeyHash === undefined || root.keyHash > afterKeyHash) yield root;
      return;
    }
    const nodes: InternalNode[] = [root];
    const nextSlots: number[] = [afterKeyHash === undefined ? 0 : nibbleAt(afterKeyHash, 0)];
    // Frames below `boundedFrameCount` still follow the cursor's nibbles; only their first child
    // can hold key hashes at or below the cursor, so only there must a leaf be compared with it.
    let boundedFrameCount = afterKeyHash === undefined ? 0 : 1;
    while (nodes.length > 0) {
      const top = nodes.length - 1;
      const slot = nextSlots[top]!;
      if (slot === STATE_TREE_RADIX) {
        nodes.pop();
        nextSlots.pop();
        boundedFrameCount = Math.min(boundedFrameCount, nodes.length);
        continue;
      }
      nextSlots[top] = slot + 1;
      const child = nodes[top]!.children[slot];
      if (child === undefined) continue;
      const bounded = afterKeyHash !== undefined && top < boundedFrameCount && slot === nibbleAt(afterKeyHash, top);
      if (child instanceof LeafNode) {
        if (bounded && child.keyHash <= afterKeyHash) continue;
        yield child;
        assertUnchanged();
      } else {
        nodes.push(child);
        nextSlots.push(bounded ? nibbleAt(afterKeyHash, top + 1) : 0);
        boundedFrameCount = bounded ? top + 2 : Math.min(boundedFrameCount, top + 1);
      }
    }
  }
}
