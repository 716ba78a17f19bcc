// The normal case (seed 003, "PBFT: Normal-case protocol in view v"; PBFT §4.2): client
// requests, the primary's batching and PRE-PREPARE, PREPARE and COMMIT votes, and in-order
// hand-over of committed batches to execution.

import { attachBatch, hasBatch, rememberBatch } from "./batches.js";
import { Slot } from "./log.js";
import { isRequest, sign } from "./messages.js";
import { assert, ReplicaState } from "./state.js";
import type { ClientRequest, Commit, CommitCertificate, PrePrepare, Prepare, PreparedCertificate, ReplicaId } from "./types.js";

export function onRequest(r: ReplicaState, request: ClientRequest, relayed: boolean): void {
  if (!isRequest(request)) return r.count("malformed");
  const cached = r.replies.lastReply(request.client);
  if (cached !== undefined && request.timestamp <= cached.timestamp) {
    // Exactly-once: an executed request is answered from the reply cache, never re-executed. A
    // different request under the same timestamp is refused: the timestamp is taken.
    const same = request.timestamp === cached.timestamp && (cached.signature === undefined || cached.signature === request.signature);
    if (!relayed && same) {
      r.ready.replies.push({ client: request.client, timestamp: request.timestamp, view: r.view, replica: r.id, result: cached.result });
    } else {
      r.count("stale-request");
    }
    return;
  }
  const existing = r.pending.get(request.client);
  if (existing !== undefined && existing.request.timestamp >= request.timestamp) return r.count("duplicate-request");
  if (existing === undefined && r.pending.size >= r.config.maxPendingRequests) return r.count("pending-full");
  if (!r.crypto.verifyRequest(request)) return r.count("bad-request-signature");
  r.pending.set(request.client, { request, sinceTick: r.now });
  if (!r.normal) return;
  if (r.isPrimary) {
    enqueue(r, request);
    proposeBatches(r);
  } else {
    // PBFT §4.1: a backup relays a request it received to the primary. Not at once: a client
    // that sends to a backup sends to every replica (a broadcast after a timeout, a request signed
    // by another key, a session request), the primary included, so a relay at arrival only
    // doubles, triples the primary's intake (measured with signed transfers: each request arrived
    // there four times). A request still pending after `relayDelayTicks` is relayed then
    // (`relayDue`, well inside the view-change timeout), and again by `retransmit`; a session
    // request never is (only the replicas that received it from its client can authenticate it;
    // node/session-requests.ts).
    if (request.signature !== "") queueRelay(r, request);
    startRequestTimer(r);
  }
}

/**
 * Queues a request for the primary's next batch. A client's newer request supersedes its older
 * one, which then waits in the queue as a stale entry until a batch skips it; when the window is
 * full a client could pile those up, so past twice the pending bound they are swept out.
 */
export function enqueue(r: ReplicaState, request: ClientRequest): void {
  r.queue.push(request);
  if (r.queue.length - r.queueHead <= 2 * r.config.maxPendingRequests) return;
  r.queue = r.queue.slice(r.queueHead).filter((queued) => isPendingRequest(r, queued));
  r.queueHead = 0;
}

/** Whether `request` is still its client's pending one (not superseded, not executed). */
function isPendingRequest(r: ReplicaState, request: ClientRequest): boolean {
  return r.pending.get(request.client)?.request === request;
}

/**
 * Queues a backup's delayed relay of `request` (`relayDue`). A client's newer request supersedes
 * its older one, whose entry then waits for nothing: a client flooding newer requests would pile
 * those up for a whole relay delay, so past twice the pending bound they are swept out, as the
 * primary's proposal queue is (`enqueue`).
 */
function queueRelay(r: ReplicaState, request: ClientRequest): void {
  r.relayQueue.push({ request, dueTick: r.now + relayDelayTicks(r) });
  if (r.relayQueue.length - r.relayQueueHead <= 2 * r.config.maxPendingRequests) return;
  r.relayQueue = r.relayQueue.slice(r.relayQueueHead).filter((entry) => isPendingRequest(r, entry.request));
  r.relayQueueHead = 0;
}

export function startRequestTimer(r: ReplicaState): void {
  if (r.requestDeadlineTick === undefined) r.requestDeadlineTick = r.now + r.viewChangeTimeoutTicks;
}

export function restartRequestTimer(r: ReplicaState): void {
  r.requestDeadlineTick = undefined;
  if (r.normal && !r.isPrimary && r.pending.size > 0) startRequestTimer(r);
}

/**
 * Ticks a backup holds a request before relaying it to the primary: the status interval, but at
 * most a quarter of the view-change timeout, so a request that reached only backups (the primary
 * dropped or never got its copy) gets there long before they suspect the primary.
 */
export function relayDelayTicks(r: ReplicaState): number {
  return Math.max(1, Math.min(r.config.statusIntervalTicks, Math.floor(r.config.viewChangeTimeoutTicks / 4)));
}

/** Relays the requests whose delay is over and that are still pending, still unexecuted (backups, each tick). */
export function relayDue(r: ReplicaState): void {
  const queue = r.relayQueue;
  while (r.relayQueueHead < queue.length && queue[r.relayQueueHead]!.dueTick <= r.now) {
    const { request } = queue[r.relayQueueHead++]!;
    if (r.normal && !r.isPrimary && isPendingRequest(r, request)) r.send(r.primary, { type: "request", request });
  }
  // Reading from a head index keeps this linear; the consumed prefix is dropped in bulk.
  if (r.relayQueueHead === queue.length) {
    r.relayQueue = [];
    r.relayQueueHead = 0;
  } else if (r.relayQueueHead > 1024 && r.relayQueueHead * 2 > queue.length) {
    r.relayQueue = queue.slice(r.relayQueueHead);
    r.relayQueueHead = 0;
  }
}

/**
 * Batches the primary may have proposed and not yet seen commit, below which it proposes a partial
 * batch at once instead of waiting `batchDelayTicks` to fill it. Batches are so sized by load: an
 * idle cluster orders a lone request without waiting for a tick (a 10 ms tick was most of the
 * latency of a request at low load), while under load requests gather in the next batch during
 * the rounds of the ones in flight, and full batches go at once whatever is in flight.
 *
 * One, not two: a batch costs each replica about 5 ms of CPU whatever its size (three rounds of
 * messages, two record appends, a block), so at low load a second partial batch in flight costs
 * more than it gains. In back-to-back A/B runs at 500 tx/s, p50 went from 40–47 ms to 26–28 ms,
 * with no change at 2,000 tx/s or under closed-loop load (docs/PERFORMANCE.md, round 3).
 *
 * For the same reason the default `batchDelayTicks` is a cap of 10 ticks, not 1: a partial batch
 * then usually goes when the one in flight commits, with everything that came meanwhile, rather
 * than every tick (round 4).
 */
export const PARTIAL_BATCHES_IN_FLIGHT_MAX = 1;

/**
 * Proposes full batches at once; a partial one at once when fewer than
 * PARTIAL_BATCHES_IN_FLIGHT_MAX batches are on their way to commit, else when the oldest queued
 * request waited `batchDelayTicks`.
 */
export function proposeBatches(r: ReplicaState): void {
  if (!r.normal || !r.isPrimary) return;
  while (r.queue.length > r.queueHead && r.inWindow(r.nextSeq)) {
    if (r.queue.length - r.queueHead < r.config.maxBatchSize && r.nextSeq - 1 - r.lastDelivered >= PARTIAL_BATCHES_IN_FLIGHT_MAX) {
      r.batchOpenedTick ??= r.now;
      if (r.now - r.batchOpenedTick < r.config.batchDelayTicks) return;
    }
    const batch: ClientRequest[] = [];
    while (r.queueHead < r.queue.length && batch.length < r.config.maxBatchSize) {
      const request = r.queue[r.queueHead++]!;
      const waiting = r.pending.get(request.client);
      const proposedTimestamp = r.proposed.get(request.client) ?? -1;
      if (waiting?.request === request && request.timestamp > proposedTimestamp) batch.push(request);
    }
    // Reading from a head index keeps batching linear; the consumed prefix is dropped in bulk.
    if (r.queueHead === r.queue.length) {
      r.queue = [];
      r.queueHead = 0;
    } else if (r.queueHead > 1024 && r.queueHead * 2 > r.queue.length) {
      r.queue = r.queue.slice(r.queueHead);
      r.queueHead = 0;
    }
    r.batchOpenedTick = r.queue.length > r.queueHead ? r.now : undefined;
    if (batch.length > 0) propose(r, batch);
  }
}

function propose(r: ReplicaState, requests: readonly ClientRequest[]): void {
  const seq = r.nextSeq++;
  const prePrepare = sign<PrePrepare>(r.crypto, {
    type: "pre-prepare",
    view: r.view,
    seq,
    digest: r.crypto.batchDigest(requests),
    requests,
    replica: r.id,
  });
  for (const request of requests) r.proposed.set(request.client, request.timestamp);
  const slot = r.slot(seq);
  assert(slot !== undefined && slot.prePrepare === undefined, `primary reused seq ${seq} in view ${r.view}`);
  slot.prePrepare = prePrepare;
  rememberBatch(r, prePrepare);
  r.persist({ kind: "pre-prepare", message: prePrepare });
  r.send("all", prePrepare);
  checkPrepared(r, slot);
}

export function onPrePrepare(r: ReplicaState, from: ReplicaId, pp: PrePrepare): void {
  if (from !== pp.replica) return r.count("forged-sender");
  if (!r.normal || pp.view !== r.view) return r.count(pp.view < r.view ? "stale" : "wrong-view");
  if (pp.replica !== r.primary) return r.count("not-primary");
  const slot = r.slot(pp.seq);
  if (slot === undefined) return r.count("outside-watermarks");
  if (slot.prePrepare !== undefined) return r.count(slot.prePrepare.digest === pp.digest ? "duplicate" : "conflicting-pre-prepare");
  if (!r.validator.validPrePrepare(pp)) return r.count("invalid-pre-prepare");
  slot.prePrepare = pp;
  rememberBatch(r, pp);
  r.persist({ kind: "pre-prepare", message: pp });
  sendPrepare(r, slot);
  checkPrepared(r, slot);
}

export function sendPrepare(r: ReplicaState, slot: Slot): void {
  const pp = slot.prePrepare!;
  const prepare = sign<Prepare>(r.crypto, { type: "prepare", view: pp.view, seq: pp.seq, digest: pp.digest, replica: r.id });
  slot.prepares.set(r.id, prepare);
  slot.sentPrepare = true;
  r.persist({ kind: "prepare", message: prepare });
  r.send("all", prepare);
}

function acceptVote(r: ReplicaState, from: ReplicaId, vote: Prepare | Commit): Slot | undefined {
  if (from !== vote.replica) return r.count("forged-sender"), undefined;
  if (!r.normal || vote.view !== r.view) return r.count(vote.view < r.view ? "stale" : "wrong-view"), undefined;
  const slot = r.slot(vote.seq);
  if (slot === undefined) return r.count("outside-watermarks"), undefined;
  const votes = vote.type === "prepare" ? slot.prepares : slot.commits;
  if (votes.has(vote.replica)) return r.count("duplicate"), undefined;
  // A vote for a slot that already has its quorum of this kind changes nothing (its certificate
  // is built and kept): dropped unverified. With n = 4 that is one prepare and one commit in
  // three, and their signature checks were a third of a replica's verifications at low load.
  if (vote.type === "prepare" ? slot.prepared : slot.committed) return r.count("surplus-vote"), undefined;
  if (!r.validator.verifySignature(vote.replica, vote)) return r.count("bad-signature"), undefined;
  return slot;
}

export function onPrepare(r: ReplicaState, from: ReplicaId, prepare: Prepare): void {
  // The primary's pre-prepare is its vote; a prepare from it is a protocol violation (PBFT §4.2).
  if (prepare.replica === r.primary) return r.count("prepare-from-primary");
  const slot = acceptVote(r, from, prepare);
  if (slot === undefined) return;
  slot.prepares.set(prepare.replica, prepare);
  checkPrepared(r, slot);
}

export function onCommit(r: ReplicaState, from: ReplicaId, commit: Commit): void {
  const slot = acceptVote(r, from, commit);
  if (slot === undefined) return;
  slot.commits.set(commit.replica, commit);
  checkCommitted(r, slot);
}

/** Prepared = pre-prepare + 2f matching prepares from distinct backups (DESIGN.md, "Quorums"). */
function checkPrepared(r: ReplicaState, slot: Slot): void {
  if (slot.prepared || slot.prePrepare === undefined) return;
  if (slot.countMatching(slot.prepares) < r.prepareQuorum) return;
  slot.prepared = true;
  const certificate: PreparedCertificate = { prePrepare: slot.prePrepare, prepares: slot.matchingVotes(slot.prepares, r.quorums.prepare) };
  r.preparedCertificates.set(slot.seq, certificate);
  r.persist({ kind: "prepared", certificate });
  const pp = slot.prePrepare;
  const commit = sign<Commit>(r.crypto, { type: "commit", view: pp.view, seq: pp.seq, digest: pp.digest, replica: r.id });
  slot.commits.set(r.id, commit);
  slot.sentCommit = true;
  r.persist({ kind: "commit", message: commit });
  r.send("all", commit);
  checkCommitted(r, slot);
}

/** Committed-local = prepared + 2f + 1 matching commits (DESIGN.md, "Quorums"). */
function checkCommitted(r: ReplicaState, slot: Slot): void {
  if (slot.committed || !slot.prepared) return;
  if (slot.countMatching(slot.commits) < r.commitQuorum) return;
  slot.committed = true;
  completeCommit(r, slot);
}

/**
 * Hands a committed slot's batch on to execution. A re-proposal committed on its digest alone
 * waits here for its batch (batches.ts), which calls this again when the batch arrives.
 */
export function completeCommit(r: ReplicaState, slot: Slot): void {
  const pp = slot.prePrepare!;
  if (!hasBatch(r, pp)) return r.count("committed-awaiting-batch");
  r.commitCertificates.set(slot.seq, { type: "commit-certificate", prePrepare: pp, commits: slot.matchingVotes(slot.commits, r.quorums.commit) });
  markCommitted(r, pp);
}

/** A commit certificate proves 2f + 1 replicas committed: f + 1 correct ones prepared, so no other batch can commit at that seq. */
export function onCommitCertificate(r: ReplicaState, certificate: CommitCertificate): void {
  const seq = certificate.prePrepare.seq;
  if (seq <= r.lastDelivered || r.committed.has(seq)) return r.count("stale");
  if (!r.inWindow(seq)) return r.count("outside-watermarks");
  if (!r.validator.validCommitCertificate(certificate)) return r.count("invalid-commit-certificate");
  r.commitCertificates.set(seq, certificate);
  // The one way a batch arrives other than in an accepted pre-prepare or a fetch (both keep it).
  rememberBatch(r, certificate.prePrepare);
  // A re-proposal of this view still waiting for this very batch gets it from the certificate.
  const slot = r.log.get(seq);
  if (slot?.prePrepare !== undefined && !hasBatch(r, slot.prePrepare) && slot.prePrepare.digest === certificate.prePrepare.digest) {
    attachBatch(r, slot, certificate.prePrepare.requests, true);
  }
  markCommitted(r, certificate.prePrepare);
}

function markCommitted(r: ReplicaState, pp: PrePrepare): void {
  if (pp.seq <= r.lastDelivered || r.committed.has(pp.seq)) return;
  r.committed.set(pp.seq, { seq: pp.seq, view: pp.view, digest: pp.digest, requests: pp.requests });
  deliver(r);
}

/** Hands committed batches to execution strictly in sequence order. */
export function deliver(r: ReplicaState): void {
  if (r.fetching !== undefined) return;
  const deliveredBefore = r.lastDelivered;
  for (;;) {
    const batch = r.committed.get(r.lastDelivered + 1);
    if (batch === undefined) break;
    r.lastDelivered++;
    r.ready.execute.push(batch);
  }
  // A batch off the way to commit may release a partial batch waiting behind it.
  if (r.lastDelivered > deliveredBefore) proposeBatches(r);
}
