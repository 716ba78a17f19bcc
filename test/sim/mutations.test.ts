import { test } from "node:test";
import assert from "node:assert/strict";

import type { CoreMutation } from "../../src/consensus/pbft/types.js";
import { pbftModule } from "../../src/sim/pbft-module.js";
import { runSimulation } from "../../src/sim/runner.js";

// The checkers must notice a broken protocol. Measured over all-fault seeds 1..1000 of 4 replicas
// (agreement violations in each case; docs/RELIABILITY.md has the table):
// - forget-prepared-certificates: 160 seeds, the first at seed 3;
// - skip-new-view-validation: 111 seeds, the first at seed 6 (the Byzantine "forgery" behaviour
//   sends unrequested NEW-VIEWs that only validation rejects);
// - prepare-quorum-2f-minus-1: 37 seeds, the first at seed 29;
// - commit-quorum-2f: 4 seeds, the first at seed 76. With n = 4 it needs a rare schedule (a
//   batch committed by one correct replica and the Byzantine one, and a view change that leaves
//   out every replica that prepared it), so it gets a larger budget;
// - skip-batch-digest-check: 13 seeds, the first at seed 94 (a replica takes a "lyingBatches"
//   replica's batch for a re-proposal it fetched, and executes other requests than committed).
const SEED_BUDGET: ReadonlyMap<CoreMutation, number> = new Map<CoreMutation, number>([
  ["forget-prepared-certificates", 100],
  ["prepare-quorum-2f-minus-1", 100],
  ["skip-new-view-validation", 100],
  ["commit-quorum-2f", 500],
  ["skip-batch-digest-check", 200],
]);

for (const [mutation, seeds] of SEED_BUDGET) {
  test(`mutation ${mutation}: the checkers report a safety violation within ${seeds} seeds`, () => {
    let firstFailing: number | undefined;
    const summary = runSimulation({
      seeds,
      firstSeed: 1,
      n: 4,
      faults: "all",
      mutation,
      core: pbftModule,
      onSeed: (result) => {
        if (result.safetyViolations === 0) return true;
        firstFailing = result.seed;
        return false;
      },
    });
    assert.ok(summary.safetyViolations > 0 && firstFailing !== undefined, `${mutation} went unnoticed`);
  });
}
