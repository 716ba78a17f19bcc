// The store's support for state transfer and block backfill: pinned states that serve a
// checkpoint while execution moves on, installing a fetched state in place of the current one,
// and storing the history below it (replica-store.ts `pinState`, `installState`, `storeHistory`,
// `lowerBodyRetention`, `contiguousHeadersFrom`).

import { test } from "node:test";
import assert from "node:assert/strict";

import { type PinnedState, type ReplicaStore, STATE_KEY_BYTES_MAX, type StateInstall } from "../../src/storage/index.js";
import { openStore, simpleBlock, temporaryDirectory, utf8 } from "./helpers.js";

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString();

/** Every entry a pin (or the store) holds, read `entriesMax` at a time, as "key=value" strings. */
function readAll(read: (after: Uint8Array | undefined) => ReturnType<PinnedState["readChunk"]>): string[] {
  const seen: string[] = [];
  let after: Uint8Array | undefined;
  for (let chunkCount = 0; ; chunkCount++) {
    assert.ok(chunkCount < 1000, "the chunks end");
    const chunk = read(after);
    for (const [key, value] of chunk.entries) seen.push(`${text(key)}=${text(value)}`);
    if (chunk.done) return seen;
    assert.ok(chunk.cursor !== undefined, "a chunk that is not the last has a cursor");
    after = chunk.cursor;
  }
}

function storeEntries(store: ReplicaStore): string[] {
  return readAll((after) => store.readStateChunk({ entriesMax: 5, ...(after === undefined ? {} : { after }) }));
}

/** A snapshot to install at `height`; its parts name the height, like `simpleBlock`'s. */
function install(height: number, entries: ReadonlyArray<readonly [string, string]>, certificate = true): StateInstall {
  return {
    height,
    header: utf8(`installed header ${height}`),
    ...(certificate ? { certificate: utf8(`installed certificate ${height}`) } : {}),
    entries: entries.map(([key, value]) => [utf8(key), utf8(value)] as const),
    meta: { seq: height, stateDigest: utf8(`installed digest ${height}`) },
  };
}

function history(height: number, parts: { body?: boolean; certificate?: boolean } = {}): { height: number; header: Uint8Array; body?: Uint8Array; certificate?: Uint8Array } {
  const block = simpleBlock(height);
  return {
    height,
    header: block.header,
    ...(parts.body === true ? { body: block.body } : {}),
    ...(parts.certificate === true ? { certificate: utf8(`certificate ${height}`) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Pinned state

test("a pinned state keeps reading the entries of its moment while later blocks change, delete and add entries", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  await store.commitBlock(simpleBlock(1, [[utf8("a"), utf8("1")], [utf8("b"), utf8("1")], [utf8("c"), utf8("1")]]));
  await store.commitBlock(simpleBlock(2, [[utf8("d"), utf8("2")]]));
  const pin = store.pinState();
  try {
    assert.equal(pin.appliedHeight, 2);
    await store.commitBlock(simpleBlock(3, [[utf8("a"), utf8("3")], [utf8("b"), null], [utf8("e"), utf8("3")]]));
    await store.commitBlock(simpleBlock(4, [[utf8("c"), null], [utf8("d"), utf8("4")]]));
    assert.deepEqual(storeEntries(store), ["a=3", "d=4", "e=3"], "the store itself moved on");
    const first = pin.readChunk();
    assert.deepEqual(
      first.entries.map(([key, value]) => `${text(key)}=${text(value)}`),
      ["a=1", "b=1", "c=1", "d=2"],
    );
    assert.equal(first.appliedHeight, 2, "the chunk says which state it came from");
    assert.equal(first.done, true);
    assert.equal(pin.appliedHeight, 2);
  } finally {
    pin.release();
  }
});

test("chunks of a pin resume after the cursor and cover every entry exactly once, in key order, while the store changes between chunks", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  const expected: string[] = [];
  const writes: Array<[Uint8Array, Uint8Array]> = [];
  for (let index = 0; index < 40; index++) {
    const key = `k${String(index).padStart(3, "0")}`;
    writes.push([utf8(key), utf8(`v${index}`)]);
    expected.push(`${key}=v${index}`);
  }
  await store.commitBlock(simpleBlock(1, writes));
  const pin = store.pinState();
  try {
    let height = 1;
    const seen = await (async () => {
      const entries: string[] = [];
      let after: Uint8Array | undefined;
      for (let chunkCount = 0; chunkCount < 100; chunkCount++) {
        const chunk = pin.readChunk({ entriesMax: 7, ...(after === undefined ? {} : { after }) });
        assert.ok(chunk.entries.length <= 7);
        assert.equal(chunk.appliedHeight, 1);
        for (const [key, value] of chunk.entries) entries.push(`${text(key)}=${text(value)}`);
        if (chunk.done) return entries;
        after = chunk.cursor;
        // Between chunks, execution rewrites the next keys, deletes one and adds new ones.
        height++;
        await store.commitBlock(simpleBlock(height, [[utf8(`k${String(chunkCount * 7 + 8).padStart(3, "0")}`), null], [utf8(`k${String(chunkCount * 7 + 9).padStart(3, "0")}`), utf8("changed")], [utf8(`k${chunkCount}x`), utf8("new")]]));
      }
      assert.fail("the chunks end");
    })();
    assert.deepEqual(seen, expected);
    assert.ok(height > 5, "several chunks were read");
    assert.notDeepEqual(storeEntries(store), expected, "the store did change meanwhile");
  } finally {
    pin.release();
  }
});

test("a released pin refuses to read, and releasing it again does nothing", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  await store.commitBlock(simpleBlock(1, [[utf8("a"), utf8("1")]]));
  const pin = store.pinState();
  assert.equal(pin.readChunk().entries.length, 1);
  pin.release();
  assert.throws(() => pin.readChunk(), /the pin was released/);
  pin.release();
  assert.throws(() => pin.readChunk(), /the pin was released/);
  // The store is unaffected: it commits and reads as before, and pins anew.
  await store.commitBlock(simpleBlock(2, [[utf8("b"), utf8("2")]]));
  const again = store.pinState();
  assert.equal(again.appliedHeight, 2);
  assert.deepEqual(readAll((after) => again.readChunk({ entriesMax: 1, ...(after === undefined ? {} : { after }) })), ["a=1", "b=2"]);
  again.release();
});

test("a pin of an empty store has no applied height and no entries", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  const pin = store.pinState();
  assert.equal(pin.appliedHeight, undefined);
  assert.deepEqual(pin.readChunk(), { entries: [], cursor: undefined, done: true, appliedHeight: undefined });
  pin.release();
});

test("pinning a closed store throws", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  await store.close();
  assert.throws(() => store.pinState(), /closed/);
});

// ---------------------------------------------------------------------------------------------
// Installing a state

test("an installed state replaces every old entry, and the store continues the chain at the next height", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  for (let height = 1; height <= 6; height++) {
    await store.commitBlock(simpleBlock(height, [[utf8(`old ${height}`), utf8(`${height}`)], [utf8("shared"), utf8(`old ${height}`)]]));
  }
  // Entries in no particular order; the store keeps them by key.
  await store.installState(install(4, [["shared", "new"], ["z", "26"], ["", "empty key"], ["m", "13"]]));

  assert.deepEqual(storeEntries(store), ["=empty key", "m=13", "shared=new", "z=26"]);
  for (let height = 1; height <= 6; height++) assert.equal(store.getState(utf8(`old ${height}`)), undefined, `old ${height} is gone`);
  assert.deepEqual(store.appliedState(), { height: 4, seq: 4, stateDigest: utf8("installed digest 4") });
  assert.equal(store.latestHeight(), 4, "blocks 5 and 6 (an abandoned suffix) are gone");
  assert.equal(store.getBlock(5), undefined);
  assert.equal(store.getBlock(6), undefined);
  assert.deepEqual(store.getBlock(4), { height: 4, header: utf8("installed header 4"), body: undefined, certificate: utf8("installed certificate 4") });
  assert.deepEqual(
    store.getHeaders(1, 3).map(({ header }) => text(header)),
    ["header 1", "header 2", "header 3"],
    "the headers below stay: they are the same chain's history",
  );
  assert.equal(store.bodyRetentionHeight(), 5, "no body travelled with the state");
  assert.equal(store.getBlock(3)?.body, undefined, "bodies below the installed height count as pruned");

  await store.commitBlock(simpleBlock(5, [[utf8("after"), utf8("5")]]));
  assert.deepEqual(store.getBlock(5)?.body, simpleBlock(5).body, "the next block keeps its body");
  assert.deepEqual(store.getState(utf8("after")), utf8("5"));
  assert.deepEqual(store.getState(utf8("shared")), utf8("new"));
  await assert.rejects(store.commitBlock(simpleBlock(7)), /height 7 does not follow the applied height 5/);
});

test("installing without a certificate removes one stored at that height", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  for (let height = 1; height <= 3; height++) await store.commitBlock(simpleBlock(height));
  assert.deepEqual(store.getBlock(2)?.certificate, utf8("certificate 2"));
  await store.installState(install(2, [["a", "1"]], false));
  assert.deepEqual(store.getBlock(2), { height: 2, header: utf8("installed header 2"), body: undefined, certificate: undefined });
});

test("a state installed on an empty store starts the chain at its height", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  await store.installState(install(1000, [["a", "1"]]));
  assert.equal(store.latestHeight(), 1000);
  assert.deepEqual(store.getHeaders(0, 2000).map(({ height }) => height), [1000]);
  assert.equal(store.bodyRetentionHeight(), 1001);
  await assert.rejects(store.commitBlock(simpleBlock(1002)), /does not follow the applied height 1000/);
  await store.commitBlock(simpleBlock(1001));
  assert.equal(store.latestHeight(), 1001);
});

test("an install with an empty snapshot leaves an empty state", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  await store.commitBlock(simpleBlock(1, [[utf8("a"), utf8("1")]]));
  await store.installState(install(3, []));
  assert.deepEqual(storeEntries(store), []);
  assert.equal(store.appliedState()?.height, 3);
});

test("a pin taken before an install still reads the old state", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  await store.commitBlock(simpleBlock(1, [[utf8("a"), utf8("1")]]));
  const pin = store.pinState();
  try {
    await store.installState(install(9, [["b", "9"]]));
    assert.deepEqual(readAll(() => pin.readChunk()), ["a=1"]);
    assert.deepEqual(storeEntries(store), ["b=9"]);
  } finally {
    pin.release();
  }
});

test("a bad install is refused before anything changes", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  await store.commitBlock(simpleBlock(1, [[utf8("a"), utf8("1")]]));
  assert.throws(() => store.installState(install(0, [["b", "2"]])), /height must be at least 1/);
  assert.throws(() => store.installState({ ...install(2, []), entries: [[utf8("fine"), utf8("x")], [new Uint8Array(STATE_KEY_BYTES_MAX + 1), utf8("x")]] }), /state key of 1978 bytes/);
  assert.throws(() => store.installState({ ...install(2, []), header: "text" as unknown as Uint8Array }), TypeError);
  assert.deepEqual(storeEntries(store), ["a=1"]);
  assert.equal(store.appliedState()?.height, 1);
  assert.equal(store.latestHeight(), 1);
});

// ---------------------------------------------------------------------------------------------
// History below the applied height

test("history is stored at and below the applied height, and refused above it, all or nothing", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  await store.installState(install(10, [["a", "1"]]));
  await store.storeHistory([history(10, { body: true, certificate: true }), history(9, { body: true, certificate: true }), history(8)]);
  assert.deepEqual(
    store.getHeaders(1, 10).map(({ height, header, certificate }) => [height, text(header), certificate === undefined ? undefined : text(certificate)]),
    [
      [8, "header 8", undefined],
      [9, "header 9", "certificate 9"],
      [10, "header 10", "certificate 10"],
    ],
    "the header at the applied height is replaced, with its certificate",
  );
  // Bodies are stored, but stay below the retention height until it is lowered.
  assert.equal(store.bodyRetentionHeight(), 11);
  assert.equal(store.getBlock(9)?.body, undefined);

  // A batch with one height above the applied height writes nothing, not even its good blocks.
  await assert.rejects(store.storeHistory([history(7, { body: true }), history(11, { body: true })]), /height 11 is above the applied height 10/);
  assert.deepEqual(store.getHeaders(1, 7), []);
  assert.equal(store.latestHeight(), 10);
  assert.throws(() => store.storeHistory([history(0)]), /heights start at 1/);
  assert.equal(store.appliedState()?.height, 10, "history never moves the applied state");
});

test("a store without blocks refuses any history", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  await assert.rejects(store.storeHistory([history(1)]), /height 1 is above the applied height 0/);
  assert.equal(store.latestHeight(), undefined);
});

test("the body retention height is lowered only when every body from the new height up is stored", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  await store.installState(install(10, [["a", "1"]]));
  assert.equal(store.bodyRetentionHeight(), 11);
  await store.storeHistory([history(9, { body: true }), history(8, { body: true })]);
  assert.equal(await store.lowerBodyRetention(8), 11, "the body of block 10 is missing");
  assert.equal(store.bodyRetentionHeight(), 11);
  await store.storeHistory([history(10, { body: true })]);
  assert.equal(await store.lowerBodyRetention(8), 8);
  assert.equal(store.bodyRetentionHeight(), 8);
  assert.deepEqual(store.getBlock(9)?.body, simpleBlock(9).body, "the backfilled bodies are readable now");
  assert.equal(store.getBlock(7), undefined);
  assert.equal(await store.lowerBodyRetention(9), 8, "it never moves up");
  assert.equal(await store.lowerBodyRetention(0), 8, "bodies 1 to 7 are missing");
  await store.storeHistory(Array.from({ length: 7 }, (_, index) => history(index + 1, { body: true })));
  assert.equal(await store.lowerBodyRetention(0), 0);
  assert.equal(store.bodyRetentionHeight(), 0);
  assert.deepEqual(store.getBlock(1)?.body, simpleBlock(1).body);
});

test("lowering the retention height of a store that never pruned changes nothing", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  for (let height = 1; height <= 3; height++) await store.commitBlock(simpleBlock(height));
  assert.equal(await store.lowerBodyRetention(0), 0);
  assert.equal(await store.lowerBodyRetention(2), 0);
  assert.equal(store.bodyRetentionHeight(), 0);
});

// ---------------------------------------------------------------------------------------------
// Contiguous headers

test("contiguousHeadersFrom is 1 for a whole history and the bottom of the run for one with gaps", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  assert.equal(store.contiguousHeadersFrom(5), 6, "no header at 5");
  for (let height = 1; height <= 5; height++) await store.commitBlock(simpleBlock(height));
  assert.equal(store.contiguousHeadersFrom(5), 1);
  assert.equal(store.contiguousHeadersFrom(3), 1);
  assert.equal(store.contiguousHeadersFrom(6), 7, "no header at 6");

  await store.installState(install(20, [["a", "1"]]));
  assert.equal(store.contiguousHeadersFrom(20), 20);
  await store.storeHistory([17, 18, 19].map((height) => history(height)));
  assert.equal(store.contiguousHeadersFrom(20), 17);
  assert.equal(store.contiguousHeadersFrom(18), 17);
  assert.equal(store.contiguousHeadersFrom(5), 1, "the old run below the gap");
  await store.storeHistory(Array.from({ length: 11 }, (_, index) => history(index + 6)));
  assert.equal(store.contiguousHeadersFrom(20), 1, "the gap is filled");
});

test("contiguousHeadersFrom finds gaps below and across its 10,000-header read windows", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  const top = 25_000;
  await store.installState(install(top, []));
  // Headers 1 .. 5 and 12,000 .. top: a gap of almost 12,000 heights, then one at exactly a window edge.
  await store.storeHistory([...Array.from({ length: 5 }, (_, index) => history(index + 1)), ...Array.from({ length: top - 12_000 }, (_, index) => history(index + 12_000))]);
  assert.equal(store.contiguousHeadersFrom(top), 12_000);
  assert.equal(store.contiguousHeadersFrom(5), 1);
  // The first window read from `top` is [top - 9,999, top]; a gap just below and just inside it.
  await store.storeHistory(Array.from({ length: 12_000 - 6 }, (_, index) => history(index + 6)));
  assert.equal(store.contiguousHeadersFrom(top), 1, "the whole history, across three windows");
  const edgeStore = await openStore(t, temporaryDirectory(t));
  await edgeStore.installState(install(top, []));
  const missing = new Set([top - 10_000, 3]);
  await edgeStore.storeHistory(Array.from({ length: top - 1 }, (_, index) => index + 1).filter((height) => !missing.has(height)).map((height) => history(height)));
  assert.equal(edgeStore.contiguousHeadersFrom(top), top - 9_999, "a gap just below the first window");
  assert.equal(edgeStore.contiguousHeadersFrom(top - 10_001), 4, "a run that fills whole windows");
});
