// State transfer between replicas (issue 3 §4; PBFT §4.3 and Castro's thesis §5.3.2): a replica
// that fell behind a stable checkpoint it cannot reach by executing fetches the checkpoint's state
// from peers, in chunks, and installs it.
//
// What makes one peer's answer trustworthy: a checkpoint's digest (the core's `stateDigest`) is
// the hash of the block header at the checkpoint height, and the core asks for a transfer only
// with a proof that 2f + 1 replicas signed that digest. The header names the state root, so the
// fetcher checks the served header against the digest, rebuilds the state tree from the served
// entries and installs them only if the tree's root equals the header's state root. A lying peer
// costs a retry with another peer, never a wrong state.
//
// Serving: a replica pins (an LMDB read transaction, storage/replica-store.ts `pinState`) the
// state of each checkpoint it executes and keeps the last few, so it can serve a stable checkpoint
// while execution moves on. Chunks are read in key order after the requester's cursor, so a
// transfer resumes where it stopped, with the same or another peer (every correct replica's state
// at a checkpoint is the same set of entries, hence the same order).

import { type BlockHeader, blockHeaderHash, decodeBlockHeader } from "../ledger/block-header.js";
import { StateTree } from "../ledger/state-tree.js";
import { type PinnedState, type ReplicaStore, STATE_KEY_BYTES_MAX } from "../storage/index.js";
import type { WireFrame } from "./wire-types.js";

/** How many checkpoint pins a replica holds (the newest ones). */
export const STATE_PINS_MAX = 2;
/** Entries and bytes per served chunk. */
export const STATE_CHUNK_ENTRIES = 4096;
export const STATE_CHUNK_BYTES = 4 << 20;

export class StateServer {
  private readonly pins = new Map<number, PinnedState>();
  private readonly store: ReplicaStore;
  private headerOf: (height: number) => Uint8Array | undefined;

  constructor(store: ReplicaStore) {
    this.store = store;
    this.headerOf = (height) => store.getHeaders(height, height)[0]?.header;
  }

  /** The store's applied state is the state at checkpoint `seq`: pin it, releasing the oldest pins. */
  pinCheckpoint(seq: number): void {
    if (this.pins.has(seq)) return;
    const pin = this.store.pinState();
    if (pin.appliedHeight !== seq) {
      pin.release();
      return;
    }
    this.pins.set(seq, pin);
    const seqs = [...this.pins.keys()].sort((left, right) => left - right);
    while (seqs.length > STATE_PINS_MAX) {
      const oldest = seqs.shift()!;
      this.pins.get(oldest)?.release();
      this.pins.delete(oldest);
    }
  }

  get pinnedSeqs(): number[] {
    return [...this.pins.keys()].sort((left, right) => left - right);
  }

  /** The answer to a peer's state request. */
  serve(request: Extract<WireFrame, { kind: "state-request" }>): WireFrame {
    const { requestId, seq } = request;
    const pin = this.pins.get(seq);
    const header = pin === undefined ? undefined : this.headerOf(seq);
    // A cursor longer than any key cannot come from a correct fetch: answer, rather than let the
    // store refuse it with an exception that would close the connection.
    const badCursor = request.after !== undefined && request.after.length > STATE_KEY_BYTES_MAX;
    if (pin === undefined || header === undefined || badCursor) return { kind: "state-unavailable", requestId, seq };
    const chunk = pin.readChunk({ entriesMax: STATE_CHUNK_ENTRIES, bytesMax: STATE_CHUNK_BYTES, ...(request.after === undefined ? {} : { after: request.after }) });
    return { kind: "state-chunk", requestId, seq, header, entries: chunk.entries, done: chunk.done };
  }

  close(): void {
    for (const pin of this.pins.values()) pin.release();
    this.pins.clear();
  }
}

/** A fetched, verified checkpoint state, ready to install. */
export interface FetchedState {
  readonly seq: number;
  readonly header: BlockHeader;
  readonly headerBytes: Uint8Array;
  readonly entries: ReadonlyArray<readonly [Uint8Array, Uint8Array]>;
}

export interface StateFetchCounters {
  chunksReceived: number;
  entriesReceived: number;
  peerFailures: number;
  restarts: number;
}

export type ChunkVerdict =
  /** Ask `peer` (the same one or the next) for the chunk after the cursor. */
  | { readonly kind: "continue" }
  /** Done and verified. */
  | { readonly kind: "complete"; readonly state: FetchedState }
  /** This peer lied or failed: everything received so far is discarded when `restart`. */
  | { readonly kind: "peer-failed"; readonly reason: string; readonly restart: boolean };

/**
 * One transfer of the state at a proven checkpoint: the fetching side's bookkeeping, without I/O.
 * The runtime sends `request()` to a peer, feeds the answer to `onChunk`/`onUnavailable`, and
 * moves to another peer on failure or timeout. The received entries are kept (in the state tree
 * and a list) until the transfer completes: the state is held in memory by execution anyway.
 */
export class StateFetch {
  readonly seq: number;
  readonly digest: string;
  readonly counters: StateFetchCounters = { chunksReceived: 0, entriesReceived: 0, peerFailures: 0, restarts: 0 };
  private tree = new StateTree();
  private entries: Array<readonly [Uint8Array, Uint8Array]> = [];
  private cursor: Uint8Array | undefined;
  private header: { readonly header: BlockHeader; readonly bytes: Uint8Array } | undefined;
  private nextRequestId: number;
  private outstanding: number | undefined;

  constructor(seq: number, digest: string, firstRequestId: number) {
    this.seq = seq;
    this.digest = digest;
    this.nextRequestId = firstRequestId;
  }

  /** The next request (a fresh id; answers to older ids are ignored). */
  request(): Extract<WireFrame, { kind: "state-request" }> {
    const requestId = this.nextRequestId++;
    this.outstanding = requestId;
    return { kind: "state-request", requestId, seq: this.seq, ...(this.cursor === undefined ? {} : { after: this.cursor }) };
  }

  /** Whether `requestId` is the request we wait for. */
  awaits(requestId: number): boolean {
    return this.outstanding === requestId;
  }

  onUnavailable(): ChunkVerdict {
    this.outstanding = undefined;
    this.counters.peerFailures++;
    return { kind: "peer-failed", reason: "the peer holds no snapshot at this checkpoint", restart: false };
  }

  /** A timeout or a closed connection: resume from the cursor with another peer. */
  onPeerLost(): void {
    this.outstanding = undefined;
    this.counters.peerFailures++;
  }

  onChunk(chunk: Extract<WireFrame, { kind: "state-chunk" }>): ChunkVerdict {
    this.outstanding = undefined;
    if (chunk.seq !== this.seq) return this.fail("a chunk for another checkpoint", false);
    if (this.header === undefined) {
      let header: BlockHeader;
      try {
        header = decodeBlockHeader(chunk.header);
      } catch {
        return this.fail("a header that does not decode", false);
      }
      if (header.height !== this.seq || Buffer.from(blockHeaderHash(header)).toString("hex") !== this.digest) {
        return this.fail("a header whose hash is not the checkpoint's digest", false);
      }
      this.header = { header, bytes: chunk.header.slice() };
    } else if (!Buffer.from(chunk.header).equals(this.header.bytes)) {
      return this.fail("a different header than earlier chunks", false);
    }
    let previous = this.cursor;
    for (const [key, value] of chunk.entries) {
      // Ascending and strictly after the cursor: no duplicates, so the tree holds exactly what was sent.
      if (previous !== undefined && Buffer.compare(key, previous) <= 0) return this.fail("entries out of key order", true);
      this.tree.put(key, value);
      this.entries.push([key, value]);
      previous = key;
    }
    this.cursor = previous;
    this.counters.chunksReceived++;
    this.counters.entriesReceived += chunk.entries.length;
    if (!chunk.done) {
      if (chunk.entries.length === 0) return this.fail("an empty chunk that is not the last", false);
      return { kind: "continue" };
    }
    const root = this.tree.root();
    if (!Buffer.from(root).equals(this.header.header.stateRoot)) return this.fail("entries whose state root is not the header's", true);
    return { kind: "complete", state: { seq: this.seq, header: this.header.header, headerBytes: this.header.bytes, entries: this.entries } };
  }

  private fail(reason: string, restart: boolean): ChunkVerdict {
    this.counters.peerFailures++;
    if (restart) {
      // Some entry we hold is wrong and we cannot tell which: start over with another peer.
      this.counters.restarts++;
      this.tree = new StateTree();
      this.entries = [];
      this.cursor = undefined;
    }
    return { kind: "peer-failed", reason, restart };
  }
}
