// Ledger values as the JSON the gateway answers with (schemas.ts describes each shape): results,
// blocks with their transactions decoded where they decode, and the cluster status with the
// figures f + 1 replicas vouch for.

import { ResultDecodeError, type TransactionResult, decodeResult } from "../app/result.js";
import { TransactionDecodeError, decodeTransaction, transactionId } from "../app/transaction.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import { type ValueEncoding, base64, encodeValue, hex } from "./encoding.js";
import type { LedgerBlock, LedgerReplicaStatus } from "./types.js";

export interface ResultView {
  readonly ok: boolean;
  readonly kind?: string;
  readonly value?: string;
  readonly encoding?: ValueEncoding;
  readonly flag?: boolean;
  readonly amount?: string;
  readonly error?: string;
  readonly nextNonce?: number;
}

export function resultView(result: TransactionResult): ResultView {
  if (!result.ok) return result.error === "stale-nonce" || result.error === "nonce-gap" ? { ok: false, error: result.error, nextNonce: result.nextNonce } : { ok: false, error: result.error };
  switch (result.kind) {
    case "done":
    case "absent":
      return { ok: true, kind: result.kind };
    case "value":
      return { ok: true, kind: "value", ...encodeValue(result.value) };
    case "flag":
      return { ok: true, kind: "flag", flag: result.flag };
    case "amount":
      // A u64 does not fit a JSON number exactly; decimal text does.
      return { ok: true, kind: "amount", amount: result.amount.toString() };
  }
}

export interface TransactionView {
  readonly id: string;
  readonly envelope: string;
  readonly resultBytes?: string;
  readonly clientKey?: string;
  readonly nonce?: number;
  readonly operation?: string;
  readonly result?: ResultView;
}

export interface BlockView {
  readonly height: number;
  readonly seq: number;
  readonly hash: string;
  readonly previousHash: string;
  readonly stateRoot: string;
  readonly transactionRoot: string;
  readonly resultsRoot: string;
  readonly transactionCount: number;
  readonly bodyPruned: boolean;
  readonly signers: readonly number[];
  readonly transactions: readonly TransactionView[];
}

export function blockView(block: LedgerBlock): BlockView {
  return {
    height: block.height,
    seq: block.seq,
    hash: block.hash,
    previousHash: block.previousHash,
    stateRoot: block.stateRoot,
    transactionRoot: block.transactionRoot,
    resultsRoot: block.resultsRoot,
    transactionCount: block.transactionCount,
    bodyPruned: block.bodyPruned,
    signers: block.signers,
    transactions: block.transactions.map((envelope, index) => transactionView(envelope, block.results[index])),
  };
}

/**
 * One transaction of a block. A block may record envelopes that do not decode (the ledger
 * refused them as malformed and the refusal is part of the history), so decoding is best effort:
 * what does not decode is shown as bytes only.
 */
function transactionView(envelope: Uint8Array, resultBytes: Uint8Array | undefined): TransactionView {
  let view: TransactionView = { id: hex(transactionId(envelope)), envelope: base64(envelope) };
  try {
    const transaction = decodeTransaction(envelope);
    view = { ...view, clientKey: hex(transaction.clientKey), nonce: transaction.nonce, operation: transaction.operation.type };
  } catch (error) {
    if (!(error instanceof TransactionDecodeError)) throw error;
  }
  if (resultBytes === undefined) return view;
  view = { ...view, resultBytes: base64(resultBytes) };
  try {
    return { ...view, result: resultView(decodeResult(resultBytes)) };
  } catch (error) {
    if (!(error instanceof ResultDecodeError)) throw error;
    return view;
  }
}

export type ReplicaRole = "primary" | "backup" | "view-change" | "unreachable";

export interface StatusView {
  readonly n: number;
  readonly f: number;
  readonly reachable: number;
  readonly quorumReachable: boolean;
  readonly view: number | null;
  readonly primary: number | null;
  readonly executedHeight: number | null;
  readonly stableCheckpoint: number | null;
  readonly replicas: readonly (LedgerReplicaStatus & { readonly role: ReplicaRole })[];
}

export function statusView(cluster: ClusterConfig, statuses: readonly LedgerReplicaStatus[]): StatusView {
  const answered = statuses.filter((status) => status.reachable);
  const view = vouched(answered.map((status) => status.view), cluster.f);
  return {
    n: cluster.n,
    f: cluster.f,
    reachable: answered.length,
    quorumReachable: answered.length >= 2 * cluster.f + 1,
    view,
    // PBFT §4.4: the primary of view v is replica v mod n.
    primary: view === null ? null : view % cluster.n,
    executedHeight: vouched(answered.map((status) => status.executedHeight), cluster.f),
    stableCheckpoint: vouched(answered.map((status) => status.stableCheckpoint), cluster.f),
    replicas: statuses.map((status) => ({ ...status, role: roleOf(status) })),
  };
}

function roleOf(status: LedgerReplicaStatus): ReplicaRole {
  if (!status.reachable) return "unreachable";
  if (status.normal === false) return "view-change";
  return status.primary === status.replica ? "primary" : "backup";
}

/**
 * The highest value at least f + 1 replicas report reaching: the (f + 1)-th highest report. At
 * most f replicas are faulty, so one of those f + 1 is correct and really reached it; the highest
 * report alone could be a faulty replica's invention. Null when fewer than f + 1 reported.
 */
export function vouched(reports: readonly (number | undefined)[], f: number): number | null {
  const values = reports.filter((value): value is number => value !== undefined).sort((a, b) => b - a);
  return values[f] ?? null;
}
