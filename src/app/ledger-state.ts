// The ledger's whole replicated state in one authenticated state tree (src/ledger/state-tree.ts),
// so that one root, the block's `stateRoot` and the state digest checkpoints sign, commits to
// everything, and any single entry (a key's value, an account's balance and nonce, a client's
// last result) can be proven against it.
//
// Key layout. Every tree key starts with one of these ASCII prefixes. No prefix is a prefix of
// another, so entries of different kinds can never share a key.
//
//   tree key                    value                                          written by
//   "kv/"    + key (1..1024 B)  the value, as put                              kv-store.ts
//   "acct/"  + public key (32)  balance u64 | next nonce u64        (16 bytes) token-ledger.ts, record
//   "reply/" + public key (32)  nonce u64 | signature (64) | result (rest)     record
//   "meta/supply"               total supply u64                     (8 bytes) token-ledger.ts
//
// Integers are big-endian. An account that was never written reads as balance 0, next nonce 1.
//
// Nonces. An account's next nonce and its client's row in the executor's exactly-once table
// ("reply/") move together: `recordTurn` is the one writer of both, and asserts that the nonce
// it records is the account's next. So the executor's rule (the recorded timestamp plus one is
// the next valid one) and the account rule (a transaction is valid only with the account's next
// nonce) are one rule, kept in two records: the account's, for proofs of "what nonce do I use",
// and the reply's, for proofs of "what did my last transaction return".

import { ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES } from "../crypto/ed25519.js";
import { StateTree } from "../ledger/state-tree.js";
import { equalBytes } from "./bytes.js";
import { NEXT_NONCE_MAX } from "./result.js";
import { TRANSACTION_AMOUNT_MAX, TRANSACTION_KEY_BYTES_MAX, TRANSACTION_NONCE_MAX } from "./transaction.js";

const encoder = new TextEncoder();

export const KV_KEY_PREFIX: Uint8Array = encoder.encode("kv/");
export const ACCOUNT_KEY_PREFIX: Uint8Array = encoder.encode("acct/");
export const REPLY_KEY_PREFIX: Uint8Array = encoder.encode("reply/");
export const SUPPLY_KEY: Uint8Array = encoder.encode("meta/supply");

const ACCOUNT_RECORD_BYTES = 16;
const REPLY_RECORD_HEADER_BYTES = 8 + ED25519_SIGNATURE_BYTES;
const SUPPLY_RECORD_BYTES = 8;

export interface Account {
  readonly balance: bigint;
  /** The nonce the account's next transaction must carry: 1 for a fresh account, at most NEXT_NONCE_MAX. */
  readonly nextNonce: number;
}

export const EMPTY_ACCOUNT: Account = Object.freeze({ balance: 0n, nextNonce: 1 });

/** A client's last transaction that took its turn, and that transaction's result. */
export interface ReplyRecord {
  readonly nonce: number;
  readonly signature: Uint8Array;
  readonly result: Uint8Array;
}

/** A state entry that no correct replica writes: corruption, or a bug. */
export class LedgerStateError extends Error {
  override readonly name = "LedgerStateError";
}

export function kvStateKey(key: Uint8Array): Uint8Array {
  return prefixed(KV_KEY_PREFIX, key);
}

export function accountStateKey(publicKey: Uint8Array): Uint8Array {
  assertPublicKeyLength(publicKey);
  return prefixed(ACCOUNT_KEY_PREFIX, publicKey);
}

export function replyStateKey(publicKey: Uint8Array): Uint8Array {
  assertPublicKeyLength(publicKey);
  return prefixed(REPLY_KEY_PREFIX, publicKey);
}

export function encodeAccount(account: Account): Uint8Array {
  if (account.balance < 0n || account.balance > TRANSACTION_AMOUNT_MAX) throw new LedgerStateError(`balance ${account.balance} is out of range`);
  if (!Number.isInteger(account.nextNonce) || account.nextNonce < 1 || account.nextNonce > NEXT_NONCE_MAX) throw new LedgerStateError(`next nonce ${account.nextNonce} is out of range`);
  const bytes = new Uint8Array(ACCOUNT_RECORD_BYTES);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, account.balance);
  view.setBigUint64(8, BigInt(account.nextNonce));
  return bytes;
}

export function decodeAccount(bytes: Uint8Array): Account {
  if (bytes.length !== ACCOUNT_RECORD_BYTES) throw new LedgerStateError(`an account record is ${ACCOUNT_RECORD_BYTES} bytes, not ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nextNonce = view.getBigUint64(8);
  if (nextNonce < 1n || nextNonce > BigInt(NEXT_NONCE_MAX)) throw new LedgerStateError(`next nonce ${nextNonce} is out of range`);
  return { balance: view.getBigUint64(0), nextNonce: Number(nextNonce) };
}

export function encodeReplyRecord(record: ReplyRecord): Uint8Array {
  if (record.signature.length !== ED25519_SIGNATURE_BYTES) throw new LedgerStateError("a reply record's signature is 64 bytes");
  const bytes = new Uint8Array(REPLY_RECORD_HEADER_BYTES + record.result.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(record.nonce));
  bytes.set(record.signature, 8);
  bytes.set(record.result, REPLY_RECORD_HEADER_BYTES);
  return bytes;
}

export function decodeReplyRecord(bytes: Uint8Array): ReplyRecord {
  if (bytes.length <= REPLY_RECORD_HEADER_BYTES) throw new LedgerStateError(`a reply record of ${bytes.length} bytes is too short`);
  const nonce = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0);
  if (nonce < 1n || nonce > BigInt(TRANSACTION_NONCE_MAX)) throw new LedgerStateError(`reply nonce ${nonce} is out of range`);
  return {
    nonce: Number(nonce),
    signature: bytes.slice(8, REPLY_RECORD_HEADER_BYTES),
    result: bytes.slice(REPLY_RECORD_HEADER_BYTES),
  };
}

export function encodeSupply(supply: bigint): Uint8Array {
  if (supply < 0n || supply > TRANSACTION_AMOUNT_MAX) throw new LedgerStateError(`supply ${supply} is out of range`);
  const bytes = new Uint8Array(SUPPLY_RECORD_BYTES);
  new DataView(bytes.buffer).setBigUint64(0, supply);
  return bytes;
}

export function decodeSupply(bytes: Uint8Array): bigint {
  if (bytes.length !== SUPPLY_RECORD_BYTES) throw new LedgerStateError(`the supply record is ${SUPPLY_RECORD_BYTES} bytes, not ${bytes.length}`);
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0);
}

/**
 * Why `[key, value]` is not an entry the ledger writes, or null if it is one. Used on state that
 * arrives from a peer: an installed state must decode wherever execution will read it.
 */
export function ledgerEntryProblem(key: Uint8Array, value: Uint8Array): string | null {
  try {
    if (hasPrefix(key, KV_KEY_PREFIX)) {
      const length = key.length - KV_KEY_PREFIX.length;
      return length >= 1 && length <= TRANSACTION_KEY_BYTES_MAX ? null : `a kv key of ${length} bytes`;
    }
    if (hasPrefix(key, ACCOUNT_KEY_PREFIX)) {
      if (key.length !== ACCOUNT_KEY_PREFIX.length + ED25519_PUBLIC_KEY_BYTES) return "an account key of the wrong length";
      decodeAccount(value);
      return null;
    }
    if (hasPrefix(key, REPLY_KEY_PREFIX)) {
      if (key.length !== REPLY_KEY_PREFIX.length + ED25519_PUBLIC_KEY_BYTES) return "a reply key of the wrong length";
      decodeReplyRecord(value);
      return null;
    }
    if (equalBytes(key, SUPPLY_KEY)) {
      decodeSupply(value);
      return null;
    }
    return "a key with no known prefix";
  } catch (error) {
    if (error instanceof LedgerStateError) return error.message;
    throw error;
  }
}

/** Typed access to the ledger's entries in a state tree (the tree is the state; this holds none). */
export class LedgerState {
  constructor(readonly tree: StateTree = new StateTree()) {}

  getValue(key: Uint8Array): Uint8Array | undefined {
    return this.tree.get(kvStateKey(key));
  }

  putValue(key: Uint8Array, value: Uint8Array): void {
    this.tree.put(kvStateKey(key), value);
  }

  /** Returns whether the key was present. */
  deleteValue(key: Uint8Array): boolean {
    return this.tree.delete(kvStateKey(key));
  }

  account(publicKey: Uint8Array): Account {
    const bytes = this.tree.get(accountStateKey(publicKey));
    return bytes === undefined ? EMPTY_ACCOUNT : decodeAccount(bytes);
  }

  setAccount(publicKey: Uint8Array, account: Account): void {
    this.tree.put(accountStateKey(publicKey), encodeAccount(account));
  }

  reply(publicKey: Uint8Array): ReplyRecord | undefined {
    const bytes = this.tree.get(replyStateKey(publicKey));
    return bytes === undefined ? undefined : decodeReplyRecord(bytes);
  }

  supply(): bigint {
    const bytes = this.tree.get(SUPPLY_KEY);
    return bytes === undefined ? 0n : decodeSupply(bytes);
  }

  setSupply(supply: bigint): void {
    this.tree.put(SUPPLY_KEY, encodeSupply(supply));
  }

  /**
   * Records that the client `publicKey`'s transaction `record.nonce` took its turn: the reply row
   * and the account's next nonce, together (see the file comment).
   */
  recordTurn(publicKey: Uint8Array, record: ReplyRecord): void {
    const account = this.account(publicKey);
    if (account.nextNonce !== record.nonce) {
      throw new LedgerStateError(`recording nonce ${record.nonce} for an account whose next nonce is ${account.nextNonce}`);
    }
    this.setAccount(publicKey, { balance: account.balance, nextNonce: record.nonce + 1 });
    this.tree.put(replyStateKey(publicKey), encodeReplyRecord(record));
  }

  root(): Uint8Array {
    return this.tree.root();
  }
}

function prefixed(prefix: Uint8Array, suffix: Uint8Array): Uint8Array {
  const key = new Uint8Array(prefix.length + suffix.length);
  key.set(prefix, 0);
  key.set(suffix, prefix.length);
  return key;
}

function hasPrefix(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let index = 0; index < prefix.length; index++) if (bytes[index] !== prefix[index]) return false;
  return true;
}

function assertPublicKeyLength(publicKey: Uint8Array): void {
  if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES) throw new LedgerStateError(`a public key is ${ED25519_PUBLIC_KEY_BYTES} bytes, not ${publicKey.length}`);
}
