// The supervisor of `bulwark up`'s replica processes, with small node scripts standing in for
// `bulwark replica`: how it reads their output (bounded, line by line), and that a log file it
// cannot write is reported once while the replicas keep running.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { LineSplitter, ReplicaProcesses, ReplicaStartError } from "../../src/cli/replica-processes.js";
import { temporaryDirectory } from "../storage/helpers.js";

/** A stand-in replica: logs "replica started" as pino would, then waits for SIGTERM and exits 0. */
const STARTS_AND_WAITS = [
  "-e",
  'process.stdout.write(JSON.stringify({ level: 30, replica: 0, msg: "replica started" }) + "\\n");' +
    'process.on("SIGTERM", () => process.exit(0));' +
    "setInterval(() => undefined, 1000);",
];

const STOP_GRACE_MS = 5_000;

function lines(chunks: readonly Buffer[]): string[] {
  const found: string[] = [];
  const splitter = new LineSplitter((line) => found.push(line));
  for (const chunk of chunks) splitter.push(chunk);
  splitter.end();
  return found;
}

describe("replica processes", () => {
  it("split output into lines across chunks, multi-byte characters included, and end with the unfinished line", () => {
    const text = Buffer.from("first\nsecond é line\nunfinished");
    const at = text.indexOf("é") + 1; // in the middle of é's two bytes
    assert.deepEqual(lines([text.subarray(0, 3), text.subarray(3, at), text.subarray(at)]), ["first", "second é line", "unfinished"]);
  });

  it("hold a bounded part of a line that never ends, and read the lines after it whole", () => {
    const endless = Buffer.alloc(1 << 20, "x");
    const found = lines([endless, endless, Buffer.from("\nnext\n")]);
    assert.equal(found.length, 2);
    assert.ok(found[0]!.length <= 4_096, `an unfinished line is held up to a bound, not ${found[0]!.length} characters`);
    assert.equal(found[1], "next");
  });

  it("report a replica that exits before it started, with its last output lines cut to a readable length", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-replicas-");
    const failing = [
      "-e",
      'for (let i = 1; i <= 20; i += 1) console.error("line " + i);' + 'console.error("y".repeat(1000));' + "process.exit(2);",
    ];
    const replicas = new ReplicaProcesses([{ id: 0, args: failing, logPath: join(directory, "replica-0.log") }]);
    const error = await replicas.start().then(
      () => assert.fail("the start must fail"),
      (reason: unknown) => reason,
    );
    await replicas.stop(STOP_GRACE_MS);
    assert.ok(error instanceof ReplicaStartError);
    assert.deepEqual(error.exit, { code: 2, signal: null });
    assert.equal(error.tail.length, 15, "the last 15 lines");
    assert.equal(error.tail[0], "line 7");
    assert.equal(error.tail.at(-1), `${"y".repeat(300)}...`);
    assert.match(readFileSync(join(directory, "replica-0.log"), "utf8"), /line 1\n[\s\S]*ended: exit code 2 ---\n$/);
  });

  it("report a log file that cannot be written once, drop its output, and keep supervising the replica", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-replicas-");
    const specs = [{ id: 0, args: STARTS_AND_WAITS, logPath: join(directory, "no-such-directory", "replica-0.log") }];
    // A write that fails after the file opened (a full disk), where the system has such a device.
    if (existsSync("/dev/full")) specs.push({ id: 1, args: STARTS_AND_WAITS, logPath: "/dev/full" });
    const failures: Array<{ id: number; code: string | undefined }> = [];
    const started: number[] = [];
    const replicas = new ReplicaProcesses(specs, {
      logFailed: (id, _path, error) => failures.push({ id, code: (error as NodeJS.ErrnoException).code }),
      started: (id) => started.push(id),
    });
    await replicas.start();
    assert.deepEqual(started.sort(), specs.map(({ id }) => id));
    const pids = specs.map(({ id }) => replicas.pid(id));
    assert.ok(pids.every((pid) => pid !== undefined));
    assert.deepEqual(await replicas.stop(STOP_GRACE_MS), [], "each replica stopped on SIGTERM");
    const expected = [{ id: 0, code: "ENOENT" }, ...(specs.length > 1 ? [{ id: 1, code: "ENOSPC" }] : [])];
    assert.deepEqual(
      failures.sort((a, b) => a.id - b.id),
      expected,
      "each broken log is reported once",
    );
  });
});
