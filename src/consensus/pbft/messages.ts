// Canonical signing payloads and shape checks for replica messages.
//
// Every signed message has exactly one canonical payload string; the signature covers it, and
// the signature of a message that contains other signed messages (VIEW-CHANGE, NEW-VIEW) binds
// their identities, while their own signatures prove their contents.

import type {
  Checkpoint,
  CheckpointProof,
  ClientRequest,
  Commit,
  CommitCertificate,
  NewView,
  PbftCrypto,
  PrePrepare,
  Prepare,
  PreparedCertificate,
  ReplicaMessage,
  ViewChange,
} from "./types.js";

export type Signed = PrePrepare | Prepare | Commit | Checkpoint | ViewChange | NewView;
/** A signed message before signing (distributes over the union). */
export type Unsigned<T extends Signed> = T extends Signed ? Omit<T, "signature"> : never;

export function signingPayload(message: Unsigned<Signed>): string {
  switch (message.type) {
    case "pre-prepare":
      return `pre-prepare|${message.view}|${message.seq}|${message.digest}|${message.replica}`;
    case "prepare":
      return `prepare|${message.view}|${message.seq}|${message.digest}|${message.replica}`;
    case "commit":
      return `commit|${message.view}|${message.seq}|${message.digest}|${message.replica}`;
    case "checkpoint":
      return `checkpoint|${message.seq}|${message.stateDigest}|${message.replica}`;
    case "view-change": {
      const prepared = message.prepared.map((c) => `${c.prePrepare.seq}:${c.prePrepare.view}:${c.prePrepare.digest}`);
      return `view-change|${message.view}|${message.stable.seq}|${message.stable.stateDigest}|${message.replica}|${prepared.join(",")}`;
    }
    case "new-view": {
      const viewChanges = message.viewChanges.map((vc) => `${vc.replica}:${vc.signature}`);
      const prePrepares = message.prePrepares.map((pp) => `${pp.seq}:${pp.digest}`);
      return `new-view|${message.view}|${message.replica}|${viewChanges.join(",")}|${prePrepares.join(",")}`;
    }
  }
}

/** Signs `message` with the replica's key through the injected crypto. */
export function sign<T extends Signed>(crypto: PbftCrypto, message: Unsigned<T>): T {
  return { ...message, signature: crypto.sign(signingPayload(message)) } as unknown as T;
}

// ---------------------------------------------------------------------------------------------
// Shape checks. Peers are untrusted: a message must have the right types and bounded sizes before
// any field is used. These checks are cheap; signatures are checked after them.

export interface ShapeLimits {
  readonly n: number;
  readonly maxBatchSize: number;
  readonly watermarkWindow: number;
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function isString(value: unknown, maxLength = 1024): value is string {
  return typeof value === "string" && value.length <= maxLength;
}

function isReplica(value: unknown, limits: ShapeLimits): boolean {
  return isCount(value) && value < limits.n;
}

function isArray(value: unknown, maxLength: number): value is unknown[] {
  return Array.isArray(value) && value.length <= maxLength;
}

/** Only ASCII: no character above U+007F. */
const ASCII = /^[^\u0080-\uffff]*$/;

/**
 * A request is the one input that reaches the core from outside the replica wire (clients talk
 * to the runtime directly), so its strings are held to what the wire codec carries: ASCII. A
 * request the core accepted must always be encodable when the primary proposes it.
 */
export function isRequest(value: unknown): value is ClientRequest {
  if (typeof value !== "object" || value === null) return false;
  const r = value as ClientRequest;
  return (
    isString(r.client) && ASCII.test(r.client) && isCount(r.timestamp) && r.operation instanceof Uint8Array && isString(r.signature) && ASCII.test(r.signature)
  );
}

function isVote(m: Prepare | Commit | PrePrepare, limits: ShapeLimits): boolean {
  return isCount(m.view) && isCount(m.seq) && isString(m.digest) && isReplica(m.replica, limits) && isString(m.signature);
}

function isPrePrepare(value: unknown, limits: ShapeLimits): value is PrePrepare {
  if (typeof value !== "object" || value === null) return false;
  const m = value as PrePrepare;
  return m.type === "pre-prepare" && isVote(m, limits) && isArray(m.requests, limits.maxBatchSize) && m.requests.every(isRequest);
}

function isPrepareOrCommit(value: unknown, type: "prepare" | "commit", limits: ShapeLimits): boolean {
  if (typeof value !== "object" || value === null) return false;
  const m = value as Prepare;
  return m.type === type && isVote(m, limits);
}

function isCheckpoint(value: unknown, limits: ShapeLimits): value is Checkpoint {
  if (typeof value !== "object" || value === null) return false;
  const m = value as Checkpoint;
  return m.type === "checkpoint" && isCount(m.seq) && isString(m.stateDigest) && isReplica(m.replica, limits) && isString(m.signature);
}

function isCheckpointProof(value: unknown, limits: ShapeLimits): value is CheckpointProof {
  if (typeof value !== "object" || value === null) return false;
  const m = value as CheckpointProof;
  return (
    m.type === "checkpoint-proof" &&
    isCount(m.seq) &&
    isString(m.stateDigest) &&
    isArray(m.checkpoints, limits.n) &&
    m.checkpoints.every((c) => isCheckpoint(c, limits))
  );
}

function isPreparedCertificate(value: unknown, limits: ShapeLimits): value is PreparedCertificate {
  if (typeof value !== "object" || value === null) return false;
  const c = value as PreparedCertificate;
  return isPrePrepare(c.prePrepare, limits) && isArray(c.prepares, limits.n) && c.prepares.every((p) => isPrepareOrCommit(p, "prepare", limits));
}

function isCommitCertificate(value: unknown, limits: ShapeLimits): value is CommitCertificate {
  const c = value as CommitCertificate;
  return isPrePrepare(c.prePrepare, limits) && isArray(c.commits, limits.n) && c.commits.every((p) => isPrepareOrCommit(p, "commit", limits));
}

function isViewChange(value: unknown, limits: ShapeLimits): value is ViewChange {
  if (typeof value !== "object" || value === null) return false;
  const m = value as ViewChange;
  return (
    m.type === "view-change" &&
    isCount(m.view) &&
    isReplica(m.replica, limits) &&
    isString(m.signature) &&
    isCheckpointProof(m.stable, limits) &&
    isArray(m.prepared, limits.watermarkWindow) &&
    m.prepared.every((c) => isPreparedCertificate(c, limits))
  );
}

function isNewView(value: unknown, limits: ShapeLimits): value is NewView {
  const m = value as NewView;
  return (
    isCount(m.view) &&
    isReplica(m.replica, limits) &&
    isString(m.signature, 4096) &&
    isArray(m.viewChanges, limits.n) &&
    m.viewChanges.every((vc) => isViewChange(vc, limits)) &&
    isArray(m.prePrepares, limits.watermarkWindow) &&
    m.prePrepares.every((pp) => isPrePrepare(pp, limits))
  );
}

/** True when `value` is a replica message of the right shape and within the size limits. */
export function isWellFormed(value: unknown, limits: ShapeLimits): value is ReplicaMessage {
  if (typeof value !== "object" || value === null) return false;
  const m = value as ReplicaMessage;
  switch (m.type) {
    case "pre-prepare":
      return isPrePrepare(m, limits);
    case "prepare":
    case "commit":
      return isPrepareOrCommit(m, m.type, limits);
    case "checkpoint":
      return isCheckpoint(m, limits);
    case "checkpoint-proof":
      return isCheckpointProof(m, limits);
    case "commit-certificate":
      return isCommitCertificate(m, limits);
    case "view-change":
      return isViewChange(m, limits);
    case "new-view":
      return isNewView(m, limits);
    case "status":
      return isCount(m.view) && typeof m.normal === "boolean" && isCount(m.stableSeq) && isCount(m.lastExecuted) && isReplica(m.replica, limits);
    case "request":
      return isRequest(m.request);
    case "batch-request":
      return isCount(m.seq) && isString(m.digest) && isReplica(m.replica, limits);
    case "batch":
      return isCount(m.seq) && isString(m.digest) && isReplica(m.replica, limits) && isArray(m.requests, limits.maxBatchSize) && m.requests.every(isRequest);
    default:
      return false;
  }
}
