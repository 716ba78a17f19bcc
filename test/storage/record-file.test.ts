// The record log's file (src/storage/record-file.ts): what a crash can leave in records.log and
// what open makes of it, damage and foreign files, one fdatasync per append, appends one at a
// time, and a log that refuses appends after one failed. The log's contract through the store
// (order, compaction, reopening, migration) is in record-log.test.ts.

import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";

import { type PersistRecord, compactRecords } from "../../src/consensus/pbft/index.js";
import { ReplicaStore, type ReplicaStoreOptions, StorageCorruptionError, StorageError, StorageRefusedError } from "../../src/storage/index.js";
import { RECORD_FILE_HEADER_BYTES, RECORD_FILE_NAME, RECORD_FILE_TEMPORARY_NAME, RECORD_SYNC_INLINE_MS_MAX, recordAppendIo } from "../../src/storage/record-file.js";
import { CLUSTER_ID, openStore, temporaryDirectory } from "./helpers.js";

function vote(kind: "prepare" | "commit", seq: number): PersistRecord {
  return { kind, message: { type: kind, view: 0, seq, digest: `digest-${seq}`, replica: 1, signature: `signature-${seq}` } } as PersistRecord;
}

const STABLE: PersistRecord = { kind: "stable-checkpoint", proof: { type: "checkpoint-proof", seq: 0, stateDigest: "genesis", checkpoints: [] } };

async function reopen(directory: string, overrides: Partial<ReplicaStoreOptions> = {}): Promise<ReplicaStore> {
  return ReplicaStore.open({ directory, clusterId: CLUSTER_ID, replicaId: 0, sync: "none", ...overrides });
}

/** Runs `body` on a store of `directory`, closing it afterwards whatever happens. */
async function withStore<T>(directory: string, body: (store: ReplicaStore) => Promise<T> | T, overrides: Partial<ReplicaStoreOptions> = {}): Promise<T> {
  const store = await reopen(directory, overrides);
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}

/** The prototype of node:fs/promises FileHandle, whose methods the tests wrap. */
async function fileHandlePrototype(): Promise<FileHandle> {
  const handle = await open(tmpdir(), "r");
  await handle.close();
  return Object.getPrototypeOf(handle) as FileHandle;
}

/** The method `name` of `prototype` as it is before a test wraps it, to call with `.call(this)`. */
function original<Name extends "write" | "datasync" | "sync">(prototype: FileHandle, name: Name): FileHandle[Name] {
  return Object.getOwnPropertyDescriptor(prototype, name)!.value as FileHandle[Name];
}

/**
 * A store of `directory` whose log holds `first` (one append) and then `second` (another);
 * returns the file's bytes and the size it had before `second`.
 */
async function twoAppends(directory: string, first: PersistRecord[], second: PersistRecord[]): Promise<{ full: Buffer; sizeBefore: number }> {
  const path = join(directory, RECORD_FILE_NAME);
  const sizeBefore = await withStore(directory, async (store) => {
    await store.appendRecords(first);
    return statSync(path).size;
  });
  await withStore(directory, (store) => store.appendRecords(second));
  return { full: readFileSync(path), sizeBefore };
}

test("a torn last append of any length is cut off at open, and later appends go after what remains", async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, RECORD_FILE_NAME);
  const first = [{ kind: "view", view: 1, normal: true } as const, vote("prepare", 1)];
  const second = [vote("prepare", 2), vote("commit", 2)];
  const { full, sizeBefore } = await twoAppends(directory, first, second);
  // Every cut, including those between the second append's two frames: an append is whole or gone.
  for (let kept = sizeBefore; kept < full.length; kept++) {
    writeFileSync(path, full.subarray(0, kept));
    await withStore(directory, async (store) => {
      assert.equal(store.recordLogRecovery.tornTailBytes, kept - sizeBefore, `cut at ${kept}`);
      assert.deepEqual(store.loadRecords(), first, `cut at ${kept}`);
      assert.equal(statSync(path).size, sizeBefore, "the tail is truncated on disk");
      await store.appendRecords([vote("commit", 1)]);
    });
    await withStore(directory, (store) => assert.deepEqual(store.loadRecords(), [...first, vote("commit", 1)]));
  }
});

test("a complete last frame that fails its checksum is a torn append and is cut off", async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, RECORD_FILE_NAME);
  const { full, sizeBefore } = await twoAppends(directory, [vote("prepare", 1)], [vote("prepare", 2), vote("commit", 2)]);
  full[full.length - 1] = full[full.length - 1]! ^ 0x01;
  writeFileSync(path, full);
  await withStore(directory, (store) => {
    assert.deepEqual(store.loadRecords(), [vote("prepare", 1)]);
    assert.equal(store.recordLogRecovery.tornTailBytes, full.length - sizeBefore);
  });
});

test("a damaged frame followed by more of the log is StorageCorruptionError, and nothing is truncated", async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, RECORD_FILE_NAME);
  const { full } = await twoAppends(directory, [vote("prepare", 1)], [vote("prepare", 2)]);
  const damaged = Buffer.from(full);
  damaged[RECORD_FILE_HEADER_BYTES + 12] = damaged[RECORD_FILE_HEADER_BYTES + 12]! ^ 0x01;
  writeFileSync(path, damaged);
  const store = await openStore(t, directory);
  assert.throws(
    () => store.loadRecords(),
    (error: unknown) => error instanceof StorageCorruptionError && error.database === RECORD_FILE_NAME && /frame 0 .*checksum mismatch/.test(error.message),
  );
  // An append, compacting or not, is refused rather than written after (or dropping) the damage.
  await assert.rejects(store.appendRecords([vote("commit", 2)]), StorageCorruptionError);
  await assert.rejects(store.appendRecords([STABLE]), StorageCorruptionError);
  assert.deepEqual(readFileSync(path), damaged);
});

test("a damaged length that points past the end of an intact log is corruption, not a torn tail", async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, RECORD_FILE_NAME);
  const { full } = await twoAppends(directory, [vote("prepare", 1)], [vote("prepare", 2)]);
  const damaged = Buffer.from(full);
  damaged[RECORD_FILE_HEADER_BYTES + 1] = 0x7f;
  writeFileSync(path, damaged);
  const store = await openStore(t, directory);
  assert.equal(store.recordLogRecovery.tornTailBytes, 0);
  assert.throws(() => store.loadRecords(), /runs past the end of the file, and a valid frame ends the file after it/);
  assert.deepEqual(readFileSync(path), damaged);
});

test("a frame with a valid checksum whose record does not decode is corruption, even as the last frame", async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, RECORD_FILE_NAME);
  await withStore(directory, (store) => store.appendRecords([vote("prepare", 1)]));
  const payload = Buffer.from([1, 99, 0, 0]);
  const frame = Buffer.alloc(8 + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.writeUInt32BE(crc32(payload, crc32(frame.subarray(0, 4))), 4);
  payload.copy(frame, 8);
  writeFileSync(path, Buffer.concat([readFileSync(path), frame]));
  const store = await openStore(t, directory);
  assert.throws(() => store.loadRecords(), (error: unknown) => error instanceof StorageCorruptionError && /frame 1 .*does not decode/.test(error.message));
});

test("a records.log that is not a record log, or of another format version, is refused", async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, RECORD_FILE_NAME);
  await withStore(directory, (store) => store.appendRecords([vote("prepare", 1)]));
  const genuine = readFileSync(path);
  for (const [bytes, reason] of [
    [Buffer.from("#!/bin/sh\necho not a log\n"), "not-a-bulwark-store"],
    [Buffer.alloc(0), "not-a-bulwark-store"],
    [Buffer.concat([genuine.subarray(0, 8), Buffer.from([0, 0, 0, 2]), genuine.subarray(12)]), "format-version"],
  ] as const) {
    writeFileSync(path, bytes);
    await assert.rejects(reopen(directory), (error: unknown) => error instanceof StorageRefusedError && error.reason === reason && error.message.includes(path));
  }
  // The refusals released the directory: with the file back, the store opens.
  writeFileSync(path, genuine);
  await withStore(directory, (store) => assert.deepEqual(store.loadRecords(), [vote("prepare", 1)]));
});

test("a compaction cut short before its rename leaves the old log, without the append, and open deletes the temporary file", async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, RECORD_FILE_NAME);
  const prototype = await fileHandlePrototype();
  const store = await openStore(t, directory, { sync: "durable" });
  await store.appendRecords([vote("prepare", 1), vote("commit", 1)]);
  const before = readFileSync(path);
  // The first fdatasync of the compaction is the temporary file's: fail it, as a crash would stop it.
  t.mock.method(prototype, "datasync", () => Promise.reject(new Error("EIO: injected")));
  await assert.rejects(store.appendRecords([vote("prepare", 2), STABLE]), /EIO: injected/);
  t.mock.restoreAll();
  assert.ok(existsSync(join(directory, RECORD_FILE_TEMPORARY_NAME)), "the temporary file is left behind");
  assert.deepEqual(readFileSync(path), before);
  await store.close();
  await withStore(directory, (reopened) => {
    assert.equal(existsSync(join(directory, RECORD_FILE_TEMPORARY_NAME)), false);
    assert.deepEqual(reopened.loadRecords(), [vote("prepare", 1), vote("commit", 1)]);
  });
});


/** A stable checkpoint at `seq`: compaction then drops every vote at or below it. */
function stableAt(seq: number): PersistRecord {
  return { kind: "stable-checkpoint", proof: { type: "checkpoint-proof", seq, stateDigest: `state-${seq}`, checkpoints: [] } };
}

/**
 * A log of two appends, `vote("prepare", 1)` then `vote("prepare", 2)`, written by one store and
 * reopened by another (whose frame index comes from parsing the file), with one byte of the
 * payload of frame `damagedFrame` flipped after that open. Returns the open store and the bytes.
 */
async function reopenedWithDamage(t: TestContext, directory: string, damagedFrame: 0 | 1): Promise<{ store: ReplicaStore; damaged: Buffer }> {
  const path = join(directory, RECORD_FILE_NAME);
  const { full, sizeBefore } = await twoAppends(directory, [vote("prepare", 1)], [vote("prepare", 2)]);
  const store = await openStore(t, directory);
  const damaged = Buffer.from(full);
  const payloadByte = (damagedFrame === 0 ? RECORD_FILE_HEADER_BYTES : sizeBefore) + 8 + 3;
  damaged[payloadByte] = damaged[payloadByte]! ^ 0x01;
  writeFileSync(path, damaged);
  return { store, damaged };
}

test("compaction reads back only the frames it keeps: damage in a frame it drops goes with that frame", async (t) => {
  const directory = temporaryDirectory(t);
  const { store } = await reopenedWithDamage(t, directory, 0);
  assert.deepEqual(await store.appendRecords([stableAt(1)]), { compacted: true, recordCount: 2 });
  assert.deepEqual(store.loadRecords(), [stableAt(1), vote("prepare", 2)]);
  await store.close();
  await withStore(directory, (reopened) => assert.deepEqual(reopened.loadRecords(), [stableAt(1), vote("prepare", 2)]));
});

test("compaction checks the frames it keeps: damage in one is StorageCorruptionError, and the log is left as it was", async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, RECORD_FILE_NAME);
  const { store, damaged } = await reopenedWithDamage(t, directory, 1);
  await assert.rejects(
    store.appendRecords([stableAt(1)]),
    (error: unknown) => error instanceof StorageCorruptionError && error.database === RECORD_FILE_NAME && /frame 1 at byte \d+: checksum mismatch/.test(error.message),
  );
  assert.deepEqual(readFileSync(path), damaged);
  await assert.rejects(store.appendRecords([vote("commit", 2)]), StorageError);
});
async function countSyncs(t: TestContext, sync: "durable" | "none"): Promise<{ perAppend: number[]; compaction: number }> {
  const prototype = await fileHandlePrototype();
  const store = await openStore(t, temporaryDirectory(t), { sync });
  let syncs = 0;
  const datasync = original(prototype, "datasync");
  const fsync = original(prototype, "sync");
  t.mock.method(prototype, "datasync", function (this: FileHandle) {
    syncs++;
    return datasync.call(this);
  });
  t.mock.method(prototype, "sync", function (this: FileHandle) {
    syncs++;
    return fsync.call(this);
  });
  const appendDatasync = recordAppendIo.datasync;
  t.mock.method(recordAppendIo, "datasync", (fd: number) => {
    syncs++;
    appendDatasync(fd);
  });
  const perAppend: number[] = [];
  for (let seq = 1; seq <= 5; seq++) {
    // Each append resolves only after its sync: the count is taken as it resolves.
    const counted = store.appendRecords([vote("prepare", seq), vote("commit", seq)]).then(() => syncs);
    perAppend.push((await counted) - perAppend.reduce((sum, count) => sum + count, 0));
  }
  const beforeCompaction = syncs;
  await store.appendRecords([STABLE]);
  t.mock.restoreAll();
  return { perAppend, compaction: syncs - beforeCompaction };
}

test('policy "durable": each append is one fdatasync, before it resolves; a compaction syncs the file and the directory', async (t) => {
  const { perAppend, compaction } = await countSyncs(t, "durable");
  assert.deepEqual(perAppend, [1, 1, 1, 1, 1]);
  assert.equal(compaction, 2);
});

test('policy "none": appends and compactions never sync', async (t) => {
  const { perAppend, compaction } = await countSyncs(t, "none");
  assert.deepEqual(perAppend, [0, 0, 0, 0, 0]);
  assert.equal(compaction, 0);
});

/** Runs `body` with appends forced onto one path: on the event loop, or through the FileHandle. */
async function withAppendPath<T>(path: "inline" | "file-handle", body: () => Promise<T>): Promise<T> {
  const before = recordAppendIo.path;
  recordAppendIo.path = path;
  try {
    return await body();
  } finally {
    recordAppendIo.path = before;
  }
}

for (const path of ["inline", "file-handle"] as const) {
  test(`appends made without waiting run one at a time, in call order, a compaction among them (${path})`, async (t) => {
    await withAppendPath(path, async () => {
      const prototype = await fileHandlePrototype();
      const store = await openStore(t, temporaryDirectory(t), { sync: "durable" });
      let inFlight = 0;
      let inFlightMax = 0;
      const write = original(prototype, "write");
      const datasync = original(prototype, "datasync");
      // An append is in flight from its write until its fdatasync returns.
      t.mock.method(prototype, "write", function (this: FileHandle, ...args: Parameters<FileHandle["write"]>) {
        inFlight++;
        inFlightMax = Math.max(inFlightMax, inFlight);
        return (write as (...args: unknown[]) => ReturnType<FileHandle["write"]>).apply(this, args);
      });
      t.mock.method(prototype, "datasync", async function (this: FileHandle) {
        await datasync.call(this);
        inFlight--;
      });
      // On the event loop an append writes and syncs through recordAppendIo; through the pool, and
      // in the compaction, through the FileHandle.
      const appendWrite = recordAppendIo.write;
      const appendDatasync = recordAppendIo.datasync;
      t.mock.method(recordAppendIo, "write", (...args: Parameters<typeof recordAppendIo.write>) => {
        inFlight++;
        inFlightMax = Math.max(inFlightMax, inFlight);
        return appendWrite(...args);
      });
      t.mock.method(recordAppendIo, "datasync", (fd: number) => {
        appendDatasync(fd);
        inFlight--;
      });
      const batches: PersistRecord[][] = [];
      for (let seq = 1; seq <= 12; seq++) batches.push(seq === 7 ? [vote("prepare", seq), STABLE] : [vote("prepare", seq), vote("commit", seq)]);
      const results = await Promise.all(batches.map((batch) => store.appendRecords(batch)));
      t.mock.restoreAll();
      assert.equal(inFlightMax, 1);
      let model: PersistRecord[] = [];
      batches.forEach((batch, index) => {
        const compacts = batch.includes(STABLE);
        model = compacts ? compactRecords([...model, ...batch]) : [...model, ...batch];
        assert.deepEqual(results[index], { compacted: compacts, recordCount: model.length }, `append ${index}`);
      });
      assert.deepEqual(store.loadRecords(), model);
    });
  });
}

test("an append is visible to loadRecords only once it is durable (appended inline)", async (t) => {
  const store = await openStore(t, temporaryDirectory(t), { sync: "durable" });
  await withAppendPath("inline", async () => {
    await store.appendRecords([vote("prepare", 1)]);
    const appendDatasync = recordAppendIo.datasync;
    let duringSync: { records: PersistRecord[]; count: number } | undefined;
    // The append's bytes are written when its fdatasync starts: what a reader sees then.
    t.mock.method(recordAppendIo, "datasync", (fd: number) => {
      duringSync = { records: store.loadRecords(), count: store.recordCount };
      appendDatasync(fd);
    });
    await store.appendRecords([vote("commit", 1)]);
    t.mock.restoreAll();
    assert.deepEqual(duringSync, { records: [vote("prepare", 1)], count: 1 });
    assert.deepEqual(store.loadRecords(), [vote("prepare", 1), vote("commit", 1)]);
  });
});

test("an append is visible to loadRecords only once it is durable (appended through the thread pool)", async (t) => {
  const prototype = await fileHandlePrototype();
  const store = await openStore(t, temporaryDirectory(t), { sync: "durable" });
  await withAppendPath("file-handle", async () => {
    await store.appendRecords([vote("prepare", 1)]);
    let release: () => void = () => undefined;
    let syncing: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const reached = new Promise<void>((resolve) => (syncing = resolve));
    const datasync = original(prototype, "datasync");
    t.mock.method(prototype, "datasync", async function (this: FileHandle) {
      syncing();
      await gate;
      return datasync.call(this);
    });
    const appending = store.appendRecords([vote("commit", 1)]);
    await reached;
    assert.deepEqual(store.loadRecords(), [vote("prepare", 1)]);
    assert.equal(store.recordCount, 1);
    release();
    await appending;
    t.mock.restoreAll();
    assert.deepEqual(store.loadRecords(), [vote("prepare", 1), vote("commit", 1)]);
  });
});

test("appends move off the event loop once syncs are slow, and come back once they are fast again", async (t) => {
  const prototype = await fileHandlePrototype();
  const store = await openStore(t, temporaryDirectory(t), { sync: "durable" });
  // A clock the syncs advance: 10 × the threshold on a slow disk, a tenth of it on a fast one.
  let clockMs = 0;
  let syncMs = 10 * RECORD_SYNC_INLINE_MS_MAX;
  t.mock.method(recordAppendIo, "now", () => clockMs);
  const paths: string[] = [];
  const appendDatasync = recordAppendIo.datasync;
  t.mock.method(recordAppendIo, "datasync", (fd: number) => {
    paths.push("inline");
    appendDatasync(fd);
    clockMs += syncMs;
  });
  const datasync = original(prototype, "datasync");
  t.mock.method(prototype, "datasync", async function (this: FileHandle) {
    paths.push("file-handle");
    await datasync.call(this);
    clockMs += syncMs;
  });
  let seq = 0;
  const append = (): Promise<unknown> => store.appendRecords([vote("prepare", ++seq)]);
  await append();
  await append();
  await append();
  assert.deepEqual(paths, ["inline", "file-handle", "file-handle"], "a slow sync on the loop sends the next appends to the pool");
  syncMs = RECORD_SYNC_INLINE_MS_MAX / 10;
  paths.length = 0;
  for (let i = 0; i < 12; i++) await append();
  t.mock.restoreAll();
  // The moving average (weight 0.2) falls under the threshold after some fast syncs, and stays.
  const back = paths.indexOf("inline");
  assert.ok(back > 0, `fast syncs bring the appends back to the loop: ${paths.join(" ")}`);
  assert.deepEqual(paths.slice(back), Array<string>(paths.length - back).fill("inline"), paths.join(" "));
  assert.equal(store.loadRecords().length, seq);
});

for (const path of ["inline", "file-handle"] as const) {
  test(`after a failed append the log refuses every later one; the replica restarts on what is on disk (${path})`, async (t) => {
    await withAppendPath(path, () => failedAppend(t));
  });
}

async function failedAppend(t: TestContext): Promise<void> {
  const directory = temporaryDirectory(t);
  const prototype = await fileHandlePrototype();
  const store = await reopen(directory, { sync: "durable" });
  await store.appendRecords([vote("prepare", 1)]);
  // Failing on either path: on the event loop, or through the FileHandle.
  t.mock.method(recordAppendIo, "datasync", () => {
    throw new Error("EIO: injected");
  });
  t.mock.method(prototype, "datasync", () => Promise.reject(new Error("EIO: injected")));
  await assert.rejects(store.appendRecords([vote("commit", 1)]), /EIO: injected/);
  t.mock.restoreAll();
  for (const later of [[vote("prepare", 2)], [STABLE]]) {
    await assert.rejects(store.appendRecords(later), (error: unknown) => error instanceof StorageError && /refuses appends after an earlier append failed \(EIO: injected\)/.test(error.message));
  }
  await assert.rejects(store.compactRecordLog(), StorageError);
  await store.close();
  // The failed append's write reached the page cache; whether it is there after a restart is up
  // to the disk, and either is consistent, since it was never acknowledged.
  await withStore(directory, async (reopened) => {
    const records = reopened.loadRecords();
    assert.ok([1, 2].includes(records.length));
    assert.deepEqual(records[0], vote("prepare", 1));
    await reopened.appendRecords([vote("prepare", 2)]);
    assert.deepEqual(reopened.loadRecords().at(-1), vote("prepare", 2));
  });
}

test("the auditor's open reads a log with a torn tail without changing the file, and refuses appends", async (t) => {
  const directory = temporaryDirectory(t);
  const path = join(directory, RECORD_FILE_NAME);
  const { full, sizeBefore } = await twoAppends(directory, [vote("prepare", 1)], [vote("prepare", 2)]);
  const torn = full.subarray(0, full.length - 3);
  writeFileSync(path, torn);
  const auditor = await ReplicaStore.openExisting({ directory, clusterId: CLUSTER_ID });
  try {
    assert.deepEqual(auditor.loadRecords(), [vote("prepare", 1)]);
    assert.equal(auditor.recordLogRecovery.tornTailBytes, torn.length - sizeBefore);
    await assert.rejects(auditor.appendRecords([vote("commit", 1)]), /opened for reading only/);
  } finally {
    await auditor.close();
  }
  assert.deepEqual(readFileSync(path), torn);
});
