// The state of one PBFT replica, and the small helpers every part of the protocol uses. The
// protocol itself lives in functions over this state, one file per concern (normal-case,
// checkpoints, view-change, retransmit, restore), in the manner of etcd raft's step functions;
// `PbftReplica` (replica.ts) is the public face and the only way in.

import { CertificateValidator } from "./certificates.js";
import { Slot } from "./log.js";
import type { ShapeLimits } from "./messages.js";
import { primaryOf, quorumsFor, type Quorums } from "./quorum.js";
import type {
  Checkpoint,
  CheckpointProof,
  ClientId,
  ClientRequest,
  CommitCertificate,
  CommittedBatch,
  CoreMutation,
  Digest,
  NewView,
  PbftConfig,
  PbftCrypto,
  PbftOptions,
  PersistRecord,
  PreparedCertificate,
  Ready,
  ReplicaId,
  ReplicaMessage,
  ReplyCache,
  ViewChange,
} from "./types.js";

export const GENESIS_CHECKPOINT: CheckpointProof = { type: "checkpoint-proof", seq: 0, stateDigest: "", checkpoints: [] };

export interface PendingRequest {
  readonly request: ClientRequest;
  readonly sinceTick: number;
}

export function emptyReady(): Ready {
  return { persist: [], send: [], execute: [], replies: [], fetchState: [] };
}

/** An invariant that only a bug can break: crash rather than continue incorrectly (TigerBeetle). */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`PBFT invariant violated: ${message}`);
}

export class ReplicaState {
  readonly id: ReplicaId;
  readonly config: PbftConfig;
  readonly quorums: Quorums;
  /** 2f, or less under a test mutation. */
  readonly prepareQuorum: number;
  /** 2f + 1, or less under a test mutation. */
  readonly commitQuorum: number;
  readonly crypto: PbftCrypto;
  readonly replies: ReplyCache;
  readonly mutation: CoreMutation | undefined;
  readonly validator: CertificateValidator;
  readonly limits: ShapeLimits;
  readonly nullDigest: Digest;
  ready: Ready = emptyReady();
  readonly dropped: Record<string, number> = {};

  // Time, view and progress.
  now = 0;
  view = 0;
  /** False while a view change to `view` is under way. */
  normal = true;
  stable: CheckpointProof = GENESIS_CHECKPOINT;
  lastExecuted = 0;
  /** Highest seq handed to execution; lastExecuted <= lastDelivered. */
  lastDelivered = 0;

  // The log of the current view, and what survives view changes until the next stable checkpoint.
  readonly log = new Map<number, Slot>();
  readonly preparedCertificates = new Map<number, PreparedCertificate>();
  readonly commitCertificates = new Map<number, CommitCertificate>();
  /** Batches held above the stable checkpoint, by seq and digest (batches.ts; a few per seq). */
  readonly batches = new Map<number, Map<Digest, readonly ClientRequest[]>>();
  /** Batch answers given to each peer in its current status interval (at most n entries). */
  readonly batchAnswers = new Map<ReplicaId, { sinceTick: number; count: number }>();
  /** Committed batches not yet executed, by seq. */
  readonly committed = new Map<number, CommittedBatch>();
  readonly checkpointVotes = new Map<number, Map<ReplicaId, Checkpoint>>();
  /** A stable checkpoint above lastExecuted that execution of already-committed batches will reach. */
  pendingStable: CheckpointProof | undefined;
  /** When to fetch `pendingStable`'s state if execution has not reached it by then. */
  pendingStableDeadlineTick: number | undefined;
  /** The stable checkpoint whose state is being fetched from peers. */
  fetching: CheckpointProof | undefined;

  // Client requests waiting to execute: one per client (PBFT clients have one outstanding request).
  readonly pending = new Map<ClientId, PendingRequest>();
  requestDeadlineTick: number | undefined;
  /**
   * Backup: signed requests received, in arrival order, each with the tick at which it is relayed
   * to the primary if it is still pending then (normal-case.ts `relayDue`). Entries leave when
   * due, and superseded ones are swept out past twice the pending bound (`queueRelay`).
   */
  relayQueue: Array<{ readonly request: ClientRequest; readonly dueTick: number }> = [];
  relayQueueHead = 0;

  // Primary: next seq to assign, the proposal queue, and what it proposed in this view.
  nextSeq = 1;
  queue: ClientRequest[] = [];
  /** Index of the first unconsumed entry of `queue`. */
  queueHead = 0;
  readonly proposed = new Map<ClientId, number>();
  batchOpenedTick: number | undefined;

  // View change.
  viewChangeTimeoutTicks: number;
  viewChangeDeadlineTick: number | undefined;
  ownViewChange: ViewChange | undefined;
  /** The newest valid VIEW-CHANGE of each replica for a view at or above ours (at most n entries). */
  readonly viewChanges = new Map<ReplicaId, ViewChange>();
  /** The NEW-VIEW that started the current view (handed to peers that missed it). */
  newView: NewView | undefined;
  nextStatusTick: number;
  /** When each peer's STATUS was last answered (at most n entries). */
  readonly statusAnsweredTick = new Map<ReplicaId, number>();

  constructor(options: PbftOptions) {
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
  }

  get primary(): ReplicaId {
    return primaryOf(this.view, this.config.n);
  }

  get isPrimary(): boolean {
    return this.primary === this.id;
  }

  count(reason: string): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
  }

  persist(record: PersistRecord): void {
    this.ready.persist.push(record);
  }

  send(to: ReplicaId | "all", message: ReplicaMessage): void {
    this.ready.send.push({ to, message });
  }

  inWindow(seq: number): boolean {
    return seq > this.stable.seq && seq <= this.stable.seq + this.config.watermarkWindow;
  }

  /** The slot for `seq` in the current view, created on demand inside the watermarks. */
  slot(seq: number): Slot | undefined {
    let slot = this.log.get(seq);
    if (slot === undefined && this.inWindow(seq)) {
      slot = new Slot(seq, this.view);
      this.log.set(seq, slot);
    }
    return slot;
  }
}
