import { test } from "node:test";
import assert from "node:assert/strict";

import { measureSignatureCeiling } from "../../src/bench/signature-ceiling.js";

test("the signature ceiling is cores × one core's verifications per second ÷ replicas, from a measured, positive rate", () => {
  const ceiling = measureSignatureCeiling(4, { cores: 2, rounds: 1 });
  assert.ok(ceiling.verifiesPerSecondOneCore > 100, `a real rate (${ceiling.verifiesPerSecondOneCore}/s)`);
  assert.equal(ceiling.ceilingTps, Math.round((2 * ceiling.verifiesPerSecondOneCore) / 4));
  assert.deepEqual({ cores: ceiling.cores, replicas: ceiling.replicas, rounds: ceiling.rounds }, { cores: 2, replicas: 4, rounds: 1 });
  assert.ok(ceiling.backend === "sodium-native" || ceiling.backend === "node:crypto");
});
