// The consensus record log's contract through the store: records come back in append order,
// compaction keeps exactly what `compactRecords` keeps and when, and the log survives reopening;
// and the move of the log from LMDB's "records" sub-database (earlier builds) to records.log.
// What a crash or damage leaves in the file is in record-file.test.ts.

import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, rmSync } from "node:fs";
import { join } from "node:path";

import { open } from "lmdb";
import { PbftReplica, compactRecords, type PersistRecord, type Ready } from "../../src/consensus/pbft/index.js";
import { Random } from "../../src/sim/random.js";
import { frameValue, unframeValue } from "../../src/storage/frame.js";
import { ReplicaStore, StorageRefusedError, encodeRecord } from "../../src/storage/index.js";
import { DATABASE_NAMES, META_KEYS, STORAGE_FORMAT_VERSION, metaKey, uint64Key } from "../../src/storage/layout.js";
import { RECORD_FILE_NAME } from "../../src/storage/record-file.js";
import { TestCluster, config, request, testCrypto } from "../consensus/harness.js";
import { oneOfEachKind } from "./record-fixtures.js";
import { CLUSTER_ID, openStore, simpleBlock, temporaryDirectory } from "./helpers.js";

/** `value` with every Buffer replaced by a plain Uint8Array (the harness makes Buffers; the store returns plain arrays). */
function withPlainBytes<T>(value: T): T {
  if (value instanceof Uint8Array) return Uint8Array.from(value) as T;
  if (Array.isArray(value)) return value.map(withPlainBytes) as T;
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, withPlainBytes(field)])) as T;
  }
  return value;
}

/** A 4-replica cluster that keeps replica 1's `Ready.persist` batches as the core emitted them. */
class RecordingCluster extends TestCluster {
  readonly batches: PersistRecord[][] = [];

  override process(id: number): Ready[] {
    const readies = super.process(id);
    if (id === 1) for (const ready of readies) if (ready.persist.length > 0) this.batches.push(withPlainBytes(ready.persist));
    return readies;
  }
}

/** Normal operation across several checkpoints, a view change after the primary stops, and more requests. */
function recordedRun(): RecordingCluster {
  const cluster = new RecordingCluster(4, config(4, { viewChangeTimeoutTicks: 5 }));
  for (let index = 1; index <= 14; index++) cluster.submit(request(`c${index % 3}`, index));
  cluster.nodes[0]!.up = false;
  cluster.step(1, { type: "request", request: request("late", 1) });
  cluster.step(2, { type: "request", request: request("late", 1) });
  cluster.step(3, { type: "request", request: request("late", 1) });
  cluster.tick(40);
  for (let index = 15; index <= 24; index++) cluster.submit(request(`c${index % 3}`, index), 1);
  cluster.tick(10);
  return cluster;
}

test("records of every kind read back in append order", async (t) => {
  const store = await openStore(t, temporaryDirectory(t), { recordLogCompactionThreshold: 1_000_000 });
  const random = new Random(201);
  const appended: PersistRecord[] = [];
  for (let round = 0; round < 5; round++) {
    // Without stable checkpoints, so no append compacts.
    const batch = oneOfEachKind(random).filter((record) => record.kind !== "stable-checkpoint");
    await store.appendRecords(batch);
    appended.push(...batch);
  }
  assert.deepEqual(store.loadRecords(), appended);
  assert.equal(store.recordCount, appended.length);
});

test("the log after each append is exactly what compactRecords keeps whenever the store compacts", async (t) => {
  const cluster = recordedRun();
  assert.ok(cluster.nodes[1]!.replica.status().view >= 1, "the run includes a view change");
  const all = cluster.batches.flat();
  assert.ok(all.some((record) => record.kind === "stable-checkpoint"), "the run includes stable checkpoints");
  const store = await openStore(t, temporaryDirectory(t), { recordLogCompactionThreshold: 40 });
  let model: PersistRecord[] = [];
  let compactions = 0;
  for (const batch of cluster.batches) {
    const result = await store.appendRecords(batch);
    const due = batch.some((record) => record.kind === "stable-checkpoint") || model.length + batch.length > 40;
    if (due) assert.equal(result.compacted, true);
    model = result.compacted ? compactRecords([...model, ...batch]) : [...model, ...batch];
    if (result.compacted) compactions++;
    assert.deepEqual(store.loadRecords(), model);
    assert.equal(result.recordCount, model.length);
  }
  assert.ok(compactions >= 3, `${compactions} compactions`);
  assert.ok(model.length < all.length / 2, `compacted log of ${model.length} records from ${all.length} appended`);

  // A replica restored from the store resumes in the same view with the same stable checkpoint.
  const live = cluster.nodes[1]!;
  const restored = new PbftReplica(
    { id: 1, config: cluster.cfg, crypto: testCrypto(1), replies: live.service },
    { records: store.loadRecords(), lastExecuted: live.service.lastExecuted, stateDigest: live.service.digest },
  );
  assert.equal(restored.status().view, live.replica.status().view);
  assert.equal(restored.status().stableSeq, live.replica.status().stableSeq);
});

test("the log stays bounded without stable checkpoints: a large live log is compacted at most every doubling", async (t) => {
  const store = await openStore(t, temporaryDirectory(t), { recordLogCompactionThreshold: 10 });
  // Prepared certificates of 30 distinct seqs in view 0: compaction keeps all of them, so the
  // bound must grow with them instead of compacting on every append.
  const random = new Random(202);
  let compactions = 0;
  for (let seq = 1; seq <= 30; seq++) {
    const prepared = oneOfEachKind(random).find((record) => record.kind === "prepared")!;
    const record: PersistRecord = { kind: "prepared", certificate: { ...prepared.certificate, prePrepare: { ...prepared.certificate.prePrepare, seq, view: 0 } } };
    if ((await store.appendRecords([record])).compacted) compactions++;
  }
  assert.equal(store.loadRecords().length, 30);
  assert.ok(compactions <= 3, `${compactions} compactions for 30 appends`);
  // Votes of an old view are dropped once a view record makes them obsolete; prepared
  // certificates stay (PBFT §4.4: they must survive view changes).
  const votes: PersistRecord[] = [1, 2, 3].map((seq) => ({ kind: "prepare", message: { type: "prepare", view: 0, seq, digest: "d", replica: 1, signature: "s" } }));
  await store.appendRecords([...votes, { kind: "view", view: 5, normal: true }]);
  assert.equal(store.loadRecords().length, 34);
  const result = await store.compactRecordLog();
  assert.deepEqual(result, { compacted: true, recordCount: 31 });
  assert.equal(store.loadRecords().filter((record) => record.kind === "prepare").length, 0);
});

test("the record log survives reopening, compacted or not", async (t) => {
  const directory = temporaryDirectory(t);
  const cluster = recordedRun();
  const first = await openStore(t, directory, { recordLogCompactionThreshold: 40 });
  for (const batch of cluster.batches) await first.appendRecords(batch);
  const before = first.loadRecords();
  await first.close();
  const second = await openStore(t, directory, { recordLogCompactionThreshold: 40 });
  assert.deepEqual(second.loadRecords(), before);
  assert.equal(second.recordCount, before.length);
});

test("an empty append writes nothing and does not compact", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  assert.deepEqual(await store.appendRecords([]), { compacted: false, recordCount: 0 });
  assert.deepEqual(store.loadRecords(), []);
});

// ---------------------------------------------------------------------------------------------
// Migration from LMDB's "records" sub-database

/** Records of every kind but stable checkpoints, so that no append compacts them away. */
function legacyRecords(seed: number): PersistRecord[] {
  const random = new Random(seed);
  return [...oneOfEachKind(random), ...oneOfEachKind(random)].filter((record) => record.kind !== "stable-checkpoint");
}

/**
 * Makes `directory` a store as an earlier build left it: a block, `records` in the "records"
 * sub-database from append index 7 on (indexes only grew there, and compaction left gaps), no
 * records.log and no marker.
 */
async function earlierBuildStore(directory: string, records: readonly PersistRecord[]): Promise<void> {
  const store = await ReplicaStore.open({ directory, clusterId: CLUSTER_ID, replicaId: 0, sync: "none" });
  await store.commitBlock(simpleBlock(1));
  await store.close();
  rmSync(join(directory, RECORD_FILE_NAME));
  await withLmdb(directory, async (raw) => {
    const meta = raw.openDB<Buffer, Uint8Array>(DATABASE_NAMES.meta, { encoding: "binary", keyEncoding: "binary" });
    await meta.remove(metaKey(META_KEYS.recordFile));
    await putFormatVersion(raw, 1);
    await putLegacyRecords(raw, records);
  });
}

async function putFormatVersion(raw: RawLmdb, version: number): Promise<void> {
  const meta = raw.openDB<Buffer, Uint8Array>(DATABASE_NAMES.meta, { encoding: "binary", keyEncoding: "binary" });
  const key = metaKey(META_KEYS.formatVersion);
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(version);
  await meta.put(key, frameValue(DATABASE_NAMES.meta, key, bytes));
}

async function storedFormatVersion(directory: string): Promise<number> {
  let version = -1;
  await withLmdb(directory, (raw) => {
    const meta = raw.openDB<Buffer, Uint8Array>(DATABASE_NAMES.meta, { encoding: "binary", keyEncoding: "binary" });
    const key = metaKey(META_KEYS.formatVersion);
    version = Buffer.from(unframeValue(DATABASE_NAMES.meta, key, meta.get(key)!)).readUInt32BE(0);
    return Promise.resolve();
  });
  return version;
}

type RawLmdb = ReturnType<typeof open<Buffer, Uint8Array>>;

async function withLmdb(directory: string, body: (raw: RawLmdb) => Promise<void>): Promise<void> {
  const raw = open<Buffer, Uint8Array>({ path: directory, encoding: "binary", keyEncoding: "binary", maxDbs: 12 });
  try {
    await body(raw);
  } finally {
    await raw.close();
  }
}

async function putLegacyRecords(raw: RawLmdb, records: readonly PersistRecord[]): Promise<void> {
  const database = raw.openDB<Buffer, Uint8Array>(DATABASE_NAMES.records, { encoding: "binary", keyEncoding: "binary" });
  for (const [position, record] of records.entries()) {
    const key = uint64Key(7 + 3 * position);
    await database.put(key, frameValue(DATABASE_NAMES.records, key, encodeRecord(record)));
  }
}

async function legacyCount(directory: string): Promise<number> {
  let count = 0;
  await withLmdb(directory, (raw) => {
    count = raw.openDB<Buffer, Uint8Array>(DATABASE_NAMES.records, { encoding: "binary", keyEncoding: "binary" }).getKeysCount();
    return Promise.resolve();
  });
  return count;
}

test("a store of an earlier build has its LMDB records moved to records.log on open, in index order", async (t) => {
  const directory = temporaryDirectory(t);
  const records = legacyRecords(301);
  await earlierBuildStore(directory, records);
  const store = await ReplicaStore.open({ directory, clusterId: CLUSTER_ID, replicaId: 0, sync: "durable" });
  try {
    assert.deepEqual(store.recordLogRecovery, { tornTailBytes: 0, migratedRecords: records.length });
    assert.deepEqual(store.loadRecords(), records);
    assert.equal(store.recordCount, records.length);
    await store.appendRecords([{ kind: "view", view: 9, normal: true }]);
  } finally {
    await store.close();
  }
  assert.equal(await legacyCount(directory), 0, "the sub-database is emptied");
  assert.equal(await storedFormatVersion(directory), STORAGE_FORMAT_VERSION, "format version 2 with the move: a build that reads only version 1 refuses the store");
  const reopened = await openStore(t, directory);
  assert.deepEqual(reopened.recordLogRecovery, { tornTailBytes: 0, migratedRecords: 0 });
  assert.deepEqual(reopened.loadRecords(), [...records, { kind: "view", view: 9, normal: true }]);
});

test("a store marked by a build that still wrote format version 1 gets version 2 at its next open", async (t) => {
  const directory = temporaryDirectory(t);
  await (await ReplicaStore.open({ directory, clusterId: CLUSTER_ID, replicaId: 0, sync: "none" })).close();
  await withLmdb(directory, (raw) => putFormatVersion(raw, 1));
  await (await ReplicaStore.open({ directory, clusterId: CLUSTER_ID, replicaId: 0, sync: "none" })).close();
  assert.equal(await storedFormatVersion(directory), STORAGE_FORMAT_VERSION);
});

test("an open that stopped after writing records.log but before marking it finishes the migration", async (t) => {
  const directory = temporaryDirectory(t);
  const records = legacyRecords(302);
  await earlierBuildStore(directory, records);
  // A copy migrated to the end provides the file that open had written when it stopped.
  const copy = temporaryDirectory(t);
  cpSync(directory, copy, { recursive: true });
  await (await ReplicaStore.open({ directory: copy, clusterId: CLUSTER_ID, replicaId: 0 })).close();
  cpSync(join(copy, RECORD_FILE_NAME), join(directory, RECORD_FILE_NAME));
  const store = await openStore(t, directory);
  assert.deepEqual(store.loadRecords(), records);
  assert.equal(store.recordLogRecovery.migratedRecords, 0);
  await store.close();
  assert.equal(await legacyCount(directory), 0);
});

test("a records.log beside different LMDB records and no marker is refused, not mixed in", async (t) => {
  const directory = temporaryDirectory(t);
  await earlierBuildStore(directory, legacyRecords(303));
  const other = temporaryDirectory(t);
  await earlierBuildStore(other, legacyRecords(304));
  await (await ReplicaStore.open({ directory: other, clusterId: CLUSTER_ID, replicaId: 0 })).close();
  cpSync(join(other, RECORD_FILE_NAME), join(directory, RECORD_FILE_NAME));
  await assert.rejects(
    ReplicaStore.open({ directory, clusterId: CLUSTER_ID, replicaId: 0 }),
    (error: unknown) => error instanceof StorageRefusedError && error.reason === "not-a-bulwark-store" && /its records differ/.test(error.message),
  );
  assert.equal(await legacyCount(directory), legacyRecords(303).length, "nothing was cleared");
});

test("LMDB records written after the migration (an earlier build run on the store again) are refused", async (t) => {
  const directory = temporaryDirectory(t);
  const store = await ReplicaStore.open({ directory, clusterId: CLUSTER_ID, replicaId: 0, sync: "none" });
  await store.appendRecords([{ kind: "view", view: 1, normal: true }]);
  await store.close();
  await withLmdb(directory, (raw) => putLegacyRecords(raw, [{ kind: "view", view: 2, normal: true }]));
  await assert.rejects(
    ReplicaStore.open({ directory, clusterId: CLUSTER_ID, replicaId: 0 }),
    (error: unknown) => error instanceof StorageRefusedError && error.reason === "format-version" && /an earlier build of Bulwark ran on it/.test(error.message),
  );
});

test("a store whose records.log is missing is refused, by the replica and by the auditor", async (t) => {
  const directory = temporaryDirectory(t);
  const store = await ReplicaStore.open({ directory, clusterId: CLUSTER_ID, replicaId: 0, sync: "none" });
  await store.appendRecords([{ kind: "view", view: 1, normal: true }]);
  await store.close();
  rmSync(join(directory, RECORD_FILE_NAME));
  const missing = (error: unknown): boolean => error instanceof StorageRefusedError && error.reason === "not-a-bulwark-store" && /records\.log is missing/.test(error.message);
  await assert.rejects(ReplicaStore.open({ directory, clusterId: CLUSTER_ID, replicaId: 0 }), missing);
  await assert.rejects(ReplicaStore.openExisting({ directory, clusterId: CLUSTER_ID }), missing);
  assert.equal(existsSync(join(directory, RECORD_FILE_NAME)), false, "nothing was created in its place");
});

test("the auditor reads an earlier build's records from LMDB and migrates nothing", async (t) => {
  const directory = temporaryDirectory(t);
  const records = legacyRecords(305);
  await earlierBuildStore(directory, records);
  const auditor = await ReplicaStore.openExisting({ directory, clusterId: CLUSTER_ID });
  try {
    assert.equal(auditor.recordCount, records.length);
    assert.deepEqual(auditor.loadRecords(), records);
  } finally {
    await auditor.close();
  }
  assert.equal(existsSync(join(directory, RECORD_FILE_NAME)), false);
  assert.equal(await legacyCount(directory), records.length);
});
