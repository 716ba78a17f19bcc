import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { PREPARED_ENVELOPES_MAX } from "../../src/bench/prepared-workload.js";
import { benchReplicaSpecs } from "../../src/cli/bench-cluster.js";
import { BULWARK_BIN } from "../../src/cli/local-replicas.js";
import { type BenchPlan, benchPlan, targetSettings } from "../../src/cli/bench-command.js";
import { UsageError, readClusterForCli } from "../../src/cli/cluster-client.js";
import { CLUSTER_FILE_NAME, runInit } from "../../src/cli/init-command.js";
import { main } from "../../src/cli/main.js";
import { captureOutput } from "../support/cli-output.js";

/** A report the bench wrote (bench/results), as a template for broken ones. */
const RECORDED_REPORT = fileURLToPath(new URL("../../../bench/results/kv-session-2026-11-21.json", import.meta.url));

async function bench(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = captureOutput();
  const code = await main(["bench", ...args], output);
  return { code, stdout: output.stdout, stderr: output.stderr };
}

const DEFAULT_FLAGS = { workload: "kv", auth: "session", duration: 30, warmup: 5, replicas: 4, batchSize: 256, seed: 1, loaders: 1 } as const;

function planOf(flags: Parameters<typeof benchPlan>[0], given: readonly string[]): BenchPlan {
  const plan = benchPlan(flags, new Set(given));
  assert.ok(!Array.isArray(plan), JSON.stringify(plan));
  return plan;
}

/** A directory holding a cluster as `bulwark bench --dir` leaves one, with a batch size of 64. */
async function clusterDirectory(t: { after(fn: () => void): void }): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "bench-target-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const code = await runInit(dir, { replicas: 4, host: "127.0.0.1", basePort: 7400, clusterId: "bench-test", protocol: { maxBatchSize: 64 } }, captureOutput());
  assert.equal(code, 0);
  return dir;
}

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
    [["--cluster", "c.json", "--retain-blocks", "100"], /--retain-blocks applies to the local cluster/],
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

  it("builds at most PREPARED_ENVELOPES_MAX envelopes ahead, however long and fast the run", () => {
    // 605 s at 25,000 tx/s with the margin would be 18.9 million envelopes.
    const long = planOf({ ...DEFAULT_FLAGS, duration: 600 }, ["duration"]);
    assert.ok(long.preparePerClient * 256 <= PREPARED_ENVELOPES_MAX, `${long.preparePerClient} per client`);
    assert.ok((long.preparePerClient + 1) * 256 > PREPARED_ENVELOPES_MAX, "the cap, not less");
    assert.equal(long.settings.preparedPerClient, long.preparePerClient);
    const widest = planOf({ ...DEFAULT_FLAGS, rate: 1_000_000, clients: 65_536, duration: 600 }, ["rate", "clients", "duration"]);
    assert.ok(widest.preparePerClient >= 30 && widest.preparePerClient * 65_536 <= PREPARED_ENVELOPES_MAX, `${widest.preparePerClient} per client`);
  });

  it("takes the batch size and replicas of a reused --dir or a --cluster before anything runs, the baseline included", async (t) => {
    const dir = await clusterDirectory(t);
    const reused = targetSettings(planOf({ ...DEFAULT_FLAGS, dir }, ["dir"]));
    assert.equal(reused.settings.batchSize, 64, "the cluster's maxBatchSize, not the --batch-size default");
    assert.equal(reused.settings.replicas, 4);
    assert.equal(reused.existing?.protocol.maxBatchSize, 64);

    const remote = targetSettings(planOf({ ...DEFAULT_FLAGS, cluster: join(dir, CLUSTER_FILE_NAME) }, ["cluster"]));
    assert.equal(remote.settings.batchSize, 64);

    const created = targetSettings(planOf({ ...DEFAULT_FLAGS, batchSize: 128, dir: join(dir, "new") }, ["batchSize", "dir"]));
    assert.equal(created.settings.batchSize, 128, "a cluster the bench creates has the flag's batch size");
    assert.equal(created.existing, undefined);

    assert.throws(
      () => targetSettings(planOf({ ...DEFAULT_FLAGS, batchSize: 128, dir }, ["batchSize", "dir"])),
      (error) => error instanceof UsageError && /has a batch size of 64, not --batch-size 128/.test(error.message),
    );
  });

  it("starts the local replicas with --session-auth for a session run only", async (t) => {
    const dir = await clusterDirectory(t);
    const clusterPath = join(dir, CLUSTER_FILE_NAME);
    const config = readClusterForCli(clusterPath);
    const sessionAuth = (session: boolean): boolean[] => benchReplicaSpecs(config, clusterPath, { dir, sessionAuth: session }).map((spec) => spec.args.includes("--session-auth"));
    assert.deepEqual(sessionAuth(true), [true, true, true, true]);
    assert.deepEqual(sessionAuth(false), [false, false, false, false]);
  });

  it("puts node flags such as --cpu-prof before the script, and no GC flag of its own", async (t) => {
    const dir = await clusterDirectory(t);
    const clusterPath = join(dir, CLUSTER_FILE_NAME);
    const config = readClusterForCli(clusterPath);
    for (const spec of benchReplicaSpecs(config, clusterPath, { dir, sessionAuth: true, profileDir: dir })) {
      assert.equal(spec.args[0], "--cpu-prof");
      assert.equal(spec.args[2], BULWARK_BIN);
      assert.ok(!spec.args.some((arg) => arg.endsWith("-gc")), `a GC flag in ${spec.args.join(" ")}`);
    }
  });

  it("passes --retain-blocks to the local replicas, and records it in the settings", async (t) => {
    const dir = await clusterDirectory(t);
    const clusterPath = join(dir, CLUSTER_FILE_NAME);
    const config = readClusterForCli(clusterPath);
    const retained = (retainBlocks?: number): string[][] =>
      benchReplicaSpecs(config, clusterPath, { dir, sessionAuth: true, ...(retainBlocks === undefined ? {} : { retainBlocks }) }).map((spec) => {
        const at = spec.args.indexOf("--retain-blocks");
        return at < 0 ? [] : spec.args.slice(at, at + 2);
      });
    assert.deepEqual(retained(5_000), Array.from({ length: 4 }, () => ["--retain-blocks", "5000"]));
    assert.deepEqual(retained(), [[], [], [], []], "every body kept by default, as bulwark replica does");
    assert.equal(planOf({ ...DEFAULT_FLAGS, retainBlocks: 5_000 }, ["retainBlocks"]).settings.retainBlocks, 5_000);
    assert.equal(planOf(DEFAULT_FLAGS, []).settings.retainBlocks, null);
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

  it("refuses a report whose commit or machine lacks what it shows, with exit code 2 and the field named", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "bench-compare-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const recorded = JSON.parse(readFileSync(RECORDED_REPORT, "utf8")) as Record<string, unknown>;
    const good = join(dir, "good.json");
    writeFileSync(good, JSON.stringify(recorded));
    const fine = await bench("compare", good, good);
    assert.equal(fine.code, 0, fine.stderr);

    const noCommit = join(dir, "no-commit.json");
    writeFileSync(noCommit, JSON.stringify({ ...recorded, commit: {} }));
    const commit = await bench("compare", good, noCommit);
    assert.equal(commit.code, 2, commit.stderr);
    assert.match(commit.stderr, /no-commit\.json: its "commit" lacks the hash/);

    const { cpuModel: _cpuModel, ...machine } = recorded.machine as Record<string, unknown>;
    const noModel = join(dir, "no-model.json");
    writeFileSync(noModel, JSON.stringify({ ...recorded, machine }));
    const model = await bench("compare", noModel, good);
    assert.equal(model.code, 2, model.stderr);
    assert.match(model.stderr, /no-model\.json: its "machine" lacks cores, cpuModel or nodeVersion/);
  });

  it("needs two files", async () => {
    const { code, stderr } = await bench("compare", "only.json");
    assert.equal(code, 2);
    assert.match(stderr, /missing required argument 'b'/);
  });
});
