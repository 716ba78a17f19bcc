// Gathers a commit certificate for each block (issue 3 §3): after a replica has executed and stored
// block h it signs the header hash and sends the signature to every peer; each replica keeps the
// signatures that verify against ITS OWN header of h, and once 2f + 1 distinct replicas (itself
// included) signed the same hash the certificate is stored with the block. A replica signs only a
// header it computed itself, so 2f + 1 signatures mean f + 1 correct replicas executed the same
// transactions to the same state root (DESIGN.md, "Data model").
//
// Signatures may arrive before the block executes here (a lagging replica): they wait, unverified,
// for at most `aheadMax` heights above the executed height and `n` per height, so memory is
// bounded. A height of ours that has not gathered a quorum soon enough (its peers were down, or
// their signatures came while this replica was far behind and were dropped) is handed to the
// runtime's certificate repair (certificate-repair.ts), which asks the peers to sign it again:
// the runtime takes the heights older than a grace period (`takeUncertified`), and a height that
// falls `behindMax` below the executed height goes to `onAbandoned`. Signatures for certified,
// handed-over or long-past heights are dropped.

import { type BlockHeader, blockHeaderHash } from "../ledger/block-header.js";
import { type BlockSignature, type CommitCertificate, type SignatureCheck, createCertificate, verifyBlockSignature } from "../ledger/certificate.js";
import { type ClusterConfig, certificateQuorum } from "../ledger/cluster.js";

export interface BlockCertifierCounters {
  certified: number;
  signaturesAccepted: number;
  signaturesInvalid: number;
  signaturesDropped: number;
  /** Heights given up on: fell more than `behindMax` below the executed height uncertified. */
  abandoned: number;
  /** Heights handed to the repair by `takeUncertified`. */
  handedOver: number;
}

interface PendingHeight {
  header: BlockHeader | undefined;
  /** When our own block was signed (caller's clock). */
  signedAtMs: number;
  /** Verified signatures over our header (ours included). */
  readonly verified: Map<number, BlockSignature>;
  /** Signatures that arrived before our header, checked once it exists. */
  readonly early: Map<number, Uint8Array>;
}

export class BlockCertifier {
  readonly counters: BlockCertifierCounters = { certified: 0, signaturesAccepted: 0, signaturesInvalid: 0, signaturesDropped: 0, abandoned: 0, handedOver: 0 };
  private readonly cluster: ClusterConfig;
  private readonly verify: SignatureCheck | undefined;
  private readonly quorum: number;
  private readonly aheadMax: number;
  private readonly behindMax: number;
  private readonly onCertified: (header: BlockHeader, certificate: CommitCertificate) => void;
  private readonly onAbandoned: (height: number) => void;
  private readonly pending = new Map<number, PendingHeight>();
  /** Heights within the window that are done here (certified or handed over): their late signatures are dropped. */
  private readonly settled = new Set<number>();
  private executedHeight = 0;

  /**
   * `onCertified` receives each certificate once. `aheadMax`/`behindMax` bound how far above and
   * below the executed height signatures are kept (the watermark window is a good value).
   */
  constructor(options: {
    cluster: ClusterConfig;
    aheadMax: number;
    behindMax: number;
    onCertified: (header: BlockHeader, certificate: CommitCertificate) => void;
    /** A height of ours given up on uncertified; default: nothing. */
    onAbandoned?: (height: number) => void;
    /** How peers' signatures are checked; default node:crypto (`verifyBlockSignature`'s). */
    verify?: SignatureCheck;
  }) {
    this.verify = options.verify;
    this.cluster = options.cluster;
    this.quorum = certificateQuorum(options.cluster);
    this.aheadMax = options.aheadMax;
    this.behindMax = options.behindMax;
    this.onCertified = options.onCertified;
    this.onAbandoned = options.onAbandoned ?? (() => undefined);
  }

  /** Heights waiting for signatures (bounded by aheadMax + behindMax). */
  get pendingHeights(): number {
    return this.pending.size;
  }

  /** Our own block `header` is stored and signed with `own`; returns nothing, may certify. */
  onOwnBlock(header: BlockHeader, own: BlockSignature, nowMs = Date.now()): void {
    const height = header.height;
    this.executedHeight = Math.max(this.executedHeight, height);
    const entry = this.entry(height);
    entry.header = header;
    entry.signedAtMs = nowMs;
    entry.verified.set(own.replica, own);
    for (const [replica, signature] of entry.early) {
      // Signatures beyond the quorum certify nothing more: not checked (one in three with n = 4).
      if (entry.verified.size >= this.quorum) {
        this.counters.signaturesDropped++;
        continue;
      }
      this.check(entry, header, { replica, signature });
    }
    entry.early.clear();
    this.maybeCertify(height, entry);
    this.forgetBelow(this.executedHeight - this.behindMax);
  }

  /** A peer's signature for `height`. */
  onSignature(replica: number, height: number, signature: Uint8Array): void {
    if (!Number.isSafeInteger(height) || height < 1 || height > this.executedHeight + this.aheadMax || height <= this.executedHeight - this.behindMax) {
      this.counters.signaturesDropped++;
      return;
    }
    if (replica < 0 || replica >= this.cluster.n) {
      this.counters.signaturesInvalid++;
      return;
    }
    if (this.settled.has(height)) {
      this.counters.signaturesDropped++;
      return;
    }
    const entry = this.entry(height);
    if (entry.verified.has(replica) || entry.early.has(replica) || entry.verified.size >= this.quorum) {
      this.counters.signaturesDropped++;
      return;
    }
    if (entry.header === undefined) {
      entry.early.set(replica, signature.slice());
      return;
    }
    this.check(entry, entry.header, { replica, signature });
    this.maybeCertify(height, entry);
  }

  /**
   * Our heights signed at or before `nowMs - ageMs` and still uncertified, ascending; they leave
   * this certifier (the caller repairs them) and their late signatures are dropped.
   */
  takeUncertified(nowMs: number, ageMs: number): number[] {
    const taken: number[] = [];
    for (const [height, entry] of this.pending) {
      if (entry.header === undefined || entry.signedAtMs > nowMs - ageMs) continue;
      this.pending.delete(height);
      this.settled.add(height);
      taken.push(height);
    }
    this.counters.handedOver += taken.length;
    return taken.sort((a, b) => a - b);
  }

  /** State transfer jumped to `height`: nothing at or below it will execute here. */
  skipTo(height: number): void {
    this.executedHeight = Math.max(this.executedHeight, height);
    this.forgetBelow(height + 1);
  }

  private entry(height: number): PendingHeight {
    let entry = this.pending.get(height);
    if (entry === undefined) {
      entry = { header: undefined, signedAtMs: 0, verified: new Map(), early: new Map() };
      this.pending.set(height, entry);
    }
    return entry;
  }

  private check(entry: PendingHeight, header: BlockHeader, signature: BlockSignature): void {
    if (verifyBlockSignature(this.cluster, header, signature, this.verify).ok) {
      entry.verified.set(signature.replica, signature);
      this.counters.signaturesAccepted++;
    } else {
      this.counters.signaturesInvalid++;
    }
  }

  private maybeCertify(height: number, entry: PendingHeight): void {
    if (entry.header === undefined || entry.verified.size < this.quorum) return;
    const signatures = [...entry.verified.values()].slice(0, this.quorum);
    this.pending.delete(height);
    this.settled.add(height);
    this.counters.certified++;
    this.onCertified(entry.header, createCertificate(height, signatures));
  }

  private forgetBelow(height: number): void {
    for (const settled of this.settled) if (settled < height) this.settled.delete(settled);
    for (const [pendingHeight, entry] of this.pending) {
      if (pendingHeight >= height) continue;
      this.pending.delete(pendingHeight);
      if (entry.header !== undefined) {
        this.counters.abandoned++;
        this.onAbandoned(pendingHeight);
      }
    }
  }
}

/** The hex header hash: the digest a checkpoint at this height carries (see replica-runtime.ts). */
export function headerDigest(header: BlockHeader): string {
  return Buffer.from(blockHeaderHash(header)).toString("hex");
}
