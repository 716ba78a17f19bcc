// The baseline's intake of transaction envelopes (issue 5 §1): the work a replica does on a
// client request before ordering it, done once per transaction in one process. Like
// `ReplicaRuntime.onClientRequest`, each envelope is decoded once and turned into its consensus
// request; a signed envelope then has its signature verified once, with the backend a replica
// uses (sodium-native when it loads): on a VerifyPool of worker threads as a replica's
// verification stage does (request-verification.ts), or inline on this thread with no workers.
//
// A session envelope (format version 2, no signature) is taken as it is: in a cluster the
// connection's per-frame MAC vouches for it, and in one process there is no connection to doubt.
//
// What a replica would drop before ordering (bytes that do not decode, a signature that does not
// verify) is refused here with the reason, never thrown: the workload is input like any other.

import { requestFromTransaction } from "../app/request.js";
import { type Transaction, TransactionDecodeError, decodeTransaction, isSessionTransaction } from "../app/transaction.js";
import type { ClientRequest } from "../consensus/pbft/types.js";
import { type Ed25519VerifyBackend, VERIFY_POOL_BATCH_ITEMS_MAX_DEFAULT, VerifyPool, createEd25519VerifyBackend } from "../crypto/verify-pool.js";
import { signedItemOfTransaction } from "../node/signature-pool.js";

/** Why an envelope was refused before ordering. */
export type EnvelopeRefusal = "malformed" | "bad-signature";

export type EnvelopeVerdict = { readonly ok: true; readonly request: ClientRequest } | { readonly ok: false; readonly refusal: EnvelopeRefusal };

export class EnvelopeAdmission {
  private constructor(
    private readonly pool: VerifyPool | undefined,
    private readonly inline: Ed25519VerifyBackend | undefined,
  ) {}

  /** Verifies on `verifyWorkers` worker threads, or inline when it is 0. */
  static create(verifyWorkers: number): EnvelopeAdmission {
    if (!Number.isSafeInteger(verifyWorkers) || verifyWorkers < 0) throw new RangeError(`verifyWorkers must be a whole number, not ${verifyWorkers}`);
    return verifyWorkers === 0 ? new EnvelopeAdmission(undefined, createEd25519VerifyBackend()) : new EnvelopeAdmission(new VerifyPool({ workerCount: verifyWorkers }), undefined);
  }

  /**
   * A verdict for each envelope, in order. Rejects only when the verification pool fails (a
   * worker crashed, the pool closed): that is the machine's fault, not the envelope's.
   */
  async admit(envelopes: readonly Uint8Array[]): Promise<EnvelopeVerdict[]> {
    const verdicts: EnvelopeVerdict[] = [];
    const signed: Array<{ readonly index: number; readonly transaction: Transaction }> = [];
    envelopes.forEach((envelope, index) => {
      let transaction: Transaction;
      try {
        transaction = decodeTransaction(envelope);
      } catch (error) {
        if (!(error instanceof TransactionDecodeError)) throw error;
        verdicts.push({ ok: false, refusal: "malformed" });
        return;
      }
      verdicts.push({ ok: true, request: requestFromTransaction(transaction) });
      if (!isSessionTransaction(transaction)) signed.push({ index, transaction });
    });
    const valid = await this.verify(signed.map(({ transaction }) => transaction));
    signed.forEach(({ index }, position) => {
      if (valid[position] !== 1) verdicts[index] = { ok: false, refusal: "bad-signature" };
    });
    return verdicts;
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }

  /** One byte per transaction, 1 when its signature verifies. */
  private async verify(transactions: readonly Transaction[]): Promise<Uint8Array> {
    const items = transactions.map(signedItemOfTransaction);
    if (this.pool === undefined) {
      const backend = this.inline!;
      return Uint8Array.from(items, (item) => (backend.verify(item.publicKey, item.message, item.signature) ? 1 : 0));
    }
    if (items.length <= VERIFY_POOL_BATCH_ITEMS_MAX_DEFAULT) return this.pool.verifyBatch(items);
    const parts: Array<Promise<Uint8Array>> = [];
    for (let start = 0; start < items.length; start += VERIFY_POOL_BATCH_ITEMS_MAX_DEFAULT) {
      parts.push(this.pool.verifyBatch(items.slice(start, start + VERIFY_POOL_BATCH_ITEMS_MAX_DEFAULT)));
    }
    const verdicts = new Uint8Array(items.length);
    (await Promise.all(parts)).forEach((part, index) => verdicts.set(part, index * VERIFY_POOL_BATCH_ITEMS_MAX_DEFAULT));
    return verdicts;
  }
}
