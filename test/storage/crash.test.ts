// On-disk crash recovery (issue 3, "Tests: crash recovery"): a writer process commits blocks and
// consensus records with the durable policy and acknowledges each height on stdout; the test
// kills it with SIGKILL at seeded random moments, reopens the store after every kill and checks
//   - every acknowledged height is there, intact (header, body or pruned body, certificate);
//   - the state is exactly the state after the blocks present, with metadata naming the last one
//     (no block is ever half there);
//   - the consensus records of every acknowledged height above the stable checkpoint are there.
//
// BULWARK_KILL_LOOPS sets the number of kills (default 5, for `npm test`; the long run uses 20 or
// more) and BULWARK_KILL_SEED the seed of the kill timing. The seed fixes when the test kills, not
// what the operating system has done by then, so two runs kill at different heights.

import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

import { sha256 } from "../../src/crypto/sha256.js";
import { Random } from "../../src/sim/random.js";
import { ReplicaStore } from "../../src/storage/index.js";
import { CRASH_CLUSTER_ID, CRASH_REPLICA_ID } from "./crash-writer.js";
import { ExpectedState, workloadBlock } from "./crash-workload.js";
import { temporaryDirectory } from "./helpers.js";

const KILL_LOOPS = Number(process.env.BULWARK_KILL_LOOPS ?? 5);
const KILL_SEED = Number(process.env.BULWARK_KILL_SEED ?? 20_240_611);
const WORKLOAD_SEED = 7;
const READY_TIMEOUT_MS = 15_000;
const WRITER_PATH = fileURLToPath(new URL("./crash-writer.js", import.meta.url));

interface Run {
  readonly acked: number[];
  readonly readyAt: number | undefined;
  readonly signal: NodeJS.Signals | null;
  readonly code: number | null;
  readonly stderr: string;
}

function sleep(milliseconds: number, keepAlive = true): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, milliseconds);
    if (!keepAlive) timer.unref();
  });
}

/** Starts the writer, kills it `killAfterMs` after it is ready (or after spawn, when `early`). */
async function runAndKill(directory: string, killAfterMs: number, early: boolean): Promise<Run> {
  const child: ChildProcess = spawn(process.execPath, [WRITER_PATH, directory, String(WORKLOAD_SEED)], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let onReady: (() => void) | undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout!.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
    if (stdout.includes("ready ")) onReady?.();
  });
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on("close", (code, signal) => resolve([code, signal])));
  if (!early) {
    const timeout = sleep(READY_TIMEOUT_MS, false).then(() => "timeout" as const);
    const outcome = await Promise.race([ready.then(() => "ready" as const), exited.then(() => "exited" as const), timeout]);
    assert.equal(outcome, "ready", `writer did not start: ${stderr}`);
  }
  await sleep(killAfterMs);
  child.kill("SIGKILL");
  const [code, signal] = await exited;
  const acked: number[] = [];
  let readyAt: number | undefined;
  for (const line of stdout.split("\n")) {
    const [word, number] = line.split(" ");
    if (word === "ack") acked.push(Number(number));
    if (word === "ready") readyAt = Number(number);
  }
  return { acked, readyAt, signal, code, stderr };
}

/** Digests of the parts of each workload block, computed once per height. */
class ExpectedBlocks {
  private readonly cache = new Map<number, { header: string; body: string; certificate: string; digest: string; seq: number }>();

  get(height: number): { header: string; body: string; certificate: string; digest: string; seq: number } {
    let expected = this.cache.get(height);
    if (expected === undefined) {
      const block = workloadBlock(WORKLOAD_SEED, height);
      expected = {
        header: digestOf(block.commit.header),
        body: digestOf(block.commit.body),
        certificate: digestOf(block.certificate),
        digest: digestOf(block.commit.meta.stateDigest),
        seq: block.commit.meta.seq,
      };
      this.cache.set(height, expected);
    }
    return expected;
  }
}

function digestOf(bytes: Uint8Array | undefined): string {
  return bytes === undefined ? "absent" : Buffer.from(sha256(bytes)).toString("hex");
}

interface Verified {
  readonly latest: number;
  readonly heightsChecked: number;
}

async function verify(directory: string, acked: ReadonlySet<number>, blocks: ExpectedBlocks, state: ExpectedState): Promise<Verified> {
  const store = await ReplicaStore.open({ directory, clusterId: CRASH_CLUSTER_ID, replicaId: CRASH_REPLICA_ID });
  try {
    const latest = store.latestHeight() ?? 0;
    const maxAcked = Math.max(0, ...acked);
    assert.ok(latest >= maxAcked, `acknowledged height ${maxAcked} is missing: the store ends at ${latest}`);
    const applied = store.appliedState();
    if (latest > 0) {
      assert.ok(applied !== undefined, "blocks without applied-state metadata");
      assert.equal(applied.height, latest, "the state reflects exactly the last block present");
      assert.equal(applied.seq, blocks.get(latest).seq);
      assert.equal(digestOf(applied.stateDigest), blocks.get(latest).digest);
    }
    const retention = store.bodyRetentionHeight();
    assert.ok(retention <= latest + 1);
    for (let height = 1; height <= latest; height++) {
      const block = store.getBlock(height);
      assert.ok(block !== undefined, `height ${height} is missing below the latest ${latest}`);
      const expected = blocks.get(height);
      assert.equal(digestOf(block.header), expected.header, `header ${height}`);
      assert.equal(digestOf(block.body), height < retention ? "absent" : expected.body, `body ${height}`);
      // An even height gets its certificate in a second transaction; only the newest block, if
      // not acknowledged, can have been cut off between the two.
      const certificateMayLag = height === latest && height % 2 === 0 && !acked.has(height);
      if (!(certificateMayLag && block.certificate === undefined)) assert.equal(digestOf(block.certificate), expected.certificate, `certificate ${height}`);
    }
    const expectedEntries = state.advanceTo(latest);
    const stored = new Map<string, Uint8Array>();
    let after: Uint8Array | undefined = undefined;
    for (let chunks = 0; chunks < 10_000; chunks++) {
      const chunk = store.readStateChunk({ entriesMax: 16, ...(after === undefined ? {} : { after }) });
      for (const [key, value] of chunk.entries) stored.set(Buffer.from(key).toString("hex"), value);
      if (chunk.done) break;
      after = chunk.cursor;
    }
    assert.deepEqual(stored, expectedEntries, `state after height ${latest}`);
    const records = store.loadRecords();
    let stableSeq = 0;
    for (const record of records) if (record.kind === "stable-checkpoint") stableSeq = Math.max(stableSeq, record.proof.seq);
    const votes = new Set(records.filter((record) => record.kind === "prepare" || record.kind === "commit" || record.kind === "pre-prepare").map((record) => `${record.kind}/${record.message.seq}`));
    for (const height of acked) {
      if (height <= stableSeq) continue;
      for (const kind of ["pre-prepare", "prepare", "commit"]) assert.ok(votes.has(`${kind}/${height}`), `${kind} record of acknowledged seq ${height}`);
    }
    return { latest, heightsChecked: latest };
  } finally {
    await store.close();
  }
}

test(`a writer killed with SIGKILL ${KILL_LOOPS} times loses no acknowledged block, record or state change and never leaves half a block (kill seed ${KILL_SEED})`, async (t) => {
  assert.ok(Number.isSafeInteger(KILL_LOOPS) && KILL_LOOPS > 0, "BULWARK_KILL_LOOPS must be a positive integer");
  const directory = temporaryDirectory(t, "bulwark-crash-");
  const random = new Random(KILL_SEED);
  const acked = new Set<number>();
  const blocks = new ExpectedBlocks();
  const state = new ExpectedState(WORKLOAD_SEED);
  let heightsChecked = 0;
  let earlyKills = 0;
  let latest = 0;
  for (let kill = 1; kill <= KILL_LOOPS; kill++) {
    // One kill in eight lands while the writer is still starting (opening the store, possibly
    // creating it); the rest land while it commits.
    const early = random.chance(0.125);
    const delayMs = early ? random.between(0, 120) : random.between(5, 300);
    const run = await runAndKill(directory, delayMs, early);
    assert.equal(run.signal, "SIGKILL", `writer exited by itself (code ${run.code}): ${run.stderr}`);
    if (run.readyAt !== undefined) assert.ok(run.readyAt >= latest, `the writer restarted at ${run.readyAt}, below the verified height ${latest}`);
    if (early) earlyKills++;
    for (const height of run.acked) acked.add(height);
    const verified = await verify(directory, acked, blocks, state);
    latest = verified.latest;
    heightsChecked += verified.heightsChecked;
    t.diagnostic(`kill ${kill}: ${early ? "early, " : ""}${delayMs} ms, ${run.acked.length} heights acknowledged in this run, store at height ${verified.latest}`);
  }
  t.diagnostic(`${KILL_LOOPS} kills (${earlyKills} during startup): ${acked.size} acknowledged heights, store at height ${latest}, ${heightsChecked} block checks`);
  assert.ok(acked.size > 0, "the writer acknowledged something");
});
