// Transaction signatures verified on worker threads (DESIGN.md: "signature verification off the
// event loop in a worker pool"), for replaying a ledger (`bulwark verify`). The verdicts feed a
// `PrecomputedVerifier`, which the replaying application uses in place of its own verification:
// a verdict answers only for the exact (public key, message, signature) it was computed for, so
// execution gives the same results as verifying inline.

import { Worker } from "node:worker_threads";

import { TransactionDecodeError, TransactionEncodeError, decodeTransaction, transactionSigningMessage } from "../app/transaction.js";
import { Ed25519Verifier } from "../crypto/ed25519.js";

export interface SignatureJob {
  readonly id: number;
  readonly envelopes: readonly Uint8Array[];
}

export interface SignatureVerdicts {
  readonly id: number;
  /** 1: decodes and its signature verifies; 0: not. */
  readonly verdicts: Uint8Array;
}

/** Envelopes per job: large enough to amortize a message, small enough to spread a block. */
const ENVELOPES_PER_JOB = 256;

export class SignaturePool {
  private readonly workers: Worker[];
  private readonly pending = new Map<number, { resolve: (verdicts: Uint8Array) => void; reject: (error: Error) => void }>();
  private nextJobId = 0;
  private nextWorker = 0;

  constructor(workerCount: number) {
    if (!Number.isSafeInteger(workerCount) || workerCount < 1 || workerCount > 64) throw new RangeError(`signature pool: ${workerCount} workers; 1 to 64`);
    this.workers = Array.from({ length: workerCount }, () => {
      const worker = new Worker(new URL("./signature-worker.js", import.meta.url));
      worker.on("message", (reply: SignatureVerdicts) => {
        const job = this.pending.get(reply.id);
        this.pending.delete(reply.id);
        job?.resolve(reply.verdicts);
      });
      worker.on("error", (error) => this.failAll(error));
      return worker;
    });
  }

  /** Whether each envelope decodes and its signature verifies, in order. */
  async verify(envelopes: readonly Uint8Array[]): Promise<Uint8Array> {
    const jobs: Array<Promise<Uint8Array>> = [];
    for (let start = 0; start < envelopes.length; start += ENVELOPES_PER_JOB) {
      jobs.push(this.submit(envelopes.slice(start, start + ENVELOPES_PER_JOB)));
    }
    const parts = await Promise.all(jobs);
    const verdicts = new Uint8Array(envelopes.length);
    let offset = 0;
    for (const part of parts) {
      verdicts.set(part, offset);
      offset += part.length;
    }
    return verdicts;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.terminate()));
    this.failAll(new Error("signature pool: closed"));
  }

  private submit(envelopes: readonly Uint8Array[]): Promise<Uint8Array> {
    const id = this.nextJobId++;
    const worker = this.workers[this.nextWorker++ % this.workers.length]!;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const job: SignatureJob = { id, envelopes };
      worker.postMessage(job);
    });
  }

  private failAll(error: Error): void {
    for (const job of this.pending.values()) job.reject(error);
    this.pending.clear();
  }
}

/**
 * An Ed25519Verifier that answers from verdicts computed elsewhere for the exact triples they
 * were computed for, and verifies anything else itself.
 */
export class PrecomputedVerifier extends Ed25519Verifier {
  private readonly verdicts = new Map<string, boolean>();

  /** Records the pool's verdicts for `envelopes` (undecodable ones are skipped: admission refuses them first). */
  record(envelopes: readonly Uint8Array[], verdicts: Uint8Array): void {
    envelopes.forEach((envelope, index) => {
      try {
        const transaction = decodeTransaction(envelope);
        this.verdicts.set(tripleKey(transaction.clientKey, transactionSigningMessage(transaction), transaction.signature), verdicts[index] === 1);
      } catch (error) {
        if (!(error instanceof TransactionDecodeError) && !(error instanceof TransactionEncodeError)) throw error;
      }
    });
  }

  /** Forgets every verdict (call between blocks, so memory stays bounded by one block). */
  clear(): void {
    this.verdicts.clear();
  }

  override verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    const known = this.verdicts.get(tripleKey(publicKey, message, signature));
    return known ?? super.verify(publicKey, message, signature);
  }
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("latin1");
}

/** Lengths first, so no two different triples share a key. */
function tripleKey(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): string {
  return `${publicKey.length}:${signature.length}:${latin1(publicKey)}${latin1(signature)}${latin1(message)}`;
}
