import { test } from "node:test";
import assert from "node:assert/strict";

import type { AppliedRequest } from "../../src/app/executor.js";
import { Checkers } from "../../src/sim/checkers.js";

const GST_TICK = 100;
const BOUND_TICKS = 50;

function applied(client: string, timestamp: number, operation: number, result: number): AppliedRequest {
  return { client, timestamp, operation: Uint8Array.of(operation), result: Uint8Array.of(result) };
}

test("agreement: two replicas executing different batches at one seq is a violation", () => {
  const checkers = new Checkers(GST_TICK, BOUND_TICKS);
  checkers.onExecuted(10, 0, 1, "digest-a", []);
  checkers.onExecuted(11, 1, 1, "digest-a", []);
  checkers.onExecuted(12, 2, 2, "digest-b", []);
  assert.equal(checkers.violations.length, 0);
  checkers.onExecuted(13, 3, 1, "digest-x", []);
  assert.equal(checkers.violations.length, 1);
  assert.equal(checkers.violations[0]?.kind, "agreement");
  assert.match(checkers.violations[0]?.message ?? "", /seq 1: r3 executed batch digest-x but r0 executed digest-a/);
});

test("validity: a request no client submitted, or with another operation, is a violation", () => {
  const checkers = new Checkers(GST_TICK, BOUND_TICKS);
  checkers.onSubmitted("c0", 1, "05");
  checkers.onApplied(10, 0, 1, [applied("c0", 1, 5, 1)]);
  assert.equal(checkers.violations.length, 0);
  checkers.onApplied(11, 1, 1, [applied("c0", 1, 6, 1)]);
  checkers.onApplied(12, 0, 2, [applied("c9", 1, 5, 1)]);
  assert.deepEqual(checkers.violations.map((violation) => violation.kind), ["validity", "validity"]);
});

test("validity: a committed batch holding a forged request is a violation even if execution skips it", () => {
  const checkers = new Checkers(GST_TICK, BOUND_TICKS);
  checkers.onSubmitted("c0", 1, "05");
  const genuine = { client: "c0", timestamp: 1, operation: Uint8Array.of(5), signature: "s" };
  checkers.onExecuted(10, 0, 1, "d1", [genuine]);
  assert.equal(checkers.violations.length, 0);
  checkers.onExecuted(11, 0, 2, "d2", [genuine, { ...genuine, timestamp: 0, operation: Uint8Array.of(9) }]);
  assert.equal(checkers.violations[0]?.kind, "validity");
});

test("integrity: a request taking effect twice at one replica is a violation", () => {
  const checkers = new Checkers(GST_TICK, BOUND_TICKS);
  checkers.onSubmitted("c0", 1, "05");
  checkers.onApplied(10, 0, 1, [applied("c0", 1, 5, 1)]);
  checkers.onApplied(10, 1, 1, [applied("c0", 1, 5, 1)]);
  assert.equal(checkers.violations.length, 0);
  checkers.onApplied(20, 0, 3, [applied("c0", 1, 5, 1)]);
  assert.equal(checkers.violations[0]?.kind, "integrity");
});

test("checkpoints: different state digests at one checkpoint seq are a violation", () => {
  const checkers = new Checkers(GST_TICK, BOUND_TICKS);
  checkers.onCheckpointState(10, 0, 4, "state-a");
  checkers.onCheckpointState(11, 1, 4, "state-a");
  checkers.onCheckpointState(12, 2, 4, "state-b");
  assert.equal(checkers.violations[0]?.kind, "checkpoint");
});

test("client results: accepting a result no correct replica computed is a violation, in either order", () => {
  const checkers = new Checkers(GST_TICK, BOUND_TICKS);
  checkers.onSubmitted("c0", 1, "05");
  checkers.onSubmitted("c0", 2, "06");
  checkers.onApplied(10, 0, 1, [applied("c0", 1, 5, 1)]);
  checkers.onAccepted(11, "c0", 1, "ff");
  checkers.onAccepted(12, "c0", 2, "ee");
  checkers.onApplied(13, 0, 2, [applied("c0", 2, 6, 2)]);
  assert.deepEqual(checkers.violations.map((violation) => violation.kind), ["client-result", "client-result"]);
});

test("liveness: the bound counts from GST or submission, whichever is later", () => {
  const checkers = new Checkers(GST_TICK, BOUND_TICKS);
  // Submitted before GST, completed within the bound after GST: fine.
  checkers.onRequestSettled(140, "c0", 1, 0, 140);
  assert.equal(checkers.violations.length, 0);
  assert.ok(!checkers.overdue(150, 0));
  assert.ok(checkers.overdue(151, 0));
  checkers.onRequestSettled(400, "c0", 2, 300, 351);
  checkers.onRequestSettled(400, "c0", 3, 320, undefined);
  assert.deepEqual(checkers.violations.map((violation) => violation.kind), ["liveness", "liveness"]);
  assert.equal(checkers.safetyViolationCount, 0);
  assert.equal(checkers.livenessFailureCount, 2);
});
