import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { open } from "lmdb";
import { Random } from "../../src/sim/random.js";
import { DATABASE_NAMES, type ReplicaStore, StorageCorruptionError } from "../../src/storage/index.js";
import { RECORD_FILE_NAME } from "../../src/storage/record-file.js";
import { randomBytes } from "../support/random-bytes.js";
import { openStore, simpleBlock, temporaryDirectory, utf8 } from "./helpers.js";

/**
 * Flips one byte in every copy of `marker` in `fileName` (LMDB may keep stale copies in free pages;
 * consensus records live in records.log).
 */
function flipOnDisk(directory: string, marker: Uint8Array, offsetInMarker: number, fileName = "data.mdb"): number {
  const path = join(directory, fileName);
  const file = readFileSync(path);
  let copies = 0;
  for (let at = file.indexOf(marker); at >= 0; at = file.indexOf(marker, at + 1)) {
    file[at + offsetInMarker] = file[at + offsetInMarker]! ^ 0x01;
    copies++;
  }
  writeFileSync(path, file);
  return copies;
}

function corruption(database: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof StorageCorruptionError, `expected StorageCorruptionError, got ${String(error)}`);
    assert.equal(error.database, database);
    assert.match(error.message, /checksum mismatch|does not decode/);
    return true;
  };
}

interface Markers {
  header: Uint8Array;
  body: Uint8Array;
  certificate: Uint8Array;
  value: Uint8Array;
  operation: Uint8Array;
}

/** A store whose block 1 parts, one state value and one record each hold a distinct random marker. */
async function storeWithMarkers(store: ReplicaStore, seed: number, bodyBytes: number): Promise<Markers> {
  const random = new Random(seed);
  const markers: Markers = {
    header: randomBytes(random, 48),
    body: randomBytes(random, bodyBytes),
    certificate: randomBytes(random, 64),
    value: randomBytes(random, 40),
    operation: randomBytes(random, 32),
  };
  await store.commitBlock({ ...simpleBlock(1, [[utf8("key"), markers.value]]), header: markers.header, body: markers.body, certificate: markers.certificate });
  await store.appendRecords([
    {
      kind: "pre-prepare",
      message: { type: "pre-prepare", view: 0, seq: 1, digest: "d", requests: [{ client: "c", timestamp: 1, operation: markers.operation, signature: "s" }], replica: 0, signature: "s" },
    },
  ]);
  // A later append, so the marked record is not the file's last frame: damage there is
  // indistinguishable from a torn append and is truncated as one (record-file.ts).
  await store.appendRecords([{ kind: "view", view: 0, normal: true }]);
  return markers;
}

const cases: Array<{ part: keyof Markers; label: string; database: string; file?: string; read: (store: ReplicaStore) => unknown }> = [
  { part: "header", label: "block header", database: DATABASE_NAMES.headers, read: (store) => store.getBlock(1) },
  { part: "body", label: "block body", database: DATABASE_NAMES.bodies, read: (store) => store.getBlock(1) },
  { part: "certificate", label: "commit certificate", database: DATABASE_NAMES.certificates, read: (store) => store.getHeaders(1, 1) },
  { part: "value", label: "state value", database: DATABASE_NAMES.state, read: (store) => store.getState(utf8("key")) },
  { part: "operation", label: "consensus record", database: RECORD_FILE_NAME, file: RECORD_FILE_NAME, read: (store) => store.loadRecords() },
];

for (const { part, label, database, file, read } of cases) {
  // A 100-byte body shares a page with the other values; a 20 KB one has overflow pages of its own.
  for (const bodyBytes of [100, 20_000]) {
    test(`a flipped bit on disk in a ${label} (body of ${bodyBytes} B) is reported as StorageCorruptionError, never returned`, async (t) => {
      const directory = temporaryDirectory(t);
      const store = await openStore(t, directory);
      const markers = await storeWithMarkers(store, bodyBytes + part.length, bodyBytes);
      await store.close();
      const marker = markers[part];
      assert.ok(flipOnDisk(directory, marker, marker.length >> 1, file) >= 1, "the marker is on disk");
      const reopened = await openStore(t, directory);
      assert.throws(() => read(reopened), corruption(database));
    });
  }
}

test("a corrupted record also stops an append that would compact the log, rather than dropping the record", async (t) => {
  const directory = temporaryDirectory(t);
  const store = await openStore(t, directory);
  const markers = await storeWithMarkers(store, 5, 100);
  await store.close();
  flipOnDisk(directory, markers.operation, 3, RECORD_FILE_NAME);
  const reopened = await openStore(t, directory);
  await assert.rejects(reopened.appendRecords([{ kind: "stable-checkpoint", proof: { type: "checkpoint-proof", seq: 0, stateDigest: "g", checkpoints: [] } }]), corruption(RECORD_FILE_NAME));
});

test("a value moved to another key fails its checksum, because the checksum covers the key", async (t) => {
  const directory = temporaryDirectory(t);
  const store = await openStore(t, directory);
  await store.commitBlock(simpleBlock(1, [[utf8("alice"), utf8("100")], [utf8("bob"), utf8("5")]]));
  await store.close();
  const raw = open<Buffer, Uint8Array>({ path: directory, encoding: "binary", keyEncoding: "binary", maxDbs: 12 });
  const state = raw.openDB<Buffer, Uint8Array>(DATABASE_NAMES.state, { encoding: "binary", keyEncoding: "binary" });
  const alice = Buffer.from([0, ...utf8("alice")]);
  const bob = Buffer.from([0, ...utf8("bob")]);
  await state.put(bob, state.get(alice)!);
  await raw.close();
  const reopened = await openStore(t, directory);
  assert.deepEqual(reopened.getState(utf8("alice")), utf8("100"));
  assert.throws(() => reopened.getState(utf8("bob")), corruption(DATABASE_NAMES.state));
});

test("damaged applied-state metadata is reported, not read as height 0", async (t) => {
  const directory = temporaryDirectory(t);
  const store = await openStore(t, directory);
  await store.commitBlock(simpleBlock(1));
  await store.close();
  const raw = open<Buffer, Uint8Array>({ path: directory, encoding: "binary", keyEncoding: "binary", maxDbs: 12 });
  const meta = raw.openDB<Buffer, Uint8Array>(DATABASE_NAMES.meta, { encoding: "binary", keyEncoding: "binary" });
  const key = Buffer.from("applied-state");
  const stored = Buffer.from(meta.get(key)!);
  stored[stored.length - 1] = stored[stored.length - 1]! ^ 0xff;
  await meta.put(key, stored);
  await raw.close();
  const reopened = await openStore(t, directory);
  assert.throws(() => reopened.appliedState(), corruption(DATABASE_NAMES.meta));
  await assert.rejects(reopened.commitBlock(simpleBlock(2)), corruption(DATABASE_NAMES.meta));
});
