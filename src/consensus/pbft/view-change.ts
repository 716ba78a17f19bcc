// View change (PBFT §4.4–4.5; seed 003, "A view-change in view v"): replacing a primary that
// does not make progress, without losing any request that may have committed.

import { askForBatch, attachBatch, heldBatch, withoutRequests } from "./batches.js";
import { onStableProof } from "./checkpoints.js";
import { sign } from "./messages.js";
import { planNewView } from "./new-view.js";
import { enqueue, proposeBatches, sendPrepare, startRequestTimer } from "./normal-case.js";
import { primaryOf } from "./quorum.js";
import { assert, ReplicaState } from "./state.js";
import type { CheckpointProof, NewView, PrePrepare, ReplicaId, ViewChange } from "./types.js";

export function startViewChange(r: ReplicaState, view: number): void {
  assert(view > r.view || (view === r.view && !r.normal), `view change to ${view} from ${r.view}`);
  r.count("view-changes");
  r.view = view;
  r.normal = false;
  r.requestDeadlineTick = undefined;
  r.viewChangeDeadlineTick = undefined;
  leaveView(r);
  r.persist({ kind: "view", view, normal: false });
  sendViewChange(r);
  for (const [replica, vc] of r.viewChanges) if (vc.view < view) r.viewChanges.delete(replica);
  startViewChangeTimer(r);
  tryNewView(r);
}

/**
 * PBFT §4.5.2: the timer for the NEW-VIEW starts only once 2f + 1 replicas ask for this view
 * (or a later one), and each successive view waits twice as long. A replica that started a view
 * change alone (it was partitioned, say) therefore waits for the others instead of racing
 * through views on its own, where no quorum would ever meet it; the others, seeing its
 * VIEW-CHANGE for a later view counted with theirs, time out and climb until they meet it.
 * (Counting only VIEW-CHANGEs for exactly this view, as the paper words it, deadlocks when one
 * correct replica waits ahead and a faulty one stays silent.)
 */
export function startViewChangeTimer(r: ReplicaState): void {
  if (r.normal || r.viewChangeDeadlineTick !== undefined) return;
  let count = 0;
  for (const vc of r.viewChanges.values()) if (vc.view >= r.view) count++;
  if (count < r.quorums.viewChange) return;
  r.viewChangeDeadlineTick = r.now + r.viewChangeTimeoutTicks;
  r.viewChangeTimeoutTicks = Math.min(r.viewChangeTimeoutTicks * 2, r.config.viewChangeTimeoutMaxTicks);
}

/** Forgets the state of the view being left; certificates and committed batches survive. */
export function leaveView(r: ReplicaState): void {
  r.log.clear();
  r.proposed.clear();
  r.queue = [];
  r.queueHead = 0;
  // Delayed relays belong to the old primary; entering the new view relays what is pending.
  r.relayQueue = [];
  r.relayQueueHead = 0;
  r.batchOpenedTick = undefined;
  r.newView = undefined;
}

/** Our VIEW-CHANGE: the stable checkpoint's proof and every prepared certificate above it, by digest (batches.ts). */
export function sendViewChange(r: ReplicaState): void {
  const prepared =
    r.mutation === "forget-prepared-certificates"
      ? []
      : [...r.preparedCertificates.values()].filter((c) => c.prePrepare.seq > r.stable.seq).map((c) => ({ prePrepare: withoutRequests(c.prePrepare), prepares: c.prepares }));
  const vc = sign<ViewChange>(r.crypto, { type: "view-change", view: r.view, stable: r.stable, prepared, replica: r.id });
  r.ownViewChange = vc;
  r.viewChanges.set(r.id, vc);
  r.persist({ kind: "view-change", message: vc });
  r.send("all", vc);
}

export function onViewChange(r: ReplicaState, from: ReplicaId, vc: ViewChange): void {
  if (from !== vc.replica) return r.count("forged-sender");
  if (vc.view < r.view || (vc.view === r.view && r.normal)) {
    // The sender missed the NEW-VIEW of a view we are in: hand it over.
    if (vc.view === r.view && r.newView !== undefined) r.send(from, r.newView);
    return r.count("stale");
  }
  const known = r.viewChanges.get(vc.replica);
  if (known !== undefined && known.view >= vc.view) return r.count("duplicate");
  if (!r.validator.validViewChange(vc, r.prepareQuorum)) return r.count("invalid-view-change");
  r.viewChanges.set(vc.replica, vc);
  if (vc.stable.seq > r.stable.seq) onStableProof(r, vc.stable);
  // Join rule (PBFT §4.5.2): f + 1 replicas asking for higher views include a correct one.
  const higher: number[] = [];
  for (const m of r.viewChanges.values()) if (m.view > r.view) higher.push(m.view);
  if (higher.length >= r.quorums.weak) {
    higher.sort((a, b) => b - a);
    return startViewChange(r, higher[r.quorums.weak - 1]!);
  }
  if (!r.normal) {
    startViewChangeTimer(r);
    if (vc.view === r.view) tryNewView(r);
  }
}

/** The new primary: with 2f + 1 VIEW-CHANGEs for its view, announce the NEW-VIEW. */
function tryNewView(r: ReplicaState): void {
  if (r.normal || !r.isPrimary) return;
  const chosen = [...r.viewChanges.values()].filter((vc) => vc.view === r.view).sort((a, b) => a.replica - b.replica);
  if (chosen.length < r.quorums.viewChange) return;
  chosen.length = r.quorums.viewChange;
  const plan = planNewView(chosen, r.nullDigest);
  const prePrepares = plan.reproposals.map((proposal) =>
    sign<PrePrepare>(r.crypto, { type: "pre-prepare", view: r.view, seq: proposal.seq, digest: proposal.digest, requests: [], replica: r.id }),
  );
  const newView = sign<NewView>(r.crypto, { type: "new-view", view: r.view, viewChanges: chosen, prePrepares, replica: r.id });
  enterNewView(r, newView, plan.stable);
  r.send("all", newView);
}

export function onNewView(r: ReplicaState, nv: NewView): void {
  if (nv.view < r.view || (nv.view === r.view && r.normal)) return r.count("stale");
  if (nv.replica !== primaryOf(nv.view, r.config.n)) return r.count("not-primary");
  const stable = validNewView(r, nv);
  if (stable === undefined) return r.count("invalid-new-view");
  enterNewView(r, nv, stable);
}

/** Recomputes the NEW-VIEW from its VIEW-CHANGEs; returns its stable checkpoint when it matches. */
function validNewView(r: ReplicaState, nv: NewView): CheckpointProof | undefined {
  if (!r.validator.verifySignature(nv.replica, nv)) return undefined;
  if (r.mutation === "skip-new-view-validation") {
    return nv.viewChanges.length > 0 ? planNewView(nv.viewChanges, r.nullDigest).stable : r.stable;
  }
  if (nv.viewChanges.length < r.quorums.viewChange) return undefined;
  const senders = new Set<ReplicaId>();
  for (const vc of nv.viewChanges) {
    if (vc.view !== nv.view || senders.has(vc.replica)) return undefined;
    if (!r.validator.validViewChange(vc, r.prepareQuorum)) return undefined;
    senders.add(vc.replica);
  }
  const plan = planNewView(nv.viewChanges, r.nullDigest);
  if (nv.prePrepares.length !== plan.reproposals.length) return undefined;
  for (let i = 0; i < plan.reproposals.length; i++) {
    const expected = plan.reproposals[i]!;
    const pp = nv.prePrepares[i]!;
    if (pp.view !== nv.view || pp.seq !== expected.seq || pp.digest !== expected.digest) return undefined;
    // Digest only (batches.ts): its digest is one a valid prepared certificate fixed, or the null
    // request's; signed by the new primary (pp.view is nv.view, whose primary nv.replica is).
    if (pp.requests.length > 0 || !r.validator.validHeader(pp)) return undefined;
  }
  return plan.stable;
}

function enterNewView(r: ReplicaState, nv: NewView, stable: CheckpointProof): void {
  r.view = nv.view;
  r.normal = true;
  r.viewChangeDeadlineTick = undefined;
  r.ownViewChange = undefined;
  leaveView(r);
  r.newView = nv;
  for (const [replica, vc] of r.viewChanges) if (vc.view <= nv.view) r.viewChanges.delete(replica);
  r.persist({ kind: "view", view: nv.view, normal: true });
  r.persist({ kind: "new-view", message: nv });
  if (stable.seq > r.stable.seq) onStableProof(r, stable);
  installReproposals(r, nv, true);
  if (r.isPrimary) {
    for (const waiting of r.pending.values()) enqueue(r, waiting.request);
    proposeBatches(r);
  } else if (r.pending.size > 0) {
    for (const waiting of r.pending.values()) r.send(r.primary, { type: "request", request: waiting.request });
    startRequestTimer(r);
  }
}

/**
 * Takes the NEW-VIEW's pre-prepares into the log; backups prepare them (unless restoring). They
 * carry digests only: each gets its batch from the ones this replica holds, or is asked for
 * (batches.ts), starting with a replica whose VIEW-CHANGE showed it prepared.
 */
export function installReproposals(r: ReplicaState, nv: NewView, vote: boolean): void {
  for (const pp of nv.prePrepares) {
    if (r.nextSeq <= pp.seq) r.nextSeq = pp.seq + 1;
    const slot = r.slot(pp.seq);
    if (slot === undefined) continue;
    slot.prePrepare = pp;
    const held = heldBatch(r, pp.seq, pp.digest);
    if (held === undefined) {
      slot.batchHolder = holderOf(nv, pp, r.id);
      if (vote) askForBatch(r, slot);
    } else if (held.length > 0) {
      // Recorded unless a persisted prepared certificate of this seq already holds the batch.
      const certified = r.preparedCertificates.get(pp.seq)?.prePrepare;
      attachBatch(r, slot, held, vote && (certified?.digest !== pp.digest || certified.requests.length === 0));
    }
    if (!r.isPrimary && vote) sendPrepare(r, slot);
  }
  if (r.nextSeq <= r.stable.seq) r.nextSeq = r.stable.seq + 1;
}

/** A replica other than `self` whose VIEW-CHANGE in `nv` holds a prepared certificate for `pp`'s batch. */
function holderOf(nv: NewView, pp: PrePrepare, self: ReplicaId): ReplicaId | undefined {
  for (const vc of nv.viewChanges) {
    if (vc.replica === self) continue;
    if (vc.prepared.some((c) => c.prePrepare.seq === pp.seq && c.prePrepare.digest === pp.digest)) return vc.replica;
  }
  return undefined;
}
