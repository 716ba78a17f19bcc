// Which signals stop a long-running command cleanly: SIGINT and SIGTERM, and also SIGHUP (the
// terminal closed) and SIGQUIT, whose default action would kill `bulwark up` and leave its
// detached replicas running. Signals are delivered as process events, so nothing is really sent.

import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { getMaxListeners } from "node:events";

import { STOP_SIGNALS, StopSignals, startupController } from "../../src/cli/stop-signals.js";

describe("stop signals", () => {
  it("listen to SIGINT, SIGTERM, SIGHUP and SIGQUIT until removed", () => {
    assert.deepEqual([...STOP_SIGNALS].sort(), ["SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM"]);
    const before = STOP_SIGNALS.map((signal) => process.listenerCount(signal));
    const signals = new StopSignals();
    assert.deepEqual(
      STOP_SIGNALS.map((signal) => process.listenerCount(signal)),
      before.map((count) => count + 1),
    );
    signals.remove();
    assert.deepEqual(
      STOP_SIGNALS.map((signal) => process.listenerCount(signal)),
      before,
    );
  });

  for (const signal of ["SIGHUP", "SIGQUIT"] as const) {
    it(`treat ${signal} as a stop request, and a second one within a second as the same one`, async (t) => {
      const firsts: string[] = [];
      let forced = 0;
      const signals = new StopSignals((first) => firsts.push(first));
      t.after(() => signals.remove());
      signals.whenForced(() => (forced += 1));
      assert.equal(signals.requested, false);
      process.emit(signal, signal);
      process.emit(signal, signal);
      assert.equal(await signals.stopped, signal);
      assert.equal(signals.requested, true);
      assert.deepEqual(firsts, [signal]);
      assert.equal(forced, 0, "a repeat within a second is the same request delivered twice");
    });
  }

  it("abort a command's start-up on the first stop signal, and not before", async (t) => {
    const signals = new StopSignals();
    t.after(() => signals.remove());
    const startup = startupController(signals, 18);
    assert.equal(getMaxListeners(startup.signal), 18, "startGateway's many connects wait on it without a leak warning");
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(startup.signal.aborted, false);
    process.emit("SIGINT", "SIGINT");
    await signals.stopped;
    assert.equal(startup.signal.aborted, true);
  });
});
