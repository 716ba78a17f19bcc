// Commit certificates: 2f + 1 replicas' Ed25519 signatures over a block header, stored with each
// block. Any 2f + 1 replicas include at least f + 1 correct ones (seed 003, "A normal-case
// property when n > 3f"), and a correct replica signs a header only after executing the block it
// describes, so whoever holds the cluster config can trust a certified header without trusting
// the replica that served it (DESIGN.md, "Data model").
//
// Each replica signs
//
//   "bulwark/block-commit/v1\0" || u8 clusterId length || clusterId || u64 height || headerHash
//
// The header hash alone already fixes the cluster and the height; naming them again in the signed
// message makes the binding independent of the header format, so a signature can never be
// replayed for another cluster or height whatever a later header version looks like. The domain
// prefix keeps it from ever being valid as a transaction or a consensus message.
//
// Encoding, version 1 (integers big-endian):
//
//   offset  size  field
//   0       1     format version, 1
//   1       8     height, u64 (1 .. 2^53 - 1)
//   9       2     signature count k, u16 (0 .. CLUSTER_REPLICAS_MAX)
//   11      66k   k × (replica id u16, Ed25519 signature 64 bytes), ids strictly ascending
//
// Strictly ascending ids make the encoding of a set of signatures unique and leave no room for a
// duplicate; verification still checks for duplicates, because a certificate built in memory
// need not have come through the decoder.

import { ED25519_SIGNATURE_BYTES, type Ed25519PrivateKey, ed25519Sign, ed25519Verify } from "../crypto/ed25519.js";
import { BLOCK_HASH_BYTES, type BlockHeader, blockHeaderHash, blockHeaderProblem } from "./block-header.js";
import { CLUSTER_REPLICAS_MAX, type ClusterConfig, certificateQuorum, replicaPublicKey } from "./cluster.js";
import { ByteReader, ByteWriter, LedgerEncodeError, isBytes, isUint64Number } from "./codec.js";
import { VERIFIED, type Verification, type VerificationFailure, failure } from "./verification.js";

export const CERTIFICATE_VERSION = 1;

const SIGNING_DOMAIN: Uint8Array = new TextEncoder().encode("bulwark/block-commit/v1\0");
const CERTIFICATE_HEADER_BYTES = 1 + 8 + 2;
const SIGNATURE_ENTRY_BYTES = 2 + ED25519_SIGNATURE_BYTES;

/** One replica's signature over a header. */
export interface BlockSignature {
  readonly replica: number;
  readonly signature: Uint8Array;
}

export interface CommitCertificate {
  /** The height of the certified header; a certificate for one height never passes for another. */
  readonly height: number;
  /** At least 2f + 1 signatures from distinct replicas, by ascending replica id. */
  readonly signatures: readonly BlockSignature[];
}

/** The exact bytes a replica signs for a header with hash `headerHash`. */
export function blockSigningMessage(clusterId: string, height: number, headerHash: Uint8Array): Uint8Array {
  if (headerHash.length !== BLOCK_HASH_BYTES) throw new RangeError(`a header hash is ${BLOCK_HASH_BYTES} bytes`);
  const writer = new ByteWriter(SIGNING_DOMAIN.length + 1 + clusterId.length + 8 + BLOCK_HASH_BYTES);
  writer.raw(SIGNING_DOMAIN).u8(clusterId.length).raw(Buffer.from(clusterId, "latin1")).u64(height).raw(headerHash);
  return writer.finish();
}

/**
 * Replica `replica`'s signature over `header`. A replica calls it only after executing the block
 * and checking that its own state root is the header's. Throws `LedgerEncodeError` for a
 * malformed header.
 */
export function signBlock(privateKey: Ed25519PrivateKey, replica: number, header: BlockHeader): BlockSignature {
  const headerHash = blockHeaderHash(header);
  return { replica, signature: ed25519Sign(privateKey, blockSigningMessage(header.clusterId, header.height, headerHash)) };
}

/**
 * A certificate from collected signatures, sorted by replica id. Throws `LedgerEncodeError` for a
 * replica that signed twice (a runtime bug: it should keep one signature per replica).
 * It does not verify them: check each with `verifyBlockSignature` as it arrives.
 */
export function createCertificate(height: number, signatures: readonly BlockSignature[]): CommitCertificate {
  const sorted = [...signatures].sort((left, right) => left.replica - right.replica);
  for (let index = 1; index < sorted.length; index += 1) {
    if (sorted[index]?.replica === sorted[index - 1]?.replica) {
      throw new LedgerEncodeError("commit certificate", `replica ${sorted[index]?.replica} signed twice`);
    }
  }
  return { height, signatures: sorted };
}

/**
 * Whether one replica's signature over `header` is valid: what a runtime checks on each signature
 * it collects before it adds the signature to a certificate. Never throws.
 */
export function verifyBlockSignature(cluster: ClusterConfig, header: BlockHeader, signature: BlockSignature, verify: SignatureCheck = ed25519Verify): Verification {
  const checked = checkHeader(cluster, header);
  if (!checked.ok) return checked.verdict;
  return signatureVerdict(cluster, blockSigningMessage(header.clusterId, header.height, checked.headerHash), header.height, signature, verify);
}

/**
 * An Ed25519 verdict, never throwing: `ed25519Verify` (node:crypto) by default, which any
 * third party has; a replica passes its sodium-native backend, about twice as fast (LIMITS.md),
 * since it checks every peer's signature on every block.
 */
export type SignatureCheck = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean;

/**
 * Whether `certificate` proves that 2f + 1 replicas of `cluster` signed `header`. It refuses
 * fewer than 2f + 1 signatures, a replica that signs twice, a replica id outside the cluster,
 * a signature that does not verify (every one must, not only a quorum of them) and a
 * certificate for another height. Never throws.
 */
export function verifyCertificate(cluster: ClusterConfig, header: BlockHeader, certificate: CommitCertificate): Verification {
  const checked = checkHeader(cluster, header);
  if (!checked.ok) return checked.verdict;
  return verifyCertificateForHash(cluster, header, checked.headerHash, certificate);
}

/**
 * `verifyCertificate` for a header already checked with `checkHeader`, whose hash the caller has
 * (verify.ts and chain.ts need the hash too and should not compute it twice).
 */
export function verifyCertificateForHash(
  cluster: ClusterConfig,
  header: BlockHeader,
  headerHash: Uint8Array,
  certificate: CommitCertificate,
): Verification {
  if (typeof certificate !== "object" || certificate === null) return failure("malformed", "the certificate is not an object");
  const { height, signatures } = certificate as { height: unknown; signatures: unknown };
  if (!isUint64Number(height)) return failure("malformed", "the certificate's height is not an integer from 0 to 2^53 - 1");
  if (height !== header.height) {
    return failure("wrong-height", `the certificate is for height ${height}, the header is at height ${header.height}`);
  }
  if (!Array.isArray(signatures) || signatures.length > CLUSTER_REPLICAS_MAX) {
    return failure("malformed", `the certificate's signatures are not a list of at most ${CLUSTER_REPLICAS_MAX}`);
  }
  const seen = new Set<number>();
  for (const entry of signatures as unknown[]) {
    const shape = signatureShapeProblem(entry);
    if (shape !== null) return shape;
    const { replica } = entry as BlockSignature;
    if (replicaPublicKey(cluster, replica) === undefined) {
      return failure("unknown-signer", `replica ${replica} is not in cluster ${cluster.clusterId} (ids 0 to ${cluster.n - 1})`);
    }
    if (seen.has(replica)) return failure("duplicate-signer", `replica ${replica} signs twice`);
    seen.add(replica);
  }
  const quorum = certificateQuorum(cluster);
  if (seen.size < quorum) {
    return failure("too-few-signatures", `${seen.size} signatures; a certificate needs 2f + 1 = ${quorum} from distinct replicas`);
  }
  const message = blockSigningMessage(header.clusterId, header.height, headerHash);
  for (const entry of signatures as BlockSignature[]) {
    const verdict = signatureVerdict(cluster, message, header.height, entry);
    if (!verdict.ok) return verdict;
  }
  return VERIFIED;
}

/**
 * A header's form and cluster checked, with its hash: the first step of every verifier, so a
 * malformed header is reported before anything is hashed or looked up.
 */
export function checkHeader(
  cluster: ClusterConfig,
  header: BlockHeader,
): { readonly ok: true; readonly headerHash: Uint8Array } | { readonly ok: false; readonly verdict: Verification } {
  const problem = blockHeaderProblem(header);
  if (problem !== null) return { ok: false, verdict: failure("malformed", `the header is malformed: ${problem}`) };
  if (header.clusterId !== cluster.clusterId) {
    return { ok: false, verdict: failure("wrong-cluster", `the header is from cluster ${header.clusterId}, not ${cluster.clusterId}`) };
  }
  return { ok: true, headerHash: blockHeaderHash(header) };
}

/** The canonical encoding; throws `LedgerEncodeError` for a certificate that breaks the format. */
export function encodeCertificate(certificate: CommitCertificate): Uint8Array {
  const { height, signatures } = certificate;
  if (!isUint64Number(height) || height < 1) throw new LedgerEncodeError("commit certificate", "height must be an integer from 1 to 2^53 - 1");
  if (signatures.length > CLUSTER_REPLICAS_MAX) {
    throw new LedgerEncodeError("commit certificate", `${signatures.length} signatures exceed ${CLUSTER_REPLICAS_MAX}`);
  }
  const writer = new ByteWriter(CERTIFICATE_HEADER_BYTES + signatures.length * SIGNATURE_ENTRY_BYTES);
  writer.u8(CERTIFICATE_VERSION).u64(height).u16(signatures.length);
  let previousReplica = -1;
  for (const entry of signatures) {
    const shape = signatureShapeProblem(entry);
    if (shape !== null) throw new LedgerEncodeError("commit certificate", shape.message);
    if (entry.replica <= previousReplica) {
      throw new LedgerEncodeError("commit certificate", "signatures must be by strictly ascending replica id (use createCertificate)");
    }
    previousReplica = entry.replica;
    writer.u16(entry.replica).raw(entry.signature);
  }
  return writer.finish();
}

/** Parses a canonical encoding; throws `LedgerDecodeError` for anything else. */
export function decodeCertificate(bytes: Uint8Array): CommitCertificate {
  const reader = new ByteReader(bytes, "commit certificate");
  if (!isBytes(bytes)) reader.fail("not-bytes", "input is not a byte array");
  const version = reader.u8("the format version");
  if (version !== CERTIFICATE_VERSION) reader.fail("unsupported-version", `unknown certificate format version ${version}`);
  const height = reader.u64("the height");
  if (height < 1) reader.fail("out-of-range", "height 0 (the first block is height 1)");
  const count = reader.u16("the signature count");
  if (count > CLUSTER_REPLICAS_MAX) reader.fail("out-of-range", `${count} signatures exceed ${CLUSTER_REPLICAS_MAX}`);
  const signatures: BlockSignature[] = [];
  let previousReplica = -1;
  for (let index = 0; index < count; index += 1) {
    const replica = reader.u16(`the replica id of signature ${index}`);
    if (replica <= previousReplica) reader.fail("non-canonical", `signature ${index}'s replica id ${replica} does not ascend`);
    previousReplica = replica;
    signatures.push({ replica, signature: reader.bytesCopy(ED25519_SIGNATURE_BYTES, `signature ${index}`) });
  }
  reader.end();
  return { height, signatures };
}

/** One signature entry checked against the signed message: shape, membership, then Ed25519. */
function signatureVerdict(cluster: ClusterConfig, message: Uint8Array, height: number, entry: BlockSignature, verify: SignatureCheck = ed25519Verify): Verification {
  const shape = signatureShapeProblem(entry);
  if (shape !== null) return shape;
  const publicKey = replicaPublicKey(cluster, entry.replica);
  if (publicKey === undefined) return failure("unknown-signer", `replica ${entry.replica} is not in cluster ${cluster.clusterId}`);
  if (!verify(publicKey, message, entry.signature)) {
    return failure("bad-signature", `replica ${entry.replica}'s signature does not verify for this header at height ${height}`);
  }
  return VERIFIED;
}

function signatureShapeProblem(entry: unknown): VerificationFailure | null {
  if (typeof entry !== "object" || entry === null) return failure("malformed", "a signature entry is not an object");
  const { replica, signature } = entry as { replica: unknown; signature: unknown };
  if (typeof replica !== "number" || !Number.isInteger(replica) || replica < 0 || replica >= CLUSTER_REPLICAS_MAX) {
    return failure("unknown-signer", `replica id ${String(replica)} is not an integer from 0 to ${CLUSTER_REPLICAS_MAX - 1}`);
  }
  if (!isBytes(signature, ED25519_SIGNATURE_BYTES)) {
    return failure("malformed", `replica ${replica}'s signature is not ${ED25519_SIGNATURE_BYTES} bytes`);
  }
  return null;
}
