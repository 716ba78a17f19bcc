import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

import { open } from "lmdb";
import { LOCK_FILE_NAME, ReplicaStore, STORAGE_FORMAT_VERSION, StorageRefusedError } from "../../src/storage/index.js";
import { CLUSTER_ID, openStore, simpleBlock, temporaryDirectory } from "./helpers.js";

function refusal(reason: StorageRefusedError["reason"], message: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof StorageRefusedError, `expected StorageRefusedError, got ${String(error)}`);
    assert.equal(error.reason, reason);
    assert.match(error.message, message);
    return true;
  };
}

test("a directory of another cluster is refused with a message naming both clusters", async (t) => {
  const directory = temporaryDirectory(t);
  const store = await openStore(t, directory);
  await store.commitBlock(simpleBlock(1));
  await store.close();
  await assert.rejects(
    ReplicaStore.open({ directory, clusterId: "other-cluster", replicaId: 0 }),
    refusal("cluster", /belongs to cluster "test-cluster", not "other-cluster"/),
  );
  // The refusal changed nothing: the owner still opens it.
  const again = await openStore(t, directory);
  assert.equal(again.latestHeight(), 1);
});

test("a directory of another replica is refused with a message naming both replicas", async (t) => {
  const directory = temporaryDirectory(t);
  await (await openStore(t, directory)).close();
  await assert.rejects(ReplicaStore.open({ directory, clusterId: CLUSTER_ID, replicaId: 3 }), refusal("replica", /belongs to replica 0 .* not replica 3/));
});

test("a store written in another format version is refused with a message naming both versions", async (t) => {
  const directory = temporaryDirectory(t);
  await (await openStore(t, directory)).close();
  // Rewrite the format version the way a future release would (checksummed, so only the number differs).
  const { frameValue } = await import("../../src/storage/frame.js");
  const raw = open<Buffer, Uint8Array>({ path: directory, encoding: "binary", keyEncoding: "binary", maxDbs: 12 });
  const meta = raw.openDB<Buffer, Uint8Array>("meta", { encoding: "binary", keyEncoding: "binary" });
  const key = Buffer.from("format-version");
  const version = Buffer.alloc(4);
  version.writeUInt32BE(STORAGE_FORMAT_VERSION + 1);
  await meta.put(key, frameValue("meta", key, version));
  await raw.close();
  await assert.rejects(
    ReplicaStore.open({ directory, clusterId: CLUSTER_ID, replicaId: 0 }),
    refusal("format-version", new RegExp(`format version ${STORAGE_FORMAT_VERSION + 1}; this build of Bulwark reads version ${STORAGE_FORMAT_VERSION}`)),
  );
});

test("an LMDB store that is not Bulwark's is refused", async (t) => {
  const directory = temporaryDirectory(t);
  const raw = open<string, string>({ path: directory, maxDbs: 4 });
  const other = raw.openDB<string, string>("customers", {});
  await other.put("alice", "x");
  await raw.close();
  await assert.rejects(ReplicaStore.open({ directory, clusterId: CLUSTER_ID, replicaId: 0 }), refusal("not-a-bulwark-store", /"customers"/));
});

test("a directory that is not an LMDB store at all is refused", async (t) => {
  const directory = temporaryDirectory(t);
  writeFileSync(join(directory, "data.mdb"), Buffer.alloc(16_384, 0x5a));
  await assert.rejects(ReplicaStore.open({ directory, clusterId: CLUSTER_ID, replicaId: 0 }), refusal("unreadable", /cannot open .* as an LMDB store/));
});

test("a directory in use by a running process is refused; a lock left by a dead process is taken over", async (t) => {
  const directory = temporaryDirectory(t);
  const store = await openStore(t, directory);
  await assert.rejects(ReplicaStore.open({ directory, clusterId: CLUSTER_ID, replicaId: 0 }), refusal("in-use", /already open in this process/));
  await store.close();
  // PID 1 is always running (init), and belongs to someone else.
  writeFileSync(join(directory, LOCK_FILE_NAME), "1\n");
  await assert.rejects(ReplicaStore.open({ directory, clusterId: CLUSTER_ID, replicaId: 0 }), refusal("in-use", /in use by process 1/));
  // A PID above the kernel's limit cannot be running.
  writeFileSync(join(directory, LOCK_FILE_NAME), "2147483646\n");
  const reopened = await openStore(t, directory);
  assert.equal(reopened.latestHeight(), undefined);
});
