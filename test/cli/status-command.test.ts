// `bulwark status`'s verdict and exit code from what the replicas said (the table against real
// replicas is in client-command.test.ts): 0 with a quorum of 2f + 1 answering, 1 with f + 1 to
// 2f, 3 with fewer than f + 1 or no connection at all.

import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { statusExitCode, statusReport } from "../../src/cli/status-command.js";
import type { ReplicaStatus } from "../../src/client/index.js";
import { testCluster } from "../ledger/fixtures.js";

const cluster = testCluster(4).config;

/** Replicas 0 .. answering - 1 answer (in view 0, led by replica 0); the others do not. */
function statuses(answering: number): ReplicaStatus[] {
  return cluster.replicas.map(({ id, address }) =>
    id < answering
      ? { replica: id, address, reachable: true, view: 0, primary: 0, normal: true, executedHeight: 5, stableCheckpoint: 0, certifiedHeight: 5 }
      : { replica: id, address, reachable: false },
  );
}

describe("bulwark status", () => {
  it("exits 0 with a quorum answering, 1 with f + 1 to 2f, and 3 with fewer than f + 1", () => {
    assert.deepEqual(
      [4, 3, 2, 1, 0].map((answering) => statusExitCode(statusReport(cluster, statuses(answering), true))),
      [0, 0, 1, 3, 3],
    );
  });

  it("exits 3 without a connection however many ports accept TCP connections, and claims no roles", () => {
    const tcpOnly = cluster.replicas.map(({ id, address }) => ({ replica: id, address, reachable: true }));
    const report = statusReport(cluster, tcpOnly, false);
    assert.equal(statusExitCode(report), 3);
    assert.ok(report.replicas.every((replica) => replica.role === undefined));
  });

  it("names each replica's role and what f + 1 replicas vouch for", () => {
    const report = statusReport(cluster, statuses(3), true);
    assert.deepEqual(
      report.replicas.map((replica) => replica.role),
      ["primary", "backup", "backup", "unreachable"],
    );
    assert.equal(report.view, 0);
    assert.equal(report.executedHeight, 5);
  });
});
