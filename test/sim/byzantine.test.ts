import { test } from "node:test";
import assert from "node:assert/strict";

import { pbftModule } from "../../src/sim/pbft-module.js";
import { runSimulation } from "../../src/sim/runner.js";
import { BEHAVIOURS } from "../../src/sim/scenario.js";

test("over 100 all-fault seeds every Byzantine behaviour acts, and no correct replica is fooled", () => {
  const summary = runSimulation({ seeds: 100, firstSeed: 1, n: 4, faults: "all", core: pbftModule });
  for (const behaviour of BEHAVIOURS) assert.ok(summary.byzantine[behaviour] > 0, `${behaviour} never acted`);
  assert.deepEqual(summary.failingSeeds, []);
  // The cores saw the attacks and dropped them (forged senders, bad signatures, bad digests).
  for (const counter of ["forged-sender", "invalid-pre-prepare", "bad-request-signature"]) {
    assert.ok((summary.coreCounters[counter] ?? 0) > 0, `no input was dropped as ${counter}`);
  }
});
