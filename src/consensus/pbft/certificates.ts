// Validation of signed messages and certificates: the checks that let a replica trust what a
// third party relays (prepared certificates in VIEW-CHANGE, VIEW-CHANGEs in NEW-VIEW, checkpoint
// proofs, commit certificates). Every function returns false on anything invalid; none throws.

import { signingPayload, type Signed } from "./messages.js";
import { primaryOf, type Quorums } from "./quorum.js";
import type {
  CheckpointProof,
  Commit,
  CommitCertificate,
  PbftCrypto,
  PrePrepare,
  Prepare,
  PreparedCertificate,
  ReplicaId,
  ViewChange,
} from "./types.js";

/** Upper bound on remembered good signatures; the cache is cleared when it fills. */
const SIGNATURE_CACHE_ENTRIES_MAX = 4096;

/**
 * Checks signatures and certificates. The same certificate arrives many times (in each
 * VIEW-CHANGE, again inside the NEW-VIEW, in retransmissions), so verified signatures are
 * remembered, keyed by signer and signature with the payload compared in full.
 */
export class CertificateValidator {
  private readonly verified = new Map<string, string>();

  constructor(
    private readonly crypto: PbftCrypto,
    private readonly n: number,
    private readonly quorums: Quorums,
    private readonly checkpointInterval: number,
    private readonly watermarkWindow: number,
  ) {}

  verifySignature(replica: ReplicaId, message: Signed): boolean {
    const payload = signingPayload(message);
    const key = `${replica}|${message.signature}`;
    if (this.verified.get(key) === payload) return true;
    if (!this.crypto.verify(replica, payload, message.signature)) return false;
    this.remember(key, payload);
    return true;
  }

  private remember(key: string, payload: string): void {
    if (this.verified.size >= SIGNATURE_CACHE_ENTRIES_MAX) this.verified.clear();
    this.verified.set(key, payload);
  }

  /**
   * A pre-prepare is valid when its primary signed it, its digest is its batch's, and every request
   * is genuine. The client signatures are the costly part (a batch holds up to thousands), and the
   * same batch can come back (in a commit certificate, or the same pre-prepare arriving late); so a
   * fully validated batch is remembered. The digest is recomputed every time: it binds these exact
   * requests to the remembered signed payload, which carries view, seq, digest and signer (so a
   * remembered one passed `validHeader` too).
   */
  validPrePrepare(pp: PrePrepare, vouched = false): boolean {
    if (this.crypto.batchDigest(pp.requests) !== pp.digest) return false;
    const batchKey = `batch|${pp.replica}|${pp.signature}`;
    const payload = signingPayload(pp);
    if (this.verified.get(batchKey) === payload) return true;
    if (!this.validHeader(pp)) return false;
    if (!pp.requests.every((request) => this.crypto.verifyRequest(request, vouched))) return false;
    // Remembered either way: a vouched batch is one 2f + 1 replicas accepted, so its requests are
    // authentic wherever it shows up next (the same pre-prepare arriving late, say).
    this.remember(batchKey, payload);
    return true;
  }

  /**
   * A pre-prepare's header alone: its view's primary signed (view, seq, digest), for a real seq.
   * What a digest-only pre-prepare (in a VIEW-CHANGE's certificate, a NEW-VIEW's re-proposal) can
   * prove; batches.ts.
   */
  validHeader(pp: PrePrepare): boolean {
    return pp.replica === primaryOf(pp.view, this.n) && pp.seq !== 0 && this.verifySignature(pp.replica, pp);
  }

  /** Votes that match (view, seq, digest), from distinct replicas, excluding `excluded`, validly signed. */
  private countMatchingVotes(votes: readonly (Prepare | Commit)[], pp: PrePrepare, excluded: ReplicaId | undefined): number {
    const voters = new Set<ReplicaId>();
    for (const vote of votes) {
      if (vote.view !== pp.view || vote.seq !== pp.seq || vote.digest !== pp.digest) return -1;
      if (vote.replica === excluded || voters.has(vote.replica)) return -1;
      if (!this.verifySignature(vote.replica, vote)) return -1;
      voters.add(vote.replica);
    }
    return voters.size;
  }

  /**
   * Pre-prepare plus 2f matching prepares from distinct backups (PBFT §4.2, "prepared"). The votes
   * are counted before the pre-prepare is validated: only once 2f + 1 replicas are known to have
   * accepted the batch may its requests count as vouched for (see `PbftCrypto.verifyRequest`). A
   * pre-prepare without requests is checked as a header: the certificate then proves that the batch
   * with that digest prepared (how VIEW-CHANGEs carry them; batches.ts).
   */
  validPreparedCertificate(cert: PreparedCertificate, prepareQuorum = this.quorums.prepare): boolean {
    if (cert.prepares.length < prepareQuorum) return false;
    if (this.countMatchingVotes(cert.prepares, cert.prePrepare, cert.prePrepare.replica) < prepareQuorum) return false;
    return cert.prePrepare.requests.length === 0 ? this.validHeader(cert.prePrepare) : this.validPrePrepare(cert.prePrepare, true);
  }

  /** Pre-prepare plus 2f + 1 matching commits from distinct replicas: the request committed. */
  validCommitCertificate(cert: CommitCertificate): boolean {
    if (cert.commits.length < this.quorums.commit) return false;
    if (this.countMatchingVotes(cert.commits, cert.prePrepare, undefined) < this.quorums.commit) return false;
    return this.validPrePrepare(cert.prePrepare, true);
  }

  /**
   * 2f + 1 matching signed checkpoints from distinct replicas. The genesis checkpoint (seq 0)
   * needs no proof: every replica starts there.
   */
  validCheckpointProof(proof: CheckpointProof): boolean {
    if (proof.seq === 0) return proof.checkpoints.length === 0;
    if (proof.seq % this.checkpointInterval !== 0) return false;
    if (proof.checkpoints.length < this.quorums.checkpoint) return false;
    const signers = new Set<ReplicaId>();
    for (const c of proof.checkpoints) {
      if (c.seq !== proof.seq || c.stateDigest !== proof.stateDigest || signers.has(c.replica)) return false;
      if (!this.verifySignature(c.replica, c)) return false;
      signers.add(c.replica);
    }
    return signers.size >= this.quorums.checkpoint;
  }

  /**
   * A VIEW-CHANGE is valid when signed by its sender, its checkpoint proof holds, and each
   * prepared certificate is valid, by digest only (no requests), from an earlier view, for a
   * distinct seq inside the sender's watermark window (PBFT §4.4).
   */
  validViewChange(vc: ViewChange, prepareQuorum = this.quorums.prepare): boolean {
    if (!this.verifySignature(vc.replica, vc)) return false;
    if (!this.validCheckpointProof(vc.stable)) return false;
    const seqs = new Set<number>();
    for (const cert of vc.prepared) {
      const pp = cert.prePrepare;
      if (pp.view >= vc.view || seqs.has(pp.seq) || pp.requests.length > 0) return false;
      if (pp.seq <= vc.stable.seq || pp.seq > vc.stable.seq + this.watermarkWindow) return false;
      if (!this.validPreparedCertificate(cert, prepareQuorum)) return false;
      seqs.add(pp.seq);
    }
    return true;
  }
}
