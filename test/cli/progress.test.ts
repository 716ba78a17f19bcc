import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { Progress } from "../../src/cli/progress.js";

function sink(interactive: boolean): { write(text: string): void; interactive: boolean; text: string } {
  const captured = {
    text: "",
    interactive,
    write(text: string): void {
      captured.text += text;
    },
  };
  return captured;
}

describe("progress on stderr", () => {
  it("prints one plain line per phase when stderr is not a terminal, and nothing for details or success", () => {
    const plain = sink(false);
    const progress = new Progress(plain, { prefix: "bulwark up" });
    progress.start("starting 4 replicas");
    progress.detail("2 of 4 started");
    progress.succeed("4 replicas started");
    progress.start("waiting for the cluster");
    progress.fail();
    assert.equal(plain.text, "bulwark up: starting 4 replicas...\nbulwark up: waiting for the cluster...\n");
  });

  it("redraws one line on a terminal and replaces it with a check mark and the phase's duration", () => {
    let nowMs = 1_000;
    const terminal = sink(true);
    const progress = new Progress(terminal, { prefix: "bulwark up", nowMs: () => nowMs });
    progress.start("starting 4 replicas");
    progress.detail("3 of 4 started");
    nowMs += 1_250;
    progress.succeed("4 replicas started");
    const clearLine = "\r\u001b[2K";
    assert.ok(terminal.text.startsWith(`${clearLine}⠙ starting 4 replicas (0.0 s)`), JSON.stringify(terminal.text));
    assert.ok(terminal.text.includes(`${clearLine}⠹ starting 4 replicas: 3 of 4 started (0.0 s)`), JSON.stringify(terminal.text));
    assert.ok(terminal.text.endsWith("\r\u001b[2K✓ 4 replicas started (1.3 s)\n"), JSON.stringify(terminal.text));
  });

  it("shows a delayed phase only once it has lasted the delay", (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"] });
    const plain = sink(false);
    const progress = new Progress(plain, { prefix: "bulwark client", delayMs: 1_000 });
    progress.start("connecting");
    progress.succeed();
    assert.equal(plain.text, "", "a phase that ends within the delay prints nothing");

    progress.start("connecting");
    t.mock.timers.tick(999);
    assert.equal(plain.text, "");
    t.mock.timers.tick(1);
    assert.equal(plain.text, "bulwark client: connecting...\n");
    t.mock.timers.tick(10_000);
    assert.equal(plain.text, "bulwark client: connecting...\n", "a plain sink gets the phase's line once");
    progress.succeed();
  });

  it("schedules no repeating timer when stderr is not a terminal, and at most one timeout for a delayed phase", (t) => {
    const intervals = t.mock.method(globalThis, "setInterval");
    const timeouts = t.mock.method(globalThis, "setTimeout");
    const immediate = new Progress(sink(false), { prefix: "bulwark up" });
    immediate.start("starting 4 replicas");
    immediate.succeed();
    assert.equal(timeouts.mock.callCount(), 0, "a phase shown at once needs no timer");
    const delayed = new Progress(sink(false), { prefix: "bulwark client", delayMs: 1_000 });
    delayed.start("connecting");
    delayed.succeed();
    assert.equal(intervals.mock.callCount(), 0, "a plain sink is never redrawn");
    assert.equal(timeouts.mock.callCount(), 1, "one timeout shows the delayed phase");
  });
});
