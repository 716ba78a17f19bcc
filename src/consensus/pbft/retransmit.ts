// Time, STATUS and retransmission. Messages get lost; PBFT recovers by retransmission (Castro's
// thesis §5.2): periodically a replica announces where it is, re-sends its own unfinished votes
// and re-forwards requests, and peers answer a STATUS with what the sender is missing.

import { askForMissingBatches } from "./batches.js";
import { onPendingStableDeadline } from "./checkpoints.js";
import { proposeBatches, relayDue } from "./normal-case.js";
import { ReplicaState } from "./state.js";
import type { ReplicaId, Status } from "./types.js";
import { startViewChange } from "./view-change.js";

export function onTick(r: ReplicaState): void {
  r.now++;
  if (r.normal) {
    if (r.isPrimary) proposeBatches(r);
    else {
      relayDue(r);
      // A replica fetching a stable checkpoint's state cannot execute until it is installed, so
      // its pending requests waiting says nothing about the primary: 2f + 1 replicas signed that
      // checkpoint, so the cluster is moving. Suspecting then would send this replica alone into
      // the next view, out of the cluster's quorums until the others change view too. Installing
      // the state drops what it executed and starts the timer afresh (onStateInstalled).
      if (r.requestDeadlineTick !== undefined && r.now >= r.requestDeadlineTick && r.fetching === undefined) startViewChange(r, r.view + 1);
    }
  } else if (r.viewChangeDeadlineTick !== undefined && r.now >= r.viewChangeDeadlineTick) {
    // The new primary did not deliver a NEW-VIEW in time: try the next one, waiting longer.
    startViewChange(r, r.view + 1);
  }
  if (r.pendingStableDeadlineTick !== undefined && r.now >= r.pendingStableDeadlineTick) onPendingStableDeadline(r);
  if (r.now >= r.nextStatusTick) {
    r.nextStatusTick = r.now + r.config.statusIntervalTicks;
    retransmit(r);
  }
}

/**
 * Messages get lost; PBFT recovers by retransmission (Castro's thesis §5.2). Periodically a
 * replica announces where it is, re-sends its own unfinished votes, and re-forwards requests.
 */
export function retransmit(r: ReplicaState): void {
  const status: Status = { type: "status", view: r.view, normal: r.normal, stableSeq: r.stable.seq, lastExecuted: r.lastExecuted, replica: r.id };
  r.send("all", status);
  if (r.fetching !== undefined) r.ready.fetchState.push({ proof: r.fetching });
  if (!r.normal) {
    if (r.ownViewChange !== undefined) r.send("all", r.ownViewChange);
    return;
  }
  askForMissingBatches(r);
  for (const slot of r.log.values()) {
    if (slot.committed || slot.prePrepare === undefined) continue;
    if (r.isPrimary) r.send("all", slot.prePrepare);
    const prepare = slot.prepares.get(r.id);
    if (prepare !== undefined) r.send("all", prepare);
    const commit = slot.commits.get(r.id);
    if (commit !== undefined) r.send("all", commit);
  }
  for (const [seq, votes] of r.checkpointVotes) {
    const own = votes.get(r.id);
    if (own !== undefined && seq > r.stable.seq) r.send("all", own);
  }
  if (!r.isPrimary) {
    for (const waiting of r.pending.values()) {
      // Not a session request (no signature): the primary could not authenticate a relayed copy.
      if (r.now - waiting.sinceTick >= r.config.statusIntervalTicks && waiting.request.signature !== "") r.send(r.primary, { type: "request", request: waiting.request });
    }
  }
}

/** Answers a peer's STATUS with what it is missing and we can prove. */
export function onStatus(r: ReplicaState, from: ReplicaId, status: Status): void {
  if (from !== status.replica) return r.count("forged-sender");
  // An answer can be a window's worth of certificates; a correct peer asks once per status
  // interval, so a flood from a faulty one is answered no more often than that.
  const answeredTick = r.statusAnsweredTick.get(from);
  if (answeredTick !== undefined && r.now - answeredTick < Math.max(1, r.config.statusIntervalTicks >> 1)) return r.count("status-rate-limited");
  r.statusAnsweredTick.set(from, r.now);
  if (r.normal && r.newView !== undefined && (status.view < r.view || (status.view === r.view && !status.normal))) {
    r.send(from, r.newView);
  }
  if (status.stableSeq < r.stable.seq) r.send(from, r.stable);
  if (status.lastExecuted < r.lastExecuted) {
    const last = Math.min(r.lastExecuted, Math.max(status.lastExecuted, r.stable.seq) + r.config.watermarkWindow);
    for (let seq = Math.max(status.lastExecuted, r.stable.seq) + 1; seq <= last; seq++) {
      const certificate = r.commitCertificates.get(seq);
      if (certificate !== undefined) r.send(from, certificate);
    }
  }
}
