// Gathers the commit certificates that the normal path (block-certifier.ts) missed. A replica signs
// each block once, right after executing it, and broadcasts the signature; a peer that was down at
// that moment never hears it, and a replica killed before the signatures of its last blocks came in
// restarts with those blocks uncertified. If every replica stopped at once (Ctrl-C of a local
// cluster) the last blocks are uncertified everywhere, so fetching certificates from peers is not
// enough: the repair asks peers for fresh signatures instead (a `signatures-request`, answered with
// one `block-signature` per stored block), checks each against the replica's OWN header, and
// certifies a height once 2f + 1 replicas (itself included) signed it, as the certifier does.
//
// Bounded: the heights to repair are a sorted list capped at MISSING_MAX (more are found again by
// the next store scan); signatures are held only for the heights of the current window, at most
// one per replica. A height whose peers hold another header never reaches a quorum here; the
// repair then keeps asking with back-off, and the height stays uncertified, which `bulwark verify`
// reports.

import { type BlockHeader } from "../ledger/block-header.js";
import { type BlockSignature, type CommitCertificate, type SignatureCheck, createCertificate, verifyBlockSignature } from "../ledger/certificate.js";
import { type ClusterConfig, certificateQuorum } from "../ledger/cluster.js";

/** Most heights one signatures-request covers (the peer signs one block per height). */
export const REPAIR_WINDOW_HEIGHTS = 64;
/** Most heights remembered for repair; beyond it heights wait for the next store scan. */
export const REPAIR_MISSING_MAX = 100_000;

export interface CertificateRepairCounters {
  certified: number;
  signaturesAccepted: number;
  signaturesInvalid: number;
  rounds: number;
}

interface WindowHeight {
  readonly header: BlockHeader;
  readonly verified: Map<number, BlockSignature>;
}

export class CertificateRepair {
  readonly counters: CertificateRepairCounters = { certified: 0, signaturesAccepted: 0, signaturesInvalid: 0, rounds: 0 };
  private readonly cluster: ClusterConfig;
  private readonly quorum: number;
  /** Heights to repair, ascending, without duplicates. */
  private missing: number[] = [];
  /** Heights certified or dropped since the last compaction, still in `missing`. */
  private readonly resolved = new Set<number>();
  /** The heights of the current round, with the signatures gathered for them. */
  private readonly window = new Map<number, WindowHeight>();

  /** `verify` checks peers' signatures; default node:crypto (`verifyBlockSignature`'s). */
  constructor(
    cluster: ClusterConfig,
    private readonly verify?: SignatureCheck,
  ) {
    this.cluster = cluster;
    this.quorum = certificateQuorum(cluster);
  }

  /** Heights waiting for a certificate. */
  get size(): number {
    return this.missing.length - this.resolved.size;
  }

  /** Adds heights to repair (any order; duplicates and those beyond REPAIR_MISSING_MAX are ignored). */
  add(heights: readonly number[]): void {
    this.compact();
    for (const height of heights) {
      if (!(Number.isSafeInteger(height) && height >= 1)) throw new RangeError(`certificate repair: ${height} is not a block height`);
      if (this.missing.length >= REPAIR_MISSING_MAX) return;
      // Binary insertion: heights come a few at a time from the certifier, or once from a store scan.
      const at = this.indexOf(height);
      if (this.missing[at] !== height) this.missing.splice(at, 0, height);
    }
  }

  /** Heights of the current round still without a certificate. */
  get windowSize(): number {
    return this.window.size;
  }

  /** Whether a signature for `height` belongs to the current round. */
  wants(height: number): boolean {
    return this.window.has(height);
  }

  /**
   * Starts a round: the lowest missing heights within REPAIR_WINDOW_HEIGHTS of the lowest. `own`
   * gives this replica's stored header and its own signature over it (undefined when the height
   * is no longer stored, which drops it). Returns the range to ask every peer for, or undefined
   * when nothing is missing. Signatures gathered in the previous round for heights still in the
   * window are kept.
   */
  startRound(own: (height: number) => { header: BlockHeader; signature: BlockSignature } | undefined): { from: number; to: number } | undefined {
    for (;;) {
      this.compact();
      if (this.missing.length === 0) return undefined;
      const heights = this.missing.slice(0, this.indexOf(this.missing[0]! + REPAIR_WINDOW_HEIGHTS));
      for (const height of this.window.keys()) if (!heights.includes(height)) this.window.delete(height);
      for (const height of heights) {
        if (this.window.has(height)) continue;
        const mine = own(height);
        if (mine === undefined) this.forget(height);
        else this.window.set(height, { header: mine.header, verified: new Map([[mine.signature.replica, mine.signature]]) });
      }
      if (this.window.size === 0) continue;
      this.counters.rounds++;
      const inWindow = [...this.window.keys()];
      return { from: Math.min(...inWindow), to: Math.max(...inWindow) };
    }
  }

  /** A peer's signature for `height` of the current round; returns the certificate it completes, if any. */
  onSignature(replica: number, height: number, signature: Uint8Array): { height: number; header: BlockHeader; certificate: CommitCertificate } | undefined {
    const entry = this.window.get(height);
    if (entry === undefined || entry.verified.has(replica) || replica < 0 || replica >= this.cluster.n) return undefined;
    const candidate = { replica, signature: signature.slice() };
    if (!verifyBlockSignature(this.cluster, entry.header, candidate, this.verify).ok) {
      this.counters.signaturesInvalid++;
      return undefined;
    }
    this.counters.signaturesAccepted++;
    entry.verified.set(replica, candidate);
    if (entry.verified.size < this.quorum) return undefined;
    this.forget(height);
    this.counters.certified++;
    return { height, header: entry.header, certificate: createCertificate(height, [...entry.verified.values()].slice(0, this.quorum)) };
  }

  /** Stops repairing `height` (certified, or no longer stored). */
  forget(height: number): void {
    this.window.delete(height);
    if (this.missing[this.indexOf(height)] === height) this.resolved.add(height);
  }

  /** Where `height` is or would go in `missing` (binary search). */
  private indexOf(height: number): number {
    let low = 0;
    let high = this.missing.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.missing[middle]! < height) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  // Removing from the sorted list one height at a time would cost a pass each; the resolved
  // heights are dropped together, once per round.
  private compact(): void {
    if (this.resolved.size === 0) return;
    this.missing = this.missing.filter((height) => !this.resolved.has(height));
    this.resolved.clear();
  }
}
