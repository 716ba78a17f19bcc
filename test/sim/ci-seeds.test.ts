import { test } from "node:test";
import assert from "node:assert/strict";

import { pbftModule } from "../../src/sim/pbft-module.js";
import { runSimulation } from "../../src/sim/runner.js";

test("CI: 200 seeds with all faults, no safety violation and no liveness failure", () => {
  const summary = runSimulation({ seeds: 200, firstSeed: 1, n: 4, faults: "all", core: pbftModule });
  assert.equal(summary.seeds, 200);
  assert.equal(summary.safetyViolations, 0, `failing seeds: ${summary.failingSeeds.join(", ")}`);
  assert.equal(summary.livenessFailures, 0, `failing seeds: ${summary.failingSeeds.join(", ")}`);
  assert.ok(summary.viewChanges > 0);
});
