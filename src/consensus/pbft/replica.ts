// The PBFT replica: one deterministic state machine with a single entry point, `step`.
//
// Normal case (seed 003, "PBFT: Normal-case protocol in view v"): the primary assigns a sequence
// number to a batch (PRE-PREPARE); backups that accept it PREPARE; a replica with the
// pre-prepare and 2f matching prepares is *prepared* and sends COMMIT; with 2f + 1 matching
// commits it is *committed-local* and the batch executes in sequence order. Checkpoints every K
// seqs garbage-collect the log and move the watermarks. A backup whose pending request does not
// execute in time starts a view change (seed 003, "A view-change in view v"; PBFT §4.4–4.5).
//
// Nothing here does I/O, reads a clock or draws randomness: inputs in, `Ready` out. The runtime
// persists `Ready.persist` before it sends `Ready.send`.

import { onBatch, onBatchRequest } from "./batches.js";
import { onCheckpoint, onExecuted, onStableProof, onStateInstalled } from "./checkpoints.js";
import { isWellFormed } from "./messages.js";
import { onCommit, onCommitCertificate, onPrePrepare, onPrepare, onRequest } from "./normal-case.js";
import { restore } from "./restore.js";
import { onStatus, onTick } from "./retransmit.js";
import { emptyReady, ReplicaState } from "./state.js";
import type { Digest, Input, PbftOptions, PersistRecord, Ready, ReplicaId, ReplicaMessage } from "./types.js";
import { onNewView, onViewChange } from "./view-change.js";

export { GENESIS_CHECKPOINT } from "./state.js";

export interface ReplicaStatus {
  readonly id: ReplicaId;
  readonly view: number;
  readonly normal: boolean;
  readonly primary: ReplicaId;
  readonly lastExecuted: number;
  readonly stableSeq: number;
  readonly highWatermark: number;
  readonly pendingRequests: number;
  readonly fetchingSeq: number | undefined;
}

/** What the runtime hands back after a restart: the persisted records and the executed state. */
export interface RestoredState {
  readonly records: readonly PersistRecord[];
  readonly lastExecuted: number;
  /** The state digest at `lastExecuted` (lets the replica re-issue its checkpoint there). */
  readonly stateDigest?: Digest;
}

export class PbftReplica {
  private readonly state: ReplicaState;

  constructor(options: PbftOptions, restored?: RestoredState) {
    this.state = new ReplicaState(options);
    if (restored !== undefined) restore(this.state, restored);
  }

  get id(): ReplicaId {
    return this.state.id;
  }

  step(input: Input): void {
    const r = this.state;
    switch (input.type) {
      case "message":
        return onMessage(r, input.from, input.message);
      case "request":
        return onRequest(r, input.request, false);
      case "tick":
        return onTick(r);
      case "executed":
        return onExecuted(r, input.seq, input.stateDigest);
      case "state-installed":
        return onStateInstalled(r, input.seq, input.stateDigest);
    }
  }

  /** Everything produced since the last drain. Persist `persist` before sending `send`. */
  drain(): Ready {
    const ready = this.state.ready;
    this.state.ready = emptyReady();
    return ready;
  }

  status(): ReplicaStatus {
    const r = this.state;
    return {
      id: r.id,
      view: r.view,
      normal: r.normal,
      primary: r.primary,
      lastExecuted: r.lastExecuted,
      stableSeq: r.stable.seq,
      highWatermark: r.stable.seq + r.config.watermarkWindow,
      pendingRequests: r.pending.size,
      fetchingSeq: r.fetching?.seq,
    };
  }

  /** Inputs dropped, by reason ("forged-sender", "bad-signature", ...), plus protocol events. */
  counters(): Readonly<Record<string, number>> {
    return this.state.dropped;
  }
}

/** Peers are untrusted: anything malformed is dropped and counted before any field is used. */
function onMessage(r: ReplicaState, from: ReplicaId, message: ReplicaMessage): void {
  if (!Number.isInteger(from) || from < 0 || from >= r.config.n) return r.count("unknown-sender");
  if (from === r.id) return r.count("from-self");
  if (!isWellFormed(message, r.limits)) return r.count("malformed");
  switch (message.type) {
    case "request":
      return onRequest(r, message.request, true);
    case "pre-prepare":
      return onPrePrepare(r, from, message);
    case "prepare":
      return onPrepare(r, from, message);
    case "commit":
      return onCommit(r, from, message);
    case "checkpoint":
      return onCheckpoint(r, from, message);
    case "checkpoint-proof":
      if (message.seq <= r.stable.seq) return r.count("stale");
      if (!r.validator.validCheckpointProof(message)) return r.count("invalid-checkpoint-proof");
      return onStableProof(r, message);
    case "commit-certificate":
      return onCommitCertificate(r, message);
    case "view-change":
      return onViewChange(r, from, message);
    case "new-view":
      return onNewView(r, message);
    case "status":
      return onStatus(r, from, message);
    case "batch-request":
      return onBatchRequest(r, from, message);
    case "batch":
      return onBatch(r, from, message);
  }
}
