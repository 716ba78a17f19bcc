// The ledger (DESIGN.md, "Layers"): blocks, Merkle trees, the state tree, commit certificates and
// the third-party verifiers that the client SDK, the explorer and `bulwark verify` build on.
export {
  CLUSTER_CONFIG_VERSION,
  CLUSTER_ID_PATTERN,
  CLUSTER_REPLICAS_MAX,
  DEFAULT_PROTOCOL_PARAMETERS,
  type ClusterConfig,
  type ClusterReplica,
  type ProtocolParameters,
  certificateQuorum,
  replicaPublicKey,
} from "./cluster.js";
export { ClusterConfigError, clusterConfigToJson, clusterConfigToJsonValue, parseClusterConfig, parseClusterConfigJson } from "./cluster-json.js";
export {
  BLOCK_HASH_BYTES,
  BLOCK_HEADER_VERSION,
  BLOCK_TRANSACTIONS_MAX,
  GENESIS_PREV_HASH,
  type BlockHeader,
  blockHeaderHash,
  blockHeaderProblem,
  decodeBlockHeader,
  encodeBlockHeader,
} from "./block-header.js";
export {
  BLOCK_BODY_VERSION,
  BLOCK_ENTRY_BYTES_MAX,
  type Block,
  type BlockContents,
  buildBlock,
  decodeBlock,
  decodeBlockBody,
  encodeBlock,
  encodeBlockBody,
  resultTree,
  transactionIds,
  transactionTree,
} from "./block.js";
export {
  CERTIFICATE_VERSION,
  type BlockSignature,
  type CommitCertificate,
  blockSigningMessage,
  createCertificate,
  decodeCertificate,
  encodeCertificate,
  signBlock,
  verifyBlockSignature,
  verifyCertificate,
} from "./certificate.js";
export { type CertifiedHeader, type ChainVerification, HeaderChainVerifier, verifyHeaderChain } from "./chain.js";
export { LedgerDecodeError, type LedgerDecodeErrorCode, LedgerEncodeError, type LedgerStructure } from "./codec.js";
export { INCLUSION_PROOF_VERSION, decodeInclusionProof, encodeInclusionProof } from "./inclusion-proof.js";
export {
  MERKLE_AUDIT_PATH_LENGTH_MAX,
  MERKLE_HASH_BYTES,
  type MerkleAuditPath,
  MerkleTree,
  inclusionProof,
  merkleRoot,
  verifyInclusion,
} from "./merkle.js";
export {
  STATE_PROOF_BYTES_MAX,
  type StateEntry,
  type StateProof,
  StateProofDecodeError,
  StateSnapshotDecodeError,
  StateTree,
  decodeStateProof,
  encodeStateProof,
  verifyStateProof,
} from "./state-tree.js";
export { type Verification, type VerificationFailure, type VerificationFailureCode } from "./verification.js";
export { verifyBlock, verifyResultInclusion, verifyStateValue, verifyTransactionInclusion } from "./verify.js";
