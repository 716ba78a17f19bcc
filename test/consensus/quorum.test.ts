import { test } from "node:test";
import assert from "node:assert/strict";
import { faultsTolerated, primaryOf, quorumsFor } from "../../src/consensus/pbft/index.js";

test("quorum counting: n = 3f + 1 gives prepare 2f, commit 2f + 1, weak f + 1", () => {
  for (const [n, f] of [[4, 1], [7, 2], [10, 3]] as const) {
    const q = quorumsFor(n);
    assert.deepEqual(q, { f, prepare: 2 * f, commit: 2 * f + 1, checkpoint: 2 * f + 1, viewChange: 2 * f + 1, weak: f + 1 });
    // Two commit quorums intersect in at least f + 1 replicas: one of them is correct.
    assert.ok(2 * q.commit - n >= f + 1);
  }
});

test("quorum counting: a cluster size that is not 3f + 1 is refused with what to fix", () => {
  for (const n of [1, 2, 3, 5, 6, 8]) assert.throws(() => faultsTolerated(n), /n = 3f \+ 1.*got \d+ replicas/);
});

test("the primary of view v is v mod n", () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((v) => primaryOf(v, 4)), [0, 1, 2, 3, 0, 1]);
});
