// Transaction signatures verified on the crypto worker pool (DESIGN.md: "signature verification
// off the event loop in a worker pool"), for replaying a ledger (`bulwark verify`). The verdicts feed a
// `PrecomputedVerifier`, which the replaying application uses in place of its own verification:
// a verdict answers only for the exact (public key, message, signature) it was computed for, so
// execution gives the same results as verifying inline.

import { TransactionDecodeError, TransactionEncodeError, decodeTransaction, transactionSigningMessage } from "../app/transaction.js";
import { Ed25519Verifier } from "../crypto/ed25519.js";
import type { SignedItem, VerifyPool } from "../crypto/verify-pool.js";

/** Stands in for an envelope that does not decode: the pool's verdict for it is 0. */
const UNDECODABLE: SignedItem = Object.freeze({ publicKey: new Uint8Array(0), message: new Uint8Array(0), signature: new Uint8Array(0) });

/**
 * Whether each envelope decodes and its signature verifies, in order. Decoding is cheap and stays
 * on this thread; the signatures go to the shared crypto worker pool in one batch.
 */
export function verifyEnvelopes(pool: VerifyPool, envelopes: readonly Uint8Array[]): Promise<Uint8Array> {
  const items = envelopes.map((envelope): SignedItem => {
    try {
      const transaction = decodeTransaction(envelope);
      return { publicKey: transaction.clientKey, message: transactionSigningMessage(transaction), signature: transaction.signature };
    } catch (error) {
      if (!(error instanceof TransactionDecodeError) && !(error instanceof TransactionEncodeError)) throw error;
      return UNDECODABLE;
    }
  });
  return pool.verifyBatch(items);
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
