import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";

import {
  HashedKey,
  type StateLeafHandle,
  type StateProof,
  StateProofDecodeError,
  StateSnapshotDecodeError,
  StateTree,
  decodeStateProof,
  encodeStateProof,
  verifyStateProof,
} from "../../src/ledger/state-tree.js";
import {
  type HashString,
  InternalNodeHashInput,
  bitCount16,
  hashBytes,
  hashString,
  internalNodeHash,
  leafNodeHash,
  nibbleAt,
  sha256,
} from "../../src/ledger/state-tree-hash.js";
import { Random } from "../../src/sim/random.js";
import { hex, randomBytes } from "../support/random-bytes.js";

const encoder = new TextEncoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);
const keyHashHex = (key: Uint8Array): string => createHash("sha256").update(key).digest("hex");

/**
 * Keys whose SHA-256 hashes share their first `nibbleCount` nibbles with `base`'s, found by
 * search. They force chains of one-child internal nodes, the one shape random keys rarely make.
 */
function keysSharingPrefix(base: string, nibbleCount: number, count: number): Uint8Array[] {
  const prefix = keyHashHex(bytes(base)).slice(0, nibbleCount);
  const found: Uint8Array[] = [];
  for (let attempt = 0; found.length < count; attempt++) {
    const candidate = bytes(`${base}/${attempt}`);
    if (keyHashHex(candidate).startsWith(prefix)) found.push(candidate);
  }
  return found;
}

/** A tree of `count` keys "key-i" with values "value-i", and the keys. */
function numberedTree(count: number): { tree: StateTree; keys: Uint8Array[] } {
  const keys = Array.from({ length: count }, (_, index) => bytes(`key-${index}`));
  const tree = StateTree.fromEntries(keys.map((key, index) => [key, bytes(`value-${index}`)]));
  return { tree, keys };
}

function shuffled<T>(items: readonly T[], random: Random): T[] {
  const copy = [...items];
  for (let index = copy.length - 1; index > 0; index--) {
    const other = random.below(index + 1);
    [copy[index], copy[other]] = [copy[other]!, copy[index]!];
  }
  return copy;
}

/** The root above `bottomHash` along `keyHash`'s path through `levels`, computed independently. */
function hashUpPath(levels: StateProof["levels"], keyHash: HashString, bottomHash: HashString): Uint8Array {
  let current = bottomHash;
  for (let depth = levels.length - 1; depth >= 0; depth--) {
    const { childBitmap, siblingHashes } = levels[depth]!;
    const slot = nibbleAt(keyHash, depth);
    const children = siblingHashes.map(hashString);
    children.splice(bitCount16(childBitmap & ((1 << slot) - 1)), 0, current);
    current = internalNodeHash(childBitmap, children);
  }
  return hashBytes(current);
}

/** Verifies after a decode; a decode error counts as rejection, as it would for a client. */
function verifyEncoded(root: Uint8Array, key: Uint8Array, value: Uint8Array | undefined, proofBytes: Uint8Array): boolean {
  let proof: StateProof;
  try {
    proof = decodeStateProof(proofBytes);
  } catch (error) {
    assert.ok(error instanceof StateProofDecodeError, `unexpected error ${String(error)}`);
    return false;
  }
  return verifyStateProof(root, key, value, proof);
}

describe("state tree: contents", () => {
  it("gets what was put, overwrites in place and forgets what was deleted", () => {
    const tree = new StateTree();
    tree.put(bytes("a"), bytes("1"));
    tree.put(bytes("b"), bytes("2"));
    tree.put(bytes("a"), bytes("3"));
    assert.equal(tree.size, 2);
    assert.deepEqual(tree.get(bytes("a")), bytes("3"));
    assert.equal(tree.delete(bytes("a")), true);
    assert.equal(tree.delete(bytes("a")), false);
    assert.equal(tree.get(bytes("a")), undefined);
    assert.equal(tree.size, 1);
  });

  it("copies keys and values, so a caller reusing its buffers cannot change the tree", () => {
    const tree = new StateTree();
    const key = Buffer.from("key");
    const value = Buffer.from("value");
    tree.put(key, value);
    const rootBefore = tree.root();
    value.fill(0);
    key.fill(0);
    tree.get(bytes("key"))!.fill(0);
    assert.deepEqual(tree.get(bytes("key")), bytes("value"));
    assert.deepEqual(tree.root(), rootBefore);
  });

  it("iterates entries in ascending key-hash order and refuses a tree changed under the iterator", () => {
    const { tree, keys } = numberedTree(200);
    const hashes = [...tree.entries()].map(([key]) => keyHashHex(key));
    assert.equal(hashes.length, keys.length);
    assert.deepEqual(hashes, [...hashes].sort());
    const iterator = tree.entries();
    iterator.next();
    tree.put(bytes("late"), bytes("x"));
    assert.throws(() => iterator.next(), /changed during iteration/);
  });
});

describe("state tree: canonical root", () => {
  it("gives the same root for the same contents under random operation orders", () => {
    for (let seed = 1; seed <= 6; seed++) {
      const random = new Random(seed);
      const pool = [
        ...Array.from({ length: 150 }, (_, index) => bytes(`pool-${seed}-${index}`)),
        ...keysSharingPrefix(`chain-${seed}`, 3, 4),
      ];
      const tree = new StateTree();
      const model = new Map<string, [Uint8Array, Uint8Array]>();
      for (let step = 0; step < 1500; step++) {
        const key = pool[random.below(pool.length)]!;
        if (random.chance(0.35)) {
          assert.equal(tree.delete(key), model.delete(hex(key)));
        } else {
          // Short values, so overwrites often repeat a value the key had before.
          const value = randomBytes(random, random.below(3));
          tree.put(key, value);
          model.set(hex(key), [key, value]);
        }
        // Commit at random points, as blocks would, so stale and fresh hashes mix.
        if (random.chance(0.05)) tree.root();
      }
      const rebuilt = StateTree.fromEntries(shuffled([...model.values()], random));
      assert.deepEqual(tree.root(), rebuilt.root(), `seed ${seed}`);
      assert.equal(tree.size, model.size);
      for (const [key, value] of model.values()) assert.deepEqual(tree.get(key), value);
    }
  });

  it("restores the exact earlier root when a key is deleted, including keys that forced chains", () => {
    const { tree, keys } = numberedTree(300);
    const chained = keysSharingPrefix("deep", 3, 3);
    const rootBefore = tree.root();
    for (const key of [bytes("new-key"), ...chained]) {
      tree.put(key, bytes("v"));
      assert.notDeepEqual(tree.root(), rootBefore);
    }
    for (const key of [...chained].reverse()) tree.delete(key);
    tree.delete(bytes("new-key"));
    assert.deepEqual(tree.root(), rootBefore);

    // Deleting an original key gives the root of a tree built without it.
    const removed = keys[17]!;
    tree.delete(removed);
    const without = StateTree.fromEntries(keys.flatMap((key, index) => (key === removed ? [] : [[key, bytes(`value-${index}`)] as const])));
    assert.deepEqual(tree.root(), without.root());
  });

  it("computes roots exactly as the documented hash definitions, recomputed independently", () => {
    const digest = (...parts: Uint8Array[]): Buffer => parts.reduce((hash, part) => hash.update(part), createHash("sha256")).digest();
    const leaf = (key: string, value: string): Buffer => digest(Uint8Array.of(0), digest(bytes(key)), digest(bytes(value)));
    const tree = new StateTree();
    assert.deepEqual(Buffer.from(tree.root()), digest(Uint8Array.of(2)));
    tree.put(bytes("a"), bytes("1"));
    assert.deepEqual(Buffer.from(tree.root()), leaf("a", "1"));
    // SHA-256("a") starts with nibble 0xc and SHA-256("b") with 0x3: one internal node, children
    // in nibble order, bitmap bits 3 and 12.
    assert.equal(keyHashHex(bytes("a"))[0], "c");
    assert.equal(keyHashHex(bytes("b"))[0], "3");
    tree.put(bytes("b"), bytes("2"));
    const bitmap = (1 << 3) | (1 << 12);
    assert.deepEqual(Buffer.from(tree.root()), digest(Uint8Array.of(1, bitmap >>> 8, bitmap & 0xff), leaf("b", "2"), leaf("a", "1")));
  });

  it("returns to the empty root after every key is deleted", () => {
    const { tree, keys } = numberedTree(50);
    const emptyRoot = new StateTree().root();
    assert.notDeepEqual(tree.root(), emptyRoot);
    for (const key of keys) tree.delete(key);
    assert.equal(tree.size, 0);
    assert.deepEqual(tree.root(), emptyRoot);
  });

  it("changes the root when any value changes", () => {
    const { tree, keys } = numberedTree(100);
    const rootBefore = tree.root();
    tree.put(keys[42]!, bytes("value-42!"));
    assert.notDeepEqual(tree.root(), rootBefore);
    tree.put(keys[42]!, bytes("value-42"));
    assert.deepEqual(tree.root(), rootBefore);
  });
});

describe("state tree: kept hashes and entry handles", () => {
  it("writes through entry handles give the roots of plain puts, at every commit of random operations", () => {
    for (let seed = 1; seed <= 4; seed++) {
      const random = new Random(100 + seed);
      const pool = [
        ...Array.from({ length: 120 }, (_, index) => bytes(`handles-${seed}-${index}`)),
        ...keysSharingPrefix(`handle-chain-${seed}`, 3, 4),
      ];
      const tree = new StateTree();
      const reference = new Map<string, [Uint8Array, Uint8Array]>();
      const handles = new Map<string, StateLeafHandle>();
      const scratch = new Uint8Array(2);
      for (let step = 0; step < 2000; step++) {
        const key = pool[random.below(pool.length)]!;
        const name = hex(key);
        const value = randomBytes(random, random.below(3));
        const handle = handles.get(name);
        const choice = random.below(5);
        if (choice === 0) {
          tree.delete(key);
          reference.delete(name);
          handles.delete(name);
          continue;
        }
        if (choice === 1 || handle === undefined) {
          handles.set(name, tree.putHashed(HashedKey.of(key), value.slice()));
        } else if (choice === 2) {
          tree.rewrite(handle, value);
        } else if (choice === 3 && value.length === scratch.length) {
          // Through a scratch array the caller keeps reusing: the tree must copy it.
          scratch.set(value);
          tree.rewrite(handle, scratch);
          scratch.fill(0xff);
        } else {
          tree.put(key, value);
        }
        reference.set(name, [key, value]);
        // Commit at random points, as blocks would, so kept inputs and dirty marks mix.
        if (random.chance(0.08)) assert.deepEqual(tree.root(), StateTree.fromEntries(reference.values()).root(), `seed ${seed}, step ${step}`);
      }
      assert.deepEqual(tree.root(), StateTree.fromEntries(shuffled([...reference.values()], random)).root(), `seed ${seed}`);
      for (const [name, handle] of handles) assert.deepEqual(tree.valueOf(handle), reference.get(name)![1]);
    }
  });

  it("refuses a handle whose key was deleted, and gives a re-inserted key a new one", () => {
    const tree = new StateTree();
    const key = HashedKey.of(bytes("gone"));
    const handle = tree.putHashed(key, bytes("1"));
    assert.equal(tree.findHashed(key), handle);
    tree.delete(bytes("gone"));
    assert.equal(tree.findHashed(key), undefined);
    assert.throws(() => tree.rewrite(handle, bytes("2")), /not in the tree/);
    const again = tree.putHashed(key, bytes("3"));
    assert.notEqual(again, handle);
    assert.deepEqual(tree.valueOf(again), bytes("3"));
  });

  it("hands out the tree's own arrays from drainChanges, which a later rewrite of the same length overwrites", () => {
    const tree = new StateTree();
    tree.recordChanges();
    const handle = tree.putHashed(HashedKey.of(bytes("k")), Uint8Array.of(1));
    const [[, drained]] = tree.drainChanges() as [[Uint8Array, Uint8Array]];
    tree.rewrite(handle, Uint8Array.of(2));
    assert.deepEqual(drained, Uint8Array.of(2), "a drained value is the entry's array, rewritten in place");
    assert.deepEqual(tree.drainChanges(), [[bytes("k"), Uint8Array.of(2)]], "the rewrite is journalled");
  });

  it("keeps a node's hash input in step as children come and go, as if built afresh", () => {
    const random = new Random(16);
    const hashes = Array.from({ length: 16 }, () => hashString(randomBytes(random, 32)));
    let bitmap = 0b1;
    const input = new InternalNodeHashInput(bitmap);
    input.setChildHash(0, hashes[0]!);
    for (let step = 0; step < 300; step++) {
      const slot = random.below(16);
      const bit = 1 << slot;
      const position = bitCount16(bitmap & (bit - 1));
      if ((bitmap & bit) === 0) {
        bitmap |= bit;
        input.insertChild(position, bitmap);
        input.setChildHash(position, hashes[slot]!);
      } else if (bitCount16(bitmap) > 1) {
        bitmap &= ~bit;
        assert.equal(input.removeChild(position, bitmap), true);
      }
      const present = hashes.filter((_, index) => (bitmap & (1 << index)) !== 0);
      assert.equal(input.hash(), internalNodeHash(bitmap, present), `step ${step}`);
    }
  });
});

describe("state tree: proofs", () => {
  it("proves every present key's value and the absence of absent keys, through all three endings", () => {
    const { tree, keys } = numberedTree(300);
    const chained = keysSharingPrefix("proof", 3, 2);
    for (const key of chained) tree.put(key, bytes("chained"));
    const root = tree.root();
    for (const [index, key] of keys.entries()) {
      const proof = decodeStateProof(encodeStateProof(tree.prove(key)));
      assert.equal(proof.terminal.kind, "present");
      assert.equal(verifyStateProof(root, key, bytes(`value-${index}`), proof), true);
      assert.equal(verifyStateProof(root, key, undefined, proof), false);
      assert.equal(verifyStateProof(root, key, bytes(`value-${index + 1}`), proof), false);
    }
    const endings = new Set<string>();
    const absentKeys = [...Array.from({ length: 300 }, (_, index) => bytes(`absent-${index}`)), ...keysSharingPrefix("proof", 3, 4).slice(2)];
    for (const key of absentKeys) {
      const proof = decodeStateProof(encodeStateProof(tree.prove(key)));
      endings.add(proof.terminal.kind);
      assert.equal(verifyStateProof(root, key, undefined, proof), true);
      assert.equal(verifyStateProof(root, key, bytes("anything"), proof), false);
    }
    assert.deepEqual([...endings].sort(), ["empty-slot", "other-leaf"]);
  });

  it("proves keys in the empty tree and in a one-key tree", () => {
    const tree = new StateTree();
    assert.equal(verifyStateProof(tree.root(), bytes("k"), undefined, tree.prove(bytes("k"))), true);
    tree.put(bytes("only"), bytes("v"));
    const root = tree.root();
    assert.equal(verifyStateProof(root, bytes("only"), bytes("v"), tree.prove(bytes("only"))), true);
    const absent = tree.prove(bytes("k"));
    assert.equal(absent.terminal.kind, "other-leaf");
    assert.equal(verifyStateProof(root, bytes("k"), undefined, absent), true);
  });

  it("rejects a proof after any single-byte change to the proof, value, key or root", () => {
    const random = new Random(7);
    const { tree, keys } = numberedTree(400);
    const root = tree.root();
    const present = [0, 1, 2, 3, 4, 5].map((index) => ({ key: keys[index]!, value: bytes(`value-${index}`) }));
    const absent = ["gone-1", "gone-2", "gone-3", "gone-4", "gone-5", "gone-6"].map((name) => ({ key: bytes(name), value: undefined }));
    for (const { key, value } of [...present, ...absent]) {
      const proofBytes = encodeStateProof(tree.prove(key));
      assert.equal(verifyEncoded(root, key, value, proofBytes), true);
      const flip = (data: Uint8Array, position: number): Uint8Array => {
        const changed = new Uint8Array(data);
        changed[position]! ^= 1 + random.below(255);
        return changed;
      };
      for (let position = 0; position < proofBytes.length; position++) {
        assert.equal(verifyEncoded(root, key, value, flip(proofBytes, position)), false, `proof byte ${position}`);
      }
      for (let position = 0; position < root.length; position++) {
        assert.equal(verifyEncoded(flip(root, position), key, value, proofBytes), false, `root byte ${position}`);
      }
      for (let position = 0; position < key.length; position++) {
        const changedKey = flip(key, position);
        const accepted = verifyEncoded(root, changedKey, value, proofBytes);
        // A non-membership proof also proves the absence of other keys on the same path, which is
        // true; what must never happen is accepting a false statement.
        if (value !== undefined || tree.get(changedKey) !== undefined) assert.equal(accepted, false, `key byte ${position}`);
      }
      if (value !== undefined) {
        for (let position = 0; position < value.length; position++) {
          assert.equal(verifyEncoded(root, key, flip(value, position), proofBytes), false, `value byte ${position}`);
        }
        assert.equal(verifyEncoded(root, key, Uint8Array.of(...value, 0), proofBytes), false, "value with an extra byte");
      }
    }
  });

  it("cannot be forged to show a present key as absent from the real tree's own nodes", () => {
    const { tree, keys } = numberedTree(300);
    const root = tree.root();
    for (const [index, key] of keys.slice(0, 20).entries()) {
      const { levels } = tree.prove(key);
      const keyHash = sha256(key);
      const valueHash = sha256(bytes(`value-${index}`));
      // Ending at the key's own leaf, relabelled as "some other key's leaf".
      const ownLeafAsOther: StateProof = {
        levels,
        terminal: { kind: "other-leaf", keyHash: hashBytes(keyHash), valueHash: hashBytes(valueHash) },
      };
      assert.equal(verifyStateProof(root, key, undefined, ownLeafAsOther), false);
      // Ending one level higher, claiming the key's slot is empty while listing its leaf among
      // the children.
      const deepest = levels.at(-1)!;
      const slot = nibbleAt(keyHash, levels.length - 1);
      const position = bitCount16(deepest.childBitmap & ((1 << slot) - 1));
      const allChildren = deepest.siblingHashes.map(hashString);
      allChildren.splice(position, 0, leafNodeHash(keyHash, valueHash));
      const leafAsEmptySlot: StateProof = {
        levels: [...levels.slice(0, -1), { childBitmap: deepest.childBitmap, siblingHashes: allChildren.map(hashBytes) }],
        terminal: { kind: "empty-slot" },
      };
      assert.equal(verifyStateProof(root, key, undefined, leafAsEmptySlot), false);
      // The forgery's hashes do chain up to the real root: only the slot check stands in the way.
      assert.deepEqual(hashUpPath(levels.slice(0, -1), keyHash, internalNodeHash(deepest.childBitmap, allChildren)), root);
    }
  });

  it("rejects malformed proof bytes with a typed error", () => {
    const { tree } = numberedTree(100);
    const valid = encodeStateProof(tree.prove(bytes("absent")));
    const malformed: Uint8Array[] = [
      new Uint8Array(0),
      Uint8Array.of(2, 0, 0), // unknown format version
      Uint8Array.of(1, 3, 0), // unknown terminal
      Uint8Array.of(1, 0, 65), // more levels than a key hash has nibbles
      Uint8Array.of(1, 0, 1, 0, 0), // a level with no children
      Uint8Array.of(...valid, 0), // trailing byte
      new Uint8Array(100_000),
    ];
    for (let length = 0; length < valid.length; length++) malformed.push(valid.subarray(0, length));
    const random = new Random(11);
    for (let sample = 0; sample < 200; sample++) malformed.push(randomBytes(random, random.below(600)));
    for (const input of malformed) {
      let decoded: StateProof | undefined;
      try {
        decoded = decodeStateProof(input);
      } catch (error) {
        assert.ok(error instanceof StateProofDecodeError);
        continue;
      }
      // Random bytes can happen to be well formed; they must then still fail to verify.
      assert.equal(verifyStateProof(tree.root(), bytes("absent"), undefined, decoded), false);
    }
  });

  it("returns false without throwing for malformed proof objects and arguments", () => {
    const { tree } = numberedTree(100);
    const root = tree.root();
    const key = bytes("key-3");
    const value = bytes("value-3");
    const good = tree.prove(key);
    const level = good.levels[0]!;
    const hash32 = new Uint8Array(32);
    const malformed: unknown[] = [
      null,
      undefined,
      42,
      {},
      { levels: null, terminal: { kind: "present" } },
      { levels: good.levels, terminal: null },
      { levels: good.levels, terminal: { kind: "bogus" } },
      { levels: good.levels, terminal: { kind: "other-leaf", keyHash: hash32, valueHash: new Uint8Array(31) } },
      { levels: [null, ...good.levels.slice(1)], terminal: good.terminal },
      { levels: [{ ...level, childBitmap: 0x1_0000 }, ...good.levels.slice(1)], terminal: good.terminal },
      { levels: [{ ...level, childBitmap: -1 }, ...good.levels.slice(1)], terminal: good.terminal },
      { levels: [{ ...level, childBitmap: 1.5 }, ...good.levels.slice(1)], terminal: good.terminal },
      { levels: [{ ...level, childBitmap: "65535" }, ...good.levels.slice(1)], terminal: good.terminal },
      { levels: [{ ...level, siblingHashes: null }, ...good.levels.slice(1)], terminal: good.terminal },
      { levels: [{ ...level, siblingHashes: [...level.siblingHashes, hash32] }, ...good.levels.slice(1)], terminal: good.terminal },
      { levels: [{ ...level, siblingHashes: level.siblingHashes.map(() => new Uint8Array(33)) }, ...good.levels.slice(1)], terminal: good.terminal },
      { levels: new Array(65).fill(level), terminal: good.terminal },
    ];
    for (const proof of malformed) {
      assert.equal(verifyStateProof(root, key, value, proof as StateProof), false);
    }
    assert.equal(verifyStateProof(root.subarray(1), key, value, good), false);
    assert.equal(verifyStateProof(root, "key-3" as unknown as Uint8Array, value, good), false);
    assert.equal(verifyStateProof(root, key, "value-3" as unknown as Uint8Array, good), false);
    assert.equal(verifyStateProof(root, key, value, good), true);
  });
});

describe("state tree: snapshots", () => {
  it("round-trips a snapshot, whose bytes depend only on the contents", () => {
    const random = new Random(3);
    const entries = Array.from({ length: 500 }, (_, index) => [bytes(`key-${index}`), randomBytes(random, random.below(40))] as const);
    const tree = StateTree.fromEntries(entries);
    const snapshot = tree.snapshot();
    assert.deepEqual(StateTree.fromEntries(shuffled(entries, random)).snapshot(), snapshot);
    const restored = StateTree.fromSnapshot(snapshot);
    assert.deepEqual(restored.root(), tree.root());
    assert.deepEqual([...restored.entries()], [...tree.entries()]);
    assert.deepEqual(StateTree.fromSnapshot(new StateTree().snapshot()).root(), new StateTree().root());
  });

  it("exports in chunks of at most N entries and rebuilds from them, resuming from the last key hash", () => {
    const { tree } = numberedTree(250);
    const chunkEntryCountMax = 7;
    const restored = new StateTree();
    let cursor: Uint8Array | undefined;
    let chunkCount = 0;
    for (;;) {
      const chunk = tree.exportChunk(cursor, chunkEntryCountMax);
      assert.ok(chunk.entryCount <= chunkEntryCountMax);
      chunkCount++;
      restored.importChunk(chunk.bytes);
      // Resume as a restarted receiver would: from what it has installed, not what it was sent.
      cursor = restored.lastKeyHash();
      assert.deepEqual(cursor, chunk.lastKeyHash);
      if (chunk.done) break;
    }
    assert.equal(chunkCount, Math.ceil(250 / chunkEntryCountMax));
    assert.equal(restored.size, tree.size);
    assert.deepEqual(restored.root(), tree.root());
  });

  it("rejects a chunk out of key-hash order or malformed, leaving the tree unchanged", () => {
    const { tree } = numberedTree(40);
    const first = tree.exportChunk(undefined, 20);
    const second = tree.exportChunk(first.lastKeyHash, 20);
    const restored = new StateTree();
    restored.importChunk(second.bytes);
    const rootBefore = restored.root();
    assert.throws(() => restored.importChunk(first.bytes), StateSnapshotDecodeError);
    assert.throws(() => restored.importChunk(second.bytes), StateSnapshotDecodeError);
    const malformed = [
      new Uint8Array(0),
      Uint8Array.of(2, 0, 0, 0, 0),
      Uint8Array.of(1, 0xff, 0xff, 0xff, 0xff),
      first.bytes.subarray(0, first.bytes.length - 1),
      Uint8Array.of(...first.bytes, 0),
    ];
    for (const input of malformed) assert.throws(() => new StateTree().importChunk(input), StateSnapshotDecodeError);
    assert.deepEqual(restored.root(), rootBefore);
    assert.equal(restored.size, 20);
  });
});
