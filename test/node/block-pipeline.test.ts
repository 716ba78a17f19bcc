import { test } from "node:test";
import assert from "node:assert/strict";

import { bytesToHex } from "../../src/app/bytes.js";
import { GENESIS_PREV_HASH, blockHeaderHash, decodeBlockHeader } from "../../src/ledger/block-header.js";
import { decodeBlockBody } from "../../src/ledger/block.js";
import { decodeCertificate, verifyCertificate } from "../../src/ledger/certificate.js";
import { StateTree } from "../../src/ledger/state-tree.js";
import { BlockPipeline, storedStateTree } from "../../src/node/block-pipeline.js";
import { certifyWithKeys } from "../../src/node/certify.js";
import { auditStore } from "../../src/node/store-audit.js";
import { ReplicaStore } from "../../src/storage/index.js";
import { AUTHORITY, bytes, keyOf, signed } from "../app/ledger-fixtures.js";
import { temporaryDirectory } from "../storage/helpers.js";
import { buildLedgerStore, ledgerCluster } from "./ledger-store.js";

const cluster = ledgerCluster();
const privateKeys = cluster.keys.map((key) => key.privateKey);
const alice = keyOf("alice");

test("a state tree journals the keys put and deleted since the last drainChanges, with their current values", () => {
  const tree = new StateTree();
  tree.put(bytes("before"), bytes("x"));
  tree.recordChanges();
  tree.put(bytes("a"), bytes("1"));
  tree.put(bytes("a"), bytes("2"));
  tree.put(bytes("b"), bytes("1"));
  tree.delete(bytes("b"));
  tree.delete(bytes("before"));
  tree.delete(bytes("never there"));
  const changes = new Map(tree.drainChanges().map(([key, value]) => [Buffer.from(key).toString(), value === null ? null : Buffer.from(value).toString()]));
  assert.deepEqual(changes, new Map<string, string | null>([["a", "2"], ["b", null], ["before", null]]));
  assert.deepEqual(tree.drainChanges(), []);
  assert.throws(() => new StateTree().drainChanges(), /recordChanges first/);
});

test("the pipeline stores each committed batch as a chained, certified block with exactly its state changes", async (t) => {
  const directory = temporaryDirectory(t, "bulwark-pipeline-");
  const store = await ReplicaStore.open({ directory, clusterId: cluster.config.clusterId, replicaId: 0, sync: "none" });
  t.after(() => store.close());
  const pipeline = BlockPipeline.open({ cluster: cluster.config, store });
  const certify = (header: Parameters<typeof certifyWithKeys>[1]) => certifyWithKeys(privateKeys, header);

  const first = await pipeline.commit(
    { seq: 1, view: 0, digest: "d1", requests: [signed(AUTHORITY, 1, { type: "mint", to: alice.publicKey, amount: 50n }), signed(alice, 1, { type: "put", key: bytes("k"), value: bytes("v") })] },
    certify,
  );
  assert.deepEqual(first.block.header.prevHash, GENESIS_PREV_HASH);
  const second = await pipeline.commit({ seq: 2, view: 1, digest: "d2", requests: [signed(alice, 2, { type: "delete", key: bytes("k") })] });
  assert.deepEqual(second.block.header.prevHash, first.headerHash);
  assert.equal(pipeline.height, 2);

  const stored = store.getBlock(2)!;
  assert.deepEqual(blockHeaderHash(decodeBlockHeader(stored.header)), second.headerHash);
  assert.deepEqual(decodeBlockBody(stored.body!).transactions[0], signed(alice, 2, { type: "delete", key: bytes("k") }).operation);
  assert.equal(stored.certificate, undefined, "block 2 awaits its signatures");
  await pipeline.attachCertificate(2, certify(second.block.header));
  assert.ok(verifyCertificate(cluster.config, second.block.header, decodeCertificate(store.getBlock(2)!.certificate!)).ok);

  // The stored state is exactly the application's: the deleted kv entry is gone from the store too.
  assert.equal(store.getState(new Uint8Array([...bytes("kv/"), ...bytes("k")])), undefined);
  assert.deepEqual(storedStateTree(store).root(), pipeline.application.stateRoot());
  assert.deepEqual(store.appliedState(), { height: 2, seq: 2, stateDigest: second.block.header.stateRoot });

  await assert.rejects(pipeline.commit({ seq: 4, view: 1, digest: "d4", requests: [] }), /seq 4 is not the next height 3/);
  const wrongKeys = [...privateKeys].reverse();
  await assert.rejects(pipeline.attachCertificate(1, certifyWithKeys(wrongKeys, first.block.header)), /does not verify/);
});

test("stage returns the executed block at once, before its write is stored, and the same block when the write is", async (t) => {
  const directory = temporaryDirectory(t, "bulwark-pipeline-");
  const store = await ReplicaStore.open({ directory, clusterId: cluster.config.clusterId, replicaId: 0, sync: "none" });
  t.after(() => store.close());
  const pipeline = BlockPipeline.open({ cluster: cluster.config, store });
  const staged = pipeline.stage({ seq: 1, view: 0, digest: "d1", requests: [signed(AUTHORITY, 1, { type: "mint", to: alice.publicKey, amount: 5n })] });
  assert.equal(staged.block.executed.length, 1);
  assert.equal(staged.block.executed[0]!.outcome, "executed");
  assert.equal(store.latestHeight(), undefined, "nothing is stored yet when stage returns");
  assert.equal(await staged.stored, staged.block);
  assert.equal(store.latestHeight(), 1);
  assert.throws(() => pipeline.stage({ seq: 3, view: 0, digest: "d3", requests: [] }), /seq 3 is not the next height 2/);
});

test("a reopened pipeline resumes from the store's applied height and state", async (t) => {
  const directory = temporaryDirectory(t, "bulwark-pipeline-");
  await buildLedgerStore(cluster, { directory, batches: 12, clientCount: 5, seed: 3 });
  const store = await ReplicaStore.open({ directory, clusterId: cluster.config.clusterId, replicaId: 0, sync: "none" });
  t.after(() => store.close());
  const pipeline = BlockPipeline.open({ cluster: cluster.config, store });
  assert.equal(pipeline.height, 12);
  assert.equal(pipeline.executor.lastExecuted, 12);
  assert.deepEqual(bytesToHex(pipeline.application.stateRoot()), bytesToHex(store.appliedState()!.stateDigest));
  const nonce = pipeline.application.ledgerState.account(AUTHORITY.publicKey).nextNonce;
  await pipeline.commit({ seq: 13, view: 2, digest: "d13", requests: [signed(AUTHORITY, nonce, { type: "mint", to: alice.publicKey, amount: 7n })] }, (header) =>
    certifyWithKeys(privateKeys, header),
  );
  assert.deepEqual(decodeBlockHeader(store.getBlock(13)!.header).prevHash, blockHeaderHash(decodeBlockHeader(store.getBlock(12)!.header)));
  const report = await auditStore(store, cluster.config);
  assert.equal(report.ok, true, report.problem?.message);
  assert.equal(report.blocks, 13);
});
