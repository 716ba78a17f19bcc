import { test } from "node:test";
import assert from "node:assert/strict";

import { PbftReplica, compactRecords, type PersistRecord, type Ready } from "../../src/consensus/pbft/index.js";
import { Random } from "../../src/sim/random.js";
import { TestCluster, config, request, testCrypto } from "../consensus/harness.js";
import { oneOfEachKind } from "./record-fixtures.js";
import { openStore, temporaryDirectory } from "./helpers.js";

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
