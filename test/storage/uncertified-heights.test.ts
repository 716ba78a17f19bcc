// `ReplicaStore.uncertifiedHeights`: the stored heights without a commit certificate, which the
// runtime's certificate repair (src/node/certificate-repair.ts) gathers signatures for on start.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { type ReplicaStore } from "../../src/storage/index.js";
import { openStore, simpleBlock, temporaryDirectory, utf8 } from "./helpers.js";

/** Commits blocks 1 .. `count`, each with a certificate exactly when `certified(height)`. */
async function commitBlocks(store: ReplicaStore, count: number, certified: (height: number) => boolean): Promise<void> {
  for (let height = 1; height <= count; height++) await store.commitBlock(simpleBlock(height, [], certified(height)));
}

describe("uncertifiedHeights", () => {
  it("an empty store has no uncertified heights", async (t) => {
    const store = await openStore(t, temporaryDirectory(t));
    assert.deepEqual(store.uncertifiedHeights(), []);
    assert.deepEqual(store.uncertifiedHeights(1, 10), []);
  });

  it("a store whose every block is certified has none", async (t) => {
    const store = await openStore(t, temporaryDirectory(t));
    await commitBlocks(store, 8, () => true);
    assert.deepEqual(store.uncertifiedHeights(), []);
  });

  it("blocks committed without a certificate are listed, ascending", async (t) => {
    const store = await openStore(t, temporaryDirectory(t));
    const uncertified = new Set([2, 4, 5, 9]);
    await commitBlocks(store, 9, (height) => !uncertified.has(height));
    assert.deepEqual(store.uncertifiedHeights(), [2, 4, 5, 9]);
  });

  it("a store with no certificate at all lists every height", async (t) => {
    const store = await openStore(t, temporaryDirectory(t));
    await commitBlocks(store, 5, () => false);
    assert.deepEqual(store.uncertifiedHeights(), [1, 2, 3, 4, 5]);
  });

  it("attaching a certificate removes the height from the list", async (t) => {
    const store = await openStore(t, temporaryDirectory(t));
    await commitBlocks(store, 6, (height) => height % 2 === 1);
    assert.deepEqual(store.uncertifiedHeights(), [2, 4, 6]);
    await store.attachCertificate(4, utf8("certificate 4"));
    assert.deepEqual(store.uncertifiedHeights(), [2, 6]);
    await store.attachCertificate(2, utf8("certificate 2"));
    await store.attachCertificate(6, utf8("certificate 6"));
    assert.deepEqual(store.uncertifiedHeights(), []);
  });

  it("from is the lowest height listed, inclusive", async (t) => {
    const store = await openStore(t, temporaryDirectory(t));
    const uncertified = new Set([2, 4, 5, 9]);
    await commitBlocks(store, 10, (height) => !uncertified.has(height));
    assert.deepEqual(store.uncertifiedHeights(4), [4, 5, 9]);
    assert.deepEqual(store.uncertifiedHeights(5), [5, 9]);
    assert.deepEqual(store.uncertifiedHeights(6), [9]);
    assert.deepEqual(store.uncertifiedHeights(10), []);
    assert.deepEqual(store.uncertifiedHeights(11), [], "from above every stored block");
  });

  it("countMax bounds the list to the lowest heights", async (t) => {
    const store = await openStore(t, temporaryDirectory(t));
    const uncertified = new Set([2, 4, 5, 9]);
    await commitBlocks(store, 10, (height) => !uncertified.has(height));
    assert.deepEqual(store.uncertifiedHeights(1, 1), [2]);
    assert.deepEqual(store.uncertifiedHeights(1, 3), [2, 4, 5]);
    assert.deepEqual(store.uncertifiedHeights(1, 4), [2, 4, 5, 9]);
    assert.deepEqual(store.uncertifiedHeights(1, 100), [2, 4, 5, 9]);
    assert.deepEqual(store.uncertifiedHeights(3, 2), [4, 5], "from and countMax together");
    for (const countMax of [0, -5, 1.5]) assert.throws(() => store.uncertifiedHeights(1, countMax), RangeError, String(countMax));
  });

  it("heights without a stored header are not listed, and the walk stays in step across gaps", async (t) => {
    const store = await openStore(t, temporaryDirectory(t));
    // A store that installed a state at height 20 and backfilled part of the history below it.
    await store.installState({
      height: 20,
      header: utf8("installed header 20"),
      certificate: utf8("installed certificate 20"),
      entries: [],
      meta: { seq: 20, stateDigest: utf8("installed digest 20") },
    });
    const history = (height: number, certified: boolean): { height: number; header: Uint8Array; certificate?: Uint8Array } => ({
      height,
      header: utf8(`header ${height}`),
      ...(certified ? { certificate: utf8(`certificate ${height}`) } : {}),
    });
    await store.storeHistory([history(3, true), history(4, false), history(11, true), history(12, false), history(13, true), history(19, false)]);
    assert.deepEqual(store.uncertifiedHeights(), [4, 12, 19]);
    assert.deepEqual(store.uncertifiedHeights(5), [12, 19]);
  });

  it("a long history with certificates on a pattern lists exactly the heights without one", async (t) => {
    const store = await openStore(t, temporaryDirectory(t));
    const certified = (height: number): boolean => height % 3 === 0 || height % 7 === 0;
    await commitBlocks(store, 120, certified);
    const expected = Array.from({ length: 120 }, (_, index) => index + 1).filter((height) => !certified(height));
    assert.deepEqual(store.uncertifiedHeights(), expected);
    assert.deepEqual(store.uncertifiedHeights(50, 5), expected.filter((height) => height >= 50).slice(0, 5));
  });
});
