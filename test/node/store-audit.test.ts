// The audit behind `bulwark verify` (issue 3 §5): a store built through the pipeline verifies
// clean, and flipping any single byte of a stored header, body, certificate or state entry makes
// it fail at the right height (or the right state entry). Each flip is written straight into the
// store's LMDB sub-databases, in two forms:
//   - the raw flip, which the storage checksum catches (a disk fault): the audit must still name
//     the height or entry;
//   - the flip with its checksum recomputed (an attacker with write access to the disk): a
//     well-formed value that only the ledger's hashes, certificates and replay can catch.
// BULWARK_AUDIT_FLIPS sets the positions tried per part and form (default 12).

import { before, after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { type AuditPart, type AuditReport, auditStore } from "../../src/node/store-audit.js";
import { Random } from "../../src/sim/random.js";
import type { BinaryDatabase, StorageEnvironment } from "../../src/storage/environment.js";
import { frameValue } from "../../src/storage/frame.js";
import { DATABASE_NAMES, type DatabaseName } from "../../src/storage/layout.js";
import { ReplicaStore } from "../../src/storage/index.js";
import { temporaryDirectory } from "../storage/helpers.js";
import { type BuiltStore, buildLedgerStore, ledgerCluster } from "./ledger-store.js";

const FLIPS = Number(process.env.BULWARK_AUDIT_FLIPS ?? 12);
const cluster = ledgerCluster();
let directory: string;
let built: BuiltStore;
let store: ReplicaStore;

before(async () => {
  directory = mkdtempSync(join(tmpdir(), "bulwark-audit-"));
  built = await buildLedgerStore(cluster, { directory, batches: 30, clientCount: 10, seed: 17 });
  store = await ReplicaStore.openExisting({ directory, clusterId: cluster.config.clusterId });
});

after(async () => {
  await store.close();
  rmSync(directory, { recursive: true, force: true });
});

/** The store's own sub-databases (private to it: only tampering tests reach in). */
function databasesOf(target: ReplicaStore): StorageEnvironment {
  return (target as unknown as { env: StorageEnvironment }).env;
}

function stateKeys(): Uint8Array[] {
  const keys: Uint8Array[] = [];
  for (let after: Uint8Array | undefined; ; ) {
    const chunk = store.readStateChunk({ entriesMax: 4096, ...(after === undefined ? {} : { after }) });
    keys.push(...chunk.entries.map(([key]) => key));
    if (chunk.done || chunk.cursor === undefined) return keys;
    after = chunk.cursor;
  }
}

/**
 * Flips one byte of the framed value at `key`, with the checksum kept (raw) or recomputed, runs
 * the audit, and puts the original back. Returns the report and the flipped position.
 */
async function auditWithFlip(database: BinaryDatabase, name: DatabaseName, key: Uint8Array, random: Random, rechecksum: boolean): Promise<AuditReport> {
  const original = database.get(Buffer.from(key));
  assert.ok(original !== undefined);
  const framed = Buffer.from(original);
  let tampered: Buffer;
  const mask = 1 << random.below(8);
  if (rechecksum) {
    const payload = Buffer.from(framed.subarray(4));
    const position = random.below(payload.length);
    payload[position] = payload[position]! ^ mask;
    tampered = frameValue(name, key, payload);
  } else {
    tampered = Buffer.from(framed);
    const position = random.below(tampered.length);
    tampered[position] = tampered[position]! ^ mask;
  }
  await database.put(Buffer.from(key), tampered);
  try {
    return await auditStore(store, cluster.config);
  } finally {
    await database.put(Buffer.from(key), framed);
  }
}

function heightKey(height: number): Uint8Array {
  const key = Buffer.alloc(8);
  key.writeBigUInt64BE(BigInt(height));
  return key;
}

test("a store built through the pipeline from signed transactions, invalid ones included, verifies clean", async () => {
  assert.ok(built.transactions >= 200, `only ${built.transactions} transactions`);
  const report = await auditStore(store, cluster.config);
  assert.equal(report.ok, true, report.problem?.message);
  assert.equal(report.blocks, 30);
  assert.equal(report.transactions, built.transactions);
  assert.equal(report.replayed, true);
  assert.ok(report.stateEntries > 10);
});

test("replaying with signatures verified on worker threads gives the same report, forged transactions included", async () => {
  const inline = await auditStore(store, cluster.config);
  const pooled = await auditStore(store, cluster.config, { signatureWorkers: 2 });
  assert.equal(pooled.ok, true, pooled.problem?.message);
  assert.deepEqual({ ...pooled, elapsedMs: 0 }, { ...inline, elapsedMs: 0 });
});

const blockParts: Array<{ part: AuditPart; name: DatabaseName; database: (env: StorageEnvironment) => BinaryDatabase }> = [
  { part: "header", name: DATABASE_NAMES.headers, database: (env) => env.headers },
  { part: "body", name: DATABASE_NAMES.bodies, database: (env) => env.bodies },
  { part: "certificate", name: DATABASE_NAMES.certificates, database: (env) => env.certificates },
];

for (const { part, name, database } of blockParts) {
  for (const rechecksum of [false, true]) {
    test(`flipping a byte of a stored block ${part} ${rechecksum ? "with its checksum recomputed" : "(checksum caught)"} fails verify at that height`, async () => {
      const random = new Random(part.length * 31 + (rechecksum ? 1 : 0));
      for (let flip = 0; flip < FLIPS; flip++) {
        const height = random.between(1, built.blocks);
        const report = await auditWithFlip(database(databasesOf(store)), name, heightKey(height), random, rechecksum);
        assert.equal(report.ok, false, `flip ${flip} at height ${height} went unnoticed`);
        assert.equal(report.problem?.height, height, `flip ${flip}: ${report.problem?.message}`);
        if (!rechecksum) {
          assert.equal(report.problem?.part, part, report.problem?.message);
          assert.match(report.problem?.message ?? "", /checksum mismatch|shorter than its checksum/);
        } else if (part === "header") {
          // A changed header no longer matches its certificate; the next block's prevHash tells
          // which of the two changed, except at the tip.
          const expected: AuditPart[] = height === built.blocks ? ["header", "chain", "certificate"] : ["header", "chain"];
          assert.ok(report.problem !== undefined && expected.includes(report.problem.part), `${report.problem?.part}: ${report.problem?.message}`);
        } else {
          assert.equal(report.problem?.part, part, report.problem?.message);
        }
      }
    });
  }
}

for (const rechecksum of [false, true]) {
  test(`flipping a byte of a stored state entry ${rechecksum ? "with its checksum recomputed" : "(checksum caught)"} fails verify naming the entry`, async () => {
    const random = new Random(rechecksum ? 77 : 78);
    const keys = stateKeys();
    for (let flip = 0; flip < FLIPS; flip++) {
      const key = random.pick(keys);
      const stored = Buffer.concat([Buffer.from([0]), key]);
      const report = await auditWithFlip(databasesOf(store).state, DATABASE_NAMES.state, stored, random, rechecksum);
      assert.equal(report.ok, false, `flip ${flip} of ${Buffer.from(key).toString("hex")} went unnoticed`);
      assert.equal(report.problem?.part, "state", report.problem?.message);
      assert.equal(report.problem?.stateKeyHex, Buffer.from(key).toString("hex"), report.problem?.message);
    }
  });
}

test("a missing state entry and a state entry no block wrote both fail verify", async () => {
  const { state } = databasesOf(store);
  const key = stateKeys()[0]!;
  const storedKey = Buffer.concat([Buffer.from([0]), key]);
  const original = state.get(storedKey)!;
  await state.remove(storedKey);
  try {
    const report = await auditStore(store, cluster.config);
    assert.equal(report.problem?.part, "state");
    assert.match(report.problem?.message ?? "", /missing from the store/);
  } finally {
    await state.put(storedKey, original);
  }
  const extra = Buffer.from("\u0000kv/planted", "latin1");
  await state.put(extra, frameValue(DATABASE_NAMES.state, extra, Buffer.from("value")));
  try {
    const report = await auditStore(store, cluster.config);
    assert.equal(report.problem?.part, "state");
    assert.match(report.problem?.message ?? "", /not in the replayed state/);
  } finally {
    await state.remove(extra);
  }
  assert.equal((await auditStore(store, cluster.config)).ok, true);
});

test("with bodies pruned, verify checks every header and certificate, says replay was impossible, and still catches a bad state entry", async (t) => {
  const pruned = temporaryDirectory(t, "bulwark-audit-pruned-");
  await buildLedgerStore(cluster, { directory: pruned, batches: 10, clientCount: 4, seed: 5 });
  const writer = await ReplicaStore.open({ directory: pruned, clusterId: cluster.config.clusterId, replicaId: 0, sync: "none" });
  t.after(() => writer.close());
  await writer.pruneBodiesBelow(6);
  const report = await auditStore(writer, cluster.config);
  assert.equal(report.ok, true, report.problem?.message);
  assert.equal(report.replayed, false);
  assert.equal(report.blocks, 10);
  assert.match(report.notes.join("\n"), /bodies below height 6 are pruned: execution cannot be replayed/);

  const { state, certificates } = databasesOf(writer);
  const [key] = writer.readStateChunk({ entriesMax: 1 }).entries[0]!;
  const storedKey = Buffer.concat([Buffer.from([0]), key]);
  const original = state.get(storedKey)!;
  await state.put(storedKey, frameValue(DATABASE_NAMES.state, storedKey, Buffer.from("tampered")));
  const badState = await auditStore(writer, cluster.config);
  await state.put(storedKey, original);
  assert.equal(badState.problem?.part, "state");
  assert.match(badState.problem?.message ?? "", /do not hash to the stateRoot of block 10/);

  // Below the retention height the certificates are still checked.
  const certificateKey = heightKey(3);
  const certificate = Buffer.from(certificates.get(certificateKey)!.subarray(4));
  certificate[certificate.length - 1] = certificate[certificate.length - 1]! ^ 1;
  await certificates.put(certificateKey, frameValue(DATABASE_NAMES.certificates, certificateKey, certificate));
  const badCertificate = await auditStore(writer, cluster.config);
  assert.equal(badCertificate.problem?.height, 3);
  assert.equal(badCertificate.problem?.part, "certificate");
});
