import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

import { benchPlan } from "../../src/cli/bench-command.js";
import { main } from "../../src/cli/main.js";
import { captureOutput } from "../support/cli-output.js";

async function bench(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = captureOutput();
  const code = await main(["bench", ...args], output);
  return { code, stdout: output.stdout, stderr: output.stderr };
}

const DEFAULT_FLAGS = { workload: "kv", auth: "session", duration: 30, warmup: 5, replicas: 4, batchSize: 256, seed: 1, loaders: 1 } as const;

describe("bulwark bench: options", () => {
  for (const [args, message] of [
    [["--workload", "ycsb"], /--workload.*Allowed choices are noop, kv, transfer/],
    [["--auth", "mac"], /Allowed choices are session, signed/],
    [["--clients", "0"], /--clients.*a whole number from 1/],
    [["--rate", "0"], /positive number/],
    [["--rate", "fast"], /positive number/],
    [["--duration", "0"], /--duration/],
    [["--replicas", "5"], /--replicas: 4 replicas tolerate f = 1; got 5/],
    [["--batch-size", "70000"], /--batch-size: must be from 1 to 65536/],
    [["--key", "k.key"], /--key applies only with --cluster/],
    [["--metrics", "http://x:1/metrics"], /--metrics applies only with --cluster/],
    [["--cluster", "c.json", "--replicas", "7"], /--replicas applies to the local cluster/],
    [["--cluster", "c.json", "--dir", "d"], /--dir applies to the local cluster/],
    [["--workload", "noop", "--records", "10"], /--records and --preload apply to --workload kv/],
    [["--workload", "kv", "--accounts", "10"], /--accounts applies to --workload transfer/],
    [["--clients", "4", "--loaders", "5"], /--loaders: at most 64, and no more than the clients \(4\); got 5/],
    [["--workload", "transfer", "--accounts", "10", "--clients", "11"], /--clients: the transfer workload gives each client accounts of its own, so at most --accounts \(10\)/],
  ] as const) {
    it(`refuses ${args.join(" ")} with exit code 2 before starting anything`, async () => {
      const { code, stderr } = await bench(...args);
      assert.equal(code, 2, stderr);
      assert.match(stderr, message);
    });
  }

  it("refuses a --cluster file that does not exist with exit code 2", async () => {
    const { code, stderr } = await bench("--cluster", "/nonexistent/cluster.json", "--duration", "1");
    assert.equal(code, 2);
    assert.match(stderr, /\/nonexistent\/cluster\.json does not exist/);
  });

  it("plans a closed loop by default, an open loop with a key pool for --rate, and envelopes for the whole run", () => {
    const closed = benchPlan({ ...DEFAULT_FLAGS }, new Set());
    assert.ok(!Array.isArray(closed));
    assert.deepEqual(closed.mode, { kind: "closed" });
    assert.equal(closed.settings.clients, 256);
    assert.equal(closed.settings.cluster, "local");
    assert.ok(closed.preparePerClient * 256 >= 25_000 * 35, "session envelopes for 25,000 tx/s over warm-up and duration");

    const open = benchPlan({ ...DEFAULT_FLAGS, rate: 2000, auth: "signed" }, new Set(["rate"]));
    assert.ok(!Array.isArray(open));
    assert.deepEqual(open.mode, { kind: "open", ratePerSecond: 2000 });
    assert.equal(open.settings.clients, 1000, "half a second of arrivals");
    assert.ok(open.preparePerClient * 1000 >= 2000 * 35);

    const transfer = benchPlan({ ...DEFAULT_FLAGS, workload: "transfer", accounts: 100 }, new Set(["workload", "accounts"]));
    assert.ok(!Array.isArray(transfer));
    assert.equal(transfer.settings.clients, 100, "clients capped at the accounts when --clients is not given");
    assert.equal(transfer.settings.records, null);
  });
});

describe("bulwark bench compare", () => {
  it("refuses files that are not bench reports with exit code 2", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bench-compare-"));
    try {
      const notJson = join(dir, "a.txt");
      writeFileSync(notJson, "hello");
      const other = join(dir, "b.json");
      writeFileSync(other, JSON.stringify({ format: "something else" }));
      const missing = await bench("compare", join(dir, "none.json"), other);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /cannot read .*none\.json/);
      const garbage = await bench("compare", notJson, other);
      assert.equal(garbage.code, 2);
      assert.match(garbage.stderr, /a\.txt is not JSON/);
      const foreign = await bench("compare", other, other);
      assert.equal(foreign.code, 2);
      assert.match(foreign.stderr, /b\.json is not a bulwark bench report/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("needs two files", async () => {
    const { code, stderr } = await bench("compare", "only.json");
    assert.equal(code, 2);
    assert.match(stderr, /missing required argument 'b'/);
  });
});
