// Batches by digest. VIEW-CHANGE and NEW-VIEW name batches by their digests only: a prepared
// certificate's signatures cover (view, seq, digest), so it proves as much without the requests,
// and a view change that carried every prepared batch above the stable checkpoint grew past the
// wire's frame limit under load (1,024-request batches: a 52 MB VIEW-CHANGE, dropped by every
// peer, and no new view formed; docs/RELIABILITY.md). Seed 003 names that cost ("Further dealing
// with failures": the view-change cost includes all previous transactions); its view-change
// theorem needs a VIEW-CHANGE only to identify each prepared batch, which the digest does.
//
// So each replica keeps the batches it accepted above its stable checkpoint, by seq and digest,
// and fills the NEW-VIEW's re-proposals from them. A re-proposal whose batch it lacks is still
// prepared and committed on its digest (the digest is one a valid prepared certificate fixed), but
// executes only once the batch is here: the replica asks its peers for it, one at a time, each
// status interval, starting with a replica whose VIEW-CHANGE showed it prepared. The batch is
// checked against the digest, so a faulty peer can only fail to answer. At least f + 1 correct
// replicas accepted any batch a prepared certificate names (the primary and 2f backups signed
// for it), and each keeps it until a stable checkpoint covers its seq, unless view changes
// without progress brought it more than BATCHES_PER_SEQ_MAX batches for that seq.

import type { Slot } from "./log.js";
import { completeCommit } from "./normal-case.js";
import type { ReplicaState } from "./state.js";
import type { BatchBody, BatchRequest, ClientRequest, Digest, PrePrepare, ReplicaId } from "./types.js";

/**
 * Most batches kept for one seq. A correct replica accepts one pre-prepare per (view, seq), so
 * more than one arise only from view changes; the oldest goes first.
 */
export const BATCHES_PER_SEQ_MAX = 4;

/** Whether `pp` carries its batch (a null request needs none); a re-proposal may carry only the digest. */
export function hasBatch(r: ReplicaState, pp: PrePrepare): boolean {
  return pp.requests.length > 0 || pp.digest === r.nullDigest;
}

/** `pp` without its requests, as VIEW-CHANGE and NEW-VIEW carry it. */
export function withoutRequests(pp: PrePrepare): PrePrepare {
  return pp.requests.length === 0 ? pp : { ...pp, requests: [] };
}

/** Keeps the batch of an accepted (or committed, or fetched and checked) pre-prepare inside the watermarks. */
export function rememberBatch(r: ReplicaState, pp: PrePrepare): void {
  if (pp.requests.length === 0 || !r.inWindow(pp.seq)) return;
  let known = r.batches.get(pp.seq);
  if (known === undefined) {
    known = new Map();
    r.batches.set(pp.seq, known);
  }
  if (known.has(pp.digest)) return;
  if (known.size >= BATCHES_PER_SEQ_MAX) known.delete(known.keys().next().value!);
  known.set(pp.digest, pp.requests);
}

/** The batch with `digest` at `seq`, when this replica holds it. */
export function heldBatch(r: ReplicaState, seq: number, digest: Digest): readonly ClientRequest[] | undefined {
  if (digest === r.nullDigest) return [];
  return r.batches.get(seq)?.get(digest);
}

/** Forgets the batches at or below a stable checkpoint (checkpoints.ts `collectGarbage`). */
export function forgetBatches(r: ReplicaState, seq: number): void {
  for (const key of r.batches.keys()) if (key <= seq) r.batches.delete(key);
}

/**
 * Gives the slot's digest-only pre-prepare its batch. `persist` records it, so a restart finds the
 * batch without asking again (not needed when replaying records, nor when a persisted prepared
 * certificate of this seq already holds the same batch).
 */
export function attachBatch(r: ReplicaState, slot: Slot, requests: readonly ClientRequest[], persist: boolean): void {
  const header = slot.prePrepare!;
  const pp: PrePrepare = { ...header, requests };
  slot.prePrepare = pp;
  rememberBatch(r, pp);
  if (r.isPrimary) for (const request of requests) r.proposed.set(request.client, request.timestamp);
  const certificate = r.preparedCertificates.get(pp.seq);
  if (certificate !== undefined && certificate.prePrepare.view === pp.view && certificate.prePrepare.digest === pp.digest && !hasBatch(r, certificate.prePrepare)) {
    const full = { prePrepare: pp, prepares: certificate.prepares };
    r.preparedCertificates.set(pp.seq, full);
    if (persist) r.persist({ kind: "prepared", certificate: full });
  }
  if (persist) r.persist({ kind: "pre-prepare", message: pp });
  if (slot.committed) completeCommit(r, slot);
}

/**
 * Asks one peer for the slot's batch: first `slot.batchHolder` (a replica whose VIEW-CHANGE
 * showed it prepared), then the others in turn, one per call (retransmit calls each status
 * interval), so a silent or lying peer costs one interval, not the batch.
 */
export function askForBatch(r: ReplicaState, slot: Slot): void {
  const pp = slot.prePrepare!;
  const n = r.config.n;
  let to = slot.batchAsks === 0 && slot.batchHolder !== undefined ? slot.batchHolder : (slot.seq + slot.batchAsks) % n;
  if (to === r.id) to = (to + 1) % n;
  slot.batchAsks++;
  r.count("batch-requests-sent");
  const ask: BatchRequest = { type: "batch-request", seq: pp.seq, digest: pp.digest, replica: r.id };
  r.send(to, ask);
}

/**
 * Answers a peer's BatchRequest with the batch, when held. A correct peer asks for each missing
 * batch once per status interval, so at most a watermark window of answers per peer per interval
 * (a faulty peer asking more is not answered: each answer can be a whole batch).
 */
export function onBatchRequest(r: ReplicaState, from: ReplicaId, ask: BatchRequest): void {
  if (from !== ask.replica) return r.count("forged-sender");
  const requests = heldBatch(r, ask.seq, ask.digest);
  if (requests === undefined || requests.length === 0) return r.count("batch-not-held");
  let budget = r.batchAnswers.get(from);
  if (budget === undefined || r.now - budget.sinceTick >= r.config.statusIntervalTicks) {
    budget = { sinceTick: r.now, count: 0 };
    r.batchAnswers.set(from, budget);
  }
  if (budget.count >= r.config.watermarkWindow) return r.count("batch-request-rate-limited");
  budget.count++;
  const answer: BatchBody = { type: "batch", seq: ask.seq, digest: ask.digest, requests, replica: r.id };
  r.send(from, answer);
}

/** Takes a peer's batch for a slot that awaits exactly it: its digest must match, its requests be well formed. */
export function onBatch(r: ReplicaState, from: ReplicaId, body: BatchBody): void {
  if (from !== body.replica) return r.count("forged-sender");
  const slot = r.log.get(body.seq);
  const pp = slot?.prePrepare;
  if (slot === undefined || pp === undefined || pp.digest !== body.digest || hasBatch(r, pp)) return r.count("unwanted-batch");
  if (body.requests.length === 0 || (r.mutation !== "skip-batch-digest-check" && r.crypto.batchDigest(body.requests) !== body.digest)) return r.count("invalid-batch");
  // A prepared certificate fixed this digest: 2f + 1 replicas accepted these very requests.
  if (!body.requests.every((request) => r.crypto.verifyRequest(request, true))) return r.count("invalid-batch");
  r.count("batches-fetched");
  attachBatch(r, slot, body.requests, true);
}

/** Asks again for every batch the current view still lacks (retransmit, each status interval). */
export function askForMissingBatches(r: ReplicaState): void {
  for (const slot of r.log.values()) {
    if (slot.prePrepare !== undefined && !hasBatch(r, slot.prePrepare)) askForBatch(r, slot);
  }
}
