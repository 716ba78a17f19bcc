// One replica's durable store (issue 3, "Storage"): blocks and application state in one LMDB
// environment, and the consensus record log in an append-only file beside it (record-file.ts).
// Blocks and state are opaque bytes here; the ledger and the application own their encodings.
//
// Writes are transactions that resolve under the sync policy (environment.ts): with the default
// "durable" policy a promise resolves only after the data is on disk, which is what lets the
// runtime send a vote after persisting it. `commitBlock` puts a block, its state changes and the
// applied-state metadata in ONE transaction, so after a crash the store holds the whole block and
// its state or neither. Each write runs as an LMDB child transaction: a write that throws part
// way leaves nothing behind, even when lmdb batches it with other writes of the same event turn.
//
// Reads are synchronous (LMDB reads are memory-mapped) and see committed data only. Reads of
// several entries use one read transaction, so they see one consistent version.

import { existsSync } from "node:fs";
import { join } from "node:path";

import type { PersistRecord } from "../consensus/pbft/types.js";
import { type AppliedState, decodeAppliedState, encodeAppliedState } from "./applied-state.js";
import type { Transaction as ReadTransaction } from "lmdb";
import { type BinaryDatabase, type StorageEnvironment, type SyncPolicy, openEnvironment } from "./environment.js";
import { StorageCorruptionError, StorageRefusedError } from "./errors.js";
import { frameValue, unframeValue } from "./frame.js";
import { DATABASE_NAMES, META_KEYS, STATE_KEY_BYTES_MAX, applicationKeyOf, hex, metaKey, stateKey, uint64Key, uint64OfKey } from "./layout.js";
import { RecordFile, type RecordFileRecovery } from "./record-file.js";
import { RECORD_LOG_COMPACTION_THRESHOLD_DEFAULT, type RecordAppendResult } from "./record-log.js";

export interface ReplicaStoreOptions {
  /** The replica's data directory; created if missing. */
  readonly directory: string;
  readonly clusterId: string;
  readonly replicaId: number;
  /** Default "durable"; see `SyncPolicy` for what "none" risks. */
  readonly sync?: SyncPolicy;
  /** Records the log may hold before an append compacts it (default 4096). */
  readonly recordLogCompactionThreshold?: number;
}

/** Sets `key` to `value`, or deletes it when `value` is null. */
export type StateWrite = readonly [key: Uint8Array, value: Uint8Array | null];

export interface BlockCommit {
  readonly height: number;
  readonly header: Uint8Array;
  readonly body: Uint8Array;
  /** The commit certificate, when already known; `attachCertificate` adds it later. */
  readonly certificate?: Uint8Array;
  /** Applied in order; a key written twice keeps its last value. */
  readonly stateWrites: readonly StateWrite[];
  /** The consensus seq the block executed and the state digest after it. */
  readonly meta: { readonly seq: number; readonly stateDigest: Uint8Array };
}

export interface StoredBlock {
  readonly height: number;
  readonly header: Uint8Array;
  /** Undefined only when the body was pruned (the height is below the body retention height). */
  readonly body: Uint8Array | undefined;
  readonly certificate: Uint8Array | undefined;
}

export interface StoredHeader {
  readonly height: number;
  readonly header: Uint8Array;
  readonly certificate: Uint8Array | undefined;
}

export interface StateChunk {
  /** Entries in ascending byte order of their keys. */
  readonly entries: Array<[key: Uint8Array, value: Uint8Array]>;
  /** The last key of the chunk: pass it as `after` for the next chunk. Undefined when empty. */
  readonly cursor: Uint8Array | undefined;
  /** True when no entry follows this chunk. */
  readonly done: boolean;
  /**
   * The applied height the chunk was read at. Chunks read at different heights come from
   * different states: a reader that needs one snapshot restarts when it changes.
   */
  readonly appliedHeight: number | undefined;
}

export interface StateChunkOptions {
  /** Start after this key (exclusive); from the first key when omitted. */
  readonly after?: Uint8Array;
  /** At most this many entries (default 1024). */
  readonly entriesMax?: number;
  /** Stop once the chunk holds this many key and value bytes (default 1 MiB); at least one entry. */
  readonly bytesMax?: number;
}

/**
 * The state as it was when `pinState` was called, readable in chunks for as long as it is held
 * (an LMDB read transaction: later commits do not change what it sees). State transfer serves a
 * stable checkpoint's state from one while execution moves on. While held, LMDB cannot reuse the
 * pages later commits free, so the file grows by what is written meanwhile: release it promptly.
 */
export interface PinnedState {
  /** The applied height the pinned state reflects; undefined for a store without blocks. */
  readonly appliedHeight: number | undefined;
  readChunk(options?: StateChunkOptions): StateChunk;
  /** Ends the read transaction; later `readChunk` calls throw. Idempotent. */
  release(): void;
}

/** A verified state snapshot to install in place of the current state (state transfer). */
export interface StateInstall {
  /** The checkpoint's height: the state is the state after block `height`. */
  readonly height: number;
  /** Header bytes of block `height` (the next block's prevHash is its hash). */
  readonly header: Uint8Array;
  readonly certificate?: Uint8Array;
  /** Every state entry, in any order; keys unique. */
  readonly entries: Iterable<readonly [key: Uint8Array, value: Uint8Array]>;
  readonly meta: { readonly seq: number; readonly stateDigest: Uint8Array };
}

export interface StoreCounters {
  blocksCommitted: number;
  certificatesAttached: number;
  recordsAppended: number;
  recordLogCompactions: number;
  bodiesPruned: number;
}

/** Most headers one `getHeaders` call returns. */
export const HEADERS_PER_READ_MAX = 10_000;
/** Most entries one state chunk holds. */
export const STATE_CHUNK_ENTRIES_MAX = 65_536;
/** Bodies deleted per transaction while pruning, so pruning never holds the writer for long. */
const PRUNE_BATCH_BODIES = 1024;
const STATE_CHUNK_ENTRIES_DEFAULT = 1024;
const STATE_CHUNK_BYTES_DEFAULT = 1 << 20;

const APPLIED_STATE_KEY = metaKey(META_KEYS.appliedState);
const RETENTION_KEY = metaKey(META_KEYS.bodyRetentionHeight);
const STATE_RANGE_START = stateKey(new Uint8Array(0));
const STATE_RANGE_END = Buffer.from([0x01]);

function assertBytes(value: unknown, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
}

function assertHeight(height: number, what = "height"): void {
  if (!Number.isSafeInteger(height) || height < 0) throw new RangeError(`${what} ${height} is not a safe non-negative integer`);
}

export class ReplicaStore {
  private readonly counts: StoreCounters = { blocksCommitted: 0, certificatesAttached: 0, recordsAppended: 0, recordLogCompactions: 0, bodiesPruned: 0 };
  private closed = false;

  private constructor(
    private readonly env: StorageEnvironment,
    readonly sync: SyncPolicy,
    private readonly records: RecordFile,
  ) {}

  /** Opens the record log beside `env`; closes `env` and releases its lock when that fails. */
  private static async withRecords(env: StorageEnvironment, sync: SyncPolicy, compactionThresholdMin: number, mode: "write" | "read"): Promise<ReplicaStore> {
    try {
      const records = await RecordFile.open({ directory: env.directory, sync, compactionThresholdMin, databases: env, mode });
      return new ReplicaStore(env, sync, records);
    } catch (error) {
      await env.root.close();
      env.lock.release();
      throw error;
    }
  }

  /**
   * Opens (creating if needed) the store in `options.directory`. Throws `StorageRefusedError`
   * for a directory of another cluster, replica or format version, or one in use.
   */
  static async open(options: ReplicaStoreOptions): Promise<ReplicaStore> {
    const sync = options.sync ?? "durable";
    if (sync !== "durable" && sync !== "none") throw new RangeError(`sync policy ${String(sync)}: expected "durable" or "none"`);
    if (typeof options.clusterId !== "string" || options.clusterId.length === 0) throw new TypeError("ReplicaStore.open: clusterId must be a non-empty string");
    if (!Number.isSafeInteger(options.replicaId) || options.replicaId < 0) throw new RangeError(`ReplicaStore.open: replicaId ${options.replicaId} is not a non-negative integer`);
    const threshold = options.recordLogCompactionThreshold ?? RECORD_LOG_COMPACTION_THRESHOLD_DEFAULT;
    if (!Number.isSafeInteger(threshold) || threshold < 1) throw new RangeError(`ReplicaStore.open: recordLogCompactionThreshold ${threshold} is not a positive integer`);
    const env = await openEnvironment({ directory: options.directory, clusterId: options.clusterId, replicaId: options.replicaId, sync });
    return ReplicaStore.withRecords(env, sync, threshold, "write");
  }

  get directory(): string {
    return this.env.directory;
  }

  /**
   * Opens an existing store of any replica of `clusterId` for auditing (`bulwark verify`): it is
   * never created, and it is opened without sync since the auditor writes nothing: the record
   * log is read only (appends are refused, an earlier build's store is not migrated). Throws
   * `StorageRefusedError` for a missing directory or one that holds no store of the cluster.
   */
  static async openExisting(options: { readonly directory: string; readonly clusterId: string }): Promise<ReplicaStore> {
    const { directory, clusterId } = options;
    if (!existsSync(join(directory, "data.mdb"))) {
      throw new StorageRefusedError("not-a-bulwark-store", directory, `${directory} holds no Bulwark store (no data.mdb): point at a replica's data directory`);
    }
    const env = await openEnvironment({ directory, clusterId, replicaId: "any", sync: "none" });
    return ReplicaStore.withRecords(env, "none", RECORD_LOG_COMPACTION_THRESHOLD_DEFAULT, "read");
  }

  /** Waits for pending writes, closes the record log and the environment, and releases the directory. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.records.close();
    } finally {
      await this.env.root.close();
      this.env.lock.release();
    }
  }

  counters(): Readonly<StoreCounters> {
    return { ...this.counts };
  }

  // -------------------------------------------------------------------------------------------
  // Blocks and state

  /**
   * Stores block `height` with its state changes and applied-state metadata in one transaction.
   * `height` must follow the applied height (any height on an empty store). Rejects, writing
   * nothing, when it does not. Every array is copied before this returns, so the caller may
   * reuse them at once (the pipeline passes the state tree's own arrays).
   */
  commitBlock(block: BlockCommit): Promise<void> {
    const { height, header, body, certificate, stateWrites, meta } = block;
    assertHeight(height);
    assertBytes(header, "commitBlock: header");
    assertBytes(body, "commitBlock: body");
    if (certificate !== undefined) assertBytes(certificate, "commitBlock: certificate");
    assertHeight(meta.seq, "commitBlock: meta.seq");
    assertBytes(meta.stateDigest, "commitBlock: meta.stateDigest");
    // Build every key and frame before queuing: a bad argument fails here, not mid-transaction.
    const stateFrames = stateWrites.map(([key, value], position) => {
      assertBytes(key, `commitBlock: state write ${position} key`);
      if (key.length > STATE_KEY_BYTES_MAX) throw new RangeError(`commitBlock: state key of ${key.length} bytes; the most is ${STATE_KEY_BYTES_MAX}`);
      if (value !== null) assertBytes(value, `commitBlock: state write ${position} value`);
      const stored = stateKey(key);
      return { stored, framed: value === null ? null : frameValue(DATABASE_NAMES.state, stored, value) };
    });
    const key = uint64Key(height);
    const framedHeader = frameValue(DATABASE_NAMES.headers, key, header);
    const framedBody = frameValue(DATABASE_NAMES.bodies, key, body);
    const framedCertificate = certificate === undefined ? undefined : frameValue(DATABASE_NAMES.certificates, key, certificate);
    const framedApplied = frameValue(DATABASE_NAMES.meta, APPLIED_STATE_KEY, encodeAppliedState({ height, seq: meta.seq, stateDigest: meta.stateDigest }));
    const { headers, bodies, certificates, state, meta: metaDatabase } = this.env;
    // The callback runs holding LMDB's write lock, on this thread: it checks and puts, nothing else.
    return this.env.root.childTransaction(() => {
      const current = this.readAppliedState();
      if (current !== undefined && height !== current.height + 1) {
        throw new RangeError(`commitBlock: height ${height} does not follow the applied height ${current.height}`);
      }
      if (headers.doesExist(key)) throw new RangeError(`commitBlock: height ${height} is already stored`);
      headers.putSync(key, framedHeader);
      bodies.putSync(key, framedBody);
      if (framedCertificate !== undefined) certificates.putSync(key, framedCertificate);
      for (const { stored, framed } of stateFrames) {
        if (framed === null) state.removeSync(stored);
        else state.putSync(stored, framed);
      }
      metaDatabase.putSync(APPLIED_STATE_KEY, framedApplied);
    }).then(() => {
      this.counts.blocksCommitted++;
    });
  }

  /** Stores (or replaces) the commit certificate of stored block `height`. */
  attachCertificate(height: number, certificate: Uint8Array): Promise<void> {
    assertHeight(height);
    assertBytes(certificate, "attachCertificate: certificate");
    const key = uint64Key(height);
    const framed = frameValue(DATABASE_NAMES.certificates, key, certificate);
    return this.env.root.childTransaction(() => {
      if (!this.env.headers.doesExist(key)) throw new RangeError(`attachCertificate: no block at height ${height}`);
      this.env.certificates.putSync(key, framed);
    }).then(() => {
      this.counts.certificatesAttached++;
    });
  }

  /** The highest stored block height; undefined for a store without blocks. */
  latestHeight(): number | undefined {
    for (const key of this.env.headers.getKeys({ reverse: true, limit: 1 })) return this.heightOf(DATABASE_NAMES.headers, key);
    return undefined;
  }

  getBlock(height: number): StoredBlock | undefined {
    assertHeight(height);
    const key = uint64Key(height);
    return this.reading((transaction) => {
      const header = this.read(this.env.headers, DATABASE_NAMES.headers, key, transaction);
      if (header === undefined) return undefined;
      const pruned = height < this.retentionHeightIn(transaction);
      const body = pruned ? undefined : this.read(this.env.bodies, DATABASE_NAMES.bodies, key, transaction);
      if (!pruned && body === undefined) throw new StorageCorruptionError(DATABASE_NAMES.bodies, hex(key), `block ${height} has a header but no body`);
      const certificate = this.read(this.env.certificates, DATABASE_NAMES.certificates, key, transaction);
      return { height, header, body, certificate };
    });
  }

  /** Headers (with certificates) of the stored blocks in [from, to], at most `countMax`. */
  getHeaders(from: number, to: number, countMax = HEADERS_PER_READ_MAX): StoredHeader[] {
    assertHeight(from, "getHeaders: from");
    assertHeight(to, "getHeaders: to");
    if (!Number.isSafeInteger(countMax) || countMax < 1 || countMax > HEADERS_PER_READ_MAX) {
      throw new RangeError(`getHeaders: countMax ${countMax} is outside 1 .. ${HEADERS_PER_READ_MAX}`);
    }
    if (to < from) return [];
    return this.reading((transaction) => {
      const headers: StoredHeader[] = [];
      for (const { key, value } of this.env.headers.getRange({ start: uint64Key(from), end: uint64Key(to), inclusiveEnd: true, limit: countMax, transaction })) {
        const height = this.heightOf(DATABASE_NAMES.headers, key);
        const header = unframeValue(DATABASE_NAMES.headers, key, value);
        const certificate = this.read(this.env.certificates, DATABASE_NAMES.certificates, key, transaction);
        headers.push({ height, header, certificate });
      }
      return headers;
    });
  }

  /** Which block the stored state reflects; undefined before the first block. */
  appliedState(): AppliedState | undefined {
    return this.readAppliedState();
  }

  getState(key: Uint8Array): Uint8Array | undefined {
    assertBytes(key, "getState: key");
    if (key.length > STATE_KEY_BYTES_MAX) return undefined;
    return this.read(this.env.state, DATABASE_NAMES.state, stateKey(key), undefined);
  }

  /**
   * Up to `entriesMax` state entries in key order after `after`, from one consistent version.
   * For snapshots and state transfer that resume from the last key they received.
   */
  readStateChunk(options: StateChunkOptions = {}): StateChunk {
    return this.reading((transaction) => this.readStateChunkIn(transaction, options));
  }

  /** Pins the current state for chunked reads (see `PinnedState`). */
  pinState(): PinnedState {
    if (this.closed) throw new Error("pinState: the store is closed");
    const transaction = this.env.root.useReadTransaction();
    let released = false;
    const appliedHeight = this.readAppliedState(transaction)?.height;
    return {
      appliedHeight,
      readChunk: (options: StateChunkOptions = {}): StateChunk => {
        if (released || this.closed) throw new Error("PinnedState.readChunk: the pin was released");
        return this.readStateChunkIn(transaction, options);
      },
      release: (): void => {
        if (released) return;
        released = true;
        transaction.done();
      },
    };
  }

  /**
   * Replaces the whole state with a verified snapshot at `install.height` in one transaction:
   * every old state entry goes, the snapshot's entries, the header (and certificate) of block
   * `height` and the applied-state metadata are written, and blocks stored above `height` (a
   * diverged or abandoned suffix) are deleted, so the chain continues at `height + 1`. Headers
   * below stay: they are the same chain's history (with gaps, for a replica that was far behind).
   * No body travels with a snapshot, so the body retention height moves to `height + 1`.
   */
  installState(install: StateInstall): Promise<void> {
    const { height, header, certificate, meta } = install;
    assertHeight(height);
    if (height < 1) throw new RangeError("installState: height must be at least 1");
    assertBytes(header, "installState: header");
    if (certificate !== undefined) assertBytes(certificate, "installState: certificate");
    assertHeight(meta.seq, "installState: meta.seq");
    assertBytes(meta.stateDigest, "installState: meta.stateDigest");
    const frames: Array<[Buffer, ReturnType<typeof frameValue>]> = [];
    for (const [key, value] of install.entries) {
      assertBytes(key, "installState: entry key");
      assertBytes(value, "installState: entry value");
      if (key.length > STATE_KEY_BYTES_MAX) throw new RangeError(`installState: state key of ${key.length} bytes; the most is ${STATE_KEY_BYTES_MAX}`);
      const stored = stateKey(key);
      frames.push([stored, frameValue(DATABASE_NAMES.state, stored, value)]);
    }
    const key = uint64Key(height);
    const applied = encodeAppliedState({ height, seq: meta.seq, stateDigest: meta.stateDigest });
    const { headers, bodies, certificates, state, meta: metaDatabase } = this.env;
    return this.env.root.childTransaction(() => {
      const old: Uint8Array[] = [];
      for (const stored of state.getKeys({ start: STATE_RANGE_START, end: STATE_RANGE_END })) old.push(stored);
      for (const stored of old) state.removeSync(stored);
      for (const [stored, framed] of frames) state.putSync(stored, framed);
      for (const database of [headers, bodies, certificates]) {
        for (const above of [...database.getKeys({ start: uint64Key(height + 1) })]) database.removeSync(above);
      }
      headers.putSync(key, frameValue(DATABASE_NAMES.headers, key, header));
      // The bodies up to `height` did not travel with the state: the store holds block `height`
      // as a header only, which is what the retention height says of the bodies below it.
      const retention = Math.max(height + 1, this.retentionHeightIn(undefined));
      metaDatabase.putSync(RETENTION_KEY, frameValue(DATABASE_NAMES.meta, RETENTION_KEY, uint64Key(retention)));
      if (certificate !== undefined) certificates.putSync(key, frameValue(DATABASE_NAMES.certificates, key, certificate));
      else certificates.removeSync(key);
      metaDatabase.putSync(APPLIED_STATE_KEY, frameValue(DATABASE_NAMES.meta, APPLIED_STATE_KEY, applied));
    });
  }

  /**
   * Stores blocks of the chain's history that this store lacks (after a state transfer, the
   * blocks below the installed checkpoint), all in one transaction. The caller verified them
   * (hash links down from a certified header, bodies against their roots, certificates). Each
   * height must be at most the applied height; a stored header there is replaced (by the same
   * bytes, since the caller checked its hash), a body or certificate is written when given.
   */
  storeHistory(blocks: readonly { readonly height: number; readonly header: Uint8Array; readonly body?: Uint8Array; readonly certificate?: Uint8Array }[]): Promise<void> {
    const frames = blocks.map(({ height, header, body, certificate }) => {
      assertHeight(height);
      if (height < 1) throw new RangeError("storeHistory: heights start at 1");
      assertBytes(header, "storeHistory: header");
      if (body !== undefined) assertBytes(body, "storeHistory: body");
      if (certificate !== undefined) assertBytes(certificate, "storeHistory: certificate");
      const key = uint64Key(height);
      return {
        height,
        key,
        header: frameValue(DATABASE_NAMES.headers, key, header),
        body: body === undefined ? undefined : frameValue(DATABASE_NAMES.bodies, key, body),
        certificate: certificate === undefined ? undefined : frameValue(DATABASE_NAMES.certificates, key, certificate),
      };
    });
    const { headers, bodies, certificates } = this.env;
    return this.env.root.childTransaction(() => {
      const applied = this.readAppliedState()?.height ?? 0;
      for (const frame of frames) {
        if (frame.height > applied) throw new RangeError(`storeHistory: height ${frame.height} is above the applied height ${applied}`);
        headers.putSync(frame.key, frame.header);
        if (frame.body !== undefined) bodies.putSync(frame.key, frame.body);
        if (frame.certificate !== undefined) certificates.putSync(frame.key, frame.certificate);
      }
    });
  }

  /**
   * Lowers the body retention height to `height` once every body from `height` up to the current
   * retention height is stored (a backfill brought them back). Resolves with the retention height
   * in force afterwards: unchanged when a body is missing.
   */
  lowerBodyRetention(height: number): Promise<number> {
    assertHeight(height);
    return this.env.root.childTransaction(() => {
      const current = this.retentionHeightIn(undefined);
      if (height >= current) return current;
      for (let probe = Math.max(1, height); probe < current; probe++) {
        if (!this.env.bodies.doesExist(uint64Key(probe))) return current;
      }
      this.env.meta.putSync(RETENTION_KEY, frameValue(DATABASE_NAMES.meta, RETENTION_KEY, uint64Key(height)));
      return height;
    });
  }

  /**
   * The lowest height L such that headers L .. `from` are all stored (1 for a complete history);
   * `from` + 1 when the header at `from` itself is missing.
   */
  contiguousHeadersFrom(from: number): number {
    assertHeight(from);
    let low = from + 1;
    while (low > 1) {
      const start = Math.max(1, low - HEADERS_PER_READ_MAX);
      const heights: number[] = [];
      for (const key of this.env.headers.getKeys({ start: uint64Key(start), end: uint64Key(low) })) heights.push(this.heightOf(DATABASE_NAMES.headers, key));
      for (let index = heights.length - 1; index >= 0; index--) {
        if (heights[index] !== low - 1) return low;
        low--;
      }
      if (low > start) return low;
    }
    return low;
  }

  /**
   * Heights from `from` up whose header is stored without a commit certificate, ascending, at most
   * `countMax` (a replica killed before its peers' signatures arrived leaves such heights; the
   * runtime fetches their certificates from peers). Walks the two key ranges side by side, so it
   * reads keys only, never values.
   */
  uncertifiedHeights(from = 1, countMax = HEADERS_PER_READ_MAX): number[] {
    assertHeight(from);
    if (!Number.isSafeInteger(countMax) || countMax < 1) throw new RangeError(`uncertifiedHeights: countMax ${countMax} must be a positive integer`);
    const found: number[] = [];
    this.reading((transaction) => {
      const certified = this.env.certificates.getKeys({ start: uint64Key(from), transaction })[Symbol.iterator]();
      let next = certified.next();
      for (const key of this.env.headers.getKeys({ start: uint64Key(from), transaction })) {
        const height = this.heightOf(DATABASE_NAMES.headers, key);
        while (!next.done && this.heightOf(DATABASE_NAMES.certificates, next.value) < height) next = certified.next();
        if (!next.done && this.heightOf(DATABASE_NAMES.certificates, next.value) === height) continue;
        found.push(height);
        if (found.length >= countMax) break;
      }
      certified.return?.();
    });
    return found;
  }

  private readStateChunkIn(transaction: ReadTransaction, options: StateChunkOptions): StateChunk {
    const entriesMax = options.entriesMax ?? STATE_CHUNK_ENTRIES_DEFAULT;
    const bytesMax = options.bytesMax ?? STATE_CHUNK_BYTES_DEFAULT;
    if (!Number.isSafeInteger(entriesMax) || entriesMax < 1 || entriesMax > STATE_CHUNK_ENTRIES_MAX) {
      throw new RangeError(`readStateChunk: entriesMax ${entriesMax} is outside 1 .. ${STATE_CHUNK_ENTRIES_MAX}`);
    }
    if (!Number.isSafeInteger(bytesMax) || bytesMax < 1) throw new RangeError(`readStateChunk: bytesMax ${bytesMax} is not a positive integer`);
    if (options.after !== undefined) {
      assertBytes(options.after, "readStateChunk: after");
      if (options.after.length > STATE_KEY_BYTES_MAX) throw new RangeError(`readStateChunk: a cursor of ${options.after.length} bytes is longer than any state key`);
    }
    const start = options.after === undefined ? STATE_RANGE_START : stateKey(options.after);
    {
      const entries: Array<[Uint8Array, Uint8Array]> = [];
      let byteCount = 0;
      let done = true;
      const range = this.env.state.getRange({ start, end: STATE_RANGE_END, exclusiveStart: options.after !== undefined, transaction });
      for (const { key, value } of range) {
        if (entries.length >= entriesMax || byteCount >= bytesMax) {
          done = false;
          break;
        }
        const applicationKey = applicationKeyOf(key);
        if (applicationKey === undefined) throw new StorageCorruptionError(DATABASE_NAMES.state, hex(key), "not a state key");
        const payload = unframeValue(DATABASE_NAMES.state, key, value);
        entries.push([applicationKey, payload]);
        byteCount += applicationKey.length + payload.length;
      }
      const last = entries[entries.length - 1];
      return { entries, cursor: last?.[0], done, appliedHeight: this.readAppliedState(transaction)?.height };
    }
  }

  // -------------------------------------------------------------------------------------------
  // Consensus records

  /**
   * Appends the records of one `Ready`, compacting the log when due; resolves once stored under
   * the sync policy. Appends run one at a time in call order. After one fails, every later one
   * is refused: the runtime stops the replica.
   */
  async appendRecords(records: readonly PersistRecord[]): Promise<RecordAppendResult> {
    const result = await this.records.append(records);
    this.counts.recordsAppended += records.length;
    if (result.compacted) this.counts.recordLogCompactions++;
    return result;
  }

  /** The record log in append order, for `PbftReplica`'s restore. */
  loadRecords(): PersistRecord[] {
    return this.records.load();
  }

  /** Rewrites the record log as `compactRecords` of it now. */
  async compactRecordLog(): Promise<RecordAppendResult> {
    const result = await this.records.compact();
    this.counts.recordLogCompactions++;
    return result;
  }

  get recordCount(): number {
    return this.records.size;
  }

  /** What opening the record log repaired: a torn tail cut off, records migrated from LMDB. */
  get recordLogRecovery(): RecordFileRecovery {
    return this.records.recovery;
  }

  // -------------------------------------------------------------------------------------------
  // Retention

  /**
   * Heights below this have no body (0: nothing pruned). Headers and certificates stay, so the
   * chain still verifies link by link; the bodies themselves are gone.
   */
  bodyRetentionHeight(): number {
    return this.retentionHeightIn(undefined);
  }

  /**
   * Deletes the bodies of every block below `height` and records `height` as the retention
   * height; it never moves down. `height` may be at most one past the latest block. The runtime
   * must keep the bodies peers may still fetch (the blocks after the last stable checkpoint).
   * Resolves with the number of bodies deleted.
   */
  async pruneBodiesBelow(height: number): Promise<number> {
    assertHeight(height);
    const first = await this.env.root.childTransaction(() => {
      const next = (this.readAppliedState()?.height ?? -1) + 1;
      if (height > next) throw new RangeError(`pruneBodiesBelow: ${height} is above the next block height ${next}`);
      const retention = Math.max(height, this.retentionHeightIn(undefined));
      this.env.meta.putSync(RETENTION_KEY, frameValue(DATABASE_NAMES.meta, RETENTION_KEY, uint64Key(retention)));
      return this.deleteBodiesBelow(retention);
    });
    // Later batches, each its own transaction; the retention height is already durable, so an
    // interrupted prune leaves only invisible bodies, which the next call deletes.
    let deleted = first;
    let batch = first;
    while (batch === PRUNE_BATCH_BODIES) {
      batch = await this.env.root.childTransaction(() => this.deleteBodiesBelow(this.retentionHeightIn(undefined)));
      deleted += batch;
    }
    this.counts.bodiesPruned += deleted;
    return deleted;
  }

  private deleteBodiesBelow(retention: number): number {
    const keys: Uint8Array[] = [];
    for (const key of this.env.bodies.getKeys({ end: uint64Key(retention), limit: PRUNE_BATCH_BODIES })) keys.push(key);
    for (const key of keys) this.env.bodies.removeSync(key);
    return keys.length;
  }

  // -------------------------------------------------------------------------------------------
  // Helpers

  /** Runs `read` in one read transaction, so its reads see one version of the store. */
  private reading<T>(read: (transaction: ReadTransaction) => T): T {
    const transaction = this.env.root.useReadTransaction();
    try {
      return read(transaction);
    } finally {
      transaction.done();
    }
  }

  private read(
    database: BinaryDatabase,
    name: (typeof DATABASE_NAMES)[keyof typeof DATABASE_NAMES],
    key: Uint8Array,
    transaction: ReadTransaction | undefined,
  ): Uint8Array | undefined {
    const stored = database.get(key, transaction === undefined ? undefined : { transaction });
    return stored === undefined ? undefined : unframeValue(name, key, stored);
  }

  private readAppliedState(transaction?: ReadTransaction): AppliedState | undefined {
    const payload = this.read(this.env.meta, DATABASE_NAMES.meta, APPLIED_STATE_KEY, transaction);
    return payload === undefined ? undefined : decodeAppliedState(payload);
  }

  private retentionHeightIn(transaction: ReadTransaction | undefined): number {
    const payload = this.read(this.env.meta, DATABASE_NAMES.meta, RETENTION_KEY, transaction);
    if (payload === undefined) return 0;
    const height = uint64OfKey(payload);
    if (height === undefined) throw new StorageCorruptionError(DATABASE_NAMES.meta, hex(RETENTION_KEY), "retention height does not decode");
    return height;
  }

  private heightOf(database: string, key: Uint8Array): number {
    const height = uint64OfKey(key);
    if (height === undefined) throw new StorageCorruptionError(database, hex(key), "not a height key");
    return height;
  }
}
