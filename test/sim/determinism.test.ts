import { test } from "node:test";
import assert from "node:assert/strict";

import { pbftModule } from "../../src/sim/pbft-module.js";
import { runSeed } from "../../src/sim/simulation.js";

test("the same seed replays to the same result and the same trace", () => {
  for (const seed of [1, 17, 4242]) {
    const first = runSeed(seed, { n: 4, faults: "all", core: pbftModule, traceAlways: true });
    const second = runSeed(seed, { n: 4, faults: "all", core: pbftModule, traceAlways: true });
    assert.equal(second.fingerprint, first.fingerprint);
    assert.equal(second.events, first.events);
    assert.deepEqual(second.trace, first.trace);
    assert.deepEqual({ ...second, trace: [] }, { ...first, trace: [] });
  }
});

test("different seeds give different runs", () => {
  const first = runSeed(1, { n: 4, faults: "all", core: pbftModule });
  const second = runSeed(2, { n: 4, faults: "all", core: pbftModule });
  assert.notEqual(first.fingerprint, second.fingerprint);
});
