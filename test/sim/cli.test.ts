import { test } from "node:test";
import assert from "node:assert/strict";

import { main } from "../../src/cli/main.js";
import { captureOutput } from "../support/cli-output.js";

const capture = captureOutput;

test("bulwark sim --json ends its output with one JSON summary", async () => {
  const output = capture();
  const code = await main(["sim", "--seeds", "3", "--faults", "all", "--json"], output);
  assert.equal(code, 0);
  const lines = output.stdout.trim().split("\n");
  const summary = JSON.parse(lines[lines.length - 1] ?? "") as Record<string, unknown>;
  for (const key of ["seeds", "safetyViolations", "livenessFailures", "requestsCommitted", "viewChanges", "stateTransfers", "crashes", "seedsPerMinute", "byzantine", "droppedByCore", "failingSeeds"]) {
    assert.ok(key in summary, `summary lacks ${key}`);
  }
  assert.equal(summary.seeds, 3);
});

test("bulwark sim --seed replays one seed and prints its trace with --verbose", async () => {
  const output = capture();
  const code = await main(["sim", "--seed", "5", "--faults", "crash", "--verbose"], output);
  assert.equal(code, 0);
  assert.match(output.stdout, /seed 5: passed/);
  assert.match(output.stdout, /OK: 1 seeds/);
});

test("bulwark sim rejects a cluster size that is not 3f + 1", async () => {
  const output = capture();
  const code = await main(["sim", "--replicas", "5"], output);
  assert.notEqual(code, 0);
  assert.match(output.stderr, /4, 7 or 10/);
});

test("bulwark sim --help describes the options and exits 0", async () => {
  const output = capture();
  const code = await main(["sim", "--help"], output);
  assert.equal(code, 0);
  assert.match(output.stdout, /--faults <mode>/);
  assert.match(output.stdout, /--mutation <mutation>/);
});

test("a mutated core makes bulwark sim fail with the seed and a replay command that reproduces it", async () => {
  const output = capture();
  const code = await main(["sim", "--seeds", "100", "--mutation", "forget-prepared-certificates", "--json"], output);
  assert.equal(code, 1);
  const failing = /FAILED seed (\d+) \(replay: bulwark sim --seed \1 --faults all --replicas 4 --mutation forget-prepared-certificates\)/.exec(output.stderr);
  assert.ok(failing !== null, output.stderr.slice(0, 500));
  const replay = capture();
  const replayCode = await main(["sim", "--seed", failing[1]!, "--mutation", "forget-prepared-certificates"], replay);
  assert.equal(replayCode, 1, "the replayed seed fails again");
});
