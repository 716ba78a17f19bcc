// A pool of worker threads that verifies batches of Ed25519 signatures, so that the replica's
// event loop stays free for consensus and I/O while most of its CPU goes to verification
// (LIMITS.md: over 90 % per transaction). The approach is Lodestar's: batches, not single
// signatures, cross the thread boundary, each as one packed ArrayBuffer that is transferred,
// not cloned, and verdicts come back as one byte per signature.
//
// Backend. sodium-native (libsodium) is the default, node:crypto (OpenSSL, with the
// KeyObject cache of ed25519.ts) the fallback when the native module cannot be loaded (sodium.ts
// loads it, chooses, and reports the choice with every other primitive's: cryptoBackends()).
// Measured with src/bench/ed25519-bench.ts on the 2-vCPU CI machine kind (shared with other
// jobs, so two runs give a range), 100-byte messages, medians of 3. One core: sodium-native
// 14.6K–17.9K verifies/s, node:crypto 7.9K–8.7K/s, 1.7–2.1 times slower (LIMITS.md: 13.8K /
// 8.6K). Two workers, batches of 512: sodium-native 18.6K–31.7K/s, node:crypto 7.9K–10.0K/s;
// node:crypto also gained less from the second worker in every run. libsodium needs no
// KeyObject and no cache, so it is also the faster on keys seen for the first time.
// Re-measured for issue 4 (same machine kind, other jobs running): one core sodium-native
// 18.8K/s, node:crypto 8.5K/s; two workers, batches of 512: sodium-native 34.8K/s, node:crypto
// 8.1K/s, again no gain from its second worker. Under heavy load (load average 10-15) the
// figures fell by half or more, the ratio stayed 1.5-2.2. Event-loop delay while 12,288
// signatures were verified in batches of 512: p99 9 ms through two workers, 52 ms inline.
// So "auto" is the replica's choice for its pool and for what it verifies inline (replica-crypto.ts).
//
// Verdict policy. Every replica must reach the same verdict on every signature whichever
// library it runs, or a client could split the replicas with one crafted transaction. The two
// libraries differ on inputs no honest signer produces: libsodium refuses a signature whose R
// is a point of small order, OpenSSL accepts it (its owner can craft one: R = identity,
// S = k·a mod L). So both backends first apply one policy, `ed25519SignaturePolicyAllows` (ed25519.ts): the public
// key passes `ed25519PublicKeyProblem` (canonical, not small order) and so does R. What is left
// is the cofactorless equation and the S < L check, which both libraries perform alike.

import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  Ed25519Verifier,
  ed25519SignaturePolicyAllows,
} from "./ed25519.js";
import { type CryptoBackendName, type CryptoBackendPreference, chooseSodium } from "./sodium.js";

// ---------------------------------------------------------------------------------------------
// Types

/** One signature to check. Anything malformed yields a 0 verdict, never an exception. */
export interface SignedItem {
  readonly publicKey: Uint8Array;
  readonly message: Uint8Array;
  readonly signature: Uint8Array;
}

export interface Ed25519VerifyBackend {
  readonly name: CryptoBackendName;
  /** Verdict on one signature under the shared policy. Never throws. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}

export interface VerifyPoolOptions {
  /** Worker threads; default os.availableParallelism(). */
  readonly workerCount?: number;
  /** "auto" (the default): sodium-native when it loads. */
  readonly backend?: CryptoBackendPreference;
  /** Batches accepted and not yet settled; one more is rejected with code "queue-full". */
  readonly pendingBatchesMax?: number;
  /** Largest batch accepted, which bounds the memory of one packed buffer. */
  readonly batchItemsMax?: number;
  /** A batch is split across workers only into parts of at least this many items. */
  readonly chunkItemsMin?: number;
  /** Chunks posted to one worker and not yet answered; 2 lets it start the next at once. */
  readonly inFlightChunksPerWorkerMax?: number;
  /** Called when a worker dies; the pool has already failed its jobs and replaced it. */
  readonly onWorkerCrash?: (error: Error, workerIndex: number) => void;
}

export type VerifyPoolErrorCode = "queue-full" | "closed" | "worker-crashed" | "broken" | "too-large";

export class VerifyPoolError extends Error {
  override readonly name = "VerifyPoolError";
  constructor(
    readonly code: VerifyPoolErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface VerifyPoolStats {
  readonly backend: CryptoBackendName;
  readonly workerCount: number;
  readonly pendingBatches: number;
  readonly queuedChunks: number;
  readonly inFlightChunks: number;
  readonly workerCrashes: number;
}

/** Messages between the pool and its workers (verify-worker.ts). */
export type VerifyWorkerRequest = { type: "verify"; jobId: number; packed: ArrayBuffer } | { type: "crash" };
export type VerifyWorkerResponse = { type: "results"; jobId: number; results: Uint8Array };
export interface VerifyWorkerData {
  readonly backend: CryptoBackendName;
}

export const VERIFY_POOL_PENDING_BATCHES_MAX_DEFAULT = 1024;
export const VERIFY_POOL_BATCH_ITEMS_MAX_DEFAULT = 65_536;
export const VERIFY_POOL_CHUNK_ITEMS_MIN_DEFAULT = 32;
export const VERIFY_POOL_IN_FLIGHT_CHUNKS_PER_WORKER_MAX_DEFAULT = 2;
// A worker that dies this many times in a row without finishing a job (a missing worker file, a
// native module that crashes on load) would otherwise be replaced forever.
const CONSECUTIVE_CRASHES_MAX = 3;

// ---------------------------------------------------------------------------------------------
// Backends

/** A backend for this thread. An explicit "sodium-native" throws when the module cannot load. */
export function createEd25519VerifyBackend(preference: CryptoBackendPreference = "auto"): Ed25519VerifyBackend {
  const sodium = chooseSodium("ed25519", preference);
  if (sodium !== null) {
    return {
      name: "sodium-native",
      verify(publicKey, message, signature) {
        if (!ed25519SignaturePolicyAllows(publicKey, signature)) return false;
        try {
          return sodium.crypto_sign_verify_detached(signature, message, publicKey);
        } catch {
          return false;
        }
      },
    };
  }
  const verifier = new Ed25519Verifier();
  return {
    name: "node:crypto",
    verify(publicKey, message, signature) {
      return ed25519SignaturePolicyAllows(publicKey, signature) && verifier.verify(publicKey, message, signature);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Packed batches
//
// Layout of one packed chunk of n items (one ArrayBuffer, transferred to the worker):
//   u32[n + 2]   n, then n + 1 message offsets (relative to the message area)
//   u8[n]        1 when the item is well formed (Uint8Arrays of the right lengths)
//   u8[32 n]     public keys
//   u8[64 n]     signatures
//   u8[...]      messages, concatenated

function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array;
}

/** Copies items [start, end) into one fresh ArrayBuffer. */
export function packSignedItems(items: readonly SignedItem[], start = 0, end = items.length): ArrayBuffer {
  const count = end - start;
  let messageBytes = 0;
  for (let index = start; index < end; index += 1) {
    const message = (items[index] as SignedItem).message;
    if (isBytes(message)) messageBytes += message.length;
  }
  const headerBytes = 4 * (count + 2);
  const flagsOffset = headerBytes;
  const keysOffset = flagsOffset + count;
  const signaturesOffset = keysOffset + ED25519_PUBLIC_KEY_BYTES * count;
  const messagesOffset = signaturesOffset + ED25519_SIGNATURE_BYTES * count;
  if (messagesOffset + messageBytes > 0xffff_ffff) throw new VerifyPoolError("too-large", "a verification batch is over 4 GiB; split it");
  const buffer = new ArrayBuffer(messagesOffset + messageBytes);
  const header = new Uint32Array(buffer, 0, count + 2);
  const bytes = new Uint8Array(buffer);
  header[0] = count;
  let messageOffset = 0;
  for (let position = 0; position < count; position += 1) {
    const item = items[start + position] as SignedItem;
    header[1 + position] = messageOffset;
    const { publicKey, message, signature } = item;
    const wellFormed =
      isBytes(publicKey) &&
      isBytes(message) &&
      isBytes(signature) &&
      publicKey.length === ED25519_PUBLIC_KEY_BYTES &&
      signature.length === ED25519_SIGNATURE_BYTES;
    if (wellFormed) {
      bytes[flagsOffset + position] = 1;
      bytes.set(publicKey, keysOffset + ED25519_PUBLIC_KEY_BYTES * position);
      bytes.set(signature, signaturesOffset + ED25519_SIGNATURE_BYTES * position);
    }
    if (isBytes(message)) {
      bytes.set(message, messagesOffset + messageOffset);
      messageOffset += message.length;
    }
  }
  header[1 + count] = messageOffset;
  return buffer;
}

/** Verdicts (1 valid, 0 not) for a packed chunk, in item order. */
export function verifyPackedItems(backend: Ed25519VerifyBackend, packed: ArrayBuffer): Uint8Array {
  const count = new Uint32Array(packed, 0, 1)[0] as number;
  const header = new Uint32Array(packed, 0, count + 2);
  const bytes = new Uint8Array(packed);
  const flagsOffset = 4 * (count + 2);
  const keysOffset = flagsOffset + count;
  const signaturesOffset = keysOffset + ED25519_PUBLIC_KEY_BYTES * count;
  const messagesOffset = signaturesOffset + ED25519_SIGNATURE_BYTES * count;
  const results = new Uint8Array(count);
  for (let position = 0; position < count; position += 1) {
    if (bytes[flagsOffset + position] !== 1) continue;
    const keyStart = keysOffset + ED25519_PUBLIC_KEY_BYTES * position;
    const signatureStart = signaturesOffset + ED25519_SIGNATURE_BYTES * position;
    const messageStart = messagesOffset + (header[1 + position] as number);
    const messageEnd = messagesOffset + (header[2 + position] as number);
    const valid = backend.verify(
      bytes.subarray(keyStart, keyStart + ED25519_PUBLIC_KEY_BYTES),
      bytes.subarray(messageStart, messageEnd),
      bytes.subarray(signatureStart, signatureStart + ED25519_SIGNATURE_BYTES),
    );
    results[position] = valid ? 1 : 0;
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// The pool

interface PendingBatch {
  readonly results: Uint8Array;
  chunksOutstanding: number;
  settled: boolean;
  readonly resolve: (results: Uint8Array) => void;
  readonly reject: (error: Error) => void;
}

interface Chunk {
  readonly jobId: number;
  readonly batch: PendingBatch;
  /** Index in the batch of the chunk's first item. */
  readonly start: number;
  readonly packed: ArrayBuffer;
}

interface WorkerSlot {
  readonly index: number;
  readonly worker: Worker;
  readonly inFlight: Map<number, Chunk>;
  lastError: Error | null;
  exited: boolean;
}

const WORKER_URL = new URL("./verify-worker.js", import.meta.url);

export class VerifyPool {
  readonly backend: CryptoBackendName;
  readonly workerCount: number;
  private readonly pendingBatchesMax: number;
  private readonly batchItemsMax: number;
  private readonly chunkItemsMin: number;
  private readonly inFlightChunksPerWorkerMax: number;
  private readonly onWorkerCrash: (error: Error, workerIndex: number) => void;
  private readonly slots: WorkerSlot[] = [];
  private readonly queue: Chunk[] = [];
  private readonly pending = new Set<PendingBatch>();
  private nextJobId = 1;
  private consecutiveCrashes = 0;
  private workerCrashes = 0;
  private closed = false;
  private brokenBy: Error | null = null;
  private closing: Promise<void> | null = null;

  constructor(options: VerifyPoolOptions = {}) {
    this.workerCount = positiveInteger("workerCount", options.workerCount ?? availableParallelism());
    this.pendingBatchesMax = positiveInteger("pendingBatchesMax", options.pendingBatchesMax ?? VERIFY_POOL_PENDING_BATCHES_MAX_DEFAULT);
    this.batchItemsMax = positiveInteger("batchItemsMax", options.batchItemsMax ?? VERIFY_POOL_BATCH_ITEMS_MAX_DEFAULT);
    this.chunkItemsMin = positiveInteger("chunkItemsMin", options.chunkItemsMin ?? VERIFY_POOL_CHUNK_ITEMS_MIN_DEFAULT);
    this.inFlightChunksPerWorkerMax = positiveInteger(
      "inFlightChunksPerWorkerMax",
      options.inFlightChunksPerWorkerMax ?? VERIFY_POOL_IN_FLIGHT_CHUNKS_PER_WORKER_MAX_DEFAULT,
    );
    this.onWorkerCrash =
      options.onWorkerCrash ??
      ((error, workerIndex) => process.emitWarning(`verification worker ${workerIndex} died and was replaced: ${error.message}`));
    // Decide the backend here, once, so every worker runs the same one and an explicit
    // "sodium-native" that cannot load throws to the caller rather than in a worker. Why "auto"
    // fell back is cryptoBackends()'s to report (sodium.ts).
    this.backend = chooseSodium("ed25519", options.backend ?? "auto") === null ? "node:crypto" : "sodium-native";
    for (let index = 0; index < this.workerCount; index += 1) this.slots.push(this.startWorker(index));
  }

  /**
   * Verdicts for `items`, one byte each (1 valid, 0 invalid or malformed), in order. Rejects with
   * a VerifyPoolError: "queue-full" when pendingBatchesMax batches are pending (back off and
   * retry), "worker-crashed" when a worker died with part of this batch, "closed", "broken".
   */
  verifyBatch(items: readonly SignedItem[]): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new VerifyPoolError("closed", "the verification pool is closed"));
    if (this.brokenBy !== null) {
      return Promise.reject(
        new VerifyPoolError("broken", `the verification pool stopped after its workers kept dying: ${this.brokenBy.message}`, {
          cause: this.brokenBy,
        }),
      );
    }
    if (items.length === 0) return Promise.resolve(new Uint8Array(0));
    if (items.length > this.batchItemsMax) {
      return Promise.reject(
        new VerifyPoolError("too-large", `a batch of ${items.length} signatures is over batchItemsMax (${this.batchItemsMax}); split it`),
      );
    }
    if (this.pending.size >= this.pendingBatchesMax) {
      return Promise.reject(
        new VerifyPoolError(
          "queue-full",
          `the verification pool already has ${this.pending.size} batches pending (pendingBatchesMax); ` +
            "wait for some to finish, or raise pendingBatchesMax",
        ),
      );
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      const chunkCount = Math.min(this.workerCount, Math.ceil(items.length / this.chunkItemsMin));
      const chunkItems = Math.ceil(items.length / chunkCount);
      const batch: PendingBatch = {
        results: new Uint8Array(items.length),
        chunksOutstanding: 0,
        settled: false,
        resolve,
        reject,
      };
      for (let start = 0; start < items.length; start += chunkItems) {
        const end = Math.min(items.length, start + chunkItems);
        this.queue.push({ jobId: this.nextJobId++, batch, start, packed: packSignedItems(items, start, end) });
        batch.chunksOutstanding += 1;
      }
      this.pending.add(batch);
      this.dispatch();
    });
  }

  stats(): VerifyPoolStats {
    let inFlightChunks = 0;
    for (const slot of this.slots) inFlightChunks += slot.inFlight.size;
    return {
      backend: this.backend,
      workerCount: this.workerCount,
      pendingBatches: this.pending.size,
      queuedChunks: this.queue.length,
      inFlightChunks,
      workerCrashes: this.workerCrashes,
    };
  }

  /** Fails every pending batch with "closed" and terminates the workers. Idempotent. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closed = true;
    this.failAll(new VerifyPoolError("closed", "the verification pool was closed before this batch was verified"));
    this.closing = Promise.all(this.slots.map((slot) => slot.worker.terminate())).then(() => undefined);
    return this.closing;
  }

  /**
   * Fault injection for tests: makes worker `workerIndex` throw an uncaught error before it
   * handles anything posted after this call.
   */
  crashWorkerForTesting(workerIndex: number): void {
    const slot = this.slots[workerIndex];
    if (slot === undefined) throw new RangeError(`there is no worker ${workerIndex}`);
    const request: VerifyWorkerRequest = { type: "crash" };
    slot.worker.postMessage(request);
  }

  private startWorker(index: number): WorkerSlot {
    const workerData: VerifyWorkerData = { backend: this.backend };
    const worker = new Worker(WORKER_URL, { workerData });
    const slot: WorkerSlot = { index, worker, inFlight: new Map(), lastError: null, exited: false };
    worker.on("message", (response: VerifyWorkerResponse) => this.onResults(slot, response));
    worker.on("error", (error: Error) => {
      slot.lastError = error;
    });
    worker.on("messageerror", (error: Error) => {
      slot.lastError = error;
      void worker.terminate();
    });
    worker.on("exit", (exitCode: number) => this.onExit(slot, exitCode));
    return slot;
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const chunk = this.queue[0] as Chunk;
      if (chunk.batch.settled) {
        this.queue.shift();
        continue;
      }
      let target: WorkerSlot | null = null;
      for (const slot of this.slots) {
        if (slot.exited || slot.inFlight.size >= this.inFlightChunksPerWorkerMax) continue;
        if (target === null || slot.inFlight.size < target.inFlight.size) target = slot;
      }
      if (target === null) return;
      this.queue.shift();
      target.inFlight.set(chunk.jobId, chunk);
      const request: VerifyWorkerRequest = { type: "verify", jobId: chunk.jobId, packed: chunk.packed };
      target.worker.postMessage(request, [chunk.packed]);
    }
  }

  private onResults(slot: WorkerSlot, response: VerifyWorkerResponse): void {
    const chunk = slot.inFlight.get(response.jobId);
    if (chunk === undefined) throw new Error(`verification worker ${slot.index} answered unknown job ${response.jobId}`);
    slot.inFlight.delete(response.jobId);
    this.consecutiveCrashes = 0;
    const batch = chunk.batch;
    if (!batch.settled) {
      batch.results.set(response.results, chunk.start);
      batch.chunksOutstanding -= 1;
      if (batch.chunksOutstanding === 0) this.settle(batch, null);
    }
    this.dispatch();
  }

  private onExit(slot: WorkerSlot, exitCode: number): void {
    slot.exited = true;
    if (this.closed) return;
    const error = slot.lastError ?? new Error(`exited with code ${exitCode}`);
    this.workerCrashes += 1;
    this.consecutiveCrashes += 1;
    for (const chunk of slot.inFlight.values()) {
      this.settle(
        chunk.batch,
        new VerifyPoolError("worker-crashed", `verification worker ${slot.index} died during this batch (${error.message}); retry it`, {
          cause: error,
        }),
      );
    }
    slot.inFlight.clear();
    if (this.consecutiveCrashes >= CONSECUTIVE_CRASHES_MAX) {
      this.brokenBy = error;
      this.failAll(new VerifyPoolError("broken", `the verification pool stopped after its workers kept dying: ${error.message}`, { cause: error }));
    } else {
      this.slots[slot.index] = this.startWorker(slot.index);
    }
    this.onWorkerCrash(error, slot.index);
    this.dispatch();
  }

  private settle(batch: PendingBatch, error: Error | null): void {
    if (batch.settled) return;
    batch.settled = true;
    this.pending.delete(batch);
    if (error === null) batch.resolve(batch.results);
    else batch.reject(error);
  }

  private failAll(error: VerifyPoolError): void {
    for (const batch of [...this.pending]) this.settle(batch, error);
    this.queue.length = 0;
  }
}

/**
 * The verification threads a process starts for `requested` (undefined: the default, one per
 * core, at most `max`). One rule for a replica (node/replica-runtime.ts) and the benchmark's
 * single-process baseline, which verifies as a replica does. Throws a RangeError for a count
 * that is not a whole number from 0 (verify inline) to `max`.
 */
export function resolveVerifyWorkers(requested: number | undefined, max: number): number {
  const verifyWorkers = requested ?? Math.min(availableParallelism(), max);
  if (!Number.isSafeInteger(verifyWorkers) || verifyWorkers < 0 || verifyWorkers > max) {
    throw new RangeError(`verifyWorkers must be a whole number from 0 to ${max}, not ${verifyWorkers}`);
  }
  return verifyWorkers;
}

/** The one check of a count or size option, here and across the replica's node/ modules. */
export function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, not ${value}`);
  return value;
}
