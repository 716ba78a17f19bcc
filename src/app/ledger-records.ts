// The records of the ledger's state (ledger-state.ts): the tree keys of its entries and the one
// canonical encoding of each value. These bytes are hashed into the state root and stored by every
// replica, so they are consensus-critical: an encoding never changes once written.
//
// Key layout. Every tree key starts with one of these ASCII prefixes. No prefix is a prefix of
// another, so entries of different kinds can never share a key.
//
//   tree key                    value                                          written by
//   "kv/"    + key (1..1024 B)  the value, as put                              kv-store.ts
//   "acct/"  + public key (32)  balance u64 | next nonce u64        (16 bytes) token-ledger.ts, record
//   "reply/" + public key (32)  nonce u64 | signature (64) | result (rest)     record
//                               (a session request's signature: SESSION_MARK, 64 zero bytes)
//   "meta/supply"               total supply u64                     (8 bytes) token-ledger.ts
//
// Integers are big-endian. An account that was never written reads as balance 0, next nonce 1.

import { ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES } from "../crypto/ed25519.js";
import { bytesToHex, equalBytes } from "./bytes.js";
import { NEXT_NONCE_MAX } from "./result.js";
import { TRANSACTION_AMOUNT_MAX, TRANSACTION_KEY_BYTES_MAX, TRANSACTION_NONCE_MAX } from "./transaction.js";

const encoder = new TextEncoder();

export const KV_KEY_PREFIX: Uint8Array = encoder.encode("kv/");
export const ACCOUNT_KEY_PREFIX: Uint8Array = encoder.encode("acct/");
export const REPLY_KEY_PREFIX: Uint8Array = encoder.encode("reply/");
export const SUPPLY_KEY: Uint8Array = encoder.encode("meta/supply");

/**
 * What a reply record holds in place of the signature of a session-authenticated request (which
 * has none; app/transaction.ts): 64 zero bytes. No valid signature is all zeros (its R would be a
 * point of small order, which the signature policy refuses), so the mark cannot be mistaken for
 * one, and the record keeps its fixed layout. The executor's table shows it as signature "".
 */
export const SESSION_MARK: Uint8Array = new Uint8Array(ED25519_SIGNATURE_BYTES);

/** The signature as the executor's table holds it: lowercase hex, or "" for a session request. */
export function turnSignature(signature: Uint8Array): string {
  for (const byte of signature) if (byte !== 0) return bytesToHex(signature);
  return "";
}

const ACCOUNT_RECORD_BYTES = 16;
/** The fixed part of a reply record: nonce and signature. */
export const REPLY_RECORD_HEADER_BYTES = 8 + ED25519_SIGNATURE_BYTES;
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
  checkAccount(account);
  return encodeAccountScratch(account.balance, account.nextNonce).slice();
}

export function checkAccount(account: Account): void {
  if (account.balance < 0n || account.balance > TRANSACTION_AMOUNT_MAX) throw new LedgerStateError(`balance ${account.balance} is out of range`);
  if (!Number.isInteger(account.nextNonce) || account.nextNonce < 1 || account.nextNonce > NEXT_NONCE_MAX) throw new LedgerStateError(`next nonce ${account.nextNonce} is out of range`);
}

// Execution encodes into one scratch record, which the tree copies over the entry's own array:
// the loop that writes back every account a batch changed then allocates nothing.
const accountScratch = new Uint8Array(ACCOUNT_RECORD_BYTES);
const accountScratchView = new DataView(accountScratch.buffer);

/** The record of a checked account, in a scratch array that the next call overwrites. */
export function encodeAccountScratch(balance: bigint, nextNonce: number): Uint8Array {
  accountScratchView.setBigUint64(0, balance);
  writeUint53(accountScratch, 8, nextNonce);
  return accountScratch;
}

/** Writes a safe integer as u64 big-endian, without going through a bigint. */
function writeUint53(target: Uint8Array, offset: number, value: number): void {
  const high = Math.floor(value / 2 ** 32);
  const low = value >>> 0;
  target[offset] = high >>> 24;
  target[offset + 1] = (high >>> 16) & 0xff;
  target[offset + 2] = (high >>> 8) & 0xff;
  target[offset + 3] = high & 0xff;
  target[offset + 4] = low >>> 24;
  target[offset + 5] = (low >>> 16) & 0xff;
  target[offset + 6] = (low >>> 8) & 0xff;
  target[offset + 7] = low & 0xff;
}

export function decodeAccount(bytes: Uint8Array): Account {
  if (bytes.length !== ACCOUNT_RECORD_BYTES) throw new LedgerStateError(`an account record is ${ACCOUNT_RECORD_BYTES} bytes, not ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nextNonce = view.getBigUint64(8);
  if (nextNonce < 1n || nextNonce > BigInt(NEXT_NONCE_MAX)) throw new LedgerStateError(`next nonce ${nextNonce} is out of range`);
  return { balance: view.getBigUint64(0), nextNonce: Number(nextNonce) };
}

export function encodeReplyRecord(record: ReplyRecord): Uint8Array {
  checkReplyRecord(record);
  return writeReplyRecord(new Uint8Array(REPLY_RECORD_HEADER_BYTES + record.result.length), record);
}

export function checkReplyRecord(record: ReplyRecord): void {
  if (record.signature.length !== ED25519_SIGNATURE_BYTES) throw new LedgerStateError("a reply record's signature is 64 bytes");
  if (!Number.isInteger(record.nonce) || record.nonce < 0 || record.nonce > NEXT_NONCE_MAX) throw new LedgerStateError(`reply nonce ${record.nonce} is out of range`);
}

/** Writes the checked `record` into `target`, which is exactly its size. */
export function writeReplyRecord(target: Uint8Array, record: ReplyRecord): Uint8Array {
  writeUint53(target, 0, record.nonce);
  target.set(record.signature, 8);
  target.set(record.result, REPLY_RECORD_HEADER_BYTES);
  return target;
}

/**
 * The scratch record `LedgerState` encodes replies into before the tree copies them over the
 * entry's array; replaced when a record of another length comes (most results are one byte).
 */
let replyScratch = new Uint8Array(REPLY_RECORD_HEADER_BYTES + 1);

export function replyScratchOf(byteCount: number): Uint8Array {
  if (replyScratch.length !== byteCount) replyScratch = new Uint8Array(byteCount);
  return replyScratch;
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

export function assertPublicKeyLength(publicKey: Uint8Array): void {
  if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES) throw new LedgerStateError(`a public key is ${ED25519_PUBLIC_KEY_BYTES} bytes, not ${publicKey.length}`);
}
