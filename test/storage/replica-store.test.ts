import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { Random } from "../../src/sim/random.js";
import { type StateWrite, STATE_KEY_BYTES_MAX } from "../../src/storage/index.js";
import { randomBytes } from "../support/random-bytes.js";
import { openStore, simpleBlock, temporaryDirectory, utf8 } from "./helpers.js";

test("a committed block, its state changes and its applied-state metadata read back exactly", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  assert.equal(store.latestHeight(), undefined);
  assert.equal(store.appliedState(), undefined);
  await store.commitBlock(simpleBlock(1, [[utf8("a"), utf8("1")], [utf8(""), utf8("empty key")]]));
  await store.commitBlock(simpleBlock(2, [[utf8("a"), null], [utf8("b"), utf8("2")], [utf8("b"), utf8("2 again")]]));
  assert.equal(store.latestHeight(), 2);
  const block = store.getBlock(2);
  assert.deepEqual(block, { height: 2, header: utf8("header 2"), body: simpleBlock(2).body, certificate: utf8("certificate 2") });
  assert.equal(store.getBlock(3), undefined);
  assert.equal(store.getState(utf8("a")), undefined, "deleted by block 2");
  assert.deepEqual(store.getState(utf8("b")), utf8("2 again"), "the last write to a key wins");
  assert.deepEqual(store.getState(utf8("")), utf8("empty key"));
  assert.deepEqual(store.appliedState(), { height: 2, seq: 20, stateDigest: utf8("digest 2") });
});

test("the first block may have any height; later blocks must follow the applied height", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  await store.commitBlock(simpleBlock(7));
  await assert.rejects(store.commitBlock(simpleBlock(9)), /height 9 does not follow the applied height 7/);
  await assert.rejects(store.commitBlock(simpleBlock(7)), /does not follow/);
  await store.commitBlock(simpleBlock(8));
  assert.equal(store.latestHeight(), 8);
});

test("a block refused inside its transaction leaves nothing, even when lmdb batches it with a good block", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  await store.commitBlock(simpleBlock(1, [[utf8("k"), utf8("v1")]]));
  // The height check runs inside the transaction; queue a good block and a bad one in the same
  // event turn, so lmdb batches them into one LMDB transaction, and check the bad one left nothing.
  const good = store.commitBlock(simpleBlock(2, [[utf8("k"), utf8("v2")]]));
  const bad = store.commitBlock(simpleBlock(4, [[utf8("k"), utf8("v4")], [utf8("other"), utf8("x")]]));
  await good;
  await assert.rejects(bad, /does not follow/);
  assert.equal(store.latestHeight(), 2);
  assert.equal(store.getBlock(4), undefined);
  assert.deepEqual(store.getState(utf8("k")), utf8("v2"));
  assert.equal(store.getState(utf8("other")), undefined);
  assert.equal(store.appliedState()?.height, 2);
});

test("commitBlock is atomic: a transaction that fails after its header, body and first state write leaves none of them", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  await store.commitBlock(simpleBlock(1, [[utf8("k"), utf8("v1")]]));
  // Inject a failure in the middle of the transaction: the second state write throws, after
  // the header, the body, the certificate and the first state write were put.
  const state = (store as unknown as { env: { state: { putSync: (...args: unknown[]) => unknown } } }).env.state;
  const putSync = state.putSync;
  let calls = 0;
  state.putSync = function (this: unknown, ...args: unknown[]): unknown {
    if (++calls === 2) throw new Error("injected failure");
    return putSync.apply(this, args);
  };
  await assert.rejects(store.commitBlock(simpleBlock(2, [[utf8("k"), utf8("v2")], [utf8("j"), utf8("v2")]])), /injected failure/);
  state.putSync = putSync;
  assert.equal(calls, 2);
  assert.equal(store.latestHeight(), 1);
  assert.equal(store.getBlock(2), undefined);
  assert.deepEqual(store.getState(utf8("k")), utf8("v1"));
  assert.deepEqual(store.appliedState()?.height, 1);
  // The store is still usable, and block 2 can be committed for real.
  await store.commitBlock(simpleBlock(2, [[utf8("k"), utf8("v2")]]));
  assert.deepEqual(store.getState(utf8("k")), utf8("v2"));
});

test("a bad argument is refused before anything is queued", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  const longKey = new Uint8Array(STATE_KEY_BYTES_MAX + 1);
  assert.throws(() => store.commitBlock(simpleBlock(1, [[utf8("fine"), utf8("x")], [longKey, utf8("x")]])), /state key of 1978 bytes/);
  assert.throws(() => store.commitBlock({ ...simpleBlock(1), height: -1 }), RangeError);
  assert.throws(() => store.commitBlock({ ...simpleBlock(1), body: "text" as unknown as Uint8Array }), TypeError);
  assert.equal(store.latestHeight(), undefined);
  assert.equal(store.getState(utf8("fine")), undefined);
});

test("a certificate can be attached after its block, and not to a block that is missing", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  await store.commitBlock(simpleBlock(1, [], false));
  assert.equal(store.getBlock(1)?.certificate, undefined);
  await store.attachCertificate(1, utf8("late certificate"));
  assert.deepEqual(store.getBlock(1)?.certificate, utf8("late certificate"));
  await assert.rejects(store.attachCertificate(2, utf8("x")), /no block at height 2/);
});

test("getHeaders returns the stored headers and certificates of a range, bounded by countMax", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  // Heights that cross a byte boundary of the big-endian key (255 → 256).
  for (let height = 250; height <= 260; height++) await store.commitBlock(simpleBlock(height, [], height % 2 === 0));
  const headers = store.getHeaders(254, 258);
  assert.deepEqual(
    headers.map((h) => h.height),
    [254, 255, 256, 257, 258],
  );
  assert.deepEqual(headers[2], { height: 256, header: utf8("header 256"), certificate: utf8("certificate 256") });
  assert.equal(headers[1]?.certificate, undefined);
  assert.deepEqual(
    store.getHeaders(0, 1000, 3).map((h) => h.height),
    [250, 251, 252],
  );
  assert.deepEqual(store.getHeaders(300, 400), []);
  assert.deepEqual(store.getHeaders(9, 3), []);
});

test("state is read in key order in chunks that resume from a cursor and see every entry once", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  const random = new Random(7);
  const expected = new Map<string, Uint8Array>();
  for (let height = 1; height <= 20; height++) {
    const writes: StateWrite[] = [];
    for (let index = 0; index < 50; index++) {
      const key = randomBytes(random, random.between(0, 3));
      const value = random.chance(0.2) ? null : randomBytes(random, random.between(0, 40));
      writes.push([key, value]);
      const name = Buffer.from(key).toString("hex");
      if (value === null) expected.delete(name);
      else expected.set(name, value);
    }
    await store.commitBlock(simpleBlock(height, writes));
  }
  const seen: Array<[string, Uint8Array]> = [];
  let after: Uint8Array | undefined = undefined;
  for (let chunkCount = 0; ; chunkCount++) {
    assert.ok(chunkCount < 1000, "chunks end");
    const chunk = store.readStateChunk({ entriesMax: 7, ...(after === undefined ? {} : { after }) });
    assert.ok(chunk.entries.length <= 7);
    assert.equal(chunk.appliedHeight, 20);
    for (const [key, value] of chunk.entries) seen.push([Buffer.from(key).toString("hex"), value]);
    if (chunk.done) break;
    after = chunk.cursor;
  }
  const sortedKeys = [...expected.keys()].sort((a, b) => Buffer.compare(Buffer.from(a, "hex"), Buffer.from(b, "hex")));
  assert.deepEqual(
    seen.map(([key]) => key),
    sortedKeys,
  );
  for (const [key, value] of seen) assert.deepEqual(value, expected.get(key));
});

test("a state chunk stops at bytesMax but always holds at least one entry", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  await store.commitBlock(simpleBlock(1, [[utf8("a"), new Uint8Array(100)], [utf8("b"), new Uint8Array(100)], [utf8("c"), new Uint8Array(10)]]));
  const first = store.readStateChunk({ bytesMax: 1 });
  assert.deepEqual(first.entries.map(([key]) => Buffer.from(key).toString()), ["a"]);
  assert.equal(first.done, false);
  const rest = store.readStateChunk({ after: utf8("a"), bytesMax: 150 });
  assert.deepEqual(rest.entries.map(([key]) => Buffer.from(key).toString()), ["b", "c"]);
  assert.equal(rest.done, true);
  assert.deepEqual(store.readStateChunk({ after: utf8("c") }), { entries: [], cursor: undefined, done: true, appliedHeight: 1 });
});

test("everything written is there after the store is closed and reopened", async (t) => {
  const directory = temporaryDirectory(t);
  const first = await openStore(t, directory, { sync: "durable" });
  for (let height = 1; height <= 5; height++) await first.commitBlock(simpleBlock(height, [[utf8(`key ${height}`), utf8(`value ${height}`)]]));
  await first.appendRecords([{ kind: "view", view: 2, normal: true }]);
  await first.close();
  const second = await openStore(t, directory, { sync: "durable" });
  assert.equal(second.latestHeight(), 5);
  assert.deepEqual(second.getBlock(3)?.body, simpleBlock(3).body);
  assert.deepEqual(second.getState(utf8("key 4")), utf8("value 4"));
  assert.deepEqual(second.appliedState(), { height: 5, seq: 50, stateDigest: utf8("digest 5") });
  assert.deepEqual(second.loadRecords(), [{ kind: "view", view: 2, normal: true }]);
  await second.commitBlock(simpleBlock(6));
  assert.equal(second.latestHeight(), 6);
});

test("counters count blocks, certificates and records", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  await store.commitBlock(simpleBlock(1, [], false));
  await store.attachCertificate(1, utf8("c"));
  await store.appendRecords([{ kind: "view", view: 0, normal: true }]);
  assert.deepEqual(store.counters(), { blocksCommitted: 1, certificatesAttached: 1, recordsAppended: 1, recordLogCompactions: 0, bodiesPruned: 0 });
});

test("the data file stays in one memory map as the store grows, so its pages are counted once in the replica's RSS", { skip: process.platform !== "linux" && "reads /proc/self/maps" }, async (t) => {
  const directory = temporaryDirectory(t);
  const store = await openStore(t, directory);
  // 16 blocks of 512 KiB bodies: 8 MiB, past the 128 KiB map lmdb starts with when it is given
  // none; it would have mapped the file again each time it outgrew the map, keeping every earlier
  // map (five maps in all here).
  const body = randomBytes(new Random(7), 512 * 1024);
  for (let height = 1; height <= 16; height++) await store.commitBlock({ ...simpleBlock(height), body });
  assert.deepEqual(store.getBlock(16)?.body, body);
  const maps = readFileSync("/proc/self/maps", "utf8")
    .split("\n")
    .filter((line) => line.endsWith(`${directory}/data.mdb`));
  assert.equal(maps.length, 1, `data.mdb is mapped ${maps.length} times:\n${maps.join("\n")}`);
});
