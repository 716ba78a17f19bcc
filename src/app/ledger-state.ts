// The ledger's whole replicated state in one authenticated state tree (src/ledger/state-tree.ts),
// so that one root, the block's `stateRoot` and the state digest checkpoints sign, commits to
// everything, and any single entry (a key's value, an account's balance and nonce, a client's
// last result) can be proven against it. The entries and their encodings are in
// ledger-records.ts; this file is the typed access to them that execution uses, and its cache.
//
// Nonces. An account's next nonce and its client's row in the executor's exactly-once table
// ("reply/") move together: `recordTurn` is the one writer of both, and asserts that the nonce
// it records is the account's next. So the executor's rule (the recorded timestamp plus one is
// the next valid one) and the account rule (a transaction is valid only with the account's next
// nonce) are one rule, kept in two records: the account's, for proofs of "what nonce do I use",
// and the reply's, for proofs of "what did my last transaction return".

import { ED25519_PUBLIC_KEY_BYTES } from "../crypto/ed25519.js";
import { HashedKey, type StateLeafHandle, StateTree } from "../ledger/state-tree.js";
import { copyBytes } from "../ledger/state-tree-hash.js";
import type { ClientEntry } from "./application.js";
import { bytesToHex, canonicalHexToBytes } from "./bytes.js";
import {
  type Account,
  EMPTY_ACCOUNT,
  LedgerStateError,
  REPLY_RECORD_HEADER_BYTES,
  type ReplyRecord,
  SUPPLY_KEY,
  accountStateKey,
  assertPublicKeyLength,
  checkAccount,
  checkReplyRecord,
  decodeAccount,
  decodeReplyRecord,
  decodeSupply,
  encodeAccountScratch,
  encodeSupply,
  kvStateKey,
  replyScratchOf,
  replyStateKey,
  turnSignature,
  writeReplyRecord,
} from "./ledger-records.js";
import { NEXT_NONCE_MAX } from "./result.js";

// The records are part of this module's interface, as they were before they had a file of their own.
export * from "./ledger-records.js";

/**
 * How many accounts `LedgerState` keeps decoded. A slot costs about 1 KiB (measured on Node 20
 * with a one-byte result: the hex client id, the key, both hashed tree keys, the account and the
 * turn with its hex signature), 1.2 KiB with the longest result a slot keeps
 * (TURN_RESULT_CACHED_BYTES_MAX). Past this many the cache starts over (after writing back what it
 * holds), so it stays under about 80 MiB however many accounts the ledger has, and a working set
 * of this size is served from memory.
 */
export const ACCOUNT_CACHE_SLOTS_MAX = 65_536;

/**
 * The largest result a slot keeps with its client's last turn. Nearly every result is a few bytes,
 * but a get's can be a whole value (64 KiB): kept in every slot, those would let 65,536 slots hold
 * 4 GiB. A larger result stays only in the tree, in the reply entry, and `lastTurn` decodes it
 * from there each time it is asked.
 */
export const TURN_RESULT_CACHED_BYTES_MAX = 256;

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
  /**
   * The reply entry as a ClientEntry; null when none is stored; undefined until first read, and
   * whenever its result is longer than TURN_RESULT_CACHED_BYTES_MAX (then `replyLeaf` is the entry).
   */
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
  /** Decoded accounts by client id (lowercase hex public key); at most `slotsMax`. */
  private readonly slots = new Map<string, AccountSlot>();
  private readonly slotsMax: number;
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

  /** `accountCacheSlotsMax` (default ACCOUNT_CACHE_SLOTS_MAX) bounds the decoded accounts kept. */
  constructor(tree: StateTree = new StateTree(), options: { readonly accountCacheSlotsMax?: number } = {}) {
    this.stateTree = tree;
    this.treeVersion = tree.version;
    this.slotsMax = options.accountCacheSlotsMax ?? ACCOUNT_CACHE_SLOTS_MAX;
    if (!Number.isSafeInteger(this.slotsMax) || this.slotsMax < 1) throw new RangeError(`LedgerState: accountCacheSlotsMax ${this.slotsMax} must be a positive integer`);
  }

  /** The state tree, with every change made so far in it. Read it freely; write only through this object. */
  get tree(): StateTree {
    this.writeBack();
    return this.stateTree;
  }

  getValue(key: Uint8Array): Uint8Array | undefined {
    return this.stateTree.get(kvStateKey(key));
  }

  /**
   * Sets the kv entry `key` to `value` itself, not a copy: for an array nobody modifies afterwards,
   * like the value of a transaction decoded for execution (the kv store's case).
   */
  adoptValue(key: Uint8Array, value: Uint8Array): void {
    this.checkTreeVersion();
    this.stateTree.putHashed(HashedKey.adopt(kvStateKey(key)), value);
    this.wrote();
  }

  /** Returns whether the key was present. */
  deleteValue(key: Uint8Array): boolean {
    this.checkTreeVersion();
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

  /**
   * The client's last recorded turn as the executor's table row, for a client id in canonical
   * form (lowercase hex of a public key); undefined for any other id or a client with no turn.
   * The row may be shared: read it, never modify it or its result.
   *
   * Only a client with a recorded turn gets a slot here. The consensus core asks about the client
   * of every request it receives before it checks the signature, so a peer can name any number of
   * made-up keys; were each given a slot, a stream of them would flush the cache.
   */
  lastTurn(client: string): ClientEntry | undefined {
    this.checkTreeVersion();
    let slot = this.slots.get(client);
    if (slot === undefined) {
      const publicKey = canonicalHexToBytes(client, ED25519_PUBLIC_KEY_BYTES);
      if (publicKey === undefined) return undefined;
      const replyKey = HashedKey.adopt(replyStateKey(publicKey));
      const replyLeaf = this.stateTree.findHashed(replyKey);
      if (replyLeaf === undefined) return undefined;
      slot = this.addSlot(client, publicKey);
      slot.replyKey = replyKey;
      slot.replyLeaf = replyLeaf;
    }
    this.remember(slot);
    if (slot.turn !== undefined) return slot.turn ?? undefined;
    slot.replyLeaf ??= this.stateTree.findHashed(replyKeyOf(slot));
    if (slot.replyLeaf === undefined) {
      slot.turn = null;
      return undefined;
    }
    const record = decodeReplyRecord(this.stateTree.valueOf(slot.replyLeaf));
    const turn: ClientEntry = { client: slot.client, timestamp: record.nonce, signature: turnSignature(record.signature), result: record.result };
    if (record.result.length <= TURN_RESULT_CACHED_BYTES_MAX) slot.turn = turn;
    return turn;
  }

  supply(): bigint {
    const bytes = this.stateTree.getHashed(SUPPLY_STATE_KEY);
    return bytes === undefined ? 0n : decodeSupply(bytes);
  }

  setSupply(supply: bigint): void {
    this.checkTreeVersion();
    this.stateTree.putHashed(SUPPLY_STATE_KEY, encodeSupply(supply));
    this.wrote();
  }

  /**
   * Records that the client `publicKey`'s transaction `record.nonce` took its turn: the reply row
   * and the account's next nonce, together (see the file comment). `signatureHex`, when the
   * caller has it, is `turnSignature(record.signature)` (the executor's form, which `lastTurn`
   * returns); passing it saves a conversion, and the caller vouches that it matches. A result of
   * at most TURN_RESULT_CACHED_BYTES_MAX bytes is kept in the slot as it is, and `lastTurn` hands
   * it out: results are never modified once made (the executor's are not), so nothing needs a copy.
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
    slot.turn =
      record.result.length <= TURN_RESULT_CACHED_BYTES_MAX
        ? { client: slot.client, timestamp: record.nonce, signature: signatureHex ?? turnSignature(record.signature), result: record.result }
        : undefined;
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

  private remember(slot: AccountSlot): AccountSlot {
    const { recentSlots } = this;
    if (recentSlots[0] === slot || recentSlots[1] === slot) return slot;
    const replaced = this.recentOldest;
    recentSlots[replaced] = slot;
    this.recentOldest = replaced === 0 ? 1 : 0;
    return slot;
  }

  private addSlot(client: string, publicKey: Uint8Array): AccountSlot {
    if (this.slots.size >= this.slotsMax) {
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
  slot.accountKey ??= HashedKey.adopt(accountStateKey(slot.publicKey));
  return slot.accountKey;
}

function replyKeyOf(slot: AccountSlot): HashedKey {
  slot.replyKey ??= HashedKey.adopt(replyStateKey(slot.publicKey));
  return slot.replyKey;
}

function sameBytes(left: Uint8Array, right: Uint8Array): boolean {
  if (left.length !== right.length) return false;
  for (let index = 0; index < left.length; index++) if (left[index] !== right[index]) return false;
  return true;
}
