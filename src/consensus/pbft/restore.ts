// Restart from persisted records: rebuilds every vote the replica sent, so it can never send a
// conflicting one (DESIGN.md's ordering rule; ResilientDB's issue #220 is what happens without).

import { rememberBatch } from "./batches.js";
import { collectGarbage, makeCheckpoint } from "./checkpoints.js";
import type { RestoredState } from "./replica.js";
import { ReplicaState } from "./state.js";
import type { PersistRecord } from "./types.js";
import { installReproposals, leaveView, sendViewChange, startViewChangeTimer } from "./view-change.js";

export function restore(r: ReplicaState, restored: RestoredState): void {
  r.lastExecuted = restored.lastExecuted;
  r.lastDelivered = restored.lastExecuted;
  for (const record of restored.records) applyRecord(r, record);
  if (!r.normal) {
    // We were changing views. Re-announce; if the crash came between persisting the view and
    // the VIEW-CHANGE, this is the first announcement.
    if (r.ownViewChange?.view !== r.view) sendViewChange(r);
    startViewChangeTimer(r);
  }
  if (r.stable.seq > r.lastExecuted) {
    // We had accepted a stable checkpoint whose state had not arrived yet: fetch it again.
    r.fetching = r.stable;
    r.lastDelivered = r.stable.seq;
    r.ready.fetchState.push({ proof: r.stable });
  } else if (restored.stateDigest !== undefined && r.lastExecuted > r.stable.seq && r.lastExecuted % r.config.checkpointInterval === 0) {
    if (r.checkpointVotes.get(r.lastExecuted)?.has(r.id) !== true) makeCheckpoint(r, r.lastExecuted, restored.stateDigest);
  }
}

/** Replays one persisted record into the state it recorded (see `compactRecords` for the order). */
function applyRecord(r: ReplicaState, record: PersistRecord): void {
  switch (record.kind) {
    case "view":
      if (record.view !== r.view) leaveView(r);
      r.view = record.view;
      r.normal = record.normal;
      return;
    case "stable-checkpoint":
      if (record.proof.seq > r.stable.seq) {
        r.stable = record.proof;
        collectGarbage(r, record.proof.seq);
        if (r.nextSeq <= record.proof.seq) r.nextSeq = record.proof.seq + 1;
      }
      return;
    case "view-change":
      if (record.message.view === r.view) {
        r.ownViewChange = record.message;
        r.viewChanges.set(r.id, record.message);
      }
      return;
    case "new-view":
      if (record.message.view === r.view) {
        r.newView = record.message;
        installReproposals(r, record.message, false);
      }
      return;
    case "pre-prepare": {
      const pp = record.message;
      rememberBatch(r, pp);
      if (pp.view !== r.view) return;
      const slot = r.slot(pp.seq);
      if (slot !== undefined) slot.prePrepare = pp;
      if (pp.replica === r.id && r.nextSeq <= pp.seq) r.nextSeq = pp.seq + 1;
      return;
    }
    case "prepare":
    case "commit": {
      const vote = record.message;
      const slot = vote.view === r.view ? r.slot(vote.seq) : undefined;
      if (slot === undefined) return;
      if (vote.type === "prepare") {
        slot.prepares.set(r.id, vote);
        slot.sentPrepare = true;
      } else {
        slot.commits.set(r.id, vote);
        slot.sentCommit = true;
        slot.prepared = true;
      }
      return;
    }
    case "prepared": {
      const pp = record.certificate.prePrepare;
      if (pp.seq <= r.stable.seq) return;
      rememberBatch(r, pp);
      const known = r.preparedCertificates.get(pp.seq);
      if (known === undefined || known.prePrepare.view <= pp.view) r.preparedCertificates.set(pp.seq, record.certificate);
      return;
    }
    case "checkpoint": {
      const checkpoint = record.message;
      if (checkpoint.seq <= r.stable.seq) return;
      let votes = r.checkpointVotes.get(checkpoint.seq);
      if (votes === undefined) {
        votes = new Map();
        r.checkpointVotes.set(checkpoint.seq, votes);
      }
      votes.set(r.id, checkpoint);
      return;
    }
  }
}
