import { test } from "node:test";
import assert from "node:assert/strict";

import type { ReplicaMessage } from "../../src/consensus/pbft/types.js";
import { EventQueue, SimNetwork } from "../../src/sim/network.js";
import { Random } from "../../src/sim/random.js";
import { TraceRing } from "../../src/sim/trace.js";

const STATUS: ReplicaMessage = { type: "status", view: 0, normal: true, stableSeq: 0, lastExecuted: 0, replica: 0 };

test("events come out per tick in the order they were scheduled", () => {
  const queue = new EventQueue();
  queue.schedule(3, { kind: "heal" });
  queue.schedule(1, { kind: "gst" });
  queue.schedule(3, { kind: "partition", sideMask: 1 });
  assert.deepEqual(queue.take(1)?.map((event) => event.kind), ["gst"]);
  assert.equal(queue.take(2), undefined);
  assert.deepEqual(queue.take(3)?.map((event) => event.kind), ["heal", "partition"]);
  assert.throws(() => queue.schedule(3, { kind: "gst" }), /already past/);
});

function network(dropRate: number): { queue: EventQueue; net: SimNetwork } {
  const queue = new EventQueue();
  const plan = { dropRate, duplicateRate: 0, delayTicksMaxBeforeGst: 10, delayTicksMaxAfterGst: 2 };
  return { queue, net: new SimNetwork(queue, new Random(1), plan, new TraceRing(16)) };
}

function delivered(queue: EventQueue, ticksMax: number): number {
  let count = 0;
  for (let tick = 0; tick <= ticksMax; tick++) count += queue.take(tick)?.length ?? 0;
  return count;
}

test("a partition cuts messages across it, not within a side", () => {
  const { queue, net } = network(0);
  net.partitionMask = 0b0011;
  net.sendToReplica(0, 1, STATUS);
  net.sendToReplica(0, 2, STATUS);
  net.sendToReplica(3, 2, STATUS);
  assert.equal(delivered(queue, 20), 2);
});

test("after GST nothing is lost and delays are bounded by the after-GST maximum", () => {
  const { queue, net } = network(0.9);
  net.partitionMask = 0b0001;
  net.stabilise();
  for (let i = 0; i < 100; i++) net.sendToReplica(0, 1, STATUS);
  assert.equal(delivered(queue, 2), 100);
});

test("before GST a lossy link drops some messages", () => {
  const { queue, net } = network(0.5);
  for (let i = 0; i < 200; i++) net.sendToReplica(0, 1, STATUS);
  const count = delivered(queue, 20);
  assert.ok(count > 50 && count < 150, `delivered ${count} of 200`);
});
