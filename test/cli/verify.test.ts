import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

import { main } from "../../src/cli/main.js";
import { captureOutput } from "../support/cli-output.js";
import { clusterConfigToJson } from "../../src/ledger/cluster-json.js";
import type { StorageEnvironment } from "../../src/storage/environment.js";
import { frameValue } from "../../src/storage/frame.js";
import { DATABASE_NAMES } from "../../src/storage/layout.js";
import { ReplicaStore } from "../../src/storage/index.js";
import { temporaryDirectory } from "../storage/helpers.js";
import { buildLedgerStore, ledgerCluster } from "../node/ledger-store.js";

const capture = captureOutput;

const cluster = ledgerCluster();

test("bulwark verify exits 0 with a summary for a sound store, and 1 naming the first bad height after tampering", async (t) => {
  const root = temporaryDirectory(t, "bulwark-verify-cli-");
  const data = join(root, "replica-0");
  const clusterFile = join(root, "cluster.json");
  writeFileSync(clusterFile, clusterConfigToJson(cluster.config));
  const built = await buildLedgerStore(cluster, { directory: data, batches: 8, clientCount: 4, seed: 9 });

  const sound = capture();
  assert.equal(await main(["verify", "--data", data, "--cluster", clusterFile], sound), 0, sound.stderr);
  assert.match(sound.stdout, new RegExp(`OK: 8 blocks, ${built.transactions} transactions, \\d+ state entries verified \\(execution replayed from the empty state\\) in [\\d.]+ s, \\d+ tx/s`));

  const json = capture();
  assert.equal(await main(["verify", "--data", data, "--cluster", clusterFile, "--json"], json), 0);
  const summary = JSON.parse(json.stdout.trim().split("\n").pop()!) as Record<string, unknown>;
  assert.equal(summary.ok, true);
  assert.equal(summary.blocks, 8);
  assert.equal(summary.transactions, built.transactions);

  // A well-formed but different transaction in block 5 at height 5 (checksum recomputed), as an attacker would write it.
  const store = await ReplicaStore.open({ directory: data, clusterId: cluster.config.clusterId, replicaId: 0, sync: "none" });
  const { bodies } = (store as unknown as { env: StorageEnvironment }).env;
  const key = Buffer.alloc(8);
  key.writeBigUInt64BE(5n);
  const body = Buffer.from(bodies.get(key)!.subarray(4));
  // Byte 10 of the first transaction (after the version, the count and the entry's length).
  body[5 + 4 + 10] = body[5 + 4 + 10]! ^ 0x20;
  await bodies.put(key, frameValue(DATABASE_NAMES.bodies, key, body));
  await store.close();

  const tampered = capture();
  assert.equal(await main(["verify", "--data", data, "--cluster", clusterFile], tampered), 1);
  assert.match(tampered.stdout, /FAILED at height 5 \(body\): tx-root-mismatch: the transactions of block 5 do not hash to its txRoot/);
  const tamperedJson = capture();
  assert.equal(await main(["verify", "--data", data, "--cluster", clusterFile, "--json"], tamperedJson), 1);
  const failed = JSON.parse(tamperedJson.stdout.trim()) as Record<string, unknown>;
  assert.equal(failed.badHeight, 5);
  assert.equal(failed.badPart, "body");
});

test("bulwark verify exits 2 with a clear message when the store or the cluster config cannot be used", async (t) => {
  const root = temporaryDirectory(t, "bulwark-verify-cli-");
  const clusterFile = join(root, "cluster.json");
  writeFileSync(clusterFile, clusterConfigToJson(cluster.config));
  const missing = capture();
  assert.equal(await main(["verify", "--data", join(root, "nowhere"), "--cluster", clusterFile], missing), 2);
  assert.match(missing.stderr, /holds no Bulwark store/);

  const data = join(root, "replica-0");
  await buildLedgerStore(cluster, { directory: data, batches: 2, clientCount: 2, seed: 1 });
  const other = ledgerCluster("other-cluster");
  const otherFile = join(root, "other.json");
  writeFileSync(otherFile, clusterConfigToJson(other.config));
  const wrongCluster = capture();
  assert.equal(await main(["verify", "--data", data, "--cluster", otherFile], wrongCluster), 2);
  assert.match(wrongCluster.stderr, /belongs to cluster "test-cluster", not "other-cluster"/);

  const badConfig = capture();
  writeFileSync(clusterFile, "{ not json");
  assert.equal(await main(["verify", "--data", data, "--cluster", clusterFile], badConfig), 2);
  assert.match(badConfig.stderr, /cluster\.json has 1 problem/);
});
