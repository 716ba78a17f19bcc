import { test } from "node:test";
import assert from "node:assert/strict";

import { openStore, simpleBlock, temporaryDirectory, utf8 } from "./helpers.js";

test("pruning deletes the bodies below the retention height and keeps every header, certificate and state entry", async (t) => {
  const directory = temporaryDirectory(t);
  const store = await openStore(t, directory);
  for (let height = 1; height <= 2100; height++) await store.commitBlock(simpleBlock(height, [[utf8(`k${height % 5}`), utf8(`v${height}`)]]));
  assert.equal(store.bodyRetentionHeight(), 0);
  // More than one prune batch (1024 bodies per transaction).
  assert.equal(await store.pruneBodiesBelow(2050), 2049);
  assert.equal(store.bodyRetentionHeight(), 2050);
  const pruned = store.getBlock(2049);
  assert.deepEqual(pruned, { height: 2049, header: utf8("header 2049"), body: undefined, certificate: utf8("certificate 2049") });
  assert.deepEqual(store.getBlock(2050)?.body, simpleBlock(2050).body);
  assert.equal(store.getHeaders(1, 2100).length, 2100);
  assert.ok(store.getHeaders(1, 2100).every((header, index) => header.certificate !== undefined && header.height === index + 1));
  assert.deepEqual(store.getState(utf8("k0")), utf8("v2100"));
  assert.equal(store.counters().bodiesPruned, 2049);
  await store.close();

  const reopened = await openStore(t, directory);
  assert.equal(reopened.bodyRetentionHeight(), 2050);
  assert.equal(reopened.getBlock(1)?.body, undefined);
  assert.deepEqual(reopened.getBlock(2100)?.body, simpleBlock(2100).body);
});

test("the retention height never moves down and may reach one past the latest block, no further", async (t) => {
  const store = await openStore(t, temporaryDirectory(t));
  for (let height = 1; height <= 10; height++) await store.commitBlock(simpleBlock(height));
  assert.equal(await store.pruneBodiesBelow(5), 4);
  assert.equal(await store.pruneBodiesBelow(3), 0);
  assert.equal(store.bodyRetentionHeight(), 5);
  await assert.rejects(store.pruneBodiesBelow(12), /above the next block height 11/);
  assert.equal(await store.pruneBodiesBelow(11), 6);
  assert.equal(store.getBlock(10)?.body, undefined);
  // A block committed after pruning everything keeps its body.
  await store.commitBlock(simpleBlock(11));
  assert.deepEqual(store.getBlock(11)?.body, simpleBlock(11).body);
});
