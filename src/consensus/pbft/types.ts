// Types of the PBFT core: identities, messages, inputs, outputs and configuration.
//
// The core is a pure state machine (DESIGN.md, "The consensus core contract", after etcd's raft
// library): the runtime feeds it `Input`s through `step` and acts on the `Ready` it drains. The
// protocol is PBFT as in seed 003 ("PBFT: Normal-case protocol", "A view-change in view v") and
// Castro & Liskov's OSDI '99 paper, in its signature variant: messages that must convince a third
// party (pre-prepares and prepares inside prepared certificates, commits inside commit
// certificates, checkpoints, view changes, new views) carry signatures that the core checks
// through the injected `PbftCrypto`.

/** A replica's index in the cluster, 0 .. n - 1. The primary of view v is v mod n. */
export type ReplicaId = number;
/** A client's identity (its public key, in the real system). */
export type ClientId = string;
/** A collision-resistant digest, as a string (hex in the real system). */
export type Digest = string;
/** A signature, as a string (hex in the real system). */
export type Signature = string;

/**
 * A client's signed request. Consensus never looks inside `operation`; it orders requests and
 * hands them to execution. Timestamps increase strictly per client (PBFT §4.1), which is what
 * makes execution exactly-once.
 */
export interface ClientRequest {
  readonly client: ClientId;
  readonly timestamp: number;
  readonly operation: Uint8Array;
  readonly signature: Signature;
}

/** The primary's proposal: `requests` (a batch; empty = the null request) at (view, seq). */
export interface PrePrepare {
  readonly type: "pre-prepare";
  readonly view: number;
  readonly seq: number;
  readonly digest: Digest;
  readonly requests: readonly ClientRequest[];
  readonly replica: ReplicaId;
  readonly signature: Signature;
}

/** A backup's vote that it accepted the pre-prepare for (view, seq, digest). */
export interface Prepare {
  readonly type: "prepare";
  readonly view: number;
  readonly seq: number;
  readonly digest: Digest;
  readonly replica: ReplicaId;
  readonly signature: Signature;
}

/** A replica's vote that (view, seq, digest) is prepared at it. */
export interface Commit {
  readonly type: "commit";
  readonly view: number;
  readonly seq: number;
  readonly digest: Digest;
  readonly replica: ReplicaId;
  readonly signature: Signature;
}

/** A replica's statement that its state after executing `seq` has digest `stateDigest`. */
export interface Checkpoint {
  readonly type: "checkpoint";
  readonly seq: number;
  readonly stateDigest: Digest;
  readonly replica: ReplicaId;
  readonly signature: Signature;
}

/**
 * Proof that (view, seq, digest) prepared: the pre-prepare and 2f prepares from distinct backups.
 * Inside a VIEW-CHANGE the pre-prepare carries no requests: the signatures cover only (view, seq,
 * digest), so the certificate proves the same without the batch.
 */
export interface PreparedCertificate {
  readonly prePrepare: PrePrepare;
  readonly prepares: readonly Prepare[];
}

/** Proof that (view, seq, digest) committed: the pre-prepare and 2f + 1 matching commits. */
export interface CommitCertificate {
  readonly type: "commit-certificate";
  readonly prePrepare: PrePrepare;
  readonly commits: readonly Commit[];
}

/** Proof that a checkpoint is stable: 2f + 1 matching checkpoint messages from distinct replicas. */
export interface CheckpointProof {
  readonly type: "checkpoint-proof";
  readonly seq: number;
  readonly stateDigest: Digest;
  readonly checkpoints: readonly Checkpoint[];
}

/**
 * VIEW-CHANGE to `view`: the sender's stable checkpoint with its proof (empty at the genesis
 * checkpoint, seq 0) and a prepared certificate for every seq above it that prepared at the
 * sender, each from the highest view in which it prepared.
 */
export interface ViewChange {
  readonly type: "view-change";
  readonly view: number;
  readonly stable: CheckpointProof;
  readonly prepared: readonly PreparedCertificate[];
  readonly replica: ReplicaId;
  readonly signature: Signature;
}

/**
 * NEW-VIEW for `view`: 2f + 1 VIEW-CHANGEs and the pre-prepares the new primary derived from them,
 * which carry no requests (each replica fills them from the batches it holds, or asks its peers).
 */
export interface NewView {
  readonly type: "new-view";
  readonly view: number;
  readonly viewChanges: readonly ViewChange[];
  readonly prePrepares: readonly PrePrepare[];
  readonly replica: ReplicaId;
  readonly signature: Signature;
}

/**
 * Periodic status (Castro's thesis, §5.2 retransmission): peers answer with what the sender is
 * missing. Authenticated by the channel only; it proves nothing to third parties.
 */
export interface Status {
  readonly type: "status";
  readonly view: number;
  readonly normal: boolean;
  readonly stableSeq: number;
  readonly lastExecuted: number;
  readonly replica: ReplicaId;
}

/**
 * Ask a peer for the requests of the batch with `digest` at `seq`. VIEW-CHANGE and NEW-VIEW carry
 * batches by digest only (a batch of a thousand requests is hundreds of kilobytes, and a view
 * change carries a certificate for every prepared seq above the stable checkpoint), so a replica
 * that must execute a re-proposed batch it never received asks for it. Seed 003 ("Further dealing
 * with failures": the view-change cost includes all previous transactions) names the cost this
 * avoids; its view-change theorem needs a VIEW-CHANGE only to identify each prepared batch, which
 * the digest does. Authenticated by the channel only.
 */
export interface BatchRequest {
  readonly type: "batch-request";
  readonly seq: number;
  readonly digest: Digest;
  readonly replica: ReplicaId;
}

/**
 * The requests of the batch with `digest` at `seq`, in answer to a BatchRequest. Unsigned: the
 * receiver takes it only for a slot that awaits exactly this digest, and recomputes the digest.
 */
export interface BatchBody {
  readonly type: "batch";
  readonly seq: number;
  readonly digest: Digest;
  readonly requests: readonly ClientRequest[];
  readonly replica: ReplicaId;
}

/** A client request relayed by a backup to the primary (its client signature authenticates it). */
export interface ForwardedRequest {
  readonly type: "request";
  readonly request: ClientRequest;
}

/** Everything one replica sends another. */
export type ReplicaMessage =
  | PrePrepare
  | Prepare
  | Commit
  | Checkpoint
  | CheckpointProof
  | CommitCertificate
  | ViewChange
  | NewView
  | Status
  | ForwardedRequest
  | BatchRequest
  | BatchBody;

/** A replica's answer to a client: the result of executing (client, timestamp). */
export interface Reply {
  readonly client: ClientId;
  readonly timestamp: number;
  readonly view: number;
  readonly replica: ReplicaId;
  readonly result: Uint8Array;
}

/**
 * What the core reads of the execution layer: the last reply cached for a client, and (when the
 * execution layer keeps it) the signature of the request it answered, so that a different
 * request signed with the same timestamp is not answered with another request's result.
 */
export interface ReplyCache {
  lastReply(client: ClientId): { readonly timestamp: number; readonly result: Uint8Array; readonly signature?: Signature } | undefined;
}

/** Signatures and digests, injected so the core stays pure (the simulator uses cheap stand-ins). */
export interface PbftCrypto {
  /**
   * Digest of a batch of requests; the empty batch is the null request. Equal digests must mean
   * equal requests in every field (client, timestamp, operation, signature): the core remembers a
   * validated batch by its digest.
   */
  batchDigest(requests: readonly ClientRequest[]): Digest;
  /** Signs `payload` as this replica. Must be deterministic. */
  sign(payload: string): Signature;
  /** True when `signature` is `replica`'s signature over `payload`. */
  verify(replica: ReplicaId, payload: string, signature: Signature): boolean;
  /**
   * True when the request is its client's: it carries the client's valid signature, or (a crypto
   * with MAC-authenticated client sessions, seed 003's authenticators) this replica received it
   * over a session the client authenticated. `vouched` says the request sits in a batch that
   * 2f + 1 replicas accepted (a prepared or commit certificate, or a NEW-VIEW re-proposal whose
   * digest such a certificate fixed), so at least f + 1 correct replicas authenticated it; a
   * request only its receivers could authenticate is then accepted on that ground.
   */
  verifyRequest(request: ClientRequest, vouched?: boolean): boolean;
}

// ---------------------------------------------------------------------------------------------
// Inputs

export type Input =
  /** A message from replica `from`; the runtime has authenticated the channel. */
  | { readonly type: "message"; readonly from: ReplicaId; readonly message: ReplicaMessage }
  /** A request straight from a client (new, or a retransmission). */
  | { readonly type: "request"; readonly request: ClientRequest }
  /** One unit of time. All timers of the core count ticks. */
  | { readonly type: "tick" }
  /**
   * The runtime executed the batch at `seq` (in order). `stateDigest` is required at checkpoint
   * sequence numbers (multiples of the checkpoint interval) and ignored elsewhere.
   */
  | { readonly type: "executed"; readonly seq: number; readonly stateDigest?: Digest }
  /** The runtime installed a fetched snapshot of the state at `seq` (requested by `fetchState`). */
  | { readonly type: "state-installed"; readonly seq: number; readonly stateDigest: Digest };

// ---------------------------------------------------------------------------------------------
// Outputs

/**
 * Records the runtime must make durable before it sends any message of the same `Ready`
 * (DESIGN.md's ordering rule). Replaying them through `PbftReplica.restore` rebuilds every vote.
 * A `stable-checkpoint` record makes every record of a lower or equal seq obsolete; see
 * `compactRecords`.
 */
export type PersistRecord =
  | { readonly kind: "view"; readonly view: number; readonly normal: boolean }
  | { readonly kind: "pre-prepare"; readonly message: PrePrepare }
  | { readonly kind: "prepare"; readonly message: Prepare }
  | { readonly kind: "commit"; readonly message: Commit }
  | { readonly kind: "prepared"; readonly certificate: PreparedCertificate }
  | { readonly kind: "checkpoint"; readonly message: Checkpoint }
  | { readonly kind: "stable-checkpoint"; readonly proof: CheckpointProof }
  | { readonly kind: "view-change"; readonly message: ViewChange }
  | { readonly kind: "new-view"; readonly message: NewView };

/** A message to one replica, or to every other replica. */
export interface Outbound {
  readonly to: ReplicaId | "all";
  readonly message: ReplicaMessage;
}

/** A committed batch, handed to execution strictly in sequence order. */
export interface CommittedBatch {
  readonly seq: number;
  readonly view: number;
  readonly digest: Digest;
  readonly requests: readonly ClientRequest[];
}

/** Ask the runtime to fetch and install the state at a stable checkpoint from peers. */
export interface FetchState {
  readonly proof: CheckpointProof;
}

/** What one or more steps produced; drained with `PbftReplica.drain`. */
export interface Ready {
  readonly persist: PersistRecord[];
  readonly send: Outbound[];
  readonly execute: CommittedBatch[];
  readonly replies: Reply[];
  readonly fetchState: FetchState[];
}

// ---------------------------------------------------------------------------------------------
// Configuration

export interface PbftConfig {
  /** Number of replicas; must be 3f + 1. */
  readonly n: number;
  /** Sequence numbers between checkpoints (K). */
  readonly checkpointInterval: number;
  /** Watermark window L: seqs in (h, h + L] are accepted; a multiple of K. */
  readonly watermarkWindow: number;
  /** Most requests in one batch. */
  readonly maxBatchSize: number;
  /** Ticks the primary waits to fill a batch before proposing a partial one. */
  readonly batchDelayTicks: number;
  /** Ticks a backup waits for a pending request to execute before it starts a view change. */
  readonly viewChangeTimeoutTicks: number;
  /** Cap on the doubled view-change timeout. */
  readonly viewChangeTimeoutMaxTicks: number;
  /** Ticks between STATUS broadcasts and retransmissions of unfinished work. */
  readonly statusIntervalTicks: number;
  /** Most distinct clients with a request waiting at this replica; more are dropped and counted. */
  readonly maxPendingRequests: number;
}

/**
 * Deliberate bugs, for proving that the simulator's checkers catch a broken protocol. Never set
 * outside tests and `bulwark sim --mutation`.
 */
export type CoreMutation =
  | "commit-quorum-2f"
  | "prepare-quorum-2f-minus-1"
  | "skip-new-view-validation"
  | "forget-prepared-certificates"
  | "skip-batch-digest-check";

export interface PbftOptions {
  readonly id: ReplicaId;
  readonly config: PbftConfig;
  readonly crypto: PbftCrypto;
  readonly replies: ReplyCache;
  readonly mutation?: CoreMutation;
}
