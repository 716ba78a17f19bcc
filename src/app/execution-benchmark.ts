// Throughput of ledger execution: `Executor.executeBatch` over 1000-transaction batches, then
// one `stateDigest()` (the state tree rehashing its dirty paths once per batch), for transfers
// and for key-value puts, with signature verification at execution and without it (a replica
// may skip it because its consensus core verified every committed request; see AdmitOptions).
// Signing happens before the clock starts. A measurement to run by hand, not a test:
//
//   npm run build && node dist/src/app/execution-benchmark.js [batches] [accounts]
//
// Prints one line per configuration: transactions per second, and microseconds per transaction
// with the share spent in `stateDigest()`.

import { createHash } from "node:crypto";

import type { ClientRequest } from "../consensus/pbft/types.js";
import { type Ed25519KeyPair, ed25519KeyPairFromSeed } from "../crypto/ed25519.js";
import { Executor } from "./executor.js";
import { createLedgerApplication } from "./ledger-application.js";
import { requestFromTransaction } from "./request.js";
import { resultErrorCode } from "./result.js";
import { type Operation, type Transaction, signTransaction } from "./transaction.js";

const BATCH_TRANSACTIONS = 1000;
const batchCount = Number(process.argv[2] ?? 10);
const accountCount = Number(process.argv[3] ?? 10_000);

function keyOf(index: number): Ed25519KeyPair {
  return ed25519KeyPairFromSeed(createHash("sha256").update(`bench key ${index}`).digest());
}

function sign(key: Ed25519KeyPair, nonce: number, operation: Operation): ClientRequest {
  return requestFromTransaction(signTransaction(key.privateKey, { clientKey: key.publicKey, nonce, operation }));
}

type Workload = "transfer" | "put";

interface Prepared {
  readonly genesis: ClientRequest[][];
  readonly batches: ClientRequest[][];
}

/**
 * Batches in which every transaction comes from a different sender (as in a busy cluster with
 * many clients), each sender's nonces in order across batches. State starts with `accountCount`
 * funded accounts, and kv puts go to fresh keys, so the tree grows as it would in service.
 */
function prepare(workload: Workload, authority: Ed25519KeyPair, keys: readonly Ed25519KeyPair[]): Prepared {
  const genesis: ClientRequest[][] = [];
  let authorityNonce = 1;
  for (let start = 0; start < keys.length; start += BATCH_TRANSACTIONS) {
    genesis.push(keys.slice(start, start + BATCH_TRANSACTIONS).map((key) => sign(authority, authorityNonce++, { type: "mint", to: key.publicKey, amount: 1_000_000n })));
  }
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
      const operation: Operation =
        workload === "transfer"
          ? { type: "transfer", to: recipient.publicKey, amount: 1n }
          : { type: "put", key: new TextEncoder().encode(`key ${batch}/${index}`), value: new Uint8Array(100).fill(batch) };
      requests.push(sign(key, nonce, operation));
    }
    batches.push(requests);
  }
  return { genesis, batches };
}

function measure(name: string, prepared: Prepared, authority: Ed25519KeyPair, verifySignatures: boolean): void {
  const executor = new Executor<Transaction>(createLedgerApplication({ authority: authority.publicKey, verifySignatures }));
  let seq = 0;
  const run = (requests: ClientRequest[]): void => {
    seq += 1;
    const executed = executor.executeBatch({ seq, view: 0, digest: `d${seq}`, requests });
    const failed = executed.find((entry) => resultErrorCode(entry.result) !== undefined);
    if (failed !== undefined) throw new Error(`benchmark transaction failed: ${resultErrorCode(failed.result)}`);
  };
  for (const batch of prepared.genesis) {
    run(batch);
    executor.stateDigest();
  }
  let executeNs = 0n;
  let digestNs = 0n;
  for (const batch of prepared.batches) {
    const start = process.hrtime.bigint();
    run(batch);
    const executed = process.hrtime.bigint();
    executor.stateDigest();
    const end = process.hrtime.bigint();
    executeNs += executed - start;
    digestNs += end - executed;
  }
  const transactions = prepared.batches.length * BATCH_TRANSACTIONS;
  const totalNs = Number(executeNs + digestNs);
  const perTransactionUs = totalNs / 1000 / transactions;
  const digestShare = (100 * Number(digestNs)) / totalNs;
  const rate = Math.round(transactions / (totalNs / 1e9));
  console.log(
    `${name.padEnd(34)} ${String(rate).padStart(8)} tx/s  ${perTransactionUs.toFixed(2).padStart(7)} µs/tx  (stateDigest ${digestShare.toFixed(0)}% of it)`,
  );
}

function main(): void {
  const authority = keyOf(-1);
  const keys = Array.from({ length: accountCount }, (_, index) => keyOf(index));
  console.log(`${batchCount} batches of ${BATCH_TRANSACTIONS} transactions; ${accountCount} funded accounts; Node ${process.version}`);
  for (const workload of ["transfer", "put"] as const) {
    const prepared = prepare(workload, authority, keys);
    // A first pass warms up the JIT and the verifier's key cache; the second is reported.
    for (const pass of ["warm-up", "measured"]) {
      for (const verify of [false, true]) {
        if (pass === "warm-up" && verify) continue;
        const name = `${workload}s, ${verify ? "with" : "without"} signature check`;
        if (pass === "measured") measure(name, prepared, authority, verify);
        else measure(`(warm-up) ${name}`, prepared, authority, verify);
      }
    }
  }
}

main();
