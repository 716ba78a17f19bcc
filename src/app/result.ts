// The result of a committed transaction and its one canonical binary encoding (issue 3 §1: every
// transaction commits with a deterministic result). Replicas reply with these bytes, blocks store
// them beside the transactions (their Merkle root is in the block header), and clients accept a
// result when f + 1 replicas send identical bytes, so the encoding is canonical: the decoder
// refuses every byte string that `encodeResult` would not produce.
//
// Layout: a tag byte, then the tag's payload, nothing after it (integers big-endian).
//
//   tag  result              payload                  produced by
//   0    ok                  none                     put, mint, transfer
//   1    ok: value           the value (to the end)   get of a present key
//   2    ok: absent          none                     get of an absent key
//   3    ok: flag            u8, 0 or 1               cas (swapped?), delete (was present?)
//   4    ok: amount          u64                      balance
//   64   bad-signature       none
//   65   malformed           none
//   66   unknown-op          none
//   67   oversized           none
//   68   stale-nonce         u64 next nonce
//   69   nonce-gap           u64 next nonce
//   70   insufficient-balance none
//   71   not-authority       none
//   72   amount-overflow     none
//
// Error tags start at 64 so that `bytes[0] >= 64` tells an error without decoding, and new ok
// kinds and new errors each have room to grow. The two nonce errors carry the nonce the account
// expects next, so a client that lost count can resynchronise from the error itself.

import { TRANSACTION_AMOUNT_MAX, TRANSACTION_NONCE_MAX } from "./transaction.js";

/**
 * Why a transaction failed. Which of them consume the client's nonce is decided by the exactly-
 * once rule (executor.ts) and documented in ledger-application.ts.
 */
export type TransactionErrorCode =
  /** The envelope decoded, but its signature does not verify under its client key. */
  | "bad-signature"
  /** The bytes are not a canonical envelope, or the request's client, timestamp or signature fields do not match the envelope. */
  | "malformed"
  /** The operation tag is unknown, or the operation is not one this cluster's application serves. */
  | "unknown-op"
  /** The envelope is longer than TRANSACTION_BYTES_MAX. */
  | "oversized"
  /** The nonce is below the account's next one: it was used already. */
  | "stale-nonce"
  /** The nonce is above the account's next one; the account did not move, so the right nonce still works. */
  | "nonce-gap"
  /** A transfer of more than the sender's balance. */
  | "insufficient-balance"
  /** A mint signed by a key other than the genesis authority's. */
  | "not-authority"
  /** A mint that would take the total supply past 2^64 - 1. */
  | "amount-overflow";

export type TransactionResult =
  | { readonly ok: true; readonly kind: "done" }
  | { readonly ok: true; readonly kind: "value"; readonly value: Uint8Array }
  | { readonly ok: true; readonly kind: "absent" }
  | { readonly ok: true; readonly kind: "flag"; readonly flag: boolean }
  | { readonly ok: true; readonly kind: "amount"; readonly amount: bigint }
  | { readonly ok: false; readonly error: "stale-nonce" | "nonce-gap"; readonly nextNonce: number }
  | { readonly ok: false; readonly error: Exclude<TransactionErrorCode, "stale-nonce" | "nonce-gap"> };

export type TransactionErrorResult = Extract<TransactionResult, { ok: false }>;

const OK_TAGS = { done: 0, value: 1, absent: 2, flag: 3, amount: 4 } as const;

const ERROR_TAGS: Readonly<Record<TransactionErrorCode, number>> = {
  "bad-signature": 64,
  malformed: 65,
  "unknown-op": 66,
  oversized: 67,
  "stale-nonce": 68,
  "nonce-gap": 69,
  "insufficient-balance": 70,
  "not-authority": 71,
  "amount-overflow": 72,
};

/** Every error code, in tag order (for tests and documentation tables). */
export const TRANSACTION_ERROR_CODES: readonly TransactionErrorCode[] = Object.keys(ERROR_TAGS) as TransactionErrorCode[];

const ERROR_CODE_OF_TAG: ReadonlyMap<number, TransactionErrorCode> = new Map(
  TRANSACTION_ERROR_CODES.map((code) => [ERROR_TAGS[code], code]),
);

/**
 * Largest next nonce: after a client used nonce TRANSACTION_NONCE_MAX (2^53 - 1), its account's
 * next nonce is 2^53, which no transaction can carry, so the account is closed for good. 2^53 is
 * exact as a number, though not a "safe" integer.
 */
export const NEXT_NONCE_MAX = TRANSACTION_NONCE_MAX + 1;

/** The first tag of the error range: `bytes[0] >= RESULT_ERROR_TAG_MIN` means failure. */
export const RESULT_ERROR_TAG_MIN = 64;

/** Bytes that are not the canonical encoding of any result. */
export class ResultDecodeError extends Error {
  override readonly name = "ResultDecodeError";
}

export function encodeResult(result: TransactionResult): Uint8Array {
  if (!result.ok) {
    const tag = ERROR_TAGS[result.error];
    if (tag === undefined) throw new TypeError(`unknown error code ${String(result.error)}`);
    if (result.error !== "stale-nonce" && result.error !== "nonce-gap") return Uint8Array.of(tag);
    if (!Number.isInteger(result.nextNonce) || result.nextNonce < 0 || result.nextNonce > NEXT_NONCE_MAX) {
      throw new RangeError(`next nonce must be an integer from 0 to ${NEXT_NONCE_MAX}, not ${result.nextNonce}`);
    }
    const bytes = new Uint8Array(9);
    bytes[0] = tag;
    new DataView(bytes.buffer).setBigUint64(1, BigInt(result.nextNonce));
    return bytes;
  }
  switch (result.kind) {
    case "done":
    case "absent":
      return Uint8Array.of(OK_TAGS[result.kind]);
    case "value": {
      const bytes = new Uint8Array(1 + result.value.length);
      bytes[0] = OK_TAGS.value;
      bytes.set(result.value, 1);
      return bytes;
    }
    case "flag":
      return Uint8Array.of(OK_TAGS.flag, result.flag ? 1 : 0);
    case "amount": {
      if (typeof result.amount !== "bigint" || result.amount < 0n || result.amount > TRANSACTION_AMOUNT_MAX) {
        throw new RangeError("an amount must be a bigint from 0 to 2^64 - 1");
      }
      const bytes = new Uint8Array(9);
      bytes[0] = OK_TAGS.amount;
      new DataView(bytes.buffer).setBigUint64(1, result.amount);
      return bytes;
    }
  }
}

/** The result whose canonical encoding is `bytes`; throws ResultDecodeError otherwise. */
export function decodeResult(bytes: Uint8Array): TransactionResult {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new ResultDecodeError("a result is at least one byte");
  const tag = bytes[0]!;
  const payload = bytes.length - 1;
  const expectPayload = (length: number, what: string): void => {
    if (payload !== length) throw new ResultDecodeError(`a ${what} result has ${length} payload bytes, not ${payload}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (tag) {
    case OK_TAGS.done:
      expectPayload(0, "done");
      return { ok: true, kind: "done" };
    case OK_TAGS.value:
      return { ok: true, kind: "value", value: bytes.slice(1) };
    case OK_TAGS.absent:
      expectPayload(0, "absent");
      return { ok: true, kind: "absent" };
    case OK_TAGS.flag: {
      expectPayload(1, "flag");
      const flag = bytes[1]!;
      if (flag > 1) throw new ResultDecodeError(`a flag is 0 or 1, not ${flag}`);
      return { ok: true, kind: "flag", flag: flag === 1 };
    }
    case OK_TAGS.amount:
      expectPayload(8, "amount");
      return { ok: true, kind: "amount", amount: view.getBigUint64(1) };
  }
  const error = ERROR_CODE_OF_TAG.get(tag);
  if (error === undefined) throw new ResultDecodeError(`result tag ${tag} is unknown`);
  if (error !== "stale-nonce" && error !== "nonce-gap") {
    expectPayload(0, error);
    return { ok: false, error };
  }
  expectPayload(8, error);
  const nextNonce = view.getBigUint64(1);
  if (nextNonce > BigInt(NEXT_NONCE_MAX)) throw new ResultDecodeError(`next nonce ${nextNonce} exceeds ${NEXT_NONCE_MAX}`);
  return { ok: false, error, nextNonce: Number(nextNonce) };
}

/** The error code of an encoded result, or undefined for success; cheaper than decoding. */
export function resultErrorCode(bytes: Uint8Array): TransactionErrorCode | undefined {
  const tag = bytes[0];
  return tag === undefined || tag < RESULT_ERROR_TAG_MIN ? undefined : ERROR_CODE_OF_TAG.get(tag);
}

/** The encoded result for an error without payload. */
export function errorResult(error: Exclude<TransactionErrorCode, "stale-nonce" | "nonce-gap">): Uint8Array {
  return encodeResult({ ok: false, error });
}
