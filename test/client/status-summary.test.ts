// The cluster-wide reading of the replicas' statuses: roles, and only figures f + 1 replicas vouch for.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { roleOf, summarizeStatus, vouched } from "../../src/client/status-summary.js";
import type { ReplicaStatus } from "../../src/client/types.js";
import { testCluster } from "../ledger/fixtures.js";

const cluster = testCluster(4).config;

function answering(replica: number, view: number, height: number, normal = true): ReplicaStatus {
  return { replica, address: `127.0.0.1:${7000 + replica}`, reachable: true, view, primary: view % 4, normal, executedHeight: height, stableCheckpoint: height - (height % 10), certifiedHeight: height };
}

describe("vouched", () => {
  it("takes the (f + 1)-th highest report, ignoring replicas that did not report", () => {
    assert.equal(vouched([3, 9, undefined, 5], 1), 5);
    assert.equal(vouched([3, 9, 5, 7, 1, 2, 8], 2), 7);
    assert.equal(vouched([4], 1), null);
    assert.equal(vouched([4], 0), 4);
  });
});

describe("summarizeStatus", () => {
  it("gives each replica the role its own view implies, and the figures f + 1 replicas vouch for", () => {
    const summary = summarizeStatus(cluster, [
      { replica: 0, address: "127.0.0.1:7000", reachable: false },
      answering(1, 5, 40),
      answering(2, 5, 38),
      // A faulty replica's claims alone move nothing.
      answering(3, 99, 1_000_000, false),
    ]);
    assert.deepEqual(
      summary.replicas.map((status) => status.role),
      ["unreachable", "primary", "backup", "view-change"],
    );
    assert.deepEqual(
      { reachable: summary.reachable, quorum: summary.quorum, quorumReachable: summary.quorumReachable, view: summary.view, primary: summary.primary },
      { reachable: 3, quorum: 3, quorumReachable: true, view: 5, primary: 1 },
    );
    assert.deepEqual({ executed: summary.executedHeight, checkpoint: summary.stableCheckpoint, certified: summary.certifiedHeight }, { executed: 40, checkpoint: 40, certified: 40 });
  });

  it("vouches for nothing, and sees no quorum, when fewer than f + 1 replicas answered", () => {
    const statuses: ReplicaStatus[] = [answering(0, 2, 7), ...[1, 2, 3].map((replica) => ({ replica, address: "a:1", reachable: false }))];
    const summary = summarizeStatus(cluster, statuses);
    assert.deepEqual(
      [summary.reachable, summary.quorumReachable, summary.view, summary.primary, summary.executedHeight, summary.certifiedHeight],
      [1, false, null, null, null, null],
    );
  });

  it("takes a replica's role from its view, not from the primary it names", () => {
    assert.equal(roleOf({ ...answering(2, 6, 1), primary: 0 }, 4), "primary");
    assert.equal(roleOf({ ...answering(0, 6, 1), primary: 0 }, 4), "backup");
  });
});
