// The one classification of client errors that the gateway's statuses and the CLI's exit codes map from.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { TransactionDecodeError, TransactionEncodeError } from "../../src/app/transaction.js";
import {
  BulwarkClientError,
  ClientClosedError,
  NonceError,
  RejectedError,
  ReplicasFailedError,
  RequestAbortedError,
  TimeoutError,
  TooFewReplicasError,
  classifyClientError,
} from "../../src/client/errors.js";

describe("classifyClientError", () => {
  it("classes each client error, and says whether to retry and whether a transaction may still commit", () => {
    const rejected = new RejectedError("insufficient-balance", "transfer", { result: { ok: false, error: "insufficient-balance" }, height: 4, nonce: 2, replicas: [0, 1] });
    const cases: [Error, string, boolean, boolean][] = [
      [new TimeoutError(100, 3, 2, [], "sent twice"), "timeout", true, true],
      [new TimeoutError(100, undefined, 2, [], "waiting for a slot"), "timeout", true, false],
      [new TooFewReplicasError(1, 2, "after 100 ms"), "unavailable", true, false],
      [new ReplicasFailedError("block 3", []), "unavailable", true, false],
      [rejected, "rejected", false, false],
      [new NonceError("nonce-gap", 9, 3, "firstNonce too high"), "nonce", true, false],
      [new RequestAbortedError(new Error("gone")), "aborted", true, true],
      [new ClientClosedError(), "closed", true, true],
      [new BulwarkClientError("certified blocks 1 and 2 do not chain"), "invalid-answer", false, false],
      [new TransactionEncodeError("a key is 1 to 1024 bytes"), "invalid-request", false, false],
      [new TransactionDecodeError("truncated", "too short"), "invalid-request", false, false],
    ];
    for (const [error, code, retryable, mayCommit] of cases) assert.deepEqual(classifyClientError(error), { code, retryable, mayCommit }, error.message);
  });

  it("classes nothing else: a bug or an argument error is the caller's to handle", () => {
    assert.equal(classifyClientError(new RangeError("limit must be 1 to 100")), undefined);
    assert.equal(classifyClientError(new Error("boom")), undefined);
    assert.equal(classifyClientError("text"), undefined);
  });
});
