// The wire form of a Merkle inclusion proof (an RFC 6962 audit path, merkle.ts), as a replica
// serves it for a transaction or a result of a block.
//
// Layout, version 1:
//
//   offset  size  field
//   0       1     format version, 1
//   1       1     path length p (0 .. MERKLE_AUDIT_PATH_LENGTH_MAX)
//   2       32p   the sibling hashes, from the leaf's level up
//
// The leaf's index travels beside the proof and the tree size comes from the certified header's
// txCount, never from the prover (merkle.ts, `verifyInclusion`, explains why).

import { ByteReader, ByteWriter, LedgerEncodeError, isBytes } from "./codec.js";
import { MERKLE_AUDIT_PATH_LENGTH_MAX, MERKLE_HASH_BYTES, type MerkleAuditPath } from "./merkle.js";

export const INCLUSION_PROOF_VERSION = 1;

/** The canonical encoding; throws `LedgerEncodeError` for a path that breaks the format. */
export function encodeInclusionProof(path: MerkleAuditPath): Uint8Array {
  if (path.length > MERKLE_AUDIT_PATH_LENGTH_MAX) {
    throw new LedgerEncodeError("inclusion proof", `${path.length} hashes exceed ${MERKLE_AUDIT_PATH_LENGTH_MAX}`);
  }
  const writer = new ByteWriter(2 + path.length * MERKLE_HASH_BYTES);
  writer.u8(INCLUSION_PROOF_VERSION).u8(path.length);
  for (const hash of path) {
    if (!isBytes(hash, MERKLE_HASH_BYTES)) throw new LedgerEncodeError("inclusion proof", `a path entry is not ${MERKLE_HASH_BYTES} bytes`);
    writer.raw(hash);
  }
  return writer.finish();
}

/** Parses a canonical encoding; throws `LedgerDecodeError` for anything else. */
export function decodeInclusionProof(bytes: Uint8Array): MerkleAuditPath {
  const reader = new ByteReader(bytes, "inclusion proof");
  if (!isBytes(bytes)) reader.fail("not-bytes", "input is not a byte array");
  const version = reader.u8("the format version");
  if (version !== INCLUSION_PROOF_VERSION) reader.fail("unsupported-version", `unknown proof format version ${version}`);
  const length = reader.u8("the path length");
  if (length > MERKLE_AUDIT_PATH_LENGTH_MAX) reader.fail("out-of-range", `${length} hashes exceed ${MERKLE_AUDIT_PATH_LENGTH_MAX}`);
  const path: Uint8Array[] = [];
  for (let index = 0; index < length; index += 1) path.push(reader.bytesCopy(MERKLE_HASH_BYTES, `path entry ${index}`));
  reader.end();
  return path;
}
