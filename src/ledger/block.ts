// A block: its header (block-header.ts) and its body, the transactions of one committed batch and
// their results, each as the opaque bytes that were ordered and produced. The ledger never decodes
// a transaction: an undecodable or invalid one is still committed, with an error result
// (issue 3 §1), and its bytes are what the Merkle root covers.
//
// Body layout, version 1 (integers big-endian):
//
//   offset  size  field
//   0       1     format version, 1
//   1       4     count c, u32 (0 .. BLOCK_TRANSACTIONS_MAX)
//   5       ...   c transactions, each u32 length (0 .. BLOCK_ENTRY_BYTES_MAX) and its bytes
//   ...     ...   c results, each u32 length (0 .. BLOCK_ENTRY_BYTES_MAX) and its bytes
//
// A block's encoding is its header's encoding followed by its body's. The body is separable so
// that storage can prune old bodies and keep headers (issue 3 §4, retention).
//
// The body's count is read from the body itself, not from the header, so a body decodes on its
// own; that the two agree, and that the roots match, is checked by `verifyBlock` (verify.ts).

import { sha256 } from "../crypto/sha256.js";
import {
  BLOCK_HEADER_VERSION,
  BLOCK_TRANSACTIONS_MAX,
  type BlockHeader,
  blockHeaderEncodedBytes,
  blockHeaderProblem,
  readBlockHeader,
  writeHeader,
} from "./block-header.js";
import { ByteReader, ByteWriter, LedgerEncodeError, copyBytes, isBytes } from "./codec.js";
import { MerkleTree } from "./merkle.js";

export const BLOCK_BODY_VERSION = 1;

/**
 * Longest transaction or result (1 MiB). The largest transaction the application accepts is
 * about 129 KiB (TRANSACTION_BYTES_MAX in src/app/transaction.ts) and a result carries at most
 * one value of 64 KiB, so this leaves room without letting one entry claim gigabytes.
 */
export const BLOCK_ENTRY_BYTES_MAX = 1 << 20;

const BODY_HEADER_BYTES = 1 + 4;
const ENTRY_LENGTH_BYTES = 4;

export interface Block {
  readonly header: BlockHeader;
  /** The transactions in commit order, each as its canonical encoding. */
  readonly transactions: readonly Uint8Array[];
  /** `results[i]` is the encoded result of `transactions[i]`. */
  readonly results: readonly Uint8Array[];
}

/** What a block producer supplies; `buildBlock` derives the roots and the count. */
export interface BlockContents {
  readonly clusterId: string;
  readonly height: number;
  readonly prevHash: Uint8Array;
  /** State root after executing `transactions`. */
  readonly stateRoot: Uint8Array;
  readonly transactions: readonly Uint8Array[];
  readonly results: readonly Uint8Array[];
}

/** The block for one committed batch, with its header's roots computed from its body. */
export function buildBlock(contents: BlockContents): Block {
  const problem = bodyProblem(contents.transactions, contents.results);
  if (problem !== null) throw new LedgerEncodeError("block body", problem);
  const header: BlockHeader = {
    version: BLOCK_HEADER_VERSION,
    clusterId: contents.clusterId,
    height: contents.height,
    seq: contents.height,
    prevHash: copyBytes(contents.prevHash),
    txRoot: transactionTree(contents.transactions).root,
    txCount: contents.transactions.length,
    stateRoot: copyBytes(contents.stateRoot),
    resultsRoot: resultTree(contents.results).root,
  };
  const headerProblem = blockHeaderProblem(header);
  if (headerProblem !== null) throw new LedgerEncodeError("block header", headerProblem);
  return { header, transactions: [...contents.transactions], results: [...contents.results] };
}

/** The Merkle leaves of txRoot: SHA-256 of each transaction's bytes, its transaction id. */
export function transactionIds(transactions: readonly Uint8Array[]): Uint8Array[] {
  return transactions.map((transaction) => sha256(transaction));
}

/** The tree behind txRoot; build it once per block to serve every transaction's proof. */
export function transactionTree(transactions: readonly Uint8Array[]): MerkleTree {
  return MerkleTree.fromDigestsOf(transactions);
}

/** The tree behind resultsRoot: the encoded results themselves are its leaves. */
export function resultTree(results: readonly Uint8Array[]): MerkleTree {
  return MerkleTree.fromLeaves(results);
}

/**
 * What is wrong with a body's entries, or null. Shared by the encoder and `verifyBlock`; the
 * values may come from anywhere, so everything is checked, types included.
 */
export function bodyProblem(transactions: unknown, results: unknown): string | null {
  if (!Array.isArray(transactions) || !Array.isArray(results)) return "transactions and results must be arrays";
  if (transactions.length > BLOCK_TRANSACTIONS_MAX) return `${transactions.length} transactions exceed the maximum ${BLOCK_TRANSACTIONS_MAX}`;
  if (results.length !== transactions.length) {
    return `${transactions.length} transactions but ${results.length} results; every transaction has exactly one result`;
  }
  const tooLong = (entry: unknown): boolean => !isBytes(entry) || entry.length > BLOCK_ENTRY_BYTES_MAX;
  const badTransaction = (transactions as unknown[]).findIndex(tooLong);
  if (badTransaction !== -1) return `transaction ${badTransaction} is not a byte array of at most ${BLOCK_ENTRY_BYTES_MAX} bytes`;
  const badResult = (results as unknown[]).findIndex(tooLong);
  if (badResult !== -1) return `result ${badResult} is not a byte array of at most ${BLOCK_ENTRY_BYTES_MAX} bytes`;
  return null;
}

/** The canonical encoding of a body; throws `LedgerEncodeError` for malformed entries. */
export function encodeBlockBody(transactions: readonly Uint8Array[], results: readonly Uint8Array[]): Uint8Array {
  const problem = bodyProblem(transactions, results);
  if (problem !== null) throw new LedgerEncodeError("block body", problem);
  const writer = new ByteWriter(bodyEncodedBytes(transactions, results));
  writeBody(writer, transactions, results);
  return writer.finish();
}

/** Parses a body alone; throws `LedgerDecodeError`. Entries are views into a private copy of the input. */
export function decodeBlockBody(bytes: Uint8Array): { transactions: Uint8Array[]; results: Uint8Array[] } {
  const reader = new ByteReader(isBytes(bytes) ? copyBytes(bytes) : bytes, "block body");
  if (!isBytes(bytes)) reader.fail("not-bytes", "input is not a byte array");
  const body = readBody(reader);
  reader.end();
  return body;
}

/** The canonical encoding of a whole block: header, then body. Throws `LedgerEncodeError`. */
export function encodeBlock(block: Block): Uint8Array {
  const headerProblem = blockHeaderProblem(block.header);
  if (headerProblem !== null) throw new LedgerEncodeError("block header", headerProblem);
  const problem = bodyProblem(block.transactions, block.results);
  if (problem !== null) throw new LedgerEncodeError("block body", problem);
  const writer = new ByteWriter(blockHeaderEncodedBytes(block.header) + bodyEncodedBytes(block.transactions, block.results));
  writeHeader(writer, block.header);
  writeBody(writer, block.transactions, block.results);
  return writer.finish();
}

/**
 * Parses a whole block; throws `LedgerDecodeError`. The input is copied once and the entries are
 * views into that copy, so a caller may reuse its buffer (LMDB hands out buffers it recycles);
 * an entry kept alone keeps the whole copy alive.
 */
export function decodeBlock(bytes: Uint8Array): Block {
  const reader = new ByteReader(isBytes(bytes) ? copyBytes(bytes) : bytes, "block");
  if (!isBytes(bytes)) reader.fail("not-bytes", "input is not a byte array");
  const header = readBlockHeader(reader);
  const { transactions, results } = readBody(reader);
  reader.end();
  return { header, transactions, results };
}

function bodyEncodedBytes(transactions: readonly Uint8Array[], results: readonly Uint8Array[]): number {
  let total = BODY_HEADER_BYTES + 2 * transactions.length * ENTRY_LENGTH_BYTES;
  for (const transaction of transactions) total += transaction.length;
  for (const result of results) total += result.length;
  return total;
}

function writeBody(writer: ByteWriter, transactions: readonly Uint8Array[], results: readonly Uint8Array[]): void {
  writer.u8(BLOCK_BODY_VERSION).u32(transactions.length);
  for (const transaction of transactions) writer.u32(transaction.length).raw(transaction);
  for (const result of results) writer.u32(result.length).raw(result);
}

function readBody(reader: ByteReader): { transactions: Uint8Array[]; results: Uint8Array[] } {
  const version = reader.u8("the body format version");
  if (version !== BLOCK_BODY_VERSION) reader.fail("unsupported-version", `unknown body format version ${version}`);
  const count = reader.u32("the transaction count");
  if (count > BLOCK_TRANSACTIONS_MAX) reader.fail("out-of-range", `${count} transactions exceed the maximum ${BLOCK_TRANSACTIONS_MAX}`);
  // Every entry has at least its length field: refuse a count the input cannot hold before
  // allocating anything for it.
  if (2 * count * ENTRY_LENGTH_BYTES > reader.remaining()) {
    reader.fail("truncated", `${count} transactions and results cannot fit in ${reader.remaining()} bytes`);
  }
  const readEntries = (what: string): Uint8Array[] => {
    const entries: Uint8Array[] = new Array<Uint8Array>(count);
    for (let index = 0; index < count; index += 1) {
      const length = reader.u32(`the length of ${what} ${index}`);
      if (length > BLOCK_ENTRY_BYTES_MAX) reader.fail("out-of-range", `${what} ${index} is ${length} bytes, over ${BLOCK_ENTRY_BYTES_MAX}`);
      entries[index] = reader.bytesView(length, `${what} ${index}`);
    }
    return entries;
  };
  const transactions = readEntries("transaction");
  const results = readEntries("result");
  return { transactions, results };
}
