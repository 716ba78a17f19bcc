// The NEW-VIEW computation (PBFT §4.4; seed 003, "A view-change in view v"): from 2f + 1
// VIEW-CHANGE messages, the new primary re-proposes every request that may have committed and
// fills the gaps with null requests. Backups run the same function and accept the NEW-VIEW only
// if the primary's pre-prepares are exactly its result. Seed 003 ("A property of view-changes
// when n > 3f") proves why: any request committed by n - 2f correct replicas appears prepared in
// at least one of the 2f + 1 VIEW-CHANGEs.

import type { CheckpointProof, Digest, ViewChange } from "./types.js";

/** A batch to re-propose, by digest: replicas fill in its requests themselves (batches.ts). */
export interface Reproposal {
  readonly seq: number;
  readonly digest: Digest;
}

export interface NewViewPlan {
  /** The highest stable checkpoint among the VIEW-CHANGEs (min-s), with its proof. */
  readonly stable: CheckpointProof;
  /** One re-proposal per seq in (min-s, max-s], in order; the null digest marks a null request. */
  readonly reproposals: readonly Reproposal[];
}

export function planNewView(viewChanges: readonly ViewChange[], nullDigest: Digest): NewViewPlan {
  let stable: CheckpointProof | undefined;
  for (const vc of viewChanges) {
    if (stable === undefined || vc.stable.seq > stable.seq) stable = vc.stable;
  }
  if (stable === undefined) throw new Error("planNewView needs at least one VIEW-CHANGE");
  const minSeq = stable.seq;

  // For each seq above min-s, the prepared certificate from the highest view wins.
  const chosen = new Map<number, { view: number; digest: Digest }>();
  let maxSeq = minSeq;
  for (const vc of viewChanges) {
    for (const cert of vc.prepared) {
      const pp = cert.prePrepare;
      if (pp.seq <= minSeq) continue;
      const current = chosen.get(pp.seq);
      if (current === undefined || pp.view > current.view) {
        chosen.set(pp.seq, { view: pp.view, digest: pp.digest });
      }
      if (pp.seq > maxSeq) maxSeq = pp.seq;
    }
  }

  const reproposals: Reproposal[] = [];
  for (let seq = minSeq + 1; seq <= maxSeq; seq++) {
    const pick = chosen.get(seq);
    reproposals.push({ seq, digest: pick === undefined ? nullDigest : pick.digest });
  }
  return { stable, reproposals };
}
