// How often a replica with --retain-blocks N prunes block bodies (replica-runtime.ts): often
// enough that it holds about N bodies, not N plus a fixed stride.

import { test } from "node:test";
import assert from "node:assert/strict";

import { pruneEveryHeights } from "../../src/node/replica-runtime.js";

test("a replica retaining N bodies prunes often enough to hold at most about 1.25 × N of them, and at most every 256 heights", () => {
  for (const retain of [0, 1, 2, 3, 4, 5, 10, 50, 100, 999, 1_000, 1_024, 4_096, 100_000]) {
    const every = pruneEveryHeights(retain);
    assert.ok(Number.isSafeInteger(every) && every >= 1 && every <= 256, `retain ${retain}: every ${every}`);
    // A prune at height h keeps the bodies above h - retain; the next, at h + every, comes after
    // the body of h + every is stored: retain + every bodies just before it.
    const heldMax = retain + every;
    assert.ok(heldMax <= Math.max(retain + 1, Math.ceil(1.25 * retain)), `retain ${retain}: up to ${heldMax} bodies held`);
  }
  assert.equal(pruneEveryHeights(100_000), 256, "a long retention still prunes in strides of 256 (a bounded delete per prune)");
});
