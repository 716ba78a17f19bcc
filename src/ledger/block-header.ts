// The block header, its one canonical binary encoding and its hash. The header is what a commit
// certificate signs (certificate.ts) and what every proof is checked against (verify.ts): it
// commits to the block's transactions (txRoot, txCount), their results (resultsRoot), the state
// after executing them (stateRoot) and, through prevHash, to every block before it.
//
// One block per committed PBFT sequence number, so height === seq (see `BlockHeader.seq`).
//
// Layout, version 1 (integers big-endian; L = clusterId length):
//
//   offset  size  field
//   0       1     format version, 1
//   1       1     clusterId length L, 1..64
//   2       L     clusterId, ASCII (CLUSTER_ID_PATTERN)
//   2+L     8     height, u64 (1 .. 2^53 - 1)
//   10+L    8     seq, u64 (equal to height)
//   18+L    32    prevHash: headerHash of the block at height - 1; all zeros at height 1
//   50+L    32    txRoot: RFC 6962 Merkle root over the transaction ids (SHA-256 of each
//                 transaction's bytes), in block order
//   82+L    4     txCount, u32 (0 .. BLOCK_TRANSACTIONS_MAX)
//   86+L    32    stateRoot: state tree root (state-tree.ts) after executing this block
//   118+L   32    resultsRoot: RFC 6962 Merkle root over the encoded results, in block order
//   150+L         end (L = 8 gives 158 bytes)
//
// No view. PBFT lets one batch commit at different replicas in different views (a replica that
// collected 2f + 1 commits in view v executes it there; another executes the same batch after
// the NEW-VIEW of v + 1 re-proposed it), so a view in the hashed header would give correct
// replicas different hashes for the same block and no certificate could form. As CometBFT keeps
// the round in the commit and not the header, the view a replica committed in is reported beside
// the block (CommittedBlock.view, replies), never hashed.
//
//   headerHash = SHA-256("bulwark/block-header/v1\0" || encoding)
//
// The decoder accepts exactly the bytes the encoder makes and nothing else (a version it does not
// know, a clusterId outside the pattern, seq ≠ height, a count above the maximum, trailing
// bytes), so no two byte strings carry the same header and replicas can never disagree on a hash.

import { sha256 } from "../crypto/sha256.js";
import { CLUSTER_ID_PATTERN } from "./cluster.js";
import { ByteReader, ByteWriter, LedgerEncodeError, isBytes, isUint64Number } from "./codec.js";
import { MERKLE_HASH_BYTES } from "./merkle.js";

export const BLOCK_HEADER_VERSION = 1;
export const BLOCK_HASH_BYTES = 32;

/**
 * Most transactions in one block (it bounds the u32 txCount far below 2^32, and the cluster
 * config's maxBatchSize with it). At about 1 µs per Merkle hash, a full block's roots cost under
 * half a second to recompute: verifying a hostile block is bounded work.
 */
export const BLOCK_TRANSACTIONS_MAX = 65_536;

/** The prevHash of the block at height 1. */
export const GENESIS_PREV_HASH: Uint8Array = new Uint8Array(BLOCK_HASH_BYTES);

const HEADER_DOMAIN: Uint8Array = new TextEncoder().encode("bulwark/block-header/v1\0");
const FIXED_FIELD_BYTES = 1 + 1 + 2 * 8 + 32 + 32 + 4 + 32 + 32;

export interface BlockHeader {
  readonly version: typeof BLOCK_HEADER_VERSION;
  /** The cluster that certified this block (cluster.ts): a block of one chain never fits another. */
  readonly clusterId: string;
  /** Position in the chain, from 1. */
  readonly height: number;
  /**
   * The PBFT sequence number of the batch; always equal to `height`. Every sequence number
   * commits to exactly one batch and becomes exactly one block, including the null requests a
   * NEW-VIEW puts in gaps (PBFT §4.4), which become empty blocks with txCount 0. So a block's
   * height names its sequence number and a replica that executed up to seq s has s blocks. The
   * field is kept beside the height so the header says what consensus decided in consensus's
   * own terms, and a later format that packs several sequence numbers into one block can.
   */
  readonly seq: number;
  /** `blockHeaderHash` of the previous block's header; `GENESIS_PREV_HASH` at height 1. */
  readonly prevHash: Uint8Array;
  /** Merkle root over the transaction ids (transactionIds in block.ts). */
  readonly txRoot: Uint8Array;
  /**
   * Number of transactions. An inclusion proof fixes a leaf's place only relative to a tree
   * size it does not carry (merkle.ts, `verifyInclusion`), so the size must come from here.
   */
  readonly txCount: number;
  /** State tree root after executing this block's transactions. */
  readonly stateRoot: Uint8Array;
  /** Merkle root over the per-transaction results, so a client can verify a result as well. */
  readonly resultsRoot: Uint8Array;
}

/**
 * What is wrong with `header` as a header value, or null when it is well-formed. Used by the
 * encoder (which throws) and by the verifiers (which report), so both apply the same rules.
 * It checks form only; chain rules (heights, links) are the verifiers' concern.
 */
export function blockHeaderProblem(header: unknown): string | null {
  if (typeof header !== "object" || header === null) return "not an object";
  const h = header as Partial<Record<keyof BlockHeader, unknown>>;
  if (h.version !== BLOCK_HEADER_VERSION) return `unsupported version ${String(h.version)}`;
  if (typeof h.clusterId !== "string" || !CLUSTER_ID_PATTERN.test(h.clusterId)) return "clusterId breaks the cluster id rules";
  if (!isUint64Number(h.height) || h.height < 1) return "height must be an integer from 1 to 2^53 - 1";
  if (h.seq !== h.height) return "seq must equal height (one block per sequence number)";
  if (!isBytes(h.prevHash, BLOCK_HASH_BYTES)) return `prevHash must be ${BLOCK_HASH_BYTES} bytes`;
  if (!isBytes(h.txRoot, MERKLE_HASH_BYTES)) return `txRoot must be ${MERKLE_HASH_BYTES} bytes`;
  if (!isUint64Number(h.txCount) || h.txCount > BLOCK_TRANSACTIONS_MAX) {
    return `txCount must be an integer from 0 to ${BLOCK_TRANSACTIONS_MAX}`;
  }
  if (!isBytes(h.stateRoot, BLOCK_HASH_BYTES)) return `stateRoot must be ${BLOCK_HASH_BYTES} bytes`;
  if (!isBytes(h.resultsRoot, MERKLE_HASH_BYTES)) return `resultsRoot must be ${MERKLE_HASH_BYTES} bytes`;
  return null;
}

/** The canonical encoding; throws `LedgerEncodeError` for a malformed header. */
export function encodeBlockHeader(header: BlockHeader): Uint8Array {
  const problem = blockHeaderProblem(header);
  if (problem !== null) throw new LedgerEncodeError("block header", problem);
  const writer = new ByteWriter(FIXED_FIELD_BYTES + header.clusterId.length);
  writeHeader(writer, header);
  return writer.finish();
}

/** Parses exactly one header; throws `LedgerDecodeError` for anything but a canonical encoding. */
export function decodeBlockHeader(bytes: Uint8Array): BlockHeader {
  const reader = new ByteReader(bytes, "block header");
  if (!isBytes(bytes)) reader.fail("not-bytes", "input is not a byte array");
  const header = readBlockHeader(reader);
  reader.end();
  return header;
}

/**
 * Reads a header from the current position of `reader` (which may hold more after it, as a
 * block does). Fields are copied: the header shares no memory with the input.
 */
export function readBlockHeader(reader: ByteReader): BlockHeader {
  const version = reader.u8("the format version");
  if (version !== BLOCK_HEADER_VERSION) reader.fail("unsupported-version", `unknown header format version ${version}`);
  const clusterIdLength = reader.u8("the clusterId length");
  const clusterId = Buffer.from(reader.bytesView(clusterIdLength, "the clusterId")).toString("latin1");
  if (!CLUSTER_ID_PATTERN.test(clusterId)) reader.fail("non-canonical", "the clusterId breaks the cluster id rules");
  const height = reader.u64("the height");
  if (height < 1) reader.fail("out-of-range", "height 0 (the first block is height 1)");
  const seq = reader.u64("the seq");
  if (seq !== height) reader.fail("non-canonical", `seq ${seq} differs from height ${height}`);
  const prevHash = reader.bytesCopy(BLOCK_HASH_BYTES, "prevHash");
  const txRoot = reader.bytesCopy(MERKLE_HASH_BYTES, "txRoot");
  const txCount = reader.u32("txCount");
  if (txCount > BLOCK_TRANSACTIONS_MAX) reader.fail("out-of-range", `txCount ${txCount} exceeds ${BLOCK_TRANSACTIONS_MAX}`);
  const stateRoot = reader.bytesCopy(BLOCK_HASH_BYTES, "stateRoot");
  const resultsRoot = reader.bytesCopy(MERKLE_HASH_BYTES, "resultsRoot");
  return { version, clusterId, height, seq, prevHash, txRoot, txCount, stateRoot, resultsRoot };
}

/** Length of `header`'s encoding (it must be well-formed). */
export function blockHeaderEncodedBytes(header: BlockHeader): number {
  return FIXED_FIELD_BYTES + header.clusterId.length;
}

/** Writes a well-formed header (checked by the caller) at the writer's position. */
export function writeHeader(writer: ByteWriter, header: BlockHeader): void {
  writer
    .u8(BLOCK_HEADER_VERSION)
    .u8(header.clusterId.length)
    .raw(Buffer.from(header.clusterId, "latin1"))
    .u64(header.height)
    .u64(header.seq)
    .raw(header.prevHash)
    .raw(header.txRoot)
    .u32(header.txCount)
    .raw(header.stateRoot)
    .raw(header.resultsRoot);
}

/**
 * SHA-256 over a domain prefix and the canonical encoding: the block's identity, the next
 * block's prevHash and what a commit certificate signs. The prefix keeps a header hash from ever
 * equalling another Bulwark hash of the same bytes (a Merkle leaf, a transaction id).
 * Throws `LedgerEncodeError` for a malformed header.
 */
export function blockHeaderHash(header: BlockHeader): Uint8Array {
  const problem = blockHeaderProblem(header);
  if (problem !== null) throw new LedgerEncodeError("block header", problem);
  const writer = new ByteWriter(HEADER_DOMAIN.length + blockHeaderEncodedBytes(header));
  writer.raw(HEADER_DOMAIN);
  writeHeader(writer, header);
  return sha256(writer.finish());
}
