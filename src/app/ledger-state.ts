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
//                               (a session request's signature: SESSION_MARK, 64 zero bytes)
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
import { HashedKey, type StateLeafHandle, StateTree } from "../ledger/state-tree.js";
import { copyBytes } from "../ledger/state-tree-hash.js";
import type { ClientEntry } from "./application.js";
import { bytesToHex, canonicalHexToBytes, equalBytes } from "./bytes.js";
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
  checkAccount(account);
  return encodeAccountScratch(account.balance, account.nextNonce).slice();
}

function checkAccount(account: Account): void {
  if (account.balance < 0n || account.balance > TRANSACTION_AMOUNT_MAX) throw new LedgerStateError(`balance ${account.balance} is out of range`);
  if (!Number.isInteger(account.nextNonce) || account.nextNonce < 1 || account.nextNonce > NEXT_NONCE_MAX) throw new LedgerStateError(`next nonce ${account.nextNonce} is out of range`);
}

// Execution encodes into one scratch record, which the tree copies over the entry's own array:
// the loop that writes back every account a batch changed then allocates nothing.
const accountScratch = new Uint8Array(ACCOUNT_RECORD_BYTES);
const accountScratchView = new DataView(accountScratch.buffer);

/** The record of a checked account, in a scratch array that the next call overwrites. */
function encodeAccountScratch(balance: bigint, nextNonce: number): Uint8Array {
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

function checkReplyRecord(record: ReplyRecord): void {
  if (record.signature.length !== ED25519_SIGNATURE_BYTES) throw new LedgerStateError("a reply record's signature is 64 bytes");
  if (!Number.isInteger(record.nonce) || record.nonce < 0 || record.nonce > NEXT_NONCE_MAX) throw new LedgerStateError(`reply nonce ${record.nonce} is out of range`);
}

/** Writes the checked `record` into `target`, which is exactly its size. */
function writeReplyRecord(target: Uint8Array, record: ReplyRecord): Uint8Array {
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

function replyScratchOf(byteCount: number): Uint8Array {
  if (replyScratch.length !== byteCount) replyScratch = new Uint8Array(byteCount);
  return replyScratch;
}

/**
 * A client's row of the executor's table as `LedgerState.lastTurn` returns it (a plain object).
 * It keeps the result that `recordTurn` was handed and gives each reader a copy, so the common
 * case, a row that is only compared with and never answered from, copies nothing.
 */
function recordedTurn(client: string, timestamp: number, signature: string, result: Uint8Array): ClientEntry {
  return {
    client,
    timestamp,
    signature,
    get result(): Uint8Array {
      return result.slice();
    },
  };
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

/**
 * How many accounts `LedgerState` keeps decoded. A slot costs about 400 bytes; past this many the
 * cache starts over (after writing back what it holds), so memory stays bounded however many
 * accounts the ledger has, and a working set of this size is served from memory.
 */
export const ACCOUNT_CACHE_SLOTS_MAX = 65_536;

const SUPPLY_STATE_KEY = HashedKey.of(SUPPLY_KEY);

/**
 * One account's entries as execution uses them: the account decoded, the client's last turn as
 * the executor reads it, and both tree keys hashed once. `account` may be ahead of the tree
 * (`accountDirty`); the reply entry never is.
 */
interface AccountSlot {
  /** Lowercase hex of the public key: the executor's client id, and the cache's key. */
  readonly client: string;
  readonly publicKey: Uint8Array;
  accountKey: HashedKey | undefined;
  replyKey: HashedKey | undefined;
  /** The tree's entries, once found or written: later writes go through them, not from the root. */
  accountLeaf: StateLeafHandle | undefined;
  replyLeaf: StateLeafHandle | undefined;
  /** Undefined until first read. */
  account: { balance: bigint; nextNonce: number } | undefined;
  accountDirty: boolean;
  /** The reply entry as a ClientEntry; null when none is stored, undefined until first read. */
  turn: ClientEntry | null | undefined;
}

/**
 * Typed access to the ledger's entries in a state tree: the tree is the state.
 *
 * Cache. Executing a transaction reads and writes its sender's account three times (the turn
 * check, the operation, the nonce) and the reply row twice, and a recipient's account twice.
 * Going to the tree each time costs a SHA-256 of the key and an encode or decode per access, so
 * accounts are kept decoded in slots with their keys hashed once, and an account written during a
 * batch reaches the tree once, when its root is next asked for (`root`, or any use of `tree`).
 * That write-back never changes what the tree holds by the time anyone looks at it: `tree`
 * itself writes back first. The tree must change only through this object while it is in use; a
 * change made behind its back is noticed (the tree's `version` moved) and drops the cache, or
 * fails loudly if unwritten account changes would have to be ordered against it.
 */
export class LedgerState {
  private readonly stateTree: StateTree;
  /** Decoded accounts by client id (lowercase hex public key); at most ACCOUNT_CACHE_SLOTS_MAX. */
  private readonly slots = new Map<string, AccountSlot>();
  /** Slots whose account is ahead of the tree, in the order they were first written. */
  private readonly pending: AccountSlot[] = [];
  /** The tree's version after this object's last write: any other value means someone else wrote. */
  private treeVersion: number;
  /**
   * The last two slots looked up: execution asks about the same sender (first by client id, then
   * by key) and recipient several times per transaction, and comparing 32 bytes with these saves
   * converting a key to hex and hashing that string each time.
   */
  private readonly recentSlots: [AccountSlot | undefined, AccountSlot | undefined] = [undefined, undefined];
  private recentOldest: 0 | 1 = 0;

  constructor(tree: StateTree = new StateTree()) {
    this.stateTree = tree;
    this.treeVersion = tree.version;
  }

  /** The state tree, with every change made so far in it. Read it freely; write only through this object. */
  get tree(): StateTree {
    this.writeBack();
    return this.stateTree;
  }

  getValue(key: Uint8Array): Uint8Array | undefined {
    return this.stateTree.get(kvStateKey(key));
  }

  putValue(key: Uint8Array, value: Uint8Array): void {
    this.stateTree.putHashed(HashedKey.adopt(kvStateKey(key)), copyBytes(value));
    this.wrote();
  }

  /** Returns whether the key was present. */
  deleteValue(key: Uint8Array): boolean {
    const deleted = this.stateTree.delete(kvStateKey(key));
    this.wrote();
    return deleted;
  }

  account(publicKey: Uint8Array): Account {
    const { balance, nextNonce } = this.accountOf(this.slotOf(publicKey));
    return { balance, nextNonce };
  }

  setAccount(publicKey: Uint8Array, account: Account): void {
    checkAccount(account);
    const slot = this.slotOf(publicKey);
    this.updateAccount(slot, account.balance, account.nextNonce);
  }

  reply(publicKey: Uint8Array): ReplyRecord | undefined {
    const bytes = this.stateTree.getHashed(replyKeyOf(this.slotOf(publicKey)));
    return bytes === undefined ? undefined : decodeReplyRecord(bytes);
  }

  /**
   * The client's last recorded turn as the executor's table row, for a client id in canonical
   * form (lowercase hex of a public key); undefined for any other id or a client with no turn.
   */
  lastTurn(client: string): ClientEntry | undefined {
    const slot = this.slotOfClient(client);
    if (slot === undefined) return undefined;
    if (slot.turn === undefined) {
      slot.replyLeaf = this.stateTree.findHashed(replyKeyOf(slot));
      if (slot.replyLeaf === undefined) {
        slot.turn = null;
      } else {
        const record = decodeReplyRecord(this.stateTree.valueOf(slot.replyLeaf));
        slot.turn = recordedTurn(slot.client, record.nonce, turnSignature(record.signature), record.result);
      }
    }
    return slot.turn ?? undefined;
  }

  supply(): bigint {
    const bytes = this.stateTree.getHashed(SUPPLY_STATE_KEY);
    return bytes === undefined ? 0n : decodeSupply(bytes);
  }

  setSupply(supply: bigint): void {
    this.stateTree.putHashed(SUPPLY_STATE_KEY, encodeSupply(supply));
    this.wrote();
  }

  /**
   * Records that the client `publicKey`'s transaction `record.nonce` took its turn: the reply row
   * and the account's next nonce, together (see the file comment). `signatureHex`, when the
   * caller has it, is `turnSignature(record.signature)` (the executor's form, which `lastTurn`
   * returns); passing it saves a conversion, and the caller vouches that it matches. The row
   * keeps `record.result` itself for `lastTurn` (readers get copies): hand over an array that no
   * one modifies afterwards, as the executor's results are.
   */
  recordTurn(publicKey: Uint8Array, record: ReplyRecord, signatureHex?: string): void {
    const slot = this.slotOf(publicKey);
    const account = this.accountOf(slot);
    if (account.nextNonce !== record.nonce) {
      throw new LedgerStateError(`recording nonce ${record.nonce} for an account whose next nonce is ${account.nextNonce}`);
    }
    const nextNonce = record.nonce + 1;
    if (nextNonce > NEXT_NONCE_MAX) throw new LedgerStateError(`next nonce ${nextNonce} is out of range`);
    checkReplyRecord(record);
    this.updateAccount(slot, account.balance, nextNonce);
    const encoded = writeReplyRecord(replyScratchOf(REPLY_RECORD_HEADER_BYTES + record.result.length), record);
    slot.replyLeaf = this.write(slot.replyLeaf, replyKeyOf, slot, encoded);
    slot.turn = recordedTurn(slot.client, record.nonce, signatureHex ?? turnSignature(record.signature), record.result);
  }

  root(): Uint8Array {
    this.writeBack();
    return this.stateTree.root();
  }

  /** Writes every account that is ahead of the tree into it. */
  private writeBack(): void {
    const { pending } = this;
    if (pending.length === 0) return;
    this.checkTreeVersion();
    for (const slot of pending) {
      const account = slot.account!;
      slot.accountLeaf = this.write(slot.accountLeaf, accountKeyOf, slot, encodeAccountScratch(account.balance, account.nextNonce));
      slot.accountDirty = false;
    }
    pending.length = 0;
  }

  /**
   * Writes a copy of `encoded` (a scratch record) through `leaf` when the slot has found its
   * entry, else puts it under its key; returns the entry.
   */
  private write(leaf: StateLeafHandle | undefined, keyOf: (slot: AccountSlot) => HashedKey, slot: AccountSlot, encoded: Uint8Array): StateLeafHandle {
    let written = leaf;
    if (written === undefined) written = this.stateTree.putHashed(keyOf(slot), encoded.slice());
    else this.stateTree.rewrite(written, encoded);
    this.wrote();
    return written;
  }

  private updateAccount(slot: AccountSlot, balance: bigint, nextNonce: number): void {
    const account = this.accountOf(slot);
    account.balance = balance;
    account.nextNonce = nextNonce;
    if (!slot.accountDirty) {
      slot.accountDirty = true;
      this.pending.push(slot);
    }
  }

  private accountOf(slot: AccountSlot): { balance: bigint; nextNonce: number } {
    if (slot.account === undefined) {
      slot.accountLeaf = this.stateTree.findHashed(accountKeyOf(slot));
      const leaf = slot.accountLeaf;
      slot.account = leaf === undefined ? { balance: EMPTY_ACCOUNT.balance, nextNonce: EMPTY_ACCOUNT.nextNonce } : decodeAccount(this.stateTree.valueOf(leaf));
    }
    return slot.account;
  }

  private slotOf(publicKey: Uint8Array): AccountSlot {
    this.checkTreeVersion();
    const [first, second] = this.recentSlots;
    if (first !== undefined && sameBytes(publicKey, first.publicKey)) return first;
    if (second !== undefined && sameBytes(publicKey, second.publicKey)) return second;
    assertPublicKeyLength(publicKey);
    const client = bytesToHex(publicKey);
    return this.remember(this.slots.get(client) ?? this.addSlot(client, copyBytes(publicKey)));
  }

  private slotOfClient(client: string): AccountSlot | undefined {
    this.checkTreeVersion();
    const slot = this.slots.get(client);
    if (slot !== undefined) return this.remember(slot);
    const publicKey = canonicalHexToBytes(client, ED25519_PUBLIC_KEY_BYTES);
    return publicKey === undefined ? undefined : this.remember(this.addSlot(client, publicKey));
  }

  private remember(slot: AccountSlot): AccountSlot {
    const { recentSlots } = this;
    if (recentSlots[0] === slot || recentSlots[1] === slot) return slot;
    const replaced = this.recentOldest;
    recentSlots[replaced] = slot;
    this.recentOldest = replaced === 0 ? 1 : 0;
    return slot;
  }

  private addSlot(client: string, publicKey: Uint8Array): AccountSlot {
    if (this.slots.size >= ACCOUNT_CACHE_SLOTS_MAX) {
      this.writeBack();
      this.dropCache();
    }
    const slot: AccountSlot = {
      client,
      publicKey,
      accountKey: undefined,
      replyKey: undefined,
      accountLeaf: undefined,
      replyLeaf: undefined,
      account: undefined,
      accountDirty: false,
      turn: undefined,
    };
    this.slots.set(client, slot);
    return slot;
  }

  /** Records that the tree's current version is this object's own doing. */
  private wrote(): void {
    this.treeVersion = this.stateTree.version;
  }

  private checkTreeVersion(): void {
    if (this.stateTree.version === this.treeVersion) return;
    if (this.pending.length > 0) throw new LedgerStateError("the state tree was changed outside LedgerState while account changes were unwritten");
    this.dropCache();
    this.wrote();
  }

  private dropCache(): void {
    this.slots.clear();
    this.recentSlots.fill(undefined);
  }
}

function accountKeyOf(slot: AccountSlot): HashedKey {
  slot.accountKey ??= HashedKey.adopt(prefixed(ACCOUNT_KEY_PREFIX, slot.publicKey));
  return slot.accountKey;
}

function replyKeyOf(slot: AccountSlot): HashedKey {
  slot.replyKey ??= HashedKey.adopt(prefixed(REPLY_KEY_PREFIX, slot.publicKey));
  return slot.replyKey;
}

function sameBytes(left: Uint8Array, right: Uint8Array): boolean {
  if (left.length !== right.length) return false;
  for (let index = 0; index < left.length; index++) if (left[index] !== right[index]) return false;
  return true;
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
