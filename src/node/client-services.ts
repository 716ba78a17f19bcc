// What a replica serves its clients besides ordering transactions (issue 4, "SDK additions"):
// its status, proof reads, and stored blocks. The runtime hands every client frame but
// client-request here; a frame a client may not send is a protocol error.
//
// Proof reads. A read-request names a state tree key. The replica answers from its in-memory state
// tree at its executed height h, with the header of block h and h's commit certificate, so the
// client checks the answer against the cluster's keys alone and need not trust this replica. The
// proof is computed when the request arrives, because the tree moves on with the next block; the
// answer waits only for h's certificate, which usually follows execution within milliseconds
// (2f + 1 replicas sign block h once they executed it). A read whose certificate does not arrive
// within READ_HOLD_MS is answered read-unavailable ("uncertified") and the client asks another
// replica. At most READS_HELD_MAX reads wait at once (READS_HELD_PER_CONNECTION_MAX per client
// connection); beyond that the oldest is answered "overloaded", so memory stays bounded whatever
// clients send.
//
// Height 0. Before the first block there is no header and no certificate, but there is nothing to
// certify either: every cluster starts from the empty state (app/ledger-application.ts), whose
// root every client can compute. So a replica at height 0 answers with height 0, an empty header
// and certificate, no value, and the proof of absence in the empty tree; the client accepts that
// only as "absent at genesis" (client/proof-check.ts). A faulty replica can always claim height 0,
// as it can claim any older certified height: a proof read is as fresh as the replica that
// answers, and the client refuses an answer below the highest height it has already seen.
//
// Bounds. Each client connection has a token bucket (QUERY_RATE_PER_SECOND, QUERY_BURST): a status
// or read costs one token, a blocks request one per BLOCKS_ANSWER_BYTES_PER_TOKEN bytes of its
// answer (it reads the store, and its answer can be megabytes): it needs one token to start and
// leaves the bucket in debt for the rest. A request beyond the rate is dropped and counted (a read
// is answered "overloaded", so the client moves on at once). Blocks answers have the runtime's
// byte and count bounds (replica-runtime.ts, `blocksFor`).
//
// A client that does not read its answers would otherwise make the replica buffer them, up to the
// transport's send queue (tens of MiB) on each of its connections. So nothing is built for a
// connection whose send queue already holds more than ANSWER_BACKLOG_BYTES_MAX: the query is
// dropped and counted ("client-queries-backlogged"), and so is an answer to a held read
// ("client-answers-backlogged"). One connection then holds at most that backlog plus one answer.

import { type BlockHeader, encodeBlockHeader } from "../ledger/block-header.js";
import type { StateTree } from "../ledger/state-tree.js";
import { encodeStateProof } from "../ledger/state-tree-proof.js";
import type { ReadUnavailableReason, WireBlock, WireFrame } from "./wire-types.js";

/** How long a read waits for the certificate of the block it was proven at. */
const READ_HOLD_MS = 2_000;
/** Most reads waiting for a certificate, over all connections, and per connection. */
const READS_HELD_MAX = 1_024;
const READS_HELD_PER_CONNECTION_MAX = 256;
/** Tokens a client connection earns per second, and the most it can save up. */
const QUERY_RATE_PER_SECOND = 2_000;
export const QUERY_BURST = 4_000;
/** A blocks answer costs one token per this many bytes (a full 8 MiB answer: 2,048 tokens, about a second of the rate). */
const BLOCKS_ANSWER_BYTES_PER_TOKEN = 4_096;
/** Above this many bytes queued to a client connection, nothing more is built for it until it reads. */
export const ANSWER_BACKLOG_BYTES_MAX = 1024 * 1024;
/** How far below the executed height the start looks for the highest stored certificate. */
const CERTIFIED_SCAN_HEIGHTS = 64;

/** The part of a connection the services use; the runtime's connections have it. */
export interface ServiceConnection {
  protocolError(detail: string): void;
  /** Bytes queued to the connection and not yet handed to the socket. */
  readonly sendQueueBytes: number;
}

type Answer = Extract<WireFrame, { kind: "status" | "read-proof" | "read-unavailable" | "blocks" }>;
type ClientQuery = Extract<WireFrame, { kind: "status-request" | "read-request" | "blocks-request" }>;

/** What the services need from the replica they run in. */
export interface ClientServicesHost<C extends ServiceConnection> {
  readonly replica: number;
  /** The executed height and the state tree as it is at that height. */
  executed(): { readonly height: number; readonly tree: StateTree };
  /** The stored header and certificate of block `height`, when the store holds a certificate for it. */
  storedCertified(height: number): { readonly header: Uint8Array; readonly certificate: Uint8Array } | undefined;
  /** The consensus core's view of itself. */
  consensus(): { readonly view: number; readonly primary: number; readonly normal: boolean; readonly stableCheckpoint: number };
  /** Stored blocks of a requested range, within the runtime's bounds. */
  blocks(from: number, to: number): WireBlock[];
  /** Sends a frame to the connection (the runtime drops and counts what it cannot send). */
  send(connection: C, frame: Answer): void;
  /** Counts an event under `name` in the runtime's counters. */
  count(name: string): void;
}

export interface ClientServicesOptions {
  readonly readHoldMs?: number;
  readonly readsHeldMax?: number;
  readonly readsHeldPerConnectionMax?: number;
  readonly queryRatePerSecond?: number;
  readonly queryBurst?: number;
  readonly answerBacklogBytesMax?: number;
  /** The clock, for tests; default Date.now. */
  readonly nowMs?: () => number;
}

interface Certified {
  readonly height: number;
  readonly header: Uint8Array;
  readonly certificate: Uint8Array;
}

/** A read proven at `height`, waiting for that block's certificate. */
interface HeldRead<C> {
  readonly connection: C;
  readonly requestId: number;
  readonly height: number;
  readonly value: Uint8Array | undefined;
  readonly proof: Uint8Array;
  readonly deadlineMs: number;
}

interface Bucket {
  tokens: number;
  updatedMs: number;
}

export class ClientServices<C extends ServiceConnection> {
  private readonly host: ClientServicesHost<C>;
  private readonly readHoldMs: number;
  private readonly readsHeldMax: number;
  private readonly readsHeldPerConnectionMax: number;
  private readonly queryRatePerSecond: number;
  private readonly queryBurst: number;
  private readonly answerBacklogBytesMax: number;
  private readonly nowMs: () => number;
  /** Oldest first; deadlines ascend because every read waits the same time. */
  private held: HeldRead<C>[] = [];
  private readonly heldPerConnection = new Map<C, number>();
  private readonly buckets = new WeakMap<C, Bucket>();
  /** The highest certificate this replica stored since it started, or found in its store at start. */
  private latest: Certified | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(host: ClientServicesHost<C>, options: ClientServicesOptions = {}) {
    this.host = host;
    this.readHoldMs = options.readHoldMs ?? READ_HOLD_MS;
    this.readsHeldMax = options.readsHeldMax ?? READS_HELD_MAX;
    this.readsHeldPerConnectionMax = options.readsHeldPerConnectionMax ?? READS_HELD_PER_CONNECTION_MAX;
    this.queryRatePerSecond = options.queryRatePerSecond ?? QUERY_RATE_PER_SECOND;
    this.queryBurst = options.queryBurst ?? QUERY_BURST;
    this.answerBacklogBytesMax = options.answerBacklogBytesMax ?? ANSWER_BACKLOG_BYTES_MAX;
    this.nowMs = options.nowMs ?? Date.now;
    this.latest = this.highestStoredCertificate();
  }

  /** Reads waiting for a certificate. */
  get heldReads(): number {
    return this.held.length;
  }

  /** The highest height this replica knows a certificate for; 0 when none. */
  get certifiedHeight(): number {
    return this.latest?.height ?? 0;
  }

  /** A frame from an authenticated client, other than client-request (which the runtime orders). */
  onFrame(connection: C, frame: WireFrame): void {
    if (!isClientQuery(frame)) {
      connection.protocolError(`a client may send only client-request, status-request, read-request and blocks-request frames; got ${frame.kind}`);
      return;
    }
    if (connection.sendQueueBytes > this.answerBacklogBytesMax) {
      this.host.count("client-queries-backlogged");
      return;
    }
    if (!this.take(connection, 1)) {
      this.host.count("client-queries-rate-limited");
      if (frame.kind === "read-request") this.unavailable(connection, frame.requestId, "overloaded");
      return;
    }
    switch (frame.kind) {
      case "status-request":
        return this.onStatus(connection, frame.requestId);
      case "read-request":
        return this.onRead(connection, frame.requestId, frame.key);
      case "blocks-request":
        return this.onBlocks(connection, frame.requestId, frame.from, frame.to);
    }
  }

  /** Block `header.height` is certified (its certificate is being stored): reads proven there are answered. */
  onCertified(header: BlockHeader, certificate: Uint8Array): void {
    const height = header.height;
    const newer = this.latest === undefined || height > this.latest.height;
    const awaited = this.held.some((read) => read.height === height);
    if (!newer && !awaited) return;
    const certified: Certified = { height, header: encodeBlockHeader(header), certificate };
    if (newer) this.latest = certified;
    if (!awaited) return;
    const waiting = this.held;
    this.held = [];
    for (const read of waiting) {
      if (read.height === height) this.answer(read, certified);
      else this.held.push(read);
    }
    this.rearm();
  }

  /** The replica stops: every waiting read is answered "stopping". Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const waiting = this.held;
    this.held = [];
    for (const read of waiting) this.release(read, "stopping");
    this.heldPerConnection.clear();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  // -------------------------------------------------------------------------------------------

  private onStatus(connection: C, requestId: number): void {
    const consensus = this.host.consensus();
    this.host.send(connection, {
      kind: "status",
      requestId,
      replica: this.host.replica,
      view: consensus.view,
      primary: consensus.primary,
      normal: consensus.normal,
      executedHeight: this.host.executed().height,
      stableCheckpoint: consensus.stableCheckpoint,
      certifiedHeight: this.certifiedHeight,
    });
  }

  private onBlocks(connection: C, requestId: number, from: number, to: number): void {
    this.host.count("client-blocks-requests");
    const blocks = this.host.blocks(from, to);
    let bytes = 0;
    for (const block of blocks) bytes += block.header.length + (block.body?.length ?? 0) + (block.certificate?.length ?? 0);
    // One token was taken to start; the rest of the answer's cost may leave the bucket in debt.
    this.charge(connection, Math.ceil(bytes / BLOCKS_ANSWER_BYTES_PER_TOKEN) - 1);
    this.host.send(connection, { kind: "blocks", requestId, blocks });
  }

  private onRead(connection: C, requestId: number, key: Uint8Array): void {
    if (this.closed) return this.unavailable(connection, requestId, "stopping");
    this.host.count("client-reads");
    // Both from the tree as it is now: it moves on with the next block.
    const { height, tree } = this.host.executed();
    // tree.get returns a copy, which the held read may keep.
    const read = {
      connection,
      requestId,
      height,
      value: tree.get(key),
      proof: encodeStateProof(tree.prove(key)),
      deadlineMs: this.nowMs() + this.readHoldMs,
    };
    if (height === 0) return this.answer(read, { height: 0, header: new Uint8Array(0), certificate: new Uint8Array(0) });
    const certified = this.latest?.height === height ? this.latest : this.storedAt(height);
    if (certified !== undefined) return this.answer(read, certified);
    this.hold(read);
  }

  private hold(read: HeldRead<C>): void {
    const ofConnection = this.heldPerConnection.get(read.connection) ?? 0;
    if (ofConnection >= this.readsHeldPerConnectionMax) {
      this.host.count("client-reads-overloaded");
      return this.unavailable(read.connection, read.requestId, "overloaded");
    }
    let evicted = false;
    if (this.held.length >= this.readsHeldMax) {
      this.host.count("client-reads-overloaded");
      this.release(this.held.shift()!, "overloaded");
      evicted = true;
    }
    this.held.push(read);
    this.heldPerConnection.set(read.connection, ofConnection + 1);
    this.host.count("client-reads-held");
    // Deadlines ascend, so the new read expires last: the timer set for the oldest still serves,
    // unless there was none or the oldest just left.
    if (this.timer === undefined || evicted) this.rearm();
  }

  /** Answers every read whose deadline passed "uncertified", and arms the timer for the next one. */
  private expire(): void {
    this.timer = undefined;
    const nowMs = this.nowMs();
    while (this.held.length > 0 && this.held[0]!.deadlineMs <= nowMs) {
      this.host.count("client-reads-uncertified");
      this.release(this.held.shift()!, "uncertified");
    }
    this.rearm();
  }

  private rearm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const first = this.held[0];
    if (first === undefined || this.closed) return;
    this.timer = setTimeout(() => this.expire(), Math.max(0, first.deadlineMs - this.nowMs()));
    this.timer.unref();
  }

  private answer(read: HeldRead<C>, certified: Certified): void {
    this.forget(read);
    if (read.connection.sendQueueBytes > this.answerBacklogBytesMax) {
      this.host.count("client-answers-backlogged");
      return;
    }
    this.host.send(read.connection, {
      kind: "read-proof",
      requestId: read.requestId,
      height: certified.height,
      header: certified.header,
      certificate: certified.certificate,
      ...(read.value === undefined ? {} : { value: read.value }),
      proof: read.proof,
    });
  }

  /** A held read leaves without a proof. */
  private release(read: HeldRead<C>, reason: ReadUnavailableReason): void {
    this.forget(read);
    this.unavailable(read.connection, read.requestId, reason);
  }

  private forget(read: HeldRead<C>): void {
    const count = this.heldPerConnection.get(read.connection);
    if (count === undefined) return;
    if (count <= 1) this.heldPerConnection.delete(read.connection);
    else this.heldPerConnection.set(read.connection, count - 1);
  }

  private unavailable(connection: C, requestId: number, reason: ReadUnavailableReason): void {
    this.host.send(connection, { kind: "read-unavailable", requestId, reason });
  }

  private storedAt(height: number): Certified | undefined {
    const stored = this.host.storedCertified(height);
    return stored === undefined ? undefined : { height, ...stored };
  }

  private highestStoredCertificate(): Certified | undefined {
    const executed = this.host.executed().height;
    for (let height = executed; height >= 1 && height > executed - CERTIFIED_SCAN_HEIGHTS; height--) {
      const certified = this.storedAt(height);
      if (certified !== undefined) return certified;
    }
    return undefined;
  }

  /** Takes `cost` tokens from the connection's bucket; false when it has too few. */
  private take(connection: C, cost: number): boolean {
    const bucket = this.bucketOf(connection);
    if (bucket.tokens < cost) return false;
    bucket.tokens -= cost;
    return true;
  }

  /** Takes `cost` tokens whether or not the bucket has them: it goes into debt, refused until refilled. */
  private charge(connection: C, cost: number): void {
    if (cost > 0) this.bucketOf(connection).tokens -= cost;
  }

  /** The connection's bucket, refilled for the time since it was last used. */
  private bucketOf(connection: C): Bucket {
    const nowMs = this.nowMs();
    let bucket = this.buckets.get(connection);
    if (bucket === undefined) {
      bucket = { tokens: this.queryBurst, updatedMs: nowMs };
      this.buckets.set(connection, bucket);
    }
    bucket.tokens = Math.min(this.queryBurst, bucket.tokens + ((nowMs - bucket.updatedMs) * this.queryRatePerSecond) / 1_000);
    bucket.updatedMs = nowMs;
    return bucket;
  }
}

function isClientQuery(frame: WireFrame): frame is ClientQuery {
  return frame.kind === "status-request" || frame.kind === "read-request" || frame.kind === "blocks-request";
}
