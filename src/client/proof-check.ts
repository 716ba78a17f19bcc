// Checking what one replica served, with nothing but the cluster config: a proof read's answer
// (header, certificate, state proof) and a stored block (header, certificate, body). The replica
// that served it need not be trusted: the header is believed only with 2f + 1 valid signatures
// over it (ledger/certificate.ts), and everything else is checked against the header's roots.
// Each check returns why it failed instead of throwing, because the input comes from the network;
// the caller then asks another replica.
//
// Each hash is computed once: the header's (checkHeader) serves the certificate check, the block's
// `hash` and the caller's chain check; the transaction ids serve the txRoot check and the block's
// `transactionIds`. That is why a block's body is checked here rather than by ledger/verify.ts's
// verifyBlock, which would verify the certificate again and keep both to itself.

import { type Block, bodyProblem, decodeBlockBody, transactionIds } from "../ledger/block.js";
import { type BlockHeader, decodeBlockHeader } from "../ledger/block-header.js";
import { checkHeader, decodeCertificate, verifyCertificateForHash } from "../ledger/certificate.js";
import { linkVerdict } from "../ledger/chain.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import { LedgerDecodeError, bytesEqual, describeBytes, toHex } from "../ledger/codec.js";
import { merkleRoot } from "../ledger/merkle.js";
import { StateTree } from "../ledger/state-tree.js";
import { StateProofDecodeError, decodeStateProof, verifyStateProof } from "../ledger/state-tree-proof.js";
import type { Verification } from "../ledger/verification.js";
import type { WireBlock, WireFrame } from "../node/wire-types.js";
import type { CertifiedHeaders } from "./certified-headers.js";
import type { VerifiedBlock } from "./types.js";

export type ReadProofAnswer = Extract<WireFrame, { kind: "read-proof" }>;

/** `stale`: the answer verifies, or might, but is older than the client accepts (a lagging replica, or a faulty one). */
export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string; readonly stale?: boolean };

/** A verified block, with its decoded header and the header's hash (for the caller's chain check). */
export interface CheckedBlock {
  readonly block: VerifiedBlock;
  readonly header: BlockHeader;
  readonly hash: Uint8Array;
}

/** The root of the empty state: every cluster's state before its first block. */
const GENESIS_STATE_ROOT: Uint8Array = new StateTree().root();

/**
 * The value of state key `key` that `answer` proves, at the height it names. Refused: an answer
 * below `minHeight` (older than the caller accepts), a header or certificate that does not decode
 * or verify, a header at another height than the answer names, a proof that does not show the
 * value (or its absence) under the header's stateRoot. At height 0 only "absent" is accepted,
 * with an empty header and certificate: the genesis state is empty (node/client-services.ts,
 * "Height 0"). A header that `certified` holds byte for byte is not verified again; one that
 * verifies is added to it.
 */
export function checkReadProof(
  cluster: ClusterConfig,
  key: Uint8Array,
  answer: ReadProofAnswer,
  minHeight: number,
  certified: CertifiedHeaders,
): Checked<{ value: Uint8Array | undefined; height: number }> {
  if (answer.height < minHeight) return { ok: false, stale: true, reason: `its state is at height ${answer.height}, older than height ${minHeight} the read must see` };
  const proof = decoded(() => decodeStateProof(answer.proof));
  if (!proof.ok) return proof;
  if (answer.height === 0) {
    if (answer.header.length !== 0 || answer.certificate.length !== 0) return refuse("a read at height 0 carries a header or certificate");
    if (answer.value !== undefined) return refuse("it claims a value in the genesis state, which is empty");
    if (!verifyStateProof(GENESIS_STATE_ROOT, key, undefined, proof.value)) return refuse("its proof of absence does not verify against the empty genesis state");
    return { ok: true, value: { value: undefined, height: 0 } };
  }
  const header = decoded(() => decodeBlockHeader(answer.header));
  if (!header.ok) return header;
  if (header.value.height !== answer.height) return refuse(`it names height ${answer.height} but sent the header of block ${header.value.height}`);
  if (!certified.holds(answer.height, answer.header)) {
    const verdict = certificateVerdict(cluster, header.value, answer.certificate);
    if (!verdict.ok) return verdict;
    certified.remember(answer.height, answer.header);
  }
  if (!verifyStateProof(header.value.stateRoot, key, answer.value, proof.value)) {
    const claim = answer.value === undefined ? "absent" : "set to this value";
    return refuse(`state-proof-mismatch: the proof does not show key ${describeBytes(key)} ${claim} after block ${answer.height}`);
  }
  return { ok: true, value: { value: answer.value, height: answer.height } };
}

/**
 * Block `height` as `wire` carries it, verified: its certificate (required), block 1's all-zero
 * prevHash, and its body against the header's transaction count and roots when the body is there.
 */
export function checkWireBlock(cluster: ClusterConfig, wire: WireBlock, height: number): Checked<CheckedBlock> {
  if (wire.height !== height) return refuse(`it sent block ${wire.height} where block ${height} belongs`);
  if (wire.certificate === undefined) return refuse(`block ${height} is not certified there yet`);
  const header = decoded(() => decodeBlockHeader(wire.header));
  if (!header.ok) return header;
  const h = header.value;
  if (h.height !== height) return refuse(`block ${height} came with the header of block ${h.height}`);
  const certified = certificateVerdict(cluster, h, wire.certificate);
  if (!certified.ok) return refuse(`block ${height}: ${certified.reason}`);
  const linked = linkVerdict(undefined, h);
  if (!linked.ok) return refuse(`block ${height}: ${reasonOf(linked)}`);
  let body: (Pick<Block, "transactions" | "results"> & { readonly ids: readonly Uint8Array[] }) | undefined;
  if (wire.body !== undefined) {
    const decodedBody = decoded(() => decodeBlockBody(wire.body!));
    if (!decodedBody.ok) return decodedBody;
    const ids = transactionIds(decodedBody.value.transactions);
    const problem = bodyProblemOf(h, decodedBody.value, ids);
    if (problem !== undefined) return refuse(`block ${height}: ${problem}`);
    body = { ...decodedBody.value, ids };
  }
  return {
    ok: true,
    value: {
      header: h,
      hash: certified.value.hash,
      block: {
        height: h.height,
        seq: h.seq,
        hash: toHex(certified.value.hash),
        previousHash: toHex(h.prevHash),
        stateRoot: toHex(h.stateRoot),
        transactionRoot: toHex(h.txRoot),
        resultsRoot: toHex(h.resultsRoot),
        transactionCount: h.txCount,
        transactions: body?.transactions ?? [],
        results: body?.results ?? [],
        transactionIds: body?.ids.map(toHex) ?? [],
        signers: certified.value.signers,
        bodyPruned: body === undefined,
      },
    },
  };
}

/** Whether `certificate` (encoded) certifies `header`: its hash and signers when it does. */
function certificateVerdict(cluster: ClusterConfig, header: BlockHeader, certificate: Uint8Array): Checked<{ hash: Uint8Array; signers: number[] }> {
  const decodedCertificate = decoded(() => decodeCertificate(certificate));
  if (!decodedCertificate.ok) return decodedCertificate;
  const checked = checkHeader(cluster, header);
  if (!checked.ok) return refuse(reasonOf(checked.verdict));
  const verdict = verifyCertificateForHash(cluster, header, checked.headerHash, decodedCertificate.value);
  if (!verdict.ok) return refuse(reasonOf(verdict));
  return { ok: true, value: { hash: checked.headerHash, signers: decodedCertificate.value.signatures.map((signature) => signature.replica) } };
}

/** What is wrong with a decoded body given its transaction ids, against a certified header; undefined when nothing is. */
function bodyProblemOf(header: BlockHeader, body: Pick<Block, "transactions" | "results">, ids: readonly Uint8Array[]): string | undefined {
  const { transactions, results } = body;
  if (transactions.length !== header.txCount || results.length !== header.txCount) {
    return `tx-count-mismatch: the body holds ${transactions.length} transactions and ${results.length} results; the header's txCount is ${header.txCount}`;
  }
  const problem = bodyProblem(transactions, results);
  if (problem !== null) return `malformed: the block body is malformed: ${problem}`;
  if (!bytesEqual(merkleRoot(ids), header.txRoot)) return `tx-root-mismatch: the transactions of block ${header.height} do not hash to its txRoot`;
  if (!bytesEqual(merkleRoot(results), header.resultsRoot)) return `results-root-mismatch: the results of block ${header.height} do not hash to its resultsRoot`;
  return undefined;
}

/** A failed verdict as a reason: its code, then its message. */
function reasonOf(verdict: Verification): string {
  return verdict.ok ? "verified" : `${verdict.code}: ${verdict.message}`;
}

/** Runs a ledger decoder; its decode error becomes a reason (any other error is a bug and propagates). */
function decoded<T>(decode: () => T): Checked<T> {
  try {
    return { ok: true, value: decode() };
  } catch (error) {
    if (error instanceof LedgerDecodeError || error instanceof StateProofDecodeError) return refuse(`malformed: ${error.message}`);
    throw error;
  }
}

function refuse(reason: string): { readonly ok: false; readonly reason: string } {
  return { ok: false, reason };
}
