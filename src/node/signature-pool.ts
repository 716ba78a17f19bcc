// Transaction signatures verified on the crypto worker pool (DESIGN.md: "signature verification
// off the event loop in a worker pool"), for replaying a ledger (`bulwark verify`) and for a
// running replica (request-verification.ts). The verdicts feed a `PrecomputedVerifier`, which the
// application or the PBFT core uses in place of its own verification: a verdict answers only for
// the exact (public key, message, signature) it was computed for, so the outcome is the same as
// verifying inline.

import { TransactionDecodeError, TransactionEncodeError, decodeTransaction, transactionSigningMessage } from "../app/transaction.js";
import { Ed25519Verifier } from "../crypto/ed25519.js";
import { type Ed25519VerifyBackend, type SignedItem, type VerifyPool, createEd25519VerifyBackend } from "../crypto/verify-pool.js";

/** Stands in for an envelope that does not decode: the pool's verdict for it is 0. */
const UNDECODABLE: SignedItem = Object.freeze({ publicKey: new Uint8Array(0), message: new Uint8Array(0), signature: new Uint8Array(0) });

/** Generous defaults: a replay keeps one block's verdicts, a replica passes tighter bounds. */
export const PRECOMPUTED_VERDICTS_MAX_DEFAULT = 1_048_576;
export const PRECOMPUTED_VERDICT_BYTES_MAX_DEFAULT = 256 * 1024 * 1024;
/** What one remembered verdict costs beyond its key's characters (Map entry, string header). */
const VERDICT_OVERHEAD_BYTES = 64;

/** The signature an envelope carries, or undefined when the envelope does not decode. */
export function signedItemOfEnvelope(envelope: Uint8Array): SignedItem | undefined {
  try {
    const transaction = decodeTransaction(envelope);
    return { publicKey: transaction.clientKey, message: transactionSigningMessage(transaction), signature: transaction.signature };
  } catch (error) {
    if (!(error instanceof TransactionDecodeError) && !(error instanceof TransactionEncodeError)) throw error;
    return undefined;
  }
}

/**
 * Whether each envelope decodes and its signature verifies, in order. Decoding is cheap and stays
 * on this thread; the signatures go to the shared crypto worker pool in one batch.
 */
export function verifyEnvelopes(pool: VerifyPool, envelopes: readonly Uint8Array[]): Promise<Uint8Array> {
  return pool.verifyBatch(envelopes.map((envelope) => signedItemOfEnvelope(envelope) ?? UNDECODABLE));
}

export interface PrecomputedVerdictStats {
  readonly verdicts: number;
  readonly bytes: number;
  /** Checks answered from a verdict. */
  readonly hits: number;
  /** Checks verified inline for want of one. */
  readonly misses: number;
  /** Verdicts forgotten to stay within the bounds. */
  readonly evictions: number;
}

export interface PrecomputedVerifierOptions {
  /** Most verdicts kept; beyond it the oldest is forgotten (and verified again if asked for). */
  readonly verdictsMax?: number;
  /** Most bytes of verdict keys kept (a key holds the whole signed message). */
  readonly verdictBytesMax?: number;
  /** Verifies what has no verdict; default: the "auto" backend (sodium-native when it loads). */
  readonly fallback?: Ed25519VerifyBackend;
}

/**
 * An Ed25519Verifier that answers from verdicts computed elsewhere for the exact triples they
 * were computed for, and verifies anything else itself. Both paths apply the one verdict policy
 * of ed25519.ts, so which one answers never changes a verdict. Memory is bounded: past either
 * bound the oldest verdicts are forgotten, which costs only a verification inline.
 */
export class PrecomputedVerifier extends Ed25519Verifier {
  readonly verdictsMax: number;
  readonly verdictBytesMax: number;
  private readonly fallback: Ed25519VerifyBackend;
  private readonly verdicts = new Map<string, boolean>();
  private bytes = 0;
  private hitCount = 0;
  private missCount = 0;
  private evictionCount = 0;

  constructor(options: PrecomputedVerifierOptions = {}) {
    super();
    this.verdictsMax = positiveInteger("verdictsMax", options.verdictsMax ?? PRECOMPUTED_VERDICTS_MAX_DEFAULT);
    this.verdictBytesMax = positiveInteger("verdictBytesMax", options.verdictBytesMax ?? PRECOMPUTED_VERDICT_BYTES_MAX_DEFAULT);
    this.fallback = options.fallback ?? createEd25519VerifyBackend("auto");
  }

  /** Which library verifies what has no verdict. */
  get fallbackBackend(): Ed25519VerifyBackend["name"] {
    return this.fallback.name;
  }

  /** Records the pool's verdicts for `envelopes` (undecodable ones are skipped: admission refuses them first). */
  record(envelopes: readonly Uint8Array[], verdicts: Uint8Array): void {
    envelopes.forEach((envelope, index) => {
      const item = signedItemOfEnvelope(envelope);
      if (item !== undefined) this.remember(signedItemKey(item), verdicts[index] === 1);
    });
  }

  /** Records the verdict for the triple whose `signedItemKey` is `key`. */
  remember(key: string, valid: boolean): void {
    const bytes = key.length + VERDICT_OVERHEAD_BYTES;
    if (bytes > this.verdictBytesMax) return;
    if (this.verdicts.has(key)) this.forget(key);
    while (this.verdicts.size >= this.verdictsMax || this.bytes + bytes > this.verdictBytesMax) {
      const oldest = this.verdicts.keys().next();
      if (oldest.done === true) break;
      this.forget(oldest.value);
      this.evictionCount++;
    }
    this.verdicts.set(key, valid);
    this.bytes += bytes;
  }

  /** Whether a verdict for `key` is kept. */
  knows(key: string): boolean {
    return this.verdicts.has(key);
  }

  forget(key: string): void {
    if (this.verdicts.delete(key)) this.bytes -= key.length + VERDICT_OVERHEAD_BYTES;
  }

  /** Forgets every verdict (a replay calls it between blocks, so memory stays bounded by one block). */
  clear(): void {
    this.verdicts.clear();
    this.bytes = 0;
  }

  stats(): PrecomputedVerdictStats {
    return { verdicts: this.verdicts.size, bytes: this.bytes, hits: this.hitCount, misses: this.missCount, evictions: this.evictionCount };
  }

  override verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    if (!(publicKey instanceof Uint8Array) || !(message instanceof Uint8Array) || !(signature instanceof Uint8Array)) return false;
    const known = this.verdicts.get(signedItemKey({ publicKey, message, signature }));
    if (known !== undefined) {
      this.hitCount++;
      return known;
    }
    this.missCount++;
    return this.fallback.verify(publicKey, message, signature);
  }
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("latin1");
}

/** The exact triple as one string; lengths first, so no two different triples share a key. */
export function signedItemKey(item: SignedItem): string {
  const { publicKey, message, signature } = item;
  return `${publicKey.length}:${signature.length}:${latin1(publicKey)}${latin1(signature)}${latin1(message)}`;
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, not ${value}`);
  return value;
}
