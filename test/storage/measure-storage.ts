// Storage measurements (a script, not a test): run `npm run build`, then
//
//   node dist/test/storage/measure-storage.js [--iterations N]
//
// It prints medians (and 90th percentiles) of
//   - commitBlock of a 200 KB body and 1000 state writes (random 32-byte keys, 100-byte values),
//     durable and with sync "none";
//   - appendRecords of one PREPARE, and of one PRE-PREPARE carrying 100 requests of 100 bytes,
//     durable and with sync "none";
//   - the record codec against JSON with base64 byte fields, and the checksum of a 200 KB body.
// The test runner loads every file under test/; this one does nothing when loaded that way.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

import type { PersistRecord, PrePrepare } from "../../src/consensus/pbft/types.js";
import { Random } from "../../src/sim/random.js";
import { type BlockCommit, ReplicaStore, type StateWrite, type SyncPolicy, decodeRecord, encodeRecord } from "../../src/storage/index.js";
import { frameValue, unframeValue } from "../../src/storage/frame.js";
import { randomBytes } from "../support/random-bytes.js";

interface Summary {
  readonly medianMs: number;
  readonly p90Ms: number;
}

function summarize(samplesMs: number[]): Summary {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const at = (fraction: number): number => sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!;
  return { medianMs: at(0.5), p90Ms: at(0.9) };
}

async function withStore<T>(sync: SyncPolicy, body: (store: ReplicaStore) => Promise<T>): Promise<T> {
  const directory = mkdtempSync(join(tmpdir(), "bulwark-measure-"));
  const store = await ReplicaStore.open({ directory, clusterId: "measure", replicaId: 0, sync });
  try {
    return await body(store);
  } finally {
    await store.close();
    rmSync(directory, { recursive: true, force: true });
  }
}

function bigBlock(random: Random, height: number): BlockCommit {
  const stateWrites: StateWrite[] = Array.from({ length: 1000 }, () => [randomBytes(random, 32), randomBytes(random, 100)]);
  return {
    height,
    header: randomBytes(random, 200),
    body: randomBytes(random, 200 * 1024),
    certificate: randomBytes(random, 3 * 96),
    stateWrites,
    meta: { seq: height, stateDigest: randomBytes(random, 32) },
  };
}

async function measureCommitBlock(sync: SyncPolicy, iterations: number): Promise<Summary> {
  return withStore(sync, async (store) => {
    const random = new Random(1);
    const samples: number[] = [];
    const warmup = 3;
    for (let height = 1; height <= iterations + warmup; height++) {
      const block = bigBlock(random, height);
      const start = performance.now();
      await store.commitBlock(block);
      if (height > warmup) samples.push(performance.now() - start);
    }
    return summarize(samples);
  });
}

function prePrepareOf(random: Random, seq: number, requestCount: number): PrePrepare {
  const requests = Array.from({ length: requestCount }, (_, index) => ({
    client: Buffer.from(randomBytes(random, 32)).toString("hex"),
    timestamp: 1_700_000_000_000 + index,
    operation: randomBytes(random, 100),
    signature: Buffer.from(randomBytes(random, 64)).toString("hex"),
  }));
  return { type: "pre-prepare", view: 3, seq, digest: Buffer.from(randomBytes(random, 32)).toString("hex"), requests, replica: 0, signature: Buffer.from(randomBytes(random, 64)).toString("hex") };
}

function prepareOf(random: Random, seq: number): PersistRecord {
  return { kind: "prepare", message: { type: "prepare", view: 3, seq, digest: Buffer.from(randomBytes(random, 32)).toString("hex"), replica: 1, signature: Buffer.from(randomBytes(random, 64)).toString("hex") } };
}

async function measureAppend(sync: SyncPolicy, iterations: number, make: (random: Random, seq: number) => PersistRecord): Promise<Summary> {
  return withStore(sync, async (store) => {
    const random = new Random(2);
    const samples: number[] = [];
    for (let seq = 1; seq <= iterations + 3; seq++) {
      const record = make(random, seq);
      const start = performance.now();
      await store.appendRecords([record]);
      if (seq > 3) samples.push(performance.now() - start);
    }
    return summarize(samples);
  });
}

// JSON with Uint8Array fields as base64: the alternative the codec was chosen over.
function jsonEncode(record: PersistRecord): Uint8Array {
  return Buffer.from(JSON.stringify(record, (_key, value: unknown) => (value instanceof Uint8Array ? { $base64: Buffer.from(value).toString("base64") } : value)));
}

function jsonDecode(bytes: Uint8Array): PersistRecord {
  return JSON.parse(Buffer.from(bytes).toString("utf8"), (_key, value: unknown) => {
    if (typeof value === "object" && value !== null && "$base64" in value && typeof value.$base64 === "string") return Uint8Array.from(Buffer.from(value.$base64, "base64"));
    return value;
  }) as PersistRecord;
}

function microsecondsPerRound(rounds: number, action: () => void): number {
  for (let index = 0; index < Math.min(1000, rounds); index++) action();
  const samples: number[] = [];
  for (let trial = 0; trial < 5; trial++) {
    const start = performance.now();
    for (let index = 0; index < rounds; index++) action();
    samples.push(((performance.now() - start) * 1000) / rounds);
  }
  return summarize(samples).medianMs;
}

function measureCodecs(): string[] {
  const random = new Random(3);
  const lines: string[] = [];
  const records: Array<[string, PersistRecord, number]> = [
    ["PREPARE", prepareOf(random, 7), 100_000],
    ["PRE-PREPARE, 100 requests of 100 B", { kind: "pre-prepare", message: prePrepareOf(random, 7, 100) }, 2_000],
  ];
  for (const [name, record, rounds] of records) {
    const binary = encodeRecord(record);
    const json = jsonEncode(record);
    const binaryUs = microsecondsPerRound(rounds, () => decodeRecord(encodeRecord(record)));
    const jsonUs = microsecondsPerRound(rounds, () => jsonDecode(jsonEncode(record)));
    lines.push(`| ${name} | ${binary.length} B | ${binaryUs.toFixed(2)} µs | ${json.length} B | ${jsonUs.toFixed(2)} µs | ${(jsonUs / binaryUs).toFixed(1)}× |`);
  }
  return lines;
}

function measureChecksum(): number {
  const random = new Random(4);
  const body = randomBytes(random, 200 * 1024);
  const key = Buffer.alloc(8);
  return microsecondsPerRound(200, () => unframeValue("block-bodies", key, frameValue("block-bodies", key, body)));
}

function format(summary: Summary): string {
  return `${summary.medianMs.toFixed(2)} ms (p90 ${summary.p90Ms.toFixed(2)})`;
}

async function main(): Promise<void> {
  const iterationsFlag = process.argv.indexOf("--iterations");
  const iterations = iterationsFlag >= 0 ? Number(process.argv[iterationsFlag + 1]) : 50;
  const out = (line: string): boolean => process.stdout.write(`${line}\n`);
  out(`Node ${process.version}, ${iterations} iterations per row, temp directory ${tmpdir()}`);
  out("");
  out("| operation | durable | sync \"none\" |");
  out("| --- | --- | --- |");
  const durableBlock = await measureCommitBlock("durable", iterations);
  const noSyncBlock = await measureCommitBlock("none", iterations);
  out(`| commitBlock: 200 KB body + 1000 state writes | ${format(durableBlock)} | ${format(noSyncBlock)} |`);
  out(
    `| → blocks/s, state writes/s (median) | ${(1000 / durableBlock.medianMs).toFixed(0)}, ${((1000 * 1000) / durableBlock.medianMs / 1000).toFixed(0)}K | ${(1000 / noSyncBlock.medianMs).toFixed(0)}, ${((1000 * 1000) / noSyncBlock.medianMs / 1000).toFixed(0)}K |`,
  );
  const prepare = (random: Random, seq: number): PersistRecord => prepareOf(random, seq);
  const prePrepare = (random: Random, seq: number): PersistRecord => ({ kind: "pre-prepare", message: prePrepareOf(random, seq, 100) });
  out(`| appendRecords: one PREPARE | ${format(await measureAppend("durable", iterations * 4, prepare))} | ${format(await measureAppend("none", iterations * 4, prepare))} |`);
  out(`| appendRecords: one PRE-PREPARE of 100 requests | ${format(await measureAppend("durable", iterations * 2, prePrepare))} | ${format(await measureAppend("none", iterations * 2, prePrepare))} |`);
  out("");
  out("| record (encode + decode) | binary size | binary | JSON+base64 size | JSON+base64 | ratio |");
  out("| --- | --- | --- | --- | --- | --- |");
  for (const line of measureCodecs()) out(line);
  out("");
  out(`CRC-32 frame + check of a 200 KB body: ${measureChecksum().toFixed(1)} µs`);
}

if (process.env.NODE_TEST_CONTEXT === undefined && process.argv[1]?.endsWith("measure-storage.js")) {
  main().catch((error: unknown) => {
    process.stderr.write(`measure-storage: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
