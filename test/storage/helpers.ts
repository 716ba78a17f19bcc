// Shared pieces of the storage tests: temporary data directories that are always removed, stores
// opened on them, and small deterministic blocks.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { type BlockCommit, ReplicaStore, type ReplicaStoreOptions } from "../../src/storage/index.js";

export const CLUSTER_ID = "test-cluster";

const encoder = new TextEncoder();

/** UTF-8 bytes of `text`, as a plain Uint8Array (what the store returns, so deepEqual works). */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** A fresh directory under the OS temp directory, removed when the test ends. */
export function temporaryDirectory(t: TestContext, prefix = "bulwark-storage-"): string {
  const directory = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  return directory;
}

/** Opens a store (replica 0 of CLUSTER_ID, no fsync unless asked) that is closed when the test ends. */
export async function openStore(t: TestContext, directory: string, overrides: Partial<ReplicaStoreOptions> = {}): Promise<ReplicaStore> {
  const store = await ReplicaStore.open({ directory, clusterId: CLUSTER_ID, replicaId: 0, sync: "none", ...overrides });
  t.after(() => store.close());
  return store;
}

/** A small block whose every part names its height; `writes` are its state changes. */
export function simpleBlock(height: number, writes: BlockCommit["stateWrites"] = [], certificate = true): BlockCommit {
  return {
    height,
    header: utf8(`header ${height}`),
    body: utf8(`body ${height} `.repeat(20)),
    ...(certificate ? { certificate: utf8(`certificate ${height}`) } : {}),
    stateWrites: writes,
    meta: { seq: height * 10, stateDigest: utf8(`digest ${height}`) },
  };
}
