// The replies to one request, and the rule that accepts a result: f + 1 distinct replicas sent
// byte-equal results (PBFT §4.1). At most f replicas are faulty, so f + 1 equal answers include
// one from a correct replica, and a correct replica only reports what it executed.
//
// One slot per replica, so a tally holds at most n results however often a replica repeats
// itself, and a faulty replica can fill only its own slot. Which reply a slot keeps:
//   - A nonce error (stale-nonce, nonce-gap) is replaced by the replica's later replies. A correct
//     replica reports nonce-gap when the envelope was ordered out of turn, then the real result
//     once the same envelope is ordered in turn; the later reply is the one that counts.
//   - Any other result is kept. A correct replica executes an envelope at most once, so its first
//     real result is its only one; a stale-nonce it sends afterwards for the same (key, nonce)
//     comes from a second, late ordering of the same envelope, after the account moved on, and
//     must not hide that the envelope did execute (the client would sign the operation again).

import { bytesToHex, equalBytes } from "../app/bytes.js";
import { ResultDecodeError, type TransactionResult, decodeResult, resultErrorCode } from "../app/result.js";
import { TRANSACTION_VALUE_BYTES_MAX } from "../app/transaction.js";
import type { ReplyGroup } from "./errors.js";

/** A result enough replicas agreed on. */
export interface Agreement {
  readonly result: TransactionResult;
  readonly resultBytes: Uint8Array;
  /** The agreeing replicas, ascending. */
  readonly replicas: readonly number[];
  /** The block height f + 1 of the agreeing replies named (so a correct replica did), or 0. */
  readonly height: number;
}

interface Slot {
  readonly bytes: Uint8Array;
  readonly result: TransactionResult;
  readonly height: number;
}

export class ReplyTally {
  private readonly slots: (Slot | undefined)[];
  private readonly matchesNeeded: number;

  constructor(replicaCount: number, matchesNeeded: number) {
    if (!(Number.isSafeInteger(matchesNeeded) && matchesNeeded >= 1 && matchesNeeded <= replicaCount)) {
      throw new RangeError(`a tally needs 1 to ${replicaCount} matching replies, not ${matchesNeeded}`);
    }
    this.slots = new Array<Slot | undefined>(replicaCount).fill(undefined);
    this.matchesNeeded = matchesNeeded;
  }

  /**
   * Records replica `replica`'s reply (its result already decoded) and returns the agreement it
   * completes, if any. `replica` must be a replica id (the caller checked the connection's session).
   */
  record(replica: number, bytes: Uint8Array, result: TransactionResult, height: number): Agreement | undefined {
    if (!(Number.isSafeInteger(replica) && replica >= 0 && replica < this.slots.length)) throw new RangeError(`replica ${replica} is not in the cluster`);
    const previous = this.slots[replica];
    if (previous !== undefined && !isNonceError(previous.bytes)) return undefined;
    this.slots[replica] = { bytes, result, height };
    const replicas: number[] = [];
    const heights = new Map<number, number>();
    this.slots.forEach((slot, id) => {
      if (slot === undefined || !equalBytes(slot.bytes, bytes)) return;
      replicas.push(id);
      if (slot.height > 0) heights.set(slot.height, (heights.get(slot.height) ?? 0) + 1);
    });
    if (replicas.length < this.matchesNeeded) return undefined;
    // A faulty replica can name any height; only one that f + 1 replies share is vouched for. A
    // reply from a reply cache names none (0), so the height may be unknown even on agreement.
    let vouched = 0;
    for (const [named, count] of heights) if (count >= this.matchesNeeded) vouched = named;
    return { result, resultBytes: bytes, replicas, height: vouched };
  }

  /** The replies so far, grouped by result, largest group first (for a TimeoutError). */
  groups(): ReplyGroup[] {
    const byResult = new Map<string, { result: string; replicas: number[] }>();
    this.slots.forEach((slot, id) => {
      if (slot === undefined) return;
      const key = bytesToHex(slot.bytes);
      let group = byResult.get(key);
      if (group === undefined) {
        group = { result: describeResult(slot.result), replicas: [] };
        byResult.set(key, group);
      }
      group.replicas.push(id);
    });
    return [...byResult.values()].sort((a, b) => b.replicas.length - a.replicas.length);
  }
}

/**
 * Decodes a replica's result bytes; undefined for bytes that are no result, or a value longer
 * than any transaction can store (a faulty replica must not make the client hold megabytes per
 * request). Never throws.
 */
export function decodeReplyResult(bytes: Uint8Array): TransactionResult | undefined {
  try {
    const result = decodeResult(bytes);
    if (result.ok && result.kind === "value" && result.value.length > TRANSACTION_VALUE_BYTES_MAX) return undefined;
    return result;
  } catch (error) {
    if (error instanceof ResultDecodeError) return undefined;
    throw error;
  }
}

/** A result as a short phrase for error messages. */
export function describeResult(result: TransactionResult): string {
  if (!result.ok) return result.error === "stale-nonce" || result.error === "nonce-gap" ? `error ${result.error} (next nonce ${result.nextNonce})` : `error ${result.error}`;
  switch (result.kind) {
    case "done":
    case "absent":
      return `ok ${result.kind}`;
    case "value":
      return `ok value (${result.value.length} bytes)`;
    case "flag":
      return `ok flag ${result.flag}`;
    case "amount":
      return `ok amount ${result.amount}`;
  }
}

function isNonceError(bytes: Uint8Array): boolean {
  const code = resultErrorCode(bytes);
  return code === "stale-nonce" || code === "nonce-gap";
}
