// Verifying a run of certified headers as a chain: every header certified by 2f + 1 replicas,
// heights consecutive, and each prevHash the hash of the header before it. A chain starts either
// at height 1 (whose prevHash is all zeros) or after an anchor header the caller already trusts
// (one it verified earlier, say at a stable checkpoint). The first header that fails names the
// height where the chain breaks.
//
// The verifier is incremental (`HeaderChainVerifier.append`), so an audit of a store with a
// million blocks streams headers from disk instead of loading them; `verifyHeaderChain` wraps it
// for an in-memory list. Both use the same link rule as `verifyBlock` (verify.ts).

import { type BlockHeader, GENESIS_PREV_HASH, blockHeaderHash, blockHeaderProblem } from "./block-header.js";
import { type CommitCertificate, checkHeader, verifyCertificateForHash } from "./certificate.js";
import type { ClusterConfig } from "./cluster.js";
import { bytesEqual } from "./codec.js";
import { VERIFIED, type Verification, type VerificationFailureCode, failure } from "./verification.js";

export interface CertifiedHeader {
  readonly header: BlockHeader;
  readonly certificate: CommitCertificate;
}

export type ChainVerification =
  | {
      readonly ok: true;
      /** Headers checked. */
      readonly headerCount: number;
      /** Height of the last header checked (the anchor's, or 0, when there were none). */
      readonly lastHeight: number;
      /** Hash of that header; undefined for an empty chain without an anchor. */
      readonly lastHeaderHash: Uint8Array | undefined;
    }
  | {
      readonly ok: false;
      /** The first bad height: the height the failing header should have had. */
      readonly height: number;
      readonly code: VerificationFailureCode;
      readonly message: string;
    };

/**
 * Whether `header` follows `previous` (height and hash of the header before it, when known):
 * the next height and prevHash equal to its hash. Without a previous header only height 1 can be
 * checked, for the all-zero prevHash. `header` must be well-formed (checked by the caller).
 */
export function linkVerdict(previous: { readonly height: number; readonly hash: Uint8Array } | undefined, header: BlockHeader): Verification {
  if (previous === undefined) {
    if (header.height === 1 && !bytesEqual(header.prevHash, GENESIS_PREV_HASH)) {
      return failure("broken-link", "block 1's prevHash must be all zeros");
    }
    return VERIFIED;
  }
  if (header.height !== previous.height + 1) {
    return failure("broken-link", `block ${header.height} cannot follow block ${previous.height}; heights go up by one`);
  }
  if (!bytesEqual(header.prevHash, previous.hash)) {
    return failure("broken-link", `block ${header.height}'s prevHash is not the hash of block ${previous.height}'s header`);
  }
  return VERIFIED;
}

/** Checks certified headers one at a time, in height order. Never throws for bad input. */
export class HeaderChainVerifier {
  private previous: { height: number; hash: Uint8Array } | undefined;
  private nextHeight: number;
  private headerCount = 0;
  private firstFailure: ChainVerification | undefined;

  /**
   * `anchor`: a header the caller already trusts, which the chain continues; without it the chain
   * must start at height 1.
   */
  constructor(
    private readonly cluster: ClusterConfig,
    anchor?: BlockHeader,
  ) {
    this.nextHeight = 1;
    if (anchor === undefined) return;
    const problem = blockHeaderProblem(anchor);
    if (problem !== null) {
      this.firstFailure = { ok: false, height: 0, code: "malformed", message: `the anchor header is malformed: ${problem}` };
      return;
    }
    this.previous = { height: anchor.height, hash: blockHeaderHash(anchor) };
    this.nextHeight = anchor.height + 1;
  }

  /** The height the next header must have. */
  get expectedHeight(): number {
    return this.nextHeight;
  }

  /**
   * Checks the next header. After a failure the chain stays broken: every later call returns the
   * first failure's verdict, so a streaming caller may stop at any point and read `result()`.
   */
  append(header: BlockHeader, certificate: CommitCertificate): Verification {
    if (this.firstFailure !== undefined) return this.verdictOf(this.firstFailure);
    const verdict = this.check(header, certificate);
    if (!verdict.ok) {
      this.firstFailure = { ok: false, height: this.nextHeight, code: verdict.code, message: `height ${this.nextHeight}: ${verdict.message}` };
      return this.verdictOf(this.firstFailure);
    }
    this.headerCount += 1;
    this.nextHeight += 1;
    return VERIFIED;
  }

  /** The verdict so far. */
  result(): ChainVerification {
    if (this.firstFailure !== undefined) return this.firstFailure;
    return {
      ok: true,
      headerCount: this.headerCount,
      lastHeight: this.nextHeight - 1,
      lastHeaderHash: this.previous === undefined ? undefined : this.previous.hash.slice(),
    };
  }

  private check(header: BlockHeader, certificate: CommitCertificate): Verification {
    const checked = checkHeader(this.cluster, header);
    if (!checked.ok) return checked.verdict;
    if (header.height !== this.nextHeight) {
      return failure("broken-link", `expected a header at height ${this.nextHeight}, got one at height ${header.height}`);
    }
    const certified = verifyCertificateForHash(this.cluster, header, checked.headerHash, certificate);
    if (!certified.ok) return certified;
    const linked = linkVerdict(this.previous, header);
    if (!linked.ok) return linked;
    this.previous = { height: header.height, hash: checked.headerHash };
    return VERIFIED;
  }

  private verdictOf(chainFailure: ChainVerification): Verification {
    return chainFailure.ok ? VERIFIED : failure(chainFailure.code, chainFailure.message);
  }
}

/**
 * Whether `entries` form a certified chain from height 1, or from just after `anchor`; on
 * failure, the first bad height. Stops at the first failure.
 */
export function verifyHeaderChain(cluster: ClusterConfig, entries: Iterable<CertifiedHeader>, anchor?: BlockHeader): ChainVerification {
  const verifier = new HeaderChainVerifier(cluster, anchor);
  if (!verifier.result().ok) return verifier.result();
  for (const entry of entries) {
    // Entries may come straight from the network; a missing object reads as missing fields.
    const { header, certificate } = (entry ?? {}) as Partial<CertifiedHeader>;
    if (!verifier.append(header as BlockHeader, certificate as CommitCertificate).ok) break;
  }
  return verifier.result();
}
