// Ledger values as the JSON the gateway answers with (schemas.ts describes each shape): results,
// and blocks with their transactions decoded where they decode. (The cluster status is the SDK's
// summary as it is: client/status-summary.ts.)

import { bytesToHex } from "../app/bytes.js";
import { ResultDecodeError, type TransactionResult, decodeResult } from "../app/result.js";
import { TransactionDecodeError, decodeTransaction } from "../app/transaction.js";
import type { VerifiedBlock } from "../client/types.js";
import { type ValueEncoding, base64, encodeValue } from "./encoding.js";

export interface ResultView {
  readonly ok: boolean;
  readonly kind?: string;
  readonly value?: string;
  readonly encoding?: ValueEncoding;
  readonly flag?: boolean;
  readonly amount?: string;
  readonly error?: string;
  readonly nextNonce?: number;
}

export function resultView(result: TransactionResult): ResultView {
  if (!result.ok) return result.error === "stale-nonce" || result.error === "nonce-gap" ? { ok: false, error: result.error, nextNonce: result.nextNonce } : { ok: false, error: result.error };
  switch (result.kind) {
    case "done":
    case "absent":
      return { ok: true, kind: result.kind };
    case "value":
      return { ok: true, kind: "value", ...encodeValue(result.value) };
    case "flag":
      return { ok: true, kind: "flag", flag: result.flag };
    case "amount":
      // A u64 does not fit a JSON number exactly; decimal text does.
      return { ok: true, kind: "amount", amount: result.amount.toString() };
  }
}

export interface TransactionView {
  readonly id: string;
  readonly envelope: string;
  readonly resultBytes?: string;
  readonly clientKey?: string;
  readonly nonce?: number;
  readonly operation?: string;
  readonly result?: ResultView;
}

export interface BlockView extends Omit<VerifiedBlock, "transactions" | "results" | "transactionIds"> {
  readonly transactions: readonly TransactionView[];
}

export function blockView(block: VerifiedBlock): BlockView {
  const { transactions, results, transactionIds, ...header } = block;
  return { ...header, transactions: transactions.map((envelope, index) => transactionView(transactionIds[index]!, envelope, results[index])) };
}

/**
 * One transaction of a block. A block may record envelopes that do not decode (the ledger
 * refused them as malformed and the refusal is part of the history), so decoding is best effort:
 * what does not decode is shown as bytes only.
 */
function transactionView(id: string, envelope: Uint8Array, resultBytes: Uint8Array | undefined): TransactionView {
  let view: TransactionView = { id, envelope: base64(envelope) };
  try {
    const transaction = decodeTransaction(envelope);
    view = { ...view, clientKey: bytesToHex(transaction.clientKey), nonce: transaction.nonce, operation: transaction.operation.type };
  } catch (error) {
    if (!(error instanceof TransactionDecodeError)) throw error;
  }
  if (resultBytes === undefined) return view;
  view = { ...view, resultBytes: base64(resultBytes) };
  try {
    return { ...view, result: resultView(decodeResult(resultBytes)) };
  } catch (error) {
    if (!(error instanceof ResultDecodeError)) throw error;
    return view;
  }
}
