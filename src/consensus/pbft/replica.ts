// The PBFT replica: one deterministic state machine with a single entry point, `step`.
//
// Normal case (seed 003, "PBFT: Normal-case protocol in view v"): the primary assigns a sequence
// number to a batch (PRE-PREPARE); backups that accept it PREPARE; a replica with the
// pre-prepare and 2f matching prepares is *prepared* and sends COMMIT; with 2f + 1 matching
// commits it is *committed-local* and the batch executes in sequence order. Checkpoints every K
// seqs garbage-collect the log and move the watermarks. A backup whose pending request does not
// execute in time starts a view change (seed 003, "A view-change in view v"; PBFT §4.4–4.5).
//
// Nothing here does I/O, reads a clock or draws randomness: inputs in, `Ready` out.

import { CertificateValidator } from "./certificates.js";
import { Slot } from "./log.js";
import { isRequest, isWellFormed, sign, type ShapeLimits } from "./messages.js";
import { planNewView } from "./new-view.js";
import { primaryOf, quorumsFor, type Quorums } from "./quorum.js";
import type {
  Checkpoint,
  CheckpointProof,
  ClientId,
  ClientRequest,
  Commit,
  CommitCertificate,
  CommittedBatch,
  Digest,
  Input,
  NewView,
  Outbound,
  PbftConfig,
  PbftCrypto,
  PbftOptions,
  PersistRecord,
  PrePrepare,
  Prepare,
  PreparedCertificate,
  Ready,
  ReplicaId,
  ReplicaMessage,
  ReplyCache,
  Status,
  ViewChange,
} from "./types.js";

export const GENESIS_CHECKPOINT: CheckpointProof = { type: "checkpoint-proof", seq: 0, stateDigest: "", checkpoints: [] };

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

interface PendingRequest {
  readonly request: ClientRequest;
  readonly sinceTick: number;
}

function emptyReady(): Ready {
  return { persist: [], send: [], execute: [], replies: [], fetchState: [] };
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`PBFT invariant violated: ${message}`);
}

export class PbftReplica {
  readonly id: ReplicaId;
  readonly config: PbftConfig;
  private readonly quorums: Quorums;
  private readonly prepareQuorum: number;
  private readonly commitQuorum: number;
  private readonly crypto: PbftCrypto;
  private readonly replies: ReplyCache;
  private readonly mutation: PbftOptions["mutation"];
  private readonly validator: CertificateValidator;
  private readonly limits: ShapeLimits;
  private readonly nullDigest: Digest;
  private ready: Ready = emptyReady();
  private readonly dropped: Record<string, number> = {};

  // Time, view and progress.
  private now = 0;
  private view = 0;
  private normal = true;
  private stable: CheckpointProof = GENESIS_CHECKPOINT;
  private lastExecuted = 0;
  /** Highest seq handed to execution; lastExecuted <= lastDelivered. */
  private lastDelivered = 0;

  // The log of the current view, and what survives view changes until the next stable checkpoint.
  private readonly log = new Map<number, Slot>();
  private readonly preparedCertificates = new Map<number, PreparedCertificate>();
  private readonly commitCertificates = new Map<number, CommitCertificate>();
  /** Committed batches not yet executed, by seq. */
  private readonly committed = new Map<number, CommittedBatch>();
  private readonly checkpointVotes = new Map<number, Map<ReplicaId, Checkpoint>>();
  /** A stable checkpoint above lastExecuted that execution of already-committed batches will reach. */
  private pendingStable: CheckpointProof | undefined;
  private fetching: CheckpointProof | undefined;

  // Client requests waiting to execute: one per client (PBFT clients have one outstanding request).
  private readonly pending = new Map<ClientId, PendingRequest>();
  private requestDeadlineTick: number | undefined;

  // Primary: next seq to assign, the proposal queue, and what it proposed in this view.
  private nextSeq = 1;
  private queue: ClientRequest[] = [];
  private readonly proposed = new Map<ClientId, number>();
  private batchOpenedTick: number | undefined;

  // View change.
  private viewChangeTimeoutTicks: number;
  private viewChangeDeadlineTick: number | undefined;
  private ownViewChange: ViewChange | undefined;
  /** The newest valid VIEW-CHANGE of each replica for a view at or above ours (at most n entries). */
  private readonly viewChanges = new Map<ReplicaId, ViewChange>();
  private newView: NewView | undefined;
  private nextStatusTick: number;

  constructor(options: PbftOptions, restored?: RestoredState) {
    this.id = options.id;
    this.config = options.config;
    this.quorums = quorumsFor(options.config.n);
    assert(options.id >= 0 && options.id < options.config.n, `replica id ${options.id} outside 0..${options.config.n - 1}`);
    assert(options.config.watermarkWindow % options.config.checkpointInterval === 0, "watermark window must be a multiple of the checkpoint interval");
    this.mutation = options.mutation;
    this.prepareQuorum = this.quorums.prepare - (this.mutation === "prepare-quorum-2f-minus-1" ? 1 : 0);
    this.commitQuorum = this.quorums.commit - (this.mutation === "commit-quorum-2f" ? 1 : 0);
    this.crypto = options.crypto;
    this.replies = options.replies;
    this.validator = new CertificateValidator(this.crypto, this.config.n, this.quorums, this.config.checkpointInterval, this.config.watermarkWindow);
    this.limits = { n: this.config.n, maxBatchSize: this.config.maxBatchSize, watermarkWindow: this.config.watermarkWindow };
    this.nullDigest = this.crypto.batchDigest([]);
    this.viewChangeTimeoutTicks = this.config.viewChangeTimeoutTicks;
    // Stagger status broadcasts so replicas do not all retransmit on the same tick.
    this.nextStatusTick = 1 + (this.id % this.config.statusIntervalTicks);
    if (restored !== undefined) this.restore(restored);
  }

  // -------------------------------------------------------------------------------------------
  // Public surface

  step(input: Input): void {
    switch (input.type) {
      case "message":
        this.onMessage(input.from, input.message);
        break;
      case "request":
        this.onRequest(input.request, false);
        break;
      case "tick":
        this.onTick();
        break;
      case "executed":
        this.onExecuted(input.seq, input.stateDigest);
        break;
      case "state-installed":
        this.onStateInstalled(input.seq, input.stateDigest);
        break;
    }
  }

  /** Everything produced since the last drain. Persist `persist` before sending `send`. */
  drain(): Ready {
    const ready = this.ready;
    this.ready = emptyReady();
    return ready;
  }

  status(): ReplicaStatus {
    return {
      id: this.id,
      view: this.view,
      normal: this.normal,
      primary: primaryOf(this.view, this.config.n),
      lastExecuted: this.lastExecuted,
      stableSeq: this.stable.seq,
      highWatermark: this.stable.seq + this.config.watermarkWindow,
      pendingRequests: this.pending.size,
      fetchingSeq: this.fetching?.seq,
    };
  }

  /** Inputs dropped, by reason ("forged-sender", "bad-signature", ...), plus protocol events. */
  counters(): Readonly<Record<string, number>> {
    return this.dropped;
  }

  // -------------------------------------------------------------------------------------------
  // Helpers

  private get isPrimary(): boolean {
    return primaryOf(this.view, this.config.n) === this.id;
  }

  private count(reason: string): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
  }

  private persist(record: PersistRecord): void {
    this.ready.persist.push(record);
  }

  private send(to: ReplicaId | "all", message: ReplicaMessage): void {
    const outbound: Outbound = { to, message };
    this.ready.send.push(outbound);
  }

  private inWindow(seq: number): boolean {
    return seq > this.stable.seq && seq <= this.stable.seq + this.config.watermarkWindow;
  }

  /** The slot for `seq` in the current view, created on demand inside the watermarks. */
  private slot(seq: number): Slot | undefined {
    let slot = this.log.get(seq);
    if (slot === undefined && this.inWindow(seq)) {
      slot = new Slot(seq, this.view);
      this.log.set(seq, slot);
    }
    return slot;
  }

  // -------------------------------------------------------------------------------------------
  // Dispatch

  private onMessage(from: ReplicaId, message: ReplicaMessage): void {
    if (!Number.isInteger(from) || from < 0 || from >= this.config.n) return this.count("unknown-sender");
    if (from === this.id) return this.count("from-self");
    if (!isWellFormed(message, this.limits)) return this.count("malformed");
    switch (message.type) {
      case "request":
        return this.onRequest(message.request, true);
      case "pre-prepare":
        return this.onPrePrepare(from, message);
      case "prepare":
        return this.onPrepare(from, message);
      case "commit":
        return this.onCommit(from, message);
      case "checkpoint":
        return this.onCheckpoint(from, message);
      case "checkpoint-proof":
        if (message.seq <= this.stable.seq) return this.count("stale");
        if (!this.validator.validCheckpointProof(message)) return this.count("invalid-checkpoint-proof");
        return this.onStableProof(message);
      case "commit-certificate":
        return this.onCommitCertificate(message);
      case "view-change":
        return this.onViewChange(from, message);
      case "new-view":
        return this.onNewView(message);
      case "status":
        return this.onStatus(from, message);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Client requests

  private onRequest(request: ClientRequest, relayed: boolean): void {
    if (!isRequest(request)) return this.count("malformed");
    const cached = this.replies.lastReply(request.client);
    if (cached !== undefined && request.timestamp <= cached.timestamp) {
      // Exactly-once: an executed request is answered from the reply cache, never re-executed.
      if (!relayed && request.timestamp === cached.timestamp) {
        this.ready.replies.push({ client: request.client, timestamp: request.timestamp, view: this.view, replica: this.id, result: cached.result });
      } else {
        this.count("stale-request");
      }
      return;
    }
    const existing = this.pending.get(request.client);
    if (existing !== undefined && existing.request.timestamp >= request.timestamp) return this.count("duplicate-request");
    if (existing === undefined && this.pending.size >= this.config.maxPendingRequests) return this.count("pending-full");
    if (!this.crypto.verifyRequest(request)) return this.count("bad-request-signature");
    this.pending.set(request.client, { request, sinceTick: this.now });
    if (!this.normal) return;
    if (this.isPrimary) {
      this.queue.push(request);
      this.proposeBatches();
    } else {
      this.send(primaryOf(this.view, this.config.n), { type: "request", request });
      this.startRequestTimer();
    }
  }

  private startRequestTimer(): void {
    if (this.requestDeadlineTick === undefined) this.requestDeadlineTick = this.now + this.viewChangeTimeoutTicks;
  }

  // -------------------------------------------------------------------------------------------
  // Normal case: primary

  /** Proposes full batches at once, and a partial one when the oldest queued request waited long enough. */
  private proposeBatches(): void {
    if (!this.normal || !this.isPrimary) return;
    while (this.queue.length > 0 && this.inWindow(this.nextSeq)) {
      if (this.queue.length < this.config.maxBatchSize) {
        this.batchOpenedTick ??= this.now;
        if (this.now - this.batchOpenedTick < this.config.batchDelayTicks) return;
      }
      const batch: ClientRequest[] = [];
      let taken = 0;
      while (taken < this.queue.length && batch.length < this.config.maxBatchSize) {
        const request = this.queue[taken++]!;
        const waiting = this.pending.get(request.client);
        const proposedTimestamp = this.proposed.get(request.client) ?? -1;
        if (waiting?.request === request && request.timestamp > proposedTimestamp) batch.push(request);
      }
      this.queue = this.queue.slice(taken);
      this.batchOpenedTick = this.queue.length > 0 ? this.now : undefined;
      if (batch.length > 0) this.propose(batch);
    }
  }

  private propose(requests: readonly ClientRequest[]): void {
    const seq = this.nextSeq++;
    const prePrepare = sign<PrePrepare>(this.crypto, {
      type: "pre-prepare",
      view: this.view,
      seq,
      digest: this.crypto.batchDigest(requests),
      requests,
      replica: this.id,
    });
    for (const request of requests) this.proposed.set(request.client, request.timestamp);
    const slot = this.slot(seq);
    assert(slot !== undefined && slot.prePrepare === undefined, `primary reused seq ${seq} in view ${this.view}`);
    slot.prePrepare = prePrepare;
    this.persist({ kind: "pre-prepare", message: prePrepare });
    this.send("all", prePrepare);
    this.checkPrepared(slot);
  }

  // -------------------------------------------------------------------------------------------
  // Normal case: votes

  private onPrePrepare(from: ReplicaId, pp: PrePrepare): void {
    if (from !== pp.replica) return this.count("forged-sender");
    if (!this.normal || pp.view !== this.view) return this.count(pp.view < this.view ? "stale" : "wrong-view");
    if (pp.replica !== primaryOf(this.view, this.config.n)) return this.count("not-primary");
    const slot = this.slot(pp.seq);
    if (slot === undefined) return this.count("outside-watermarks");
    if (slot.prePrepare !== undefined) return this.count(slot.prePrepare.digest === pp.digest ? "duplicate" : "conflicting-pre-prepare");
    if (!this.validator.validPrePrepare(pp)) return this.count("invalid-pre-prepare");
    slot.prePrepare = pp;
    this.persist({ kind: "pre-prepare", message: pp });
    this.sendPrepare(slot);
    this.checkPrepared(slot);
  }

  private sendPrepare(slot: Slot): void {
    const pp = slot.prePrepare!;
    const prepare = sign<Prepare>(this.crypto, { type: "prepare", view: pp.view, seq: pp.seq, digest: pp.digest, replica: this.id });
    slot.prepares.set(this.id, prepare);
    slot.sentPrepare = true;
    this.persist({ kind: "prepare", message: prepare });
    this.send("all", prepare);
  }

  private acceptVote(from: ReplicaId, vote: Prepare | Commit): Slot | undefined {
    if (from !== vote.replica) return this.count("forged-sender"), undefined;
    if (!this.normal || vote.view !== this.view) return this.count(vote.view < this.view ? "stale" : "wrong-view"), undefined;
    const slot = this.slot(vote.seq);
    if (slot === undefined) return this.count("outside-watermarks"), undefined;
    const votes = vote.type === "prepare" ? slot.prepares : slot.commits;
    if (votes.has(vote.replica)) return this.count("duplicate"), undefined;
    if (!this.validator.verifySignature(vote.replica, vote)) return this.count("bad-signature"), undefined;
    return slot;
  }

  private onPrepare(from: ReplicaId, prepare: Prepare): void {
    // The primary's pre-prepare is its vote; a prepare from it is a protocol violation (PBFT §4.2).
    if (prepare.replica === primaryOf(this.view, this.config.n)) return this.count("prepare-from-primary");
    const slot = this.acceptVote(from, prepare);
    if (slot === undefined) return;
    slot.prepares.set(prepare.replica, prepare);
    this.checkPrepared(slot);
  }

  private onCommit(from: ReplicaId, commit: Commit): void {
    const slot = this.acceptVote(from, commit);
    if (slot === undefined) return;
    slot.commits.set(commit.replica, commit);
    this.checkCommitted(slot);
  }

  /** Prepared = pre-prepare + 2f matching prepares from distinct backups (DESIGN.md, "Quorums"). */
  private checkPrepared(slot: Slot): void {
    if (slot.prepared || slot.prePrepare === undefined) return;
    if (slot.countMatching(slot.prepares) < this.prepareQuorum) return;
    slot.prepared = true;
    const certificate: PreparedCertificate = { prePrepare: slot.prePrepare, prepares: slot.matchingVotes(slot.prepares, this.quorums.prepare) };
    this.preparedCertificates.set(slot.seq, certificate);
    this.persist({ kind: "prepared", certificate });
    const pp = slot.prePrepare;
    const commit = sign<Commit>(this.crypto, { type: "commit", view: pp.view, seq: pp.seq, digest: pp.digest, replica: this.id });
    slot.commits.set(this.id, commit);
    slot.sentCommit = true;
    this.persist({ kind: "commit", message: commit });
    this.send("all", commit);
    this.checkCommitted(slot);
  }

  /** Committed-local = prepared + 2f + 1 matching commits (DESIGN.md, "Quorums"). */
  private checkCommitted(slot: Slot): void {
    if (slot.committed || !slot.prepared) return;
    if (slot.countMatching(slot.commits) < this.commitQuorum) return;
    slot.committed = true;
    const pp = slot.prePrepare!;
    this.commitCertificates.set(slot.seq, { type: "commit-certificate", prePrepare: pp, commits: slot.matchingVotes(slot.commits, this.quorums.commit) });
    this.markCommitted(pp);
  }

  /** A commit certificate proves 2f + 1 replicas committed: f + 1 correct ones prepared, so no other batch can commit at that seq. */
  private onCommitCertificate(certificate: CommitCertificate): void {
    const seq = certificate.prePrepare.seq;
    if (seq <= this.lastDelivered || this.committed.has(seq)) return this.count("stale");
    if (!this.inWindow(seq)) return this.count("outside-watermarks");
    if (!this.validator.validCommitCertificate(certificate)) return this.count("invalid-commit-certificate");
    this.commitCertificates.set(seq, certificate);
    this.markCommitted(certificate.prePrepare);
  }

  private markCommitted(pp: PrePrepare): void {
    if (pp.seq <= this.lastDelivered || this.committed.has(pp.seq)) return;
    this.committed.set(pp.seq, { seq: pp.seq, view: pp.view, digest: pp.digest, requests: pp.requests });
    this.deliver();
  }

  /** Hands committed batches to execution strictly in sequence order. */
  private deliver(): void {
    if (this.fetching !== undefined) return;
    for (;;) {
      const batch = this.committed.get(this.lastDelivered + 1);
      if (batch === undefined) return;
      this.lastDelivered++;
      this.ready.execute.push(batch);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Execution and checkpoints

  private onExecuted(seq: number, stateDigest: Digest | undefined): void {
    assert(seq === this.lastExecuted + 1 && seq <= this.lastDelivered, `executed seq ${seq} out of order (last executed ${this.lastExecuted}, delivered ${this.lastDelivered})`);
    this.lastExecuted = seq;
    const batch = this.committed.get(seq);
    this.committed.delete(seq);
    if (batch !== undefined) {
      for (const request of batch.requests) this.forgetExecuted(request.client, request.timestamp);
    }
    // Progress: the view-change back-off starts again from its base (PBFT §4.5.2).
    this.viewChangeTimeoutTicks = this.config.viewChangeTimeoutTicks;
    this.restartRequestTimer();
    if (seq % this.config.checkpointInterval === 0) {
      assert(stateDigest !== undefined, `executed checkpoint seq ${seq} without a state digest`);
      this.makeCheckpoint(seq, stateDigest);
    }
    const waiting = this.pendingStable;
    if (waiting !== undefined && seq >= waiting.seq) {
      this.pendingStable = undefined;
      this.onStableProof(waiting);
    }
  }

  private forgetExecuted(client: ClientId, timestamp: number): void {
    const waiting = this.pending.get(client);
    if (waiting !== undefined && waiting.request.timestamp <= timestamp) this.pending.delete(client);
    const proposed = this.proposed.get(client);
    if (proposed !== undefined && proposed <= timestamp) this.proposed.delete(client);
  }

  private restartRequestTimer(): void {
    this.requestDeadlineTick = undefined;
    if (this.normal && !this.isPrimary && this.pending.size > 0) this.startRequestTimer();
  }

  private makeCheckpoint(seq: number, stateDigest: Digest): void {
    const checkpoint = sign<Checkpoint>(this.crypto, { type: "checkpoint", seq, stateDigest, replica: this.id });
    this.persist({ kind: "checkpoint", message: checkpoint });
    this.send("all", checkpoint);
    this.recordCheckpoint(checkpoint);
  }

  private onCheckpoint(from: ReplicaId, checkpoint: Checkpoint): void {
    if (from !== checkpoint.replica) return this.count("forged-sender");
    if (checkpoint.seq % this.config.checkpointInterval !== 0 || checkpoint.seq === 0) return this.count("malformed");
    if (checkpoint.seq <= this.stable.seq) return this.count("stale");
    // Checkpoints far ahead are not stored (memory stays bounded); a lagging replica learns of
    // them as a self-contained proof through STATUS.
    if (!this.inWindow(checkpoint.seq)) return this.count("outside-watermarks");
    if (this.checkpointVotes.get(checkpoint.seq)?.has(checkpoint.replica) === true) return this.count("duplicate");
    if (!this.validator.verifySignature(checkpoint.replica, checkpoint)) return this.count("bad-signature");
    this.recordCheckpoint(checkpoint);
  }

  private recordCheckpoint(checkpoint: Checkpoint): void {
    let votes = this.checkpointVotes.get(checkpoint.seq);
    if (votes === undefined) {
      votes = new Map();
      this.checkpointVotes.set(checkpoint.seq, votes);
    }
    votes.set(checkpoint.replica, checkpoint);
    const matching: Checkpoint[] = [];
    for (const vote of votes.values()) if (vote.stateDigest === checkpoint.stateDigest) matching.push(vote);
    if (matching.length < this.quorums.checkpoint) return;
    this.onStableProof({ type: "checkpoint-proof", seq: checkpoint.seq, stateDigest: checkpoint.stateDigest, checkpoints: matching.slice(0, this.quorums.checkpoint) });
  }

  /** A valid proof that the checkpoint at proof.seq is stable (2f + 1 matching). */
  private onStableProof(proof: CheckpointProof): void {
    if (proof.seq <= this.stable.seq) return;
    if (proof.seq <= this.lastExecuted) {
      const own = this.checkpointVotes.get(proof.seq)?.get(this.id);
      if (own !== undefined && own.stateDigest !== proof.stateDigest) {
        // 2f + 1 replicas, f + 1 of them correct, agree on another state: ours diverged.
        this.count("state-divergence");
        return this.requestStateTransfer(proof);
      }
      return this.advanceStable(proof);
    }
    for (let seq = this.lastExecuted + 1; seq <= proof.seq; seq++) {
      if (!this.committed.has(seq)) return this.requestStateTransfer(proof);
    }
    // Everything up to the checkpoint is committed here: execution will reach it.
    if (this.pendingStable === undefined || this.pendingStable.seq < proof.seq) this.pendingStable = proof;
  }

  private advanceStable(proof: CheckpointProof): void {
    this.stable = proof;
    this.persist({ kind: "stable-checkpoint", proof });
    this.collectGarbage(proof.seq);
    if (this.pendingStable !== undefined && this.pendingStable.seq <= proof.seq) this.pendingStable = undefined;
    if (this.nextSeq <= proof.seq) this.nextSeq = proof.seq + 1;
    this.proposeBatches();
  }

  /** Discards the log at and below a stable checkpoint (PBFT §4.3). */
  private collectGarbage(seq: number): void {
    for (const map of [this.log, this.preparedCertificates, this.commitCertificates, this.checkpointVotes] as Map<number, unknown>[]) {
      for (const key of map.keys()) if (key <= seq) map.delete(key);
    }
    for (const key of this.committed.keys()) if (key <= seq && key <= this.lastExecuted) this.committed.delete(key);
  }

  /**
   * We are behind a stable checkpoint whose batches we do not have: fetch the state from peers
   * (the runtime checks it against `proof.stateDigest`). The checkpoint becomes our low watermark
   * at once, so the log moves on while the state travels.
   */
  private requestStateTransfer(proof: CheckpointProof): void {
    if (this.fetching !== undefined && this.fetching.seq >= proof.seq) return;
    this.count("state-transfers");
    this.fetching = proof;
    this.stable = proof;
    this.persist({ kind: "stable-checkpoint", proof });
    this.collectGarbage(proof.seq);
    for (const key of this.committed.keys()) if (key <= proof.seq) this.committed.delete(key);
    if (this.lastDelivered < proof.seq) this.lastDelivered = proof.seq;
    if (this.nextSeq <= proof.seq) this.nextSeq = proof.seq + 1;
    this.ready.fetchState.push({ proof });
  }

  private onStateInstalled(seq: number, stateDigest: Digest): void {
    const fetching = this.fetching;
    assert(fetching !== undefined && fetching.seq === seq && fetching.stateDigest === stateDigest, `installed state at ${seq} was not the one requested`);
    this.fetching = undefined;
    this.lastExecuted = seq;
    this.lastDelivered = Math.max(this.lastDelivered, seq);
    for (const [client, waiting] of this.pending) {
      const cached = this.replies.lastReply(client);
      if (cached !== undefined && cached.timestamp >= waiting.request.timestamp) this.pending.delete(client);
    }
    this.restartRequestTimer();
    this.deliver();
    this.proposeBatches();
  }

  // -------------------------------------------------------------------------------------------
  // Time, status and retransmission

  private onTick(): void {
    this.now++;
    if (this.normal) {
      if (this.isPrimary) this.proposeBatches();
      else if (this.requestDeadlineTick !== undefined && this.now >= this.requestDeadlineTick) this.startViewChange(this.view + 1);
    } else if (this.viewChangeDeadlineTick !== undefined && this.now >= this.viewChangeDeadlineTick) {
      // The new primary did not deliver a NEW-VIEW in time: try the next one, waiting longer.
      this.startViewChange(this.view + 1);
    }
    if (this.now >= this.nextStatusTick) {
      this.nextStatusTick = this.now + this.config.statusIntervalTicks;
      this.retransmit();
    }
  }

  /**
   * Messages get lost; PBFT recovers by retransmission (Castro's thesis §5.2). Periodically a
   * replica announces where it is, re-sends its own unfinished votes, and re-forwards requests.
   */
  private retransmit(): void {
    const status: Status = { type: "status", view: this.view, normal: this.normal, stableSeq: this.stable.seq, lastExecuted: this.lastExecuted, replica: this.id };
    this.send("all", status);
    if (this.fetching !== undefined) this.ready.fetchState.push({ proof: this.fetching });
    if (!this.normal) {
      if (this.ownViewChange !== undefined) this.send("all", this.ownViewChange);
      return;
    }
    for (const slot of this.log.values()) {
      if (slot.committed || slot.prePrepare === undefined) continue;
      if (this.isPrimary) this.send("all", slot.prePrepare);
      const prepare = slot.prepares.get(this.id);
      if (prepare !== undefined) this.send("all", prepare);
      const commit = slot.commits.get(this.id);
      if (commit !== undefined) this.send("all", commit);
    }
    for (const [seq, votes] of this.checkpointVotes) {
      const own = votes.get(this.id);
      if (own !== undefined && seq > this.stable.seq) this.send("all", own);
    }
    if (!this.isPrimary) {
      const primary = primaryOf(this.view, this.config.n);
      for (const waiting of this.pending.values()) {
        if (this.now - waiting.sinceTick >= this.config.statusIntervalTicks) this.send(primary, { type: "request", request: waiting.request });
      }
    }
  }

  /** Answers a peer's STATUS with what it is missing and we can prove. */
  private onStatus(from: ReplicaId, status: Status): void {
    if (from !== status.replica) return this.count("forged-sender");
    if (this.normal && this.newView !== undefined && (status.view < this.view || (status.view === this.view && !status.normal))) {
      this.send(from, this.newView);
    }
    if (status.stableSeq < this.stable.seq) this.send(from, this.stable);
    if (status.lastExecuted < this.lastExecuted) {
      const last = Math.min(this.lastExecuted, Math.max(status.lastExecuted, this.stable.seq) + this.config.watermarkWindow);
      for (let seq = Math.max(status.lastExecuted, this.stable.seq) + 1; seq <= last; seq++) {
        const certificate = this.commitCertificates.get(seq);
        if (certificate !== undefined) this.send(from, certificate);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // View change (PBFT §4.4; seed 003, "A view-change in view v")

  private startViewChange(view: number): void {
    assert(view > this.view || (view === this.view && !this.normal), `view change to ${view} from ${this.view}`);
    this.count("view-changes");
    this.view = view;
    this.normal = false;
    this.requestDeadlineTick = undefined;
    this.viewChangeDeadlineTick = undefined;
    this.leaveView();
    this.persist({ kind: "view", view, normal: false });
    this.sendViewChange();
    for (const [replica, vc] of this.viewChanges) if (vc.view < view) this.viewChanges.delete(replica);
    this.startViewChangeTimer();
    this.tryNewView();
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
  private startViewChangeTimer(): void {
    if (this.normal || this.viewChangeDeadlineTick !== undefined) return;
    let count = 0;
    for (const vc of this.viewChanges.values()) if (vc.view >= this.view) count++;
    if (count < this.quorums.viewChange) return;
    this.viewChangeDeadlineTick = this.now + this.viewChangeTimeoutTicks;
    this.viewChangeTimeoutTicks = Math.min(this.viewChangeTimeoutTicks * 2, this.config.viewChangeTimeoutMaxTicks);
  }

  /** Forgets the state of the view being left; certificates and committed batches survive. */
  private leaveView(): void {
    this.log.clear();
    this.proposed.clear();
    this.queue = [];
    this.batchOpenedTick = undefined;
    this.newView = undefined;
  }

  private sendViewChange(): void {
    const prepared = this.mutation === "forget-prepared-certificates" ? [] : [...this.preparedCertificates.values()].filter((c) => c.prePrepare.seq > this.stable.seq);
    const vc = sign<ViewChange>(this.crypto, { type: "view-change", view: this.view, stable: this.stable, prepared, replica: this.id });
    this.ownViewChange = vc;
    this.viewChanges.set(this.id, vc);
    this.persist({ kind: "view-change", message: vc });
    this.send("all", vc);
  }

  private onViewChange(from: ReplicaId, vc: ViewChange): void {
    if (from !== vc.replica) return this.count("forged-sender");
    if (vc.view < this.view || (vc.view === this.view && this.normal)) {
      // The sender missed the NEW-VIEW of a view we are in: hand it over.
      if (vc.view === this.view && this.newView !== undefined) this.send(from, this.newView);
      return this.count("stale");
    }
    const known = this.viewChanges.get(vc.replica);
    if (known !== undefined && known.view >= vc.view) return this.count("duplicate");
    if (!this.validator.validViewChange(vc, this.prepareQuorum)) return this.count("invalid-view-change");
    this.viewChanges.set(vc.replica, vc);
    if (vc.stable.seq > this.stable.seq) this.onStableProof(vc.stable);
    // Join rule (PBFT §4.5.2): f + 1 replicas asking for higher views include a correct one.
    const higher: number[] = [];
    for (const m of this.viewChanges.values()) if (m.view > this.view) higher.push(m.view);
    if (higher.length >= this.quorums.weak) {
      higher.sort((a, b) => b - a);
      return this.startViewChange(higher[this.quorums.weak - 1]!);
    }
    if (!this.normal) {
      this.startViewChangeTimer();
      if (vc.view === this.view) this.tryNewView();
    }
  }

  /** The new primary: with 2f + 1 VIEW-CHANGEs for its view, announce the NEW-VIEW. */
  private tryNewView(): void {
    if (this.normal || !this.isPrimary) return;
    const chosen = [...this.viewChanges.values()].filter((vc) => vc.view === this.view).sort((a, b) => a.replica - b.replica);
    if (chosen.length < this.quorums.viewChange) return;
    chosen.length = this.quorums.viewChange;
    const plan = planNewView(chosen, this.nullDigest);
    const prePrepares = plan.reproposals.map((r) =>
      sign<PrePrepare>(this.crypto, { type: "pre-prepare", view: this.view, seq: r.seq, digest: r.digest, requests: r.requests, replica: this.id }),
    );
    const newView = sign<NewView>(this.crypto, { type: "new-view", view: this.view, viewChanges: chosen, prePrepares, replica: this.id });
    this.enterNewView(newView, plan.stable);
    this.send("all", newView);
  }

  private onNewView(nv: NewView): void {
    if (nv.view < this.view || (nv.view === this.view && this.normal)) return this.count("stale");
    if (nv.replica !== primaryOf(nv.view, this.config.n)) return this.count("not-primary");
    const stable = this.validNewView(nv);
    if (stable === undefined) return this.count("invalid-new-view");
    this.enterNewView(nv, stable);
  }

  /** Recomputes the NEW-VIEW from its VIEW-CHANGEs; returns its stable checkpoint when it matches. */
  private validNewView(nv: NewView): CheckpointProof | undefined {
    if (!this.validator.verifySignature(nv.replica, nv)) return undefined;
    if (this.mutation === "skip-new-view-validation") {
      return nv.viewChanges.length > 0 ? planNewView(nv.viewChanges, this.nullDigest).stable : this.stable;
    }
    if (nv.viewChanges.length < this.quorums.viewChange) return undefined;
    const senders = new Set<ReplicaId>();
    for (const vc of nv.viewChanges) {
      if (vc.view !== nv.view || senders.has(vc.replica)) return undefined;
      if (!this.validator.validViewChange(vc, this.prepareQuorum)) return undefined;
      senders.add(vc.replica);
    }
    const plan = planNewView(nv.viewChanges, this.nullDigest);
    if (nv.prePrepares.length !== plan.reproposals.length) return undefined;
    for (let i = 0; i < plan.reproposals.length; i++) {
      const expected = plan.reproposals[i]!;
      const pp = nv.prePrepares[i]!;
      if (pp.view !== nv.view || pp.seq !== expected.seq || pp.digest !== expected.digest) return undefined;
      if (!this.validator.validPrePrepare(pp)) return undefined;
    }
    return plan.stable;
  }

  private enterNewView(nv: NewView, stable: CheckpointProof): void {
    this.view = nv.view;
    this.normal = true;
    this.viewChangeDeadlineTick = undefined;
    this.ownViewChange = undefined;
    this.leaveView();
    this.newView = nv;
    for (const [replica, vc] of this.viewChanges) if (vc.view <= nv.view) this.viewChanges.delete(replica);
    this.persist({ kind: "view", view: nv.view, normal: true });
    this.persist({ kind: "new-view", message: nv });
    if (stable.seq > this.stable.seq) this.onStableProof(stable);
    this.installReproposals(nv, true);
    if (this.isPrimary) {
      for (const waiting of this.pending.values()) this.queue.push(waiting.request);
      this.proposeBatches();
    } else if (this.pending.size > 0) {
      const primary = primaryOf(this.view, this.config.n);
      for (const waiting of this.pending.values()) this.send(primary, { type: "request", request: waiting.request });
      this.startRequestTimer();
    }
  }

  /** Takes the NEW-VIEW's pre-prepares into the log; backups prepare them (unless restoring). */
  private installReproposals(nv: NewView, vote: boolean): void {
    for (const pp of nv.prePrepares) {
      if (this.nextSeq <= pp.seq) this.nextSeq = pp.seq + 1;
      const slot = this.slot(pp.seq);
      if (slot === undefined) continue;
      slot.prePrepare = pp;
      if (this.isPrimary) for (const request of pp.requests) this.proposed.set(request.client, request.timestamp);
      else if (vote) this.sendPrepare(slot);
    }
    if (this.nextSeq <= this.stable.seq) this.nextSeq = this.stable.seq + 1;
  }

  // -------------------------------------------------------------------------------------------
  // Restart

  private restore(restored: RestoredState): void {
    this.lastExecuted = restored.lastExecuted;
    this.lastDelivered = restored.lastExecuted;
    for (const record of restored.records) this.applyRecord(record);
    if (!this.normal) {
      // We were changing views. Re-announce; if the crash came between persisting the view and
      // the VIEW-CHANGE, this is the first announcement.
      if (this.ownViewChange?.view !== this.view) this.sendViewChange();
      this.startViewChangeTimer();
    }
    if (this.stable.seq > this.lastExecuted) {
      // We had accepted a stable checkpoint whose state had not arrived yet: fetch it again.
      this.fetching = this.stable;
      this.lastDelivered = this.stable.seq;
      this.ready.fetchState.push({ proof: this.stable });
    } else if (restored.stateDigest !== undefined && this.lastExecuted > this.stable.seq && this.lastExecuted % this.config.checkpointInterval === 0) {
      if (this.checkpointVotes.get(this.lastExecuted)?.has(this.id) !== true) this.makeCheckpoint(this.lastExecuted, restored.stateDigest);
    }
  }

  /** Replays one persisted record into the state it recorded (see `compactRecords` for the order). */
  private applyRecord(record: PersistRecord): void {
    switch (record.kind) {
      case "view":
        if (record.view !== this.view) this.leaveView();
        this.view = record.view;
        this.normal = record.normal;
        return;
      case "stable-checkpoint":
        if (record.proof.seq > this.stable.seq) {
          this.stable = record.proof;
          this.collectGarbage(record.proof.seq);
          if (this.nextSeq <= record.proof.seq) this.nextSeq = record.proof.seq + 1;
        }
        return;
      case "view-change":
        if (record.message.view === this.view) {
          this.ownViewChange = record.message;
          this.viewChanges.set(this.id, record.message);
        }
        return;
      case "new-view":
        if (record.message.view === this.view) {
          this.newView = record.message;
          this.installReproposals(record.message, false);
        }
        return;
      case "pre-prepare": {
        const pp = record.message;
        if (pp.view !== this.view) return;
        const slot = this.slot(pp.seq);
        if (slot !== undefined) slot.prePrepare = pp;
        if (pp.replica === this.id && this.nextSeq <= pp.seq) this.nextSeq = pp.seq + 1;
        return;
      }
      case "prepare":
      case "commit": {
        const vote = record.message;
        const slot = vote.view === this.view ? this.slot(vote.seq) : undefined;
        if (slot === undefined) return;
        if (vote.type === "prepare") {
          slot.prepares.set(this.id, vote);
          slot.sentPrepare = true;
        } else {
          slot.commits.set(this.id, vote);
          slot.sentCommit = true;
          slot.prepared = true;
        }
        return;
      }
      case "prepared": {
        const pp = record.certificate.prePrepare;
        if (pp.seq <= this.stable.seq) return;
        const known = this.preparedCertificates.get(pp.seq);
        if (known === undefined || known.prePrepare.view <= pp.view) this.preparedCertificates.set(pp.seq, record.certificate);
        return;
      }
      case "checkpoint": {
        const checkpoint = record.message;
        if (checkpoint.seq <= this.stable.seq) return;
        let votes = this.checkpointVotes.get(checkpoint.seq);
        if (votes === undefined) {
          votes = new Map();
          this.checkpointVotes.set(checkpoint.seq, votes);
        }
        votes.set(this.id, checkpoint);
        return;
      }
    }
  }
}
