// Execution results, checkpoints and state transfer (PBFT §4.3; seed 003, "Further dealing with
// failures"): every K seqs a replica signs its state digest; 2f + 1 matching make the checkpoint
// stable, the log below it is discarded and the watermarks move. A replica that finds itself
// below a stable checkpoint it cannot reach by execution fetches the state from peers.

import { forgetBatches } from "./batches.js";
import { sign } from "./messages.js";
import { deliver, proposeBatches, restartRequestTimer } from "./normal-case.js";
import { assert, ReplicaState } from "./state.js";
import type { Checkpoint, CheckpointProof, ClientId, Digest, ReplicaId } from "./types.js";

export function onExecuted(r: ReplicaState, seq: number, stateDigest: Digest | undefined): void {
  assert(seq === r.lastExecuted + 1 && seq <= r.lastDelivered, `executed seq ${seq} out of order (last executed ${r.lastExecuted}, delivered ${r.lastDelivered})`);
  r.lastExecuted = seq;
  const batch = r.committed.get(seq);
  r.committed.delete(seq);
  if (batch !== undefined) {
    for (const request of batch.requests) forgetExecuted(r, request.client, request.timestamp);
  }
  // Progress: the view-change back-off starts again from its base (PBFT §4.5.2).
  r.viewChangeTimeoutTicks = r.config.viewChangeTimeoutTicks;
  restartRequestTimer(r);
  if (seq % r.config.checkpointInterval === 0) {
    assert(stateDigest !== undefined, `executed checkpoint seq ${seq} without a state digest`);
    makeCheckpoint(r, seq, stateDigest);
  }
  const waiting = r.pendingStable;
  if (waiting !== undefined && seq >= waiting.seq) {
    r.pendingStable = undefined;
    r.pendingStableDeadlineTick = undefined;
    onStableProof(r, waiting);
  }
}

function forgetExecuted(r: ReplicaState, client: ClientId, timestamp: number): void {
  const waiting = r.pending.get(client);
  if (waiting !== undefined && waiting.request.timestamp <= timestamp) r.pending.delete(client);
  const proposed = r.proposed.get(client);
  if (proposed !== undefined && proposed <= timestamp) r.proposed.delete(client);
}

export function makeCheckpoint(r: ReplicaState, seq: number, stateDigest: Digest): void {
  const checkpoint = sign<Checkpoint>(r.crypto, { type: "checkpoint", seq, stateDigest, replica: r.id });
  r.persist({ kind: "checkpoint", message: checkpoint });
  r.send("all", checkpoint);
  recordCheckpoint(r, checkpoint);
}

export function onCheckpoint(r: ReplicaState, from: ReplicaId, checkpoint: Checkpoint): void {
  if (from !== checkpoint.replica) return r.count("forged-sender");
  if (checkpoint.seq % r.config.checkpointInterval !== 0 || checkpoint.seq === 0) return r.count("malformed");
  if (checkpoint.seq <= r.stable.seq) return r.count("stale");
  // Checkpoints far ahead are not stored (memory stays bounded); a lagging replica learns of
  // them as a self-contained proof through STATUS.
  if (!r.inWindow(checkpoint.seq)) return r.count("outside-watermarks");
  if (r.checkpointVotes.get(checkpoint.seq)?.has(checkpoint.replica) === true) return r.count("duplicate");
  if (!r.validator.verifySignature(checkpoint.replica, checkpoint)) return r.count("bad-signature");
  recordCheckpoint(r, checkpoint);
}

function recordCheckpoint(r: ReplicaState, checkpoint: Checkpoint): void {
  let votes = r.checkpointVotes.get(checkpoint.seq);
  if (votes === undefined) {
    votes = new Map();
    r.checkpointVotes.set(checkpoint.seq, votes);
  }
  votes.set(checkpoint.replica, checkpoint);
  const matching: Checkpoint[] = [];
  for (const vote of votes.values()) if (vote.stateDigest === checkpoint.stateDigest) matching.push(vote);
  if (matching.length < r.quorums.checkpoint) return;
  onStableProof(r, { type: "checkpoint-proof", seq: checkpoint.seq, stateDigest: checkpoint.stateDigest, checkpoints: matching.slice(0, r.quorums.checkpoint) });
}

/** A valid proof that the checkpoint at proof.seq is stable (2f + 1 matching). */
export function onStableProof(r: ReplicaState, proof: CheckpointProof): void {
  if (proof.seq <= r.stable.seq) return;
  if (proof.seq <= r.lastExecuted) {
    const own = r.checkpointVotes.get(proof.seq)?.get(r.id);
    if (own !== undefined && own.stateDigest !== proof.stateDigest) {
      // 2f + 1 replicas, f + 1 of them correct, agree on another state: ours diverged.
      r.count("state-divergence");
      return requestStateTransfer(r, proof);
    }
    return advanceStable(r, proof);
  }
  // More than a window behind, no amount of retransmission fits in our log: fetch the state.
  if (proof.seq - r.lastExecuted > r.config.watermarkWindow) return requestStateTransfer(r, proof);
  // Otherwise wait: the batches we miss usually arrive within a STATUS round as commit
  // certificates, and a state transfer (a whole snapshot, in the real system) is the costly way.
  if (r.pendingStable === undefined || r.pendingStable.seq < proof.seq) r.pendingStable = proof;
  r.pendingStableDeadlineTick ??= r.now + 2 * r.config.statusIntervalTicks;
}

/** Execution has not reached a stable checkpoint in time: fetch its state unless every batch up to it is here. */
export function onPendingStableDeadline(r: ReplicaState): void {
  const proof = r.pendingStable;
  r.pendingStableDeadlineTick = undefined;
  if (proof === undefined || proof.seq <= r.lastExecuted) return;
  for (let seq = r.lastExecuted + 1; seq <= proof.seq; seq++) {
    if (!r.committed.has(seq)) return requestStateTransfer(r, proof);
  }
  // All committed; execution is merely behind. Look again later.
  r.pendingStableDeadlineTick = r.now + 2 * r.config.statusIntervalTicks;
}

function advanceStable(r: ReplicaState, proof: CheckpointProof): void {
  r.stable = proof;
  r.persist({ kind: "stable-checkpoint", proof });
  collectGarbage(r, proof.seq);
  if (r.pendingStable !== undefined && r.pendingStable.seq <= proof.seq) {
    r.pendingStable = undefined;
    r.pendingStableDeadlineTick = undefined;
  }
  if (r.nextSeq <= proof.seq) r.nextSeq = proof.seq + 1;
  proposeBatches(r);
}

/** Discards the log at and below a stable checkpoint (PBFT §4.3). */
export function collectGarbage(r: ReplicaState, seq: number): void {
  for (const map of [r.log, r.preparedCertificates, r.commitCertificates, r.checkpointVotes] as Map<number, unknown>[]) {
    for (const key of map.keys()) if (key <= seq) map.delete(key);
  }
  for (const key of r.committed.keys()) if (key <= seq && key <= r.lastExecuted) r.committed.delete(key);
  forgetBatches(r, seq);
}

/**
 * We are behind a stable checkpoint whose batches we do not have: fetch the state from peers
 * (the runtime checks it against `proof.stateDigest`). The checkpoint becomes our low watermark
 * at once, so the log moves on while the state travels.
 */
function requestStateTransfer(r: ReplicaState, proof: CheckpointProof): void {
  if (r.fetching !== undefined && r.fetching.seq >= proof.seq) return;
  r.count("state-transfers");
  r.fetching = proof;
  r.stable = proof;
  r.persist({ kind: "stable-checkpoint", proof });
  collectGarbage(r, proof.seq);
  for (const key of r.committed.keys()) if (key <= proof.seq) r.committed.delete(key);
  if (r.lastDelivered < proof.seq) r.lastDelivered = proof.seq;
  if (r.nextSeq <= proof.seq) r.nextSeq = proof.seq + 1;
  r.ready.fetchState.push({ proof });
}

export function onStateInstalled(r: ReplicaState, seq: number, stateDigest: Digest): void {
  const fetching = r.fetching;
  assert(fetching !== undefined && fetching.seq === seq && fetching.stateDigest === stateDigest, `installed state at ${seq} was not the one requested`);
  r.fetching = undefined;
  r.lastExecuted = seq;
  r.lastDelivered = Math.max(r.lastDelivered, seq);
  for (const [client, waiting] of r.pending) {
    const cached = r.replies.lastReply(client);
    if (cached !== undefined && cached.timestamp >= waiting.request.timestamp) r.pending.delete(client);
  }
  restartRequestTimer(r);
  deliver(r);
  proposeBatches(r);
}
