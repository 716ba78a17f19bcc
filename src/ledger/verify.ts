// Third-party verification: what a client, the explorer or an auditor can check holding nothing
// but the cluster config (issue 3, "Ledger"). Each function first checks that 2f + 1 replicas
// certified the header, then checks the claim against a root in that header, so the replica that
// served the data need not be trusted at all.
//
// Everything here runs on data from the network, so nothing throws on malformed input: each
// function returns a `Verification` with a code and a message.

import { sha256 } from "../crypto/sha256.js";
import { type Block, bodyProblem, resultTree, transactionTree } from "./block.js";
import { type BlockHeader, blockHeaderHash, blockHeaderProblem } from "./block-header.js";
import { type CommitCertificate, checkHeader, verifyCertificate, verifyCertificateForHash } from "./certificate.js";
import { linkVerdict } from "./chain.js";
import type { ClusterConfig } from "./cluster.js";
import { bytesEqual, describeBytes, isBytes, toHex } from "./codec.js";
import { type MerkleAuditPath, verifyInclusion } from "./merkle.js";
import { type StateProof, verifyStateProof } from "./state-tree-proof.js";
import { VERIFIED, type Verification, failure } from "./verification.js";

/**
 * Whether `block` is a block of `cluster`: its header is certified by `certificate`, its body's
 * transaction count and Merkle roots are those the header commits to, and, when the previous
 * block's header is given (already verified by the caller), it links to it. Without a previous
 * header, a block at height 1 must still have the all-zero prevHash. It does not re-execute the
 * transactions, so it cannot check stateRoot; `bulwark verify` replays execution for that.
 */
export function verifyBlock(
  cluster: ClusterConfig,
  block: Block,
  certificate: CommitCertificate,
  previousHeader?: BlockHeader,
): Verification {
  if (typeof block !== "object" || block === null) return failure("malformed", "the block is not an object");
  const { header, transactions, results } = block;
  const checked = checkHeader(cluster, header);
  if (!checked.ok) return checked.verdict;
  const certified = verifyCertificateForHash(cluster, header, checked.headerHash, certificate);
  if (!certified.ok) return certified;

  let previous: { height: number; hash: Uint8Array } | undefined;
  if (previousHeader !== undefined) {
    const problem = blockHeaderProblem(previousHeader);
    if (problem !== null) return failure("malformed", `the previous header is malformed: ${problem}`);
    previous = { height: previousHeader.height, hash: blockHeaderHash(previousHeader) };
  }
  const linked = linkVerdict(previous, header);
  if (!linked.ok) return linked;

  if (!Array.isArray(transactions) || !Array.isArray(results)) return failure("malformed", "the block's transactions and results are not arrays");
  if (transactions.length !== header.txCount || results.length !== header.txCount) {
    return failure(
      "tx-count-mismatch",
      `the body holds ${transactions.length} transactions and ${results.length} results; the header's txCount is ${header.txCount}`,
    );
  }
  const problem = bodyProblem(transactions, results);
  if (problem !== null) return failure("malformed", `the block body is malformed: ${problem}`);
  if (!bytesEqual(transactionTree(transactions).root, header.txRoot)) {
    return failure("tx-root-mismatch", `the transactions of block ${header.height} do not hash to its txRoot`);
  }
  if (!bytesEqual(resultTree(results).root, header.resultsRoot)) {
    return failure("results-root-mismatch", `the results of block ${header.height} do not hash to its resultsRoot`);
  }
  return VERIFIED;
}

/**
 * Whether the transaction `transaction` (its canonical bytes) is at `index` in the certified
 * block `header`, by the audit path `proof` against txRoot (tree size txCount).
 */
export function verifyTransactionInclusion(
  cluster: ClusterConfig,
  header: BlockHeader,
  certificate: CommitCertificate,
  transaction: Uint8Array,
  index: number,
  proof: MerkleAuditPath,
): Verification {
  const certified = verifyCertificate(cluster, header, certificate);
  if (!certified.ok) return certified;
  if (!isBytes(transaction)) return failure("malformed", "the transaction is not a byte array");
  const transactionId = sha256(transaction);
  if (!verifyInclusion(header.txRoot, transactionId, index, header.txCount, proof)) {
    return failure(
      "not-included",
      `the proof does not place transaction ${toHex(transactionId)} at index ${String(index)} of the ${header.txCount} transactions of block ${header.height}`,
    );
  }
  return VERIFIED;
}

/**
 * Whether `result` (its encoded bytes) is the result at `index` in the certified block `header`,
 * by the audit path `proof` against resultsRoot. Results and transactions share indices: with
 * `verifyTransactionInclusion` at the same index, it shows which transaction had this result.
 */
export function verifyResultInclusion(
  cluster: ClusterConfig,
  header: BlockHeader,
  certificate: CommitCertificate,
  result: Uint8Array,
  index: number,
  proof: MerkleAuditPath,
): Verification {
  const certified = verifyCertificate(cluster, header, certificate);
  if (!certified.ok) return certified;
  if (!isBytes(result)) return failure("malformed", "the result is not a byte array");
  if (!verifyInclusion(header.resultsRoot, result, index, header.txCount, proof)) {
    return failure("not-included", `the proof does not place this result at index ${String(index)} of the ${header.txCount} results of block ${header.height}`);
  }
  return VERIFIED;
}

/**
 * Whether `key` had `value` (or, with `value` undefined, no value) in the state after the
 * certified block `header`, by the state tree proof `proof` against stateRoot (state-tree.ts).
 * A token balance is a key of the token application's state like any other.
 */
export function verifyStateValue(
  cluster: ClusterConfig,
  header: BlockHeader,
  certificate: CommitCertificate,
  key: Uint8Array,
  value: Uint8Array | undefined,
  proof: StateProof,
): Verification {
  const certified = verifyCertificate(cluster, header, certificate);
  if (!certified.ok) return certified;
  if (!isBytes(key)) return failure("malformed", "the key is not a byte array");
  if (value !== undefined && !isBytes(value)) return failure("malformed", "the value is neither a byte array nor undefined");
  if (!verifyStateProof(header.stateRoot, key, value, proof)) {
    const claim = value === undefined ? "absent" : "set to this value";
    return failure("state-proof-mismatch", `the proof does not show key ${describeBytes(key)} ${claim} after block ${header.height}`);
  }
  return VERIFIED;
}
