// What the client's convenience wrappers (`put`, `get`, `transfer`, ...) share: turning strings
// into bytes, and turning a committed result into the value the caller asked for, or a
// RejectedError when the transaction failed.

import type { TransactionResult } from "../app/result.js";
import type { OperationType } from "../app/transaction.js";
import { RejectedError } from "./errors.js";
import type { Committed } from "./types.js";

const utf8 = new TextEncoder();

/** Keys and values may be given as text; they travel as its UTF-8 bytes. */
export function bytesOf(value: Uint8Array | string): Uint8Array {
  return typeof value === "string" ? utf8.encode(value) : value;
}

type OkResult = Extract<TransactionResult, { ok: true }>;
type OkKind = OkResult["kind"];

/**
 * The ok result of `committed`, which must be of one of `kinds`. Throws RejectedError for a failed
 * transaction. A result of another kind means the replicas run a different protocol than this
 * client (f + 1 agreed on it, so a correct replica produced it): a plain Error says so.
 */
export function okResult<Kind extends OkKind>(committed: Committed, operation: OperationType, kinds: readonly Kind[]): Extract<OkResult, { kind: Kind }> {
  const { result } = committed;
  if (!result.ok) throw new RejectedError(result.error, operation, committed);
  if (!(kinds as readonly OkKind[]).includes(result.kind)) {
    throw new Error(`the replicas answered a ${operation} with an ok ${result.kind} result, which a ${operation} does not produce; are they running a different version?`);
  }
  return result as Extract<OkResult, { kind: Kind }>;
}
