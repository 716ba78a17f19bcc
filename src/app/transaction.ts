// The signed transaction envelope and its one canonical binary encoding (DESIGN.md, "Data
// model"; issue 3 §1). The same bytes are hashed (transaction id, Merkle leaf), signed (after a
// domain prefix, without the signature) and stored, so there is exactly one encoding per
// transaction and the decoder refuses every other byte string: if two encodings could carry
// the same transaction, replicas could disagree on its id or a block's txRoot.
//
// Layout (integers big-endian, lengths in bytes):
//
//   offset  size  field
//   0       1     format version: 1 signed, 2 session-authenticated
//   1       32    client public key (Ed25519, raw; also the client's token account)
//   33      8     nonce, uint64 (at most 2^53 - 1, see `TransactionBody.nonce`)
//   41      1     operation tag (below)
//   42      ...   operation body
//   end-64  64    version 1 only: Ed25519 signature over SIGNING_DOMAIN || bytes[0 .. end-64)
//
// Version 2 (issue 5, `--auth session`) carries no signature: its client authenticated the
// connection it arrived on once (a signed session attachment) and that connection's per-frame MAC
// authenticates the request, as PBFT's MAC authenticators do (seed 003, "cryptography"). Such a
// transaction convinces only the replicas that received it; anyone else relies on the commit
// certificate of the block that holds it (2f + 1 replicas, at least f + 1 of them correct, each of
// which accepted it only from an authenticated session). In memory its `signature` is empty.
//
//   tag  operation  body
//   1    put        keyLength u16, key, valueLength u32, value
//   2    get        keyLength u16, key
//   3    delete     keyLength u16, key
//   4    cas        keyLength u16, key, hasExpected u8 (0 or 1),
//                   [expectedLength u32, expected] if hasExpected, valueLength u32, value
//   5    mint       to (32-byte public key), amount u64
//   6    transfer   to (32-byte public key), amount u64
//   7    balance    account (32-byte public key)
//   8    noop       (empty): changes nothing but the nonce; consensus and execution cost alone
//
// Tag 0 is never used, so a zero-filled buffer does not decode.
//
// This module checks form only: whether a signer may mint, whether a balance covers a transfer
// and whether a nonce is the account's next are the executor's questions.

import { sha256 } from "../crypto/sha256.js";
import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  type Ed25519PrivateKey,
  Ed25519Verifier,
  describePublicKeyProblem,
  ed25519PublicKeyOf,
  ed25519PublicKeyProblem,
  ed25519Sign,
  ed25519Verify,
} from "../crypto/ed25519.js";

export const TRANSACTION_FORMAT_VERSION = 1;
/** The format of session-authenticated transactions: version 1's layout without the signature. */
export const SESSION_TRANSACTION_FORMAT_VERSION = 2;
/** The `signature` of a session-authenticated transaction: none. */
export const SESSION_SIGNATURE: Uint8Array = new Uint8Array(0);

/** Longest key-value store key. Keys are at least one byte: an empty key is a client bug. */
export const TRANSACTION_KEY_BYTES_MAX = 1024;
/** Longest value (64 KiB), for `put`, and for both `expected` and `value` of `cas`. */
export const TRANSACTION_VALUE_BYTES_MAX = 64 * 1024;
/** Largest token amount: amounts are uint64 on the wire and bigint in memory. */
export const TRANSACTION_AMOUNT_MAX = (1n << 64n) - 1n;
/** Largest nonce: nonces are uint64 on the wire but safe integers in memory. */
export const TRANSACTION_NONCE_MAX = Number.MAX_SAFE_INTEGER;

const HEADER_BYTES = 1 + ED25519_PUBLIC_KEY_BYTES + 8 + 1;
const KEY_LENGTH_BYTES = 2;
const VALUE_LENGTH_BYTES = 4;
const AMOUNT_BYTES = 8;

/**
 * Longest encoded transaction: a `cas` with the longest key, expected value and new value
 * (132,213 bytes, about 129 KiB). Deriving it from the field limits means every operation that
 * respects them can be sent; a separate, smaller envelope limit would be a third rule that
 * quietly forbids large compare-and-sets. The decoder checks it before reading anything.
 */
export const TRANSACTION_BYTES_MAX =
  HEADER_BYTES +
  (KEY_LENGTH_BYTES + TRANSACTION_KEY_BYTES_MAX) +
  1 +
  2 * (VALUE_LENGTH_BYTES + TRANSACTION_VALUE_BYTES_MAX) +
  ED25519_SIGNATURE_BYTES;

/**
 * Prefix of every signed transaction message. It keeps a transaction signature from ever being
 * valid as any other Bulwark signature (a consensus vote, a checkpoint), whose domains will
 * differ; the trailing NUL makes the set of domains prefix-free.
 */
const SIGNING_DOMAIN: Uint8Array = new TextEncoder().encode("bulwark/transaction/v1\0");

const OPERATION_TAGS = {
  put: 1,
  get: 2,
  delete: 3,
  cas: 4,
  mint: 5,
  transfer: 6,
  balance: 7,
  noop: 8,
} as const;

export type OperationType = keyof typeof OPERATION_TAGS;

export interface PutOperation {
  readonly type: "put";
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}
export interface GetOperation {
  readonly type: "get";
  readonly key: Uint8Array;
}
export interface DeleteOperation {
  readonly type: "delete";
  readonly key: Uint8Array;
}
/** Set `key` to `value` if its current value is `expected`, or if it is absent when `expected` is null. */
export interface CasOperation {
  readonly type: "cas";
  readonly key: Uint8Array;
  readonly expected: Uint8Array | null;
  readonly value: Uint8Array;
}
/** Create `amount` tokens in account `to`; only the genesis authority's key may. */
export interface MintOperation {
  readonly type: "mint";
  readonly to: Uint8Array;
  readonly amount: bigint;
}
/** Move `amount` tokens from the signer's account to `to`. */
export interface TransferOperation {
  readonly type: "transfer";
  readonly to: Uint8Array;
  readonly amount: bigint;
}
export interface BalanceOperation {
  readonly type: "balance";
  readonly account: Uint8Array;
}
/** Nothing but the nonce: what consensus and execution cost with no work of the application's. */
export interface NoopOperation {
  readonly type: "noop";
}

export type Operation =
  | PutOperation
  | GetOperation
  | DeleteOperation
  | CasOperation
  | MintOperation
  | TransferOperation
  | BalanceOperation
  | NoopOperation;

/** What the client signs. */
export interface TransactionBody {
  /** The client's raw Ed25519 public key; it is also the client's token account. */
  readonly clientKey: Uint8Array;
  /**
   * The client's transaction counter, which makes replays detectable. A safe integer rather
   * than a bigint: a client sending a million transactions a second would need 285 years to
   * pass 2^53, while numbers are faster to compare, serve as Map keys and survive JSON. The
   * wire field is a full uint64, so widening later changes no encoding.
   */
  readonly nonce: number;
  readonly operation: Operation;
}

/** A signed or session-authenticated transaction. */
export interface Transaction extends TransactionBody {
  /** Ed25519 signature over `transactionSigningMessage(body)`; empty for a session-authenticated one. */
  readonly signature: Uint8Array;
}

/** True for a session-authenticated transaction (format version 2, no signature). */
export function isSessionTransaction(transaction: Pick<Transaction, "signature">): boolean {
  return transaction.signature.length === 0;
}

/** True when `envelope` is in the session format (its version byte), without decoding the rest. */
export function isSessionEnvelope(envelope: Uint8Array): boolean {
  return envelope[0] === SESSION_TRANSACTION_FORMAT_VERSION;
}

/** A session-authenticated transaction of `body`: it goes out unsigned over a session its key attached to. */
export function sessionTransaction(body: TransactionBody): Transaction {
  return { clientKey: body.clientKey, nonce: body.nonce, operation: body.operation, signature: SESSION_SIGNATURE };
}

export type TransactionDecodeErrorCode =
  | "not-bytes"
  | "oversize"
  | "truncated"
  | "trailing-bytes"
  | "unsupported-version"
  | "unknown-operation"
  | "invalid-public-key"
  | "nonce-out-of-range"
  | "field-length"
  | "non-canonical";

/** Bytes that are not the canonical encoding of any transaction. */
export class TransactionDecodeError extends Error {
  override readonly name = "TransactionDecodeError";

  constructor(
    readonly code: TransactionDecodeErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A transaction that cannot be encoded because a field breaks the format's rules. */
export class TransactionEncodeError extends Error {
  override readonly name = "TransactionEncodeError";
}

/** The canonical encoding of a transaction: what is stored, hashed and sent. */
export function encodeTransaction(transaction: Transaction): Uint8Array {
  const { signature } = transaction;
  if (!(signature instanceof Uint8Array) || (signature.length !== ED25519_SIGNATURE_BYTES && signature.length !== 0)) {
    throw new TransactionEncodeError(`a signature is ${ED25519_SIGNATURE_BYTES} bytes (or none, for a session-authenticated transaction)`);
  }
  const bodyBytes = checkedBodyBytes(transaction);
  const encoding = new Uint8Array(bodyBytes + signature.length);
  writeBody(encoding, 0, transaction, signature.length === 0 ? SESSION_TRANSACTION_FORMAT_VERSION : TRANSACTION_FORMAT_VERSION);
  encoding.set(signature, bodyBytes);
  return encoding;
}

/**
 * The transaction whose canonical encoding is `bytes`, or a TransactionDecodeError saying what
 * is wrong with them. Byte fields of the result are copies: the input may be a pooled network
 * buffer, and a transaction kept for execution must not change under it.
 */
export function decodeTransaction(bytes: Uint8Array): Transaction {
  if (!(bytes instanceof Uint8Array)) {
    throw new TransactionDecodeError("not-bytes", "a transaction must be decoded from a Uint8Array");
  }
  if (bytes.length > TRANSACTION_BYTES_MAX) {
    throw new TransactionDecodeError(
      "oversize",
      `transaction is ${bytes.length} bytes; the limit is ${TRANSACTION_BYTES_MAX}`,
    );
  }
  const reader = new Reader(bytes);
  const version = reader.u8("format version");
  if (version !== TRANSACTION_FORMAT_VERSION && version !== SESSION_TRANSACTION_FORMAT_VERSION) {
    throw new TransactionDecodeError(
      "unsupported-version",
      `transaction format version ${version} is not supported; this build reads versions ${TRANSACTION_FORMAT_VERSION} (signed) and ${SESSION_TRANSACTION_FORMAT_VERSION} (session)`,
    );
  }
  const clientKey = reader.publicKey("client key");
  const nonce = reader.nonce();
  const operation = readOperation(reader);
  const signature = version === SESSION_TRANSACTION_FORMAT_VERSION ? SESSION_SIGNATURE : reader.bytes(ED25519_SIGNATURE_BYTES, "signature");
  if (reader.remaining() !== 0) {
    throw new TransactionDecodeError(
      "trailing-bytes",
      `transaction has ${reader.remaining()} bytes after its signature`,
    );
  }
  return { clientKey, nonce, operation, signature };
}

/** The bytes a client signs: the domain prefix and the encoding without the signature. */
export function transactionSigningMessage(body: TransactionBody): Uint8Array {
  const bodyBytes = checkedBodyBytes(body);
  const message = new Uint8Array(SIGNING_DOMAIN.length + bodyBytes);
  message.set(SIGNING_DOMAIN, 0);
  writeBody(message, SIGNING_DOMAIN.length, body, TRANSACTION_FORMAT_VERSION);
  return message;
}

/** Signs `body` with the private key of `body.clientKey`. */
export function signTransaction(privateKey: Ed25519PrivateKey, body: TransactionBody): Transaction {
  const signerKey = ed25519PublicKeyOf(privateKey);
  if (!(body.clientKey instanceof Uint8Array) || Buffer.compare(signerKey, body.clientKey) !== 0) {
    // Such a transaction could never verify; refusing here tells the client why.
    throw new TransactionEncodeError("the private key does not belong to the transaction's client key");
  }
  const signature = ed25519Sign(privateKey, transactionSigningMessage(body));
  return { clientKey: body.clientKey, nonce: body.nonce, operation: body.operation, signature };
}

/**
 * Whether `transaction` is well formed and signed by its client key. Never throws for bad input:
 * replicas call it on whatever clients send. Pass a verifier to use its key cache (a worker of
 * the verification pool has its own); by default the thread's shared one is used.
 */
export function verifyTransaction(transaction: Transaction, verifier?: Ed25519Verifier): boolean {
  // A session-authenticated transaction has no signature to check: only the session it arrived on vouches for it.
  if (isSessionTransaction(transaction)) return false;
  let message: Uint8Array;
  try {
    message = transactionSigningMessage(transaction);
  } catch (error) {
    if (error instanceof TransactionEncodeError) return false;
    throw error;
  }
  return verifier === undefined
    ? ed25519Verify(transaction.clientKey, message, transaction.signature)
    : verifier.verify(transaction.clientKey, message, transaction.signature);
}

/**
 * SHA-256 of a transaction's canonical encoding. Given bytes, they are hashed as they are, so
 * pass only bytes that decoded (or came from `encodeTransaction`).
 */
export function transactionId(transaction: Transaction | Uint8Array): Uint8Array {
  return sha256(transaction instanceof Uint8Array ? transaction : encodeTransaction(transaction));
}

// ---------------------------------------------------------------------------------------------
// Encoding

/**
 * The length of the body's encoding (without signature), after checking every field against
 * the rules the decoder enforces, so that whatever encodes also decodes.
 */
function checkedBodyBytes(body: TransactionBody): number {
  checkPublicKey(body.clientKey, "client key");
  if (!Number.isSafeInteger(body.nonce) || body.nonce < 0) {
    throw new TransactionEncodeError(`nonce must be an integer from 0 to ${TRANSACTION_NONCE_MAX}, not ${body.nonce}`);
  }
  return HEADER_BYTES + checkedOperationBytes(body.operation);
}

function checkedOperationBytes(operation: Operation): number {
  switch (operation.type) {
    case "put":
      return checkedKeyBytes(operation.key) + checkedValueBytes(operation.value, "value");
    case "get":
    case "delete":
      return checkedKeyBytes(operation.key);
    case "cas": {
      const expectedBytes = operation.expected === null ? 0 : checkedValueBytes(operation.expected, "expected value");
      return checkedKeyBytes(operation.key) + 1 + expectedBytes + checkedValueBytes(operation.value, "value");
    }
    case "mint":
    case "transfer":
      checkPublicKey(operation.to, "recipient");
      checkAmount(operation.amount);
      return ED25519_PUBLIC_KEY_BYTES + AMOUNT_BYTES;
    case "balance":
      checkPublicKey(operation.account, "account");
      return ED25519_PUBLIC_KEY_BYTES;
    case "noop":
      return 0;
    default:
      // Reachable only from untyped callers (JSON, JavaScript).
      throw new TransactionEncodeError(`unknown operation type ${String((operation as { type: unknown }).type)}`);
  }
}

function checkedKeyBytes(key: Uint8Array): number {
  if (!(key instanceof Uint8Array) || key.length < 1 || key.length > TRANSACTION_KEY_BYTES_MAX) {
    throw new TransactionEncodeError(`a key must be 1 to ${TRANSACTION_KEY_BYTES_MAX} bytes`);
  }
  return KEY_LENGTH_BYTES + key.length;
}

function checkedValueBytes(value: Uint8Array, what: string): number {
  if (!(value instanceof Uint8Array) || value.length > TRANSACTION_VALUE_BYTES_MAX) {
    throw new TransactionEncodeError(`the ${what} must be at most ${TRANSACTION_VALUE_BYTES_MAX} bytes`);
  }
  return VALUE_LENGTH_BYTES + value.length;
}

function checkPublicKey(key: Uint8Array, what: string): void {
  if (!(key instanceof Uint8Array)) throw new TransactionEncodeError(`the ${what} must be a Uint8Array`);
  const problem = ed25519PublicKeyProblem(key);
  if (problem !== null) throw new TransactionEncodeError(`${what}: ${describePublicKeyProblem(problem, key)}`);
}

function checkAmount(amount: bigint): void {
  if (typeof amount !== "bigint" || amount < 0n || amount > TRANSACTION_AMOUNT_MAX) {
    throw new TransactionEncodeError(`an amount must be a bigint from 0 to 2^64 - 1`);
  }
}

/** Writes the checked body at `offset` of `target`, which has room for it. */
function writeBody(target: Uint8Array, offset: number, body: TransactionBody, version: number): void {
  const writer = new Writer(target, offset);
  writer.u8(version);
  writer.bytes(body.clientKey);
  writer.u64(BigInt(body.nonce));
  const { operation } = body;
  writer.u8(OPERATION_TAGS[operation.type]);
  switch (operation.type) {
    case "put":
      writer.key(operation.key);
      writer.value(operation.value);
      break;
    case "get":
    case "delete":
      writer.key(operation.key);
      break;
    case "cas":
      writer.key(operation.key);
      writer.u8(operation.expected === null ? 0 : 1);
      if (operation.expected !== null) writer.value(operation.expected);
      writer.value(operation.value);
      break;
    case "mint":
    case "transfer":
      writer.bytes(operation.to);
      writer.u64(operation.amount);
      break;
    case "balance":
      writer.bytes(operation.account);
      break;
    case "noop":
      break;
  }
}

class Writer {
  private readonly view: DataView;

  constructor(
    private readonly target: Uint8Array,
    private offset: number,
  ) {
    this.view = new DataView(target.buffer, target.byteOffset, target.byteLength);
  }

  u8(value: number): void {
    this.view.setUint8(this.offset, value);
    this.offset += 1;
  }

  u64(value: bigint): void {
    this.view.setBigUint64(this.offset, value);
    this.offset += 8;
  }

  bytes(value: Uint8Array): void {
    this.target.set(value, this.offset);
    this.offset += value.length;
  }

  key(key: Uint8Array): void {
    this.view.setUint16(this.offset, key.length);
    this.offset += KEY_LENGTH_BYTES;
    this.bytes(key);
  }

  value(value: Uint8Array): void {
    this.view.setUint32(this.offset, value.length);
    this.offset += VALUE_LENGTH_BYTES;
    this.bytes(value);
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

const OPERATION_TYPE_OF_TAG: ReadonlyMap<number, OperationType> = new Map(
  Object.entries(OPERATION_TAGS).map(([type, tag]) => [tag, type as OperationType]),
);

function readOperation(reader: Reader): Operation {
  const tag = reader.u8("operation tag");
  const type = OPERATION_TYPE_OF_TAG.get(tag);
  switch (type) {
    case "put":
      return { type, key: reader.key(), value: reader.value("value") };
    case "get":
    case "delete":
      return { type, key: reader.key() };
    case "cas": {
      const key = reader.key();
      const hasExpected = reader.u8("cas expected-value flag");
      if (hasExpected > 1) {
        throw new TransactionDecodeError(
          "non-canonical",
          `cas expected-value flag is ${hasExpected}; it must be 0 (key absent) or 1 (value follows)`,
        );
      }
      const expected = hasExpected === 1 ? reader.value("expected value") : null;
      return { type, key, expected, value: reader.value("value") };
    }
    case "mint":
    case "transfer":
      return { type, to: reader.publicKey("recipient"), amount: reader.u64("amount") };
    case "balance":
      return { type, account: reader.publicKey("account") };
    case "noop":
      return { type };
    case undefined:
      throw new TransactionDecodeError("unknown-operation", `operation tag ${tag} is not a known operation`);
  }
}

/** Reads fields in order, checking each against the bytes left before touching them. */
class Reader {
  private readonly view: DataView;
  private offset = 0;

  constructor(private readonly source: Uint8Array) {
    this.view = new DataView(source.buffer, source.byteOffset, source.byteLength);
  }

  remaining(): number {
    return this.source.length - this.offset;
  }

  u8(what: string): number {
    this.need(1, what);
    const value = this.view.getUint8(this.offset);
    this.offset += 1;
    return value;
  }

  u64(what: string): bigint {
    this.need(8, what);
    const value = this.view.getBigUint64(this.offset);
    this.offset += 8;
    return value;
  }

  nonce(): number {
    this.need(8, "nonce");
    // Two 32-bit halves instead of a bigint: the nonce is read for every transaction.
    const high = this.view.getUint32(this.offset);
    const low = this.view.getUint32(this.offset + 4);
    // 2^53 - 1 has 21 bits in its high half; anything above is not a safe integer.
    if (high > 0x1f_ffff) {
      throw new TransactionDecodeError("nonce-out-of-range", `nonce exceeds ${TRANSACTION_NONCE_MAX}`);
    }
    this.offset += 8;
    return high * 2 ** 32 + low;
  }

  /** A copy of the next `length` bytes. */
  bytes(length: number, what: string): Uint8Array {
    this.need(length, what);
    // Constructing from a view copies, and gives a plain Uint8Array even when the source is a
    // Buffer (whose `slice` would return a view sharing the source's memory).
    const copy = new Uint8Array(this.source.subarray(this.offset, this.offset + length));
    this.offset += length;
    return copy;
  }

  publicKey(what: string): Uint8Array {
    const key = this.bytes(ED25519_PUBLIC_KEY_BYTES, what);
    const problem = ed25519PublicKeyProblem(key);
    if (problem !== null) {
      throw new TransactionDecodeError("invalid-public-key", `${what}: ${describePublicKeyProblem(problem, key)}`);
    }
    return key;
  }

  key(): Uint8Array {
    this.need(KEY_LENGTH_BYTES, "key length");
    const length = this.view.getUint16(this.offset);
    if (length < 1 || length > TRANSACTION_KEY_BYTES_MAX) {
      throw new TransactionDecodeError(
        "field-length",
        `key length is ${length}; keys are 1 to ${TRANSACTION_KEY_BYTES_MAX} bytes`,
      );
    }
    this.offset += KEY_LENGTH_BYTES;
    return this.bytes(length, "key");
  }

  value(what: string): Uint8Array {
    this.need(VALUE_LENGTH_BYTES, `${what} length`);
    const length = this.view.getUint32(this.offset);
    if (length > TRANSACTION_VALUE_BYTES_MAX) {
      throw new TransactionDecodeError(
        "field-length",
        `${what} length is ${length}; the limit is ${TRANSACTION_VALUE_BYTES_MAX} bytes`,
      );
    }
    this.offset += VALUE_LENGTH_BYTES;
    return this.bytes(length, what);
  }

  private need(length: number, what: string): void {
    if (this.remaining() < length) {
      throw new TransactionDecodeError(
        "truncated",
        `transaction is truncated: the ${what} needs ${length} bytes at offset ${this.offset}, but ${this.remaining()} remain`,
      );
    }
  }
}
