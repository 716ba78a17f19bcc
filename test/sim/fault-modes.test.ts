import { test } from "node:test";
import assert from "node:assert/strict";

import { pbftModule } from "../../src/sim/pbft-module.js";
import { runSimulation, type SimSummary } from "../../src/sim/runner.js";
import { FAULT_MODES, type FaultMode } from "../../src/sim/scenario.js";

function run(faults: FaultMode, n: number, seeds: number): SimSummary {
  return runSimulation({ seeds, firstSeed: 1, n, faults, core: pbftModule });
}

for (const faults of FAULT_MODES) {
  test(`faults ${faults}: 40 seeds of 4 replicas commit every request with no violation`, () => {
    const summary = run(faults, 4, 40);
    assert.deepEqual(summary.failingSeeds, []);
    assert.equal(summary.requestsCommitted, summary.requestsTotal);
  });
}

test("fault modes inject what they promise", () => {
  const crash = run("crash", 4, 20);
  assert.ok(crash.crashes > 0, "crash mode crashes replicas");
  assert.ok(crash.stateTransfers > 0, "restarted replicas catch up by state transfer");
  const network = run("network", 4, 20);
  assert.ok(network.viewChanges > 0, "lossy, partitioned networks force view changes");
  assert.equal(network.crashes, 0);
  const none = run("none", 4, 20);
  assert.equal(none.viewChanges, 0);
  assert.equal(none.crashes, 0);
});

for (const n of [7, 10]) {
  test(`${n} replicas: fault-free and all-fault seeds pass`, () => {
    assert.deepEqual(run("none", n, 5).failingSeeds, []);
    assert.deepEqual(run("all", n, 10).failingSeeds, []);
  });
}
