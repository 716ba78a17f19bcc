import { test } from "node:test";
import assert from "node:assert/strict";

import {
  NEXT_NONCE_MAX,
  ResultDecodeError,
  TRANSACTION_ERROR_CODES,
  type TransactionResult,
  decodeResult,
  encodeResult,
  resultErrorCode,
} from "../../src/app/result.js";
import { TRANSACTION_AMOUNT_MAX } from "../../src/app/transaction.js";

function everyResult(): TransactionResult[] {
  const results: TransactionResult[] = [
    { ok: true, kind: "done" },
    { ok: true, kind: "value", value: Uint8Array.of(1, 2, 3) },
    { ok: true, kind: "value", value: new Uint8Array(0) },
    { ok: true, kind: "absent" },
    { ok: true, kind: "flag", flag: true },
    { ok: true, kind: "flag", flag: false },
    { ok: true, kind: "amount", amount: 0n },
    { ok: true, kind: "amount", amount: TRANSACTION_AMOUNT_MAX },
  ];
  for (const error of TRANSACTION_ERROR_CODES) {
    if (error === "stale-nonce" || error === "nonce-gap") {
      results.push({ ok: false, error, nextNonce: 1 }, { ok: false, error, nextNonce: NEXT_NONCE_MAX });
    } else {
      results.push({ ok: false, error });
    }
  }
  return results;
}

test("every result kind and every error code round-trips through its encoding", () => {
  for (const result of everyResult()) assert.deepEqual(decodeResult(encodeResult(result)), result);
});

test("distinct results have distinct encodings", () => {
  const encodings = everyResult().map((result) => Buffer.from(encodeResult(result)).toString("hex"));
  assert.equal(new Set(encodings).size, encodings.length);
});

test("the error code is readable from the first byte, and success reads as none", () => {
  for (const result of everyResult()) {
    assert.equal(resultErrorCode(encodeResult(result)), result.ok ? undefined : result.error);
  }
});

test("the decoder refuses non-canonical bytes: empty, unknown tags, extra or missing payload, a flag of 2", () => {
  const refused = [
    [],
    [5],
    [63],
    [73],
    [255],
    [0, 0],
    [2, 1],
    [3],
    [3, 2],
    [4, 0, 0, 0, 0, 0, 0, 0],
    [4, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [64, 0],
    [68, 0, 0, 0, 0, 0, 0, 1],
    [69, 0, 0x20, 0, 0, 0, 0, 0, 1], // 2^53 + 1: beyond any next nonce
  ];
  for (const bytes of refused) assert.throws(() => decodeResult(Uint8Array.from(bytes)), ResultDecodeError, `[${bytes.join(",")}]`);
});

test("the encoder refuses out-of-range amounts and nonces", () => {
  assert.throws(() => encodeResult({ ok: true, kind: "amount", amount: -1n }), RangeError);
  assert.throws(() => encodeResult({ ok: true, kind: "amount", amount: TRANSACTION_AMOUNT_MAX + 1n }), RangeError);
  assert.throws(() => encodeResult({ ok: false, error: "nonce-gap", nextNonce: NEXT_NONCE_MAX + 2 }), RangeError);
  assert.throws(() => encodeResult({ ok: false, error: "stale-nonce", nextNonce: 1.5 }), RangeError);
});
