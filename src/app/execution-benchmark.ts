// Throughput of ledger execution: `Executor.executeBatch` over 1000-transaction batches, then
// one `stateDigest()` (the state tree rehashing its dirty paths once per batch), for
//
//   transfers   tokens between funded accounts (each batch's senders and recipients spread out)
//   puts        100-byte values to fresh keys, so the tree grows as it would in service
//   zipf puts   100-byte values over 100,000 preloaded keys drawn as YCSB's workload A draws
//               them (bench/zipfian.ts, scrambled zipfian, theta 0.99), so hot keys are
//               rewritten many times per batch
//   noops       nothing but the nonce: the per-transaction cost every operation pays
//
// with signature verification at execution and without it (a replica may skip it because its
// consensus core verified every committed request; see AdmitOptions). Signing happens before the
// clock starts. A measurement to run by hand, not a test:
//
//   npm run build && node dist/src/app/execution-benchmark.js [batches] [accounts] [workloads] [signatures] [repeats]
//
// `workloads` is a comma-separated subset of transfer,put,zipf-put,noop (default: all);
// `signatures` is with, without or both (default both); each configuration runs `repeats` times
// (default 3) on a fresh ledger. Prints one line per configuration, from its median run:
// transactions per second, and microseconds per transaction with the share spent in
// `stateDigest()` and the processor time per transaction.

import { createHash } from "node:crypto";

import { ScrambledZipfian } from "../bench/zipfian.js";
import type { ClientRequest } from "../consensus/pbft/types.js";
import { type Ed25519KeyPair, ed25519KeyPairFromSeed } from "../crypto/ed25519.js";
import { Executor } from "./executor.js";
import { createLedgerApplication } from "./ledger-application.js";
import { requestFromTransaction } from "./request.js";
import { resultErrorCode } from "./result.js";
import { type Operation, type Transaction, signTransaction } from "./transaction.js";

const BATCH_TRANSACTIONS = 1000;
const VALUE_BYTES = 100;
const ZIPF_KEY_COUNT = 100_000;
const ZIPF_SEED = 42;

const WORKLOADS = ["transfer", "put", "zipf-put", "noop"] as const;
type Workload = (typeof WORKLOADS)[number];

const batchCount = Number(process.argv[2] ?? 10);
const accountCount = Number(process.argv[3] ?? 10_000);
const workloads = parseWorkloads(process.argv[4]);
const signatureModes = parseSignatureModes(process.argv[5]);
const repeats = Number(process.argv[6] ?? 3);

function parseWorkloads(text: string | undefined): Workload[] {
  if (text === undefined || text === "all") return [...WORKLOADS];
  return text.split(",").map((name) => {
    if (!(WORKLOADS as readonly string[]).includes(name)) throw new Error(`unknown workload ${name}; expected some of ${WORKLOADS.join(",")}`);
    return name as Workload;
  });
}

function parseSignatureModes(text: string | undefined): boolean[] {
  switch (text ?? "both") {
    case "both":
      return [false, true];
    case "with":
      return [true];
    case "without":
      return [false];
    default:
      throw new Error(`signatures: expected with, without or both, not ${text}`);
  }
}

function keyOf(index: number): Ed25519KeyPair {
  return ed25519KeyPairFromSeed(createHash("sha256").update(`bench key ${index}`).digest());
}

function sign(key: Ed25519KeyPair, nonce: number, operation: Operation): ClientRequest {
  return requestFromTransaction(signTransaction(key.privateKey, { clientKey: key.publicKey, nonce, operation }));
}

interface Prepared {
  readonly genesis: ClientRequest[][];
  readonly batches: ClientRequest[][];
}

function zipfKey(rank: number): Uint8Array {
  return new TextEncoder().encode(`zipf key ${rank}`);
}

/**
 * Batches in which every transaction comes from a different sender (as in a busy cluster with
 * many clients), each sender's nonces in order across batches. State starts with `accountCount`
 * funded accounts (and, for zipf puts, every key of the distribution).
 */
function prepare(workload: Workload, authority: Ed25519KeyPair, keys: readonly Ed25519KeyPair[]): Prepared {
  const genesis: ClientRequest[][] = [];
  let authorityNonce = 1;
  const genesisOperations: Operation[] = keys.map((key) => ({ type: "mint", to: key.publicKey, amount: 1_000_000n }));
  if (workload === "zipf-put") {
    for (let rank = 0; rank < ZIPF_KEY_COUNT; rank++) genesisOperations.push({ type: "put", key: zipfKey(rank), value: new Uint8Array(VALUE_BYTES) });
  }
  for (let start = 0; start < genesisOperations.length; start += BATCH_TRANSACTIONS) {
    genesis.push(genesisOperations.slice(start, start + BATCH_TRANSACTIONS).map((operation) => sign(authority, authorityNonce++, operation)));
  }
  const zipf = new ScrambledZipfian(ZIPF_KEY_COUNT, ZIPF_SEED);
  const nonces = new Map<Ed25519KeyPair, number>();
  const batches: ClientRequest[][] = [];
  let sender = 0;
  for (let batch = 0; batch < batchCount; batch++) {
    const requests: ClientRequest[] = [];
    for (let index = 0; index < BATCH_TRANSACTIONS; index++) {
      const key = keys[sender % keys.length]!;
      const recipient = keys[(sender * 7919 + 13) % keys.length]!;
      sender++;
      const nonce = (nonces.get(key) ?? 0) + 1;
      nonces.set(key, nonce);
      requests.push(sign(key, nonce, operationOf(workload, recipient, batch, index, zipf)));
    }
    batches.push(requests);
  }
  return { genesis, batches };
}

function operationOf(workload: Workload, recipient: Ed25519KeyPair, batch: number, index: number, zipf: ScrambledZipfian): Operation {
  switch (workload) {
    case "transfer":
      return { type: "transfer", to: recipient.publicKey, amount: 1n };
    case "put":
      return { type: "put", key: new TextEncoder().encode(`key ${batch}/${index}`), value: new Uint8Array(VALUE_BYTES).fill(batch) };
    case "zipf-put":
      return { type: "put", key: zipfKey(zipf.next()), value: new Uint8Array(VALUE_BYTES).fill(index) };
    case "noop":
      return { type: "noop" };
  }
}

/** The measured part, in a function of its own so that a profile can be narrowed to it (`--cpu-prof`). */
function timedBatches(
  batches: readonly ClientRequest[][],
  run: (requests: readonly ClientRequest[]) => void,
  executor: Executor<Transaction>,
): { executeNs: bigint; digestNs: bigint; cpu: NodeJS.CpuUsage } {
  let executeNs = 0n;
  let digestNs = 0n;
  const cpuStart = process.cpuUsage();
  for (const batch of batches) {
    const start = process.hrtime.bigint();
    run(batch);
    const executed = process.hrtime.bigint();
    executor.stateDigest();
    const end = process.hrtime.bigint();
    executeNs += executed - start;
    digestNs += end - executed;
  }
  return { executeNs, digestNs, cpu: process.cpuUsage(cpuStart) };
}

interface Measurement {
  readonly executeNs: number;
  readonly digestNs: number;
  readonly processorUs: number;
}

/** Runs genesis and then the timed batches on a fresh ledger. */
function measureOnce(prepared: Prepared, authority: Ed25519KeyPair, verifySignatures: boolean): Measurement {
  const executor = new Executor<Transaction>(createLedgerApplication({ authority: authority.publicKey, verifySignatures }));
  let seq = 0;
  const run = (requests: readonly ClientRequest[]): void => {
    seq += 1;
    const executed = executor.executeBatch({ seq, view: 0, digest: `d${seq}`, requests });
    const failed = executed.find((entry) => resultErrorCode(entry.result) !== undefined);
    if (failed !== undefined) throw new Error(`benchmark transaction failed: ${resultErrorCode(failed.result)}`);
  };
  for (const batch of prepared.genesis) {
    run(batch);
    executor.stateDigest();
  }
  const { executeNs, digestNs, cpu } = timedBatches(prepared.batches, run, executor);
  return { executeNs: Number(executeNs), digestNs: Number(digestNs), processorUs: cpu.user + cpu.system };
}

/**
 * Measures `repeats` times, each on a fresh ledger, and prints the run with the median total time:
 * on a shared machine single runs vary by ±25%, and repeating in one process costs no new signing.
 */
function measure(name: string, prepared: Prepared, authority: Ed25519KeyPair, verifySignatures: boolean): void {
  const runs: Measurement[] = [];
  for (let repeat = 0; repeat < repeats; repeat++) runs.push(measureOnce(prepared, authority, verifySignatures));
  runs.sort((left, right) => left.executeNs + left.digestNs - (right.executeNs + right.digestNs));
  const { executeNs, digestNs, processorUs } = runs[Math.floor(runs.length / 2)]!;
  const transactions = prepared.batches.length * BATCH_TRANSACTIONS;
  const totalNs = executeNs + digestNs;
  const perTransactionUs = totalNs / 1000 / transactions;
  const digestShare = (100 * digestNs) / totalNs;
  const rate = Math.round(transactions / (totalNs / 1e9));
  // Processor time (every thread of the process, the collector's included) beside wall time: on a
  // shared machine the wall clock also counts the time other processes held the processor.
  const processorPerTransactionUs = processorUs / transactions;
  console.log(
    `${name.padEnd(34)} ${String(rate).padStart(8)} tx/s  ${perTransactionUs.toFixed(2).padStart(7)} µs/tx  (stateDigest ${digestShare.toFixed(0)}% of it; processor ${processorPerTransactionUs.toFixed(2)} µs/tx)`,
  );
}

function main(): void {
  const authority = keyOf(-1);
  const keys = Array.from({ length: accountCount }, (_, index) => keyOf(index));
  console.log(`${batchCount} batches of ${BATCH_TRANSACTIONS} transactions; ${accountCount} funded accounts; median of ${repeats} runs; Node ${process.version}`);
  for (const workload of workloads) {
    const prepared = prepare(workload, authority, keys);
    // A first pass warms up the JIT and the verifier's key cache; the later ones are reported.
    measure(`(warm-up) ${workload}s`, prepared, authority, false);
    for (const verify of signatureModes) measure(`${workload}s, ${verify ? "with" : "without"} signature check`, prepared, authority, verify);
  }
}

main();
