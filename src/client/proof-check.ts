// Checking what one replica served, with nothing but the cluster config: a proof read's answer
// (header, certificate, state proof) and a stored block (header, certificate, body). The replica
// that served it need not be trusted: the header is believed only with 2f + 1 valid signatures
// over it (ledger/certificate.ts), and everything else is checked against the header's roots
// (ledger/verify.ts). Each check returns why it failed instead of throwing, because the input
// comes from the network; the caller then asks another replica.

import { type Block, decodeBlockBody } from "../ledger/block.js";
import { type BlockHeader, blockHeaderHash, decodeBlockHeader } from "../ledger/block-header.js";
import { type CommitCertificate, decodeCertificate, verifyCertificate } from "../ledger/certificate.js";
import { linkVerdict } from "../ledger/chain.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import { LedgerDecodeError, toHex } from "../ledger/codec.js";
import { StateTree } from "../ledger/state-tree.js";
import { StateProofDecodeError, decodeStateProof, verifyStateProof } from "../ledger/state-tree-proof.js";
import type { Verification } from "../ledger/verification.js";
import { verifyBlock, verifyStateValue } from "../ledger/verify.js";
import type { WireBlock, WireFrame } from "../node/wire-types.js";
import type { VerifiedBlock } from "./types.js";

export type ReadProofAnswer = Extract<WireFrame, { kind: "read-proof" }>;

/** `stale`: the answer verifies, or might, but is older than the client accepts (a lagging replica, or a faulty one). */
export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string; readonly stale?: boolean };

/** The root of the empty state: every cluster's state before its first block. */
const GENESIS_STATE_ROOT: Uint8Array = new StateTree().root();

/**
 * The value of state key `key` that `answer` proves, at the height it names. Refused: an answer
 * below `minHeight` (older than what this client has already seen), a header or certificate that
 * does not decode or verify, a header at another height than the answer names, a proof that does
 * not show the value (or its absence) under the header's stateRoot. At height 0 only "absent" is
 * accepted, with an empty header and certificate: the genesis state is empty
 * (node/client-services.ts, "Height 0").
 */
export function checkReadProof(cluster: ClusterConfig, key: Uint8Array, answer: ReadProofAnswer, minHeight: number): Checked<{ value: Uint8Array | undefined; height: number }> {
  if (answer.height < minHeight) return { ok: false, stale: true, reason: `its state is at height ${answer.height}, older than height ${minHeight} this client has already seen` };
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
  const certificate = decoded(() => decodeCertificate(answer.certificate));
  if (!certificate.ok) return certificate;
  const verdict = verifyStateValue(cluster, header.value, certificate.value, key, answer.value, proof.value);
  if (!verdict.ok) return refuse(`${verdict.code}: ${verdict.message}`);
  return { ok: true, value: { value: answer.value, height: answer.height } };
}

/**
 * Block `height` as `wire` carries it, verified: its certificate (required), its body against the
 * header's roots when the body is there, and, when `previous` (an already verified header) is
 * given, that it follows that header. Returns the block and its decoded header.
 */
export function checkWireBlock(cluster: ClusterConfig, wire: WireBlock, height: number, previous?: BlockHeader): Checked<{ block: VerifiedBlock; header: BlockHeader }> {
  if (wire.height !== height) return refuse(`it sent block ${wire.height} where block ${height} belongs`);
  if (wire.certificate === undefined) return refuse(`block ${height} is not certified there yet`);
  const header = decoded(() => decodeBlockHeader(wire.header));
  if (!header.ok) return header;
  if (header.value.height !== height) return refuse(`block ${height} came with the header of block ${header.value.height}`);
  const certificate = decoded(() => decodeCertificate(wire.certificate!));
  if (!certificate.ok) return certificate;
  let body: Pick<Block, "transactions" | "results"> | undefined;
  if (wire.body !== undefined) {
    const decodedBody = decoded(() => decodeBlockBody(wire.body!));
    if (!decodedBody.ok) return decodedBody;
    body = decodedBody.value;
  }
  const verdict =
    body === undefined ? headerVerdict(cluster, header.value, certificate.value, previous) : verifyBlock(cluster, { header: header.value, ...body }, certificate.value, previous);
  if (!verdict.ok) return refuse(`block ${height}: ${verdict.code}: ${verdict.message}`);
  const h = header.value;
  return {
    ok: true,
    value: {
      header: h,
      block: {
        height: h.height,
        seq: h.seq,
        hash: toHex(blockHeaderHash(h)),
        previousHash: toHex(h.prevHash),
        stateRoot: toHex(h.stateRoot),
        transactionRoot: toHex(h.txRoot),
        resultsRoot: toHex(h.resultsRoot),
        transactionCount: h.txCount,
        transactions: body?.transactions ?? [],
        results: body?.results ?? [],
        signers: certificate.value.signatures.map((signature) => signature.replica),
        bodyPruned: body === undefined,
      },
    },
  };
}

/** A header without its body: certified, and linked to `previous` when given. */
function headerVerdict(cluster: ClusterConfig, header: BlockHeader, certificate: CommitCertificate, previous: BlockHeader | undefined): Verification {
  const certified = verifyCertificate(cluster, header, certificate);
  if (!certified.ok) return certified;
  return linkVerdict(previous === undefined ? undefined : { height: previous.height, hash: blockHeaderHash(previous) }, header);
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
