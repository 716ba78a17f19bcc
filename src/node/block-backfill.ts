// Block backfill: after a state transfer a replica holds the checkpoint's state and header but
// not the blocks below it. It fetches them from peers, walking DOWN from the installed header:
// the header at h is accepted only if its hash is the prevHash of the (already trusted) header
// at h + 1, so one certified header vouches for the whole history below it, and a body only if
// its transactions and results hash to that header's roots, and a certificate only if it
// verifies. A body or certificate may be absent (pruned there, or never gathered; the runtime's
// certificate repair gathers missing certificates later). No peer is trusted: a wrong block costs
// a retry with another peer.
//
// The walk stops at height 1, or where the store already holds a header that links (a replica
// that was behind, not wiped, has its own older history).

import { decodeBlockBody, resultTree, transactionTree } from "../ledger/block.js";
import { type BlockHeader, blockHeaderHash, decodeBlockHeader } from "../ledger/block-header.js";
import { decodeCertificate, verifyCertificate } from "../ledger/certificate.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import type { WireBlock, WireFrame } from "./wire-types.js";

/** Heights asked per request (the server answers at most its own maximum). */
export const BACKFILL_BLOCKS_PER_REQUEST = 64;

export interface VerifiedHistoryBlock {
  readonly height: number;
  readonly header: Uint8Array;
  readonly body?: Uint8Array;
  readonly certificate?: Uint8Array;
}

export type BackfillVerdict =
  | { readonly kind: "store"; readonly blocks: readonly VerifiedHistoryBlock[]; readonly missingBodies: number }
  | { readonly kind: "peer-failed"; readonly reason: string };

export class BlockBackfill {
  private readonly cluster: ClusterConfig;
  /** Every height at or above `low` is stored and trusted; `expectedHash` is the prevHash of `low`. */
  private low: number;
  private expectedHash: Uint8Array;
  private nextRequestId: number;
  private outstanding: { readonly requestId: number; readonly from: number; readonly to: number } | undefined;

  /**
   * `trusted` is a header the replica holds and trusts (the installed checkpoint's); the walk
   * starts AT it, so its body and certificate, which did not travel with the state, come too.
   */
  constructor(cluster: ClusterConfig, trusted: BlockHeader, firstRequestId: number) {
    this.cluster = cluster;
    this.low = trusted.height + 1;
    this.expectedHash = blockHeaderHash(trusted);
    this.nextRequestId = firstRequestId;
  }

  /** The lowest trusted height so far. */
  get lowestHeight(): number {
    return this.low;
  }

  get done(): boolean {
    return this.low <= 1;
  }

  /**
   * Whether a stored block at `low - 1` (header and body, `hasBody`) is the one we expect: then
   * the history below is this replica's own already.
   */
  linksTo(storedHeader: Uint8Array): boolean {
    try {
      return Buffer.from(blockHeaderHash(decodeBlockHeader(storedHeader))).equals(this.expectedHash);
    } catch {
      return false;
    }
  }

  /** The walk reached a stored header that links: nothing more to fetch. */
  finish(): void {
    this.low = 1;
  }

  request(): Extract<WireFrame, { kind: "blocks-request" }> {
    const to = this.low - 1;
    const from = Math.max(1, to - BACKFILL_BLOCKS_PER_REQUEST + 1);
    const requestId = this.nextRequestId++;
    this.outstanding = { requestId, from, to };
    return { kind: "blocks-request", requestId, from, to };
  }

  awaits(requestId: number): boolean {
    return this.outstanding?.requestId === requestId;
  }

  /** Checks an answer from the top down; returns the longest verified run to store. */
  onBlocks(blocks: readonly WireBlock[]): BackfillVerdict {
    const asked = this.outstanding;
    this.outstanding = undefined;
    if (asked === undefined) return { kind: "peer-failed", reason: "an answer nobody asked for" };
    const byHeight = new Map<number, WireBlock>();
    for (const block of blocks) byHeight.set(block.height, block);
    const verified: VerifiedHistoryBlock[] = [];
    let missingBodies = 0;
    for (let height = asked.to; height >= asked.from; height--) {
      const block = byHeight.get(height);
      if (block === undefined) break;
      let header: BlockHeader;
      try {
        header = decodeBlockHeader(block.header);
      } catch {
        break;
      }
      if (header.height !== height || !Buffer.from(blockHeaderHash(header)).equals(this.expectedHash)) break;
      // A body or certificate that is there but wrong is a lie (a pruned body or a block not yet
      // certified is simply absent): the run ends below the last good block, and the rest is asked
      // of another peer, so one faulty peer cannot leave the history without bodies.
      if (block.body !== undefined && !bodyMatches(header, block.body)) break;
      if (block.certificate !== undefined && !certificateVerifies(this.cluster, header, block.certificate)) break;
      const { body, certificate } = block;
      if (body === undefined) missingBodies++;
      verified.push({ height, header: block.header, ...(body === undefined ? {} : { body }), ...(certificate === undefined ? {} : { certificate }) });
      this.low = height;
      this.expectedHash = header.prevHash;
    }
    if (verified.length === 0) return { kind: "peer-failed", reason: `no block at height ${asked.to} that links to the trusted chain` };
    return { kind: "store", blocks: verified, missingBodies };
  }
}

function bodyMatches(header: BlockHeader, body: Uint8Array): boolean {
  try {
    const { transactions, results } = decodeBlockBody(body);
    return (
      transactions.length === header.txCount &&
      results.length === header.txCount &&
      Buffer.from(transactionTree(transactions).root).equals(header.txRoot) &&
      Buffer.from(resultTree(results).root).equals(header.resultsRoot)
    );
  } catch {
    return false;
  }
}

function certificateVerifies(cluster: ClusterConfig, header: BlockHeader, bytes: Uint8Array): boolean {
  try {
    return verifyCertificate(cluster, header, decodeCertificate(bytes)).ok;
  } catch {
    return false;
  }
}
