// A worker thread of the signature pool (signature-pool.ts): given transaction envelopes, answers
// for each whether it decodes and its signature verifies. Ed25519 verification is most of the
// cost of replaying a ledger, and it is pure, so it runs here, off the thread that executes.

import { parentPort } from "node:worker_threads";

import { TransactionDecodeError, decodeTransaction, verifyTransaction } from "../app/transaction.js";
import type { SignatureJob, SignatureVerdicts } from "./signature-pool.js";

function verdictOf(envelope: Uint8Array): number {
  try {
    return verifyTransaction(decodeTransaction(envelope)) ? 1 : 0;
  } catch (error) {
    if (error instanceof TransactionDecodeError) return 0;
    throw error;
  }
}

const port = parentPort;
if (port === null) throw new Error("signature-worker: run as a worker thread of SignaturePool");
port.on("message", (job: SignatureJob) => {
  const verdicts = new Uint8Array(job.envelopes.length);
  job.envelopes.forEach((envelope, index) => {
    verdicts[index] = verdictOf(envelope);
  });
  const reply: SignatureVerdicts = { id: job.id, verdicts };
  port.postMessage(reply, [verdicts.buffer]);
});
