// `bulwark up` as a user runs it (issue 4 §4, "done when"): a real child process on free ports in a
// temporary --dir prints the gateway's URL within 15 s; a PUT then a GET over real HTTP returns the
// value with its height; a replica killed under it is restarted; SIGINT stops everything, each
// replica by its own clean exit, leaves no replica process behind and exits 0; run again on the
// same --dir, SIGTERM does the same. A replica that cannot start ends `up` with every other one
// stopped. The refusals (a port in use, a replica count that is not 3f + 1, metrics ports past
// 65535 for an existing cluster) run in-process: they must not start anything.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { type Server, createServer } from "node:net";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { main } from "../../src/cli/main.js";
import { captureOutput } from "../support/cli-output.js";
import { temporaryDirectory } from "../storage/helpers.js";

/** dist/test/cli/ → the repository root. */
const BULWARK_BIN = fileURLToPath(new URL("../../../bin/bulwark.js", import.meta.url));
/** The promise: `npm start` answers within 15 seconds. */
const READY_WITHIN_MS = 15_000;
const STOP_WITHIN_MS = 20_000;
/** One port for the gateway, then 4 for the replicas and 4 for their metrics. */
const PORTS_NEEDED = 9;

function listen(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(undefined));
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => resolve(server));
  });
}

async function closeAll(servers: ReadonlyArray<Server | undefined>): Promise<void> {
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())))));
}

/** The first of `count` consecutive localhost ports that are all free now (replica i listens on base + i). */
async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    // Below Linux's ephemeral range (32768 and up), where outgoing connections could take a port meanwhile.
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    const servers = await Promise.all(Array.from({ length: count }, (_, offset) => listen(base + offset)));
    await closeAll(servers);
    if (servers.every((server) => server !== undefined)) return base;
  }
  assert.fail(`no ${count} consecutive free ports found`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/** A running `bulwark up` whose output is collected as it comes. */
class UpProcess {
  stdout = "";
  stderr = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private readonly waiters = new Set<() => void>();

  constructor(args: readonly string[]) {
    this.child = spawn(process.execPath, [BULWARK_BIN, "up", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout!.on("data", (chunk: Buffer) => {
      this.stdout += chunk.toString("utf8");
      for (const waiter of [...this.waiters]) waiter();
    });
    this.child.stderr!.on("data", (chunk: Buffer) => {
      this.stderr += chunk.toString("utf8");
      for (const waiter of [...this.waiters]) waiter();
    });
    this.exited = new Promise((resolve) => this.child.once("close", (code, signal) => resolve({ code, signal })));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Resolves with the match once stdout or stderr matches `pattern`; fails after `timeoutMs` with both. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const match = pattern.exec(this.stdout) ?? pattern.exec(this.stderr);
        if (match === null) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(match);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`bulwark up printed nothing matching ${String(pattern)} within ${timeoutMs} ms\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }
}

/** The pid of every start of every replica, from the "--- bulwark up: start ..." lines of their logs. */
function loggedPids(directory: string, n: number): number[] {
  const pids: number[] = [];
  for (let id = 0; id < n; id += 1) {
    const path = join(directory, `replica-${id}.log`);
    if (!existsSync(path)) continue;
    for (const match of readFileSync(path, "utf8").matchAll(/^--- bulwark up: start \d+ of replica \d+ \(pid (\d+)\)/gm)) pids.push(Number(match[1]));
  }
  return pids;
}

/** Every replica's log ends with its last start's clean exit: it stopped on SIGTERM, not killed after the grace period. */
function assertCleanExits(directory: string, n: number, stderr: string): void {
  assert.doesNotMatch(stderr, /did not stop within/);
  for (let id = 0; id < n; id += 1) {
    const log = readFileSync(join(directory, `replica-${id}.log`), "utf8");
    assert.match(log, new RegExp(`--- bulwark up: replica ${id} \\(start \\d+\\) ended: exit code 0 ---\n$`), `replica ${id}'s log ends with a clean exit:\n${log.slice(-2_000)}`);
  }
}

async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${timeoutMs} ms`)), timeoutMs)))]);
  } finally {
    clearTimeout(timer);
  }
}

describe("bulwark up", () => {
  it("answers over HTTP within 15 s, restarts a killed replica, and SIGINT stops every process with exit code 0", async (t) => {
    const directory = join(temporaryDirectory(t, "bulwark-up-"), "cluster");
    const base = await freePortRange(PORTS_NEEDED);
    const pids = new Set<number>();
    const startedMs = Date.now();
    const up = new UpProcess(["--dir", directory, "--port", String(base), "--base-port", String(base + 1), "--metrics-base-port", String(base + 5)]);
    t.after(async () => {
      // Only on failure is anything left: kill it, so that no test leaves processes holding ports.
      if (up.running) up.signal("SIGKILL");
      for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL");
      await up.exited;
    });

    await up.waitFor(/Press Ctrl-C to stop\./, READY_WITHIN_MS);
    assert.ok(Date.now() - startedMs < READY_WITHIN_MS);
    const url = up.stdout.match(/gateway\s+(http:\/\/127\.0\.0\.1:\d+)/)?.[1];
    assert.equal(url, `http://127.0.0.1:${base}`, up.stdout);
    for (const match of up.stdout.matchAll(/replica (\d+)\s+\S+\s+pid (\d+)/g)) pids.add(Number(match[2]));
    assert.equal(pids.size, 4, `a pid for every replica\n${up.stdout}`);
    for (let id = 0; id < 4; id += 1) assert.ok(existsSync(join(directory, `replica-${id}.log`)), `replica ${id} logs to DIR/replica-${id}.log`);
    // The replicas share the machine's cores instead of each taking all of them.
    const startedLine = readFileSync(join(directory, "replica-0.log"), "utf8")
      .split("\n")
      .find((line) => line.includes('"msg":"replica started"'));
    assert.ok(startedLine !== undefined);
    const { verifyWorkers } = JSON.parse(startedLine) as { verifyWorkers?: unknown };
    assert.equal(verifyWorkers, Math.max(1, Math.floor(availableParallelism() / 4)), "verification workers per replica");

    // The issue's own check: curl -X PUT localhost:8080/v1/kv/a -d 1, then curl localhost:8080/v1/kv/a.
    const form = { "content-type": "application/x-www-form-urlencoded" };
    const put = await fetch(`${url}/v1/kv/a`, { method: "PUT", headers: form, body: "1" });
    const putBody = (await put.json()) as { height?: unknown };
    assert.equal(put.status, 200, JSON.stringify(putBody));
    assert.ok(typeof putBody.height === "number" && putBody.height >= 1, JSON.stringify(putBody));
    const get = await fetch(`${url}/v1/kv/a`);
    const getBody = (await get.json()) as { value?: unknown; height?: unknown };
    assert.equal(get.status, 200);
    assert.equal(getBody.value, "1");
    assert.ok(typeof getBody.height === "number" && getBody.height >= putBody.height, JSON.stringify(getBody));
    const metrics = await fetch(`http://127.0.0.1:${base + 5}/metrics`);
    assert.equal(metrics.status, 200, "replica 0 serves metrics on --metrics-base-port");
    await metrics.text();

    // A replica that dies is reported and restarted; the cluster keeps committing meanwhile.
    const victim = [...pids][2]!;
    process.kill(victim, "SIGKILL");
    const restarted = await up.waitFor(/replica 2 restarted \(pid (\d+)\)/, 10_000);
    pids.add(Number(restarted[1]));
    assert.match(up.stderr, /replica 2 exited unexpectedly \(killed by SIGKILL\); restarting it in 1 s/);
    const again = await fetch(`${url}/v1/kv/b`, { method: "PUT", headers: form, body: "2" });
    assert.equal(again.status, 200);
    await again.text();

    up.signal("SIGINT");
    const exit = await within(up.exited, STOP_WITHIN_MS, "stopping after SIGINT");
    assert.deepEqual(exit, { code: 0, signal: null }, up.stderr);
    assert.match(up.stderr, /stopped\n$/);
    assertCleanExits(directory, 4, up.stderr);
    assert.deepEqual([...pids].filter(alive), [], "no replica process is left running");

    // The same --dir again: the existing cluster restarts from its stores, and SIGTERM stops it as cleanly.
    const second = new UpProcess(["--dir", directory, "--port", String(base), "--metrics-base-port", String(base + 5)]);
    t.after(async () => {
      if (second.running) second.signal("SIGKILL");
      await second.exited;
    });
    await second.waitFor(/Press Ctrl-C to stop\./, READY_WITHIN_MS);
    assert.match(second.stdout, /from .*cluster/, "it runs the cluster that is there");
    for (const pid of loggedPids(directory, 4)) pids.add(pid);
    const kept = await fetch(`${url}/v1/kv/b`);
    assert.equal(((await kept.json()) as { value?: unknown }).value, "2", "the cluster kept its state");
    second.signal("SIGTERM");
    assert.deepEqual(await within(second.exited, STOP_WITHIN_MS, "stopping after SIGTERM"), { code: 0, signal: null }, second.stderr);
    assert.match(second.stderr, /SIGTERM: stopping the gateway and the replicas/);
    assertCleanExits(directory, 4, second.stderr);
    assert.deepEqual([...pids].filter(alive), [], "no replica process is left running");
  });

  it("stops the replicas that started when one cannot start, and exits 1 naming it", async (t) => {
    const directory = join(temporaryDirectory(t, "bulwark-up-"), "cluster");
    const base = await freePortRange(PORTS_NEEDED);
    const init = captureOutput();
    assert.equal(await main(["init", directory, "--base-port", String(base + 1)], init), 0, init.stderr);
    rmSync(join(directory, "replica-2.key"));
    const up = new UpProcess(["--dir", directory, "--port", String(base), "--metrics-base-port", String(base + 5)]);
    t.after(async () => {
      if (up.running) up.signal("SIGKILL");
      for (const pid of loggedPids(directory, 4)) if (alive(pid)) process.kill(pid, "SIGKILL");
      await up.exited;
    });
    const exit = await within(up.exited, READY_WITHIN_MS + STOP_WITHIN_MS, "giving up on a replica that cannot start");
    assert.deepEqual(exit, { code: 1, signal: null }, up.stderr);
    assert.match(up.stderr, /replica 2 exited \(exit code 2\) before it started; its last log lines/);
    assert.match(up.stderr, /replica-2\.key/, "the report shows the replica's own complaint");
    const pids = loggedPids(directory, 4);
    assert.equal(pids.length, 4, "every replica was started once");
    assert.deepEqual(pids.filter(alive), [], "no replica process is left running");
  });

  it("refuses a port in use, naming the port, before it creates or starts anything", async (t) => {
    const directory = join(temporaryDirectory(t, "bulwark-up-"), "cluster");
    const base = await freePortRange(PORTS_NEEDED);
    const squatter = await listen(base);
    assert.ok(squatter !== undefined);
    t.after(() => closeAll([squatter]));
    const output = captureOutput();
    const code = await main(["up", "--dir", directory, "--port", String(base), "--base-port", String(base + 1), "--metrics-base-port", String(base + 5)], output);
    assert.equal(code, 2, output.stderr);
    assert.match(output.stderr, new RegExp(`port ${base} on 127\\.0\\.0\\.1 \\(the gateway, --port\\) is in use`));
    assert.equal(existsSync(directory), false, "nothing was created");
  });

  it("checks the metrics ports of an existing cluster's n replicas, not of --replicas' default", async (t) => {
    const directory = join(temporaryDirectory(t, "bulwark-up-"), "cluster");
    const init = captureOutput();
    assert.equal(await main(["init", directory, "--replicas", "7", "--base-port", "7300"], init), 0, init.stderr);
    const output = captureOutput();
    const code = await main(["up", "--dir", directory, "--metrics-base-port", "65530"], output);
    assert.equal(code, 2, output.stderr);
    assert.match(output.stderr, /--metrics-base-port: replica 6's metrics port would be 65536, above 65535/);
  });

  it("refuses a replica count that is not 3f + 1 with init's message", async (t) => {
    const directory = join(temporaryDirectory(t, "bulwark-up-"), "cluster");
    const output = captureOutput();
    const code = await main(["up", "--dir", directory, "--replicas", "5"], output);
    assert.equal(code, 2);
    assert.match(output.stderr, /--replicas: 4 replicas tolerate f = 1; got 5 replicas \(n must be 3f \+ 1: 4, 7, 10, \.\.\.\)/);
    assert.equal(existsSync(directory), false);
  });
});
