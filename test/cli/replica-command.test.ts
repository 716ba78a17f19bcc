// `bulwark replica` as a process: a stop signal that comes while the replica is still starting
// (a supervisor such as `bulwark up` stopping a replica it has just restarted) is acted on once
// the start is over, and the replica exits cleanly, instead of dying of the signal's default
// action in the middle of opening its store.

import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { ProcessCluster } from "../support/process-cluster.js";

describe("bulwark replica", () => {
  it("stops cleanly, exit code 0, on a SIGTERM that arrives during its start", async (t) => {
    const cluster = await ProcessCluster.create(t);
    // The first line the command logs, before it reads its key, opens its store or binds its port.
    await cluster.start(0, /^replica starting$/);
    await cluster.stop(0);
    const messages = cluster.logLines(0, /./).map((line) => line.msg);
    assert.ok(messages.includes("stopping"), cluster.logTail(0));
    assert.ok(messages.indexOf("replica starting") < messages.indexOf("stopping"), cluster.logTail(0));
  });
});
