// Transaction signatures verified on the crypto worker pool (DESIGN.md: "signature verification
// off the event loop in a worker pool"), for replaying a ledger (`bulwark verify`) and for a
// running replica (request-verification.ts). The verdicts feed a `PrecomputedVerifier`, which the
// application or the PBFT core uses in place of its own verification: a verdict answers only for
// the exact (public key, message, signature) it was computed for, so the outcome is the same as
// verifying inline.


import { type Transaction, TransactionDecodeError, TransactionEncodeError, decodeTransaction, isSessionTransaction, transactionSigningMessage } from "../app/transaction.js";
import { Ed25519Verifier } from "../crypto/ed25519.js";
import { sha256Latin1 } from "../crypto/sha256.js";
import { type Ed25519VerifyBackend, type SignedItem, type VerifyPool, createEd25519VerifyBackend, positiveInteger } from "../crypto/verify-pool.js";

/** Stands in for an envelope that does not decode: the pool's verdict for it is 0. */
const UNDECODABLE: SignedItem = Object.freeze({ publicKey: new Uint8Array(0), message: new Uint8Array(0), signature: new Uint8Array(0) });

/** Generous default: a replay keeps one block's verdicts, a replica passes a tighter bound. */
const PRECOMPUTED_VERDICTS_MAX_DEFAULT = 1_048_576;
/**
 * Invalid verdicts kept, apart from the valid ones: a flood of forged signatures then forgets
 * only other invalid verdicts, never the valid ones the core still needs. They are needed only
 * between the pool's answer and the core's check of the input that carried them, so this covers
 * many full batches.
 */
const PRECOMPUTED_INVALID_VERDICTS_MAX_DEFAULT = 16_384;

/** The signature a decoded transaction carries. */
export function signedItemOfTransaction(transaction: Transaction): SignedItem {
  return { publicKey: transaction.clientKey, message: transactionSigningMessage(transaction), signature: transaction.signature };
}

/** The signature an envelope carries, or undefined when the envelope does not decode or is session-authenticated (it has none). */
export function signedItemOfEnvelope(envelope: Uint8Array): SignedItem | undefined {
  try {
    const transaction = decodeTransaction(envelope);
    return isSessionTransaction(transaction) ? undefined : signedItemOfTransaction(transaction);
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
  /** Valid verdicts kept. */
  readonly verdicts: number;
  /** Invalid verdicts kept (a separate, smaller table). */
  readonly invalidVerdicts: number;
  /** Checks answered from a verdict. */
  readonly hits: number;
  /** Checks verified inline for want of one. */
  readonly misses: number;
  /** Verdicts forgotten to stay within the bounds. */
  readonly evictions: number;
}

export interface PrecomputedVerifierOptions {
  /** Most valid verdicts kept; beyond it the oldest is forgotten (and verified again if asked for). */
  readonly verdictsMax?: number;
  /** Most invalid verdicts kept, in their own table. */
  readonly invalidVerdictsMax?: number;
  /** Verifies what has no verdict; default: the "auto" backend (sodium-native when it loads). */
  readonly fallback?: Ed25519VerifyBackend;
}

/**
 * An Ed25519Verifier that answers from verdicts computed elsewhere for the exact triples they
 * were computed for, and verifies anything else itself. Both paths apply the one verdict policy
 * of ed25519.ts, so which one answers never changes a verdict. Memory is bounded: past either
 * bound the oldest verdicts are forgotten, which costs only a verification inline. Every key is
 * a 32-byte digest (`signedItemKey`), so an entry costs the same whatever the message's size.
 */
export class PrecomputedVerifier extends Ed25519Verifier {
  private readonly fallback: Ed25519VerifyBackend;
  private readonly valid: BoundedKeys;
  private readonly invalid: BoundedKeys;
  private hitCount = 0;
  private missCount = 0;

  constructor(options: PrecomputedVerifierOptions = {}) {
    super();
    this.valid = new BoundedKeys(positiveInteger("verdictsMax", options.verdictsMax ?? PRECOMPUTED_VERDICTS_MAX_DEFAULT));
    this.invalid = new BoundedKeys(positiveInteger("invalidVerdictsMax", options.invalidVerdictsMax ?? PRECOMPUTED_INVALID_VERDICTS_MAX_DEFAULT));
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
    (valid ? this.invalid : this.valid).delete(key);
    (valid ? this.valid : this.invalid).add(key);
  }

  /** Whether a verdict for `key` is kept. */
  knows(key: string): boolean {
    return this.valid.has(key) || this.invalid.has(key);
  }

  forget(key: string): void {
    if (!this.valid.delete(key)) this.invalid.delete(key);
  }

  /** Forgets every verdict (a replay calls it between blocks, so memory stays bounded by one block). */
  clear(): void {
    this.valid.clear();
    this.invalid.clear();
  }

  stats(): PrecomputedVerdictStats {
    return {
      verdicts: this.valid.size,
      invalidVerdicts: this.invalid.size,
      hits: this.hitCount,
      misses: this.missCount,
      evictions: this.valid.evictions + this.invalid.evictions,
    };
  }

  override verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    if (!(publicKey instanceof Uint8Array) || !(message instanceof Uint8Array) || !(signature instanceof Uint8Array)) return false;
    const key = signedItemKey({ publicKey, message, signature });
    if (this.valid.has(key)) {
      this.hitCount++;
      return true;
    }
    if (this.invalid.has(key)) {
      this.hitCount++;
      return false;
    }
    this.missCount++;
    return this.fallback.verify(publicKey, message, signature);
  }
}

/** A set of keys that forgets its oldest past `sizeMax` (a Set iterates in insertion order). */
class BoundedKeys {
  private readonly sizeMax: number;
  private readonly keys = new Set<string>();
  evictions = 0;

  constructor(sizeMax: number) {
    this.sizeMax = sizeMax;
  }

  get size(): number {
    return this.keys.size;
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  add(key: string): void {
    // Re-adding moves the key to the young end, so a verdict just recomputed is the last to go.
    this.keys.delete(key);
    while (this.keys.size >= this.sizeMax) {
      const oldest = this.keys.values().next();
      if (oldest.done === true) break;
      this.keys.delete(oldest.value);
      this.evictions++;
    }
    this.keys.add(key);
  }

  delete(key: string): boolean {
    return this.keys.delete(key);
  }

  clear(): void {
    this.keys.clear();
  }
}

/** Scratch space the triple is packed into for one hash call; grows to the largest triple seen. */
let packed = Buffer.alloc(1024);

/**
 * The exact triple as a 32-character key: SHA-256 over the public key's and the signature's
 * lengths, then the key, the signature and the message, as a binary (one byte per character) string. A digest
 * rather than the bytes themselves because V8 hashes a string longer than 16,383 characters by
 * its length alone: keys holding whole messages of equal size would all share one bucket of the
 * Map. The lengths keep two malformed triples (a key or signature of the wrong size) from
 * running into each other. The parts are packed into one buffer for a one-shot hash: a Hash
 * object with four updates was 2 % of a replica's time in signed runs (issue 5 profile).
 */
export function signedItemKey(item: SignedItem): string {
  const { publicKey, message, signature } = item;
  const length = 8 + publicKey.length + signature.length + message.length;
  if (packed.length < length) packed = Buffer.alloc(Math.max(length, 2 * packed.length));
  packed.writeUInt32BE(publicKey.length, 0);
  packed.writeUInt32BE(signature.length, 4);
  packed.set(publicKey, 8);
  packed.set(signature, 8 + publicKey.length);
  packed.set(message, 8 + publicKey.length + signature.length);
  return sha256Latin1(packed.subarray(0, length));
}
