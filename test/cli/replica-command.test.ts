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
    // "replica starting" is the command's first line, before it reads its key, opens its store or
    // binds its port. Frozen right then, the replica gets the SIGTERM while it is still starting.
    await cluster.start(0, /^replica starting$/);
    cluster.signal(0, "SIGSTOP");
    cluster.signal(0, "SIGTERM");
    cluster.signal(0, "SIGCONT");
    const exit = await cluster.exited(0);
    assert.deepEqual(exit, { code: 0, signal: null }, cluster.logTail(0));
    const messages = cluster.logLines(0, /./).map((line) => line.msg);
    const requested = messages.indexOf("stop requested during the start; stopping once started");
    assert.ok(requested >= 0, `the signal landed during the start\n${cluster.logTail(0)}`);
    assert.ok(requested < messages.indexOf("replica started"), cluster.logTail(0));
    assert.ok(messages.indexOf("replica started") < messages.indexOf("stopping"), cluster.logTail(0));
  });
});
