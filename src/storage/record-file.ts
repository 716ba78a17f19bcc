// The consensus record log as an append-only file, `records.log` in the store's directory: the
// `PersistRecord`s the PBFT core emits, in emission order, which `PbftReplica`'s restore replays
// after a restart. The runtime sends a `Ready`'s messages only after its records are appended
// (DESIGN.md's ordering rule, seed 003), so an append is on the critical path of every batch. It
// was an LMDB transaction, queued on LMDB's one writer behind block-and-state transactions; here
// it is one write and one fdatasync of a file nothing else writes (issue 5; record-log.ts).
//
//   header   8 bytes magic "BWRECLOG" | u32 big-endian format version
//   frame    u32 big-endian length field | u32 big-endian CRC-32 of length field and payload | payload
//
// where the payload is one `encodeRecord` and the length field is the payload's length, with
// bit 31 set when the next frame belongs to the same append. Appends are serialized; each writes
// all its frames in one positional write at the end of the log and resolves after fdatasync
// (policy "durable") or after the write (policy "none"). A write or sync that fails leaves the
// file's end unknown, so the log then refuses every later append; the runtime treats a rejected
// append as fatal.
//
// A crash can cut the last append short, and only the last: every earlier one was synced before
// the next began. Open truncates such a torn tail (the last append's frames, when one of them is
// incomplete, or the last frame is complete but fails its checksum, or the append stops before a
// frame without bit 31) and reports its size: none of its records was acknowledged, and the
// continuation bit keeps an append whole, as one LMDB transaction did. Damage anywhere else is
// `StorageCorruptionError`. A frame whose length points past the end of the file is torn only if
// no valid frame ends exactly at the end after it: a damaged length in the middle of the log
// would otherwise truncate acknowledged records as if they were a torn tail.
//
// Compaction writes `compactRecords(log ++ new records)` to records.log.tmp, syncs it, renames it
// over records.log and syncs the directory, so a crash leaves the old log (without the append
// that compacted) or the compacted one with it; open deletes a leftover temporary file. It runs
// when an append carries a stable-checkpoint record or takes the log past its bound; afterwards
// the bound is at least twice what compaction kept, so a large live log (a long view change) is
// not rewritten on every append. In memory the log keeps its end offset and a small index of its
// frames (offset, length, and each record's kind, view and seq: what `compactRecords` decides
// by), so compaction reads back only the frames it keeps; it used to read and decode the whole
// file, which under load (a pre-prepare of 1,024 requests is about 200 KB, and the prepared
// certificate carries it again) was 470-640 ms of the event loop at every stable checkpoint, a
// second without commits for the cluster (docs/PERFORMANCE.md). `load` reads the file back, as
// the LMDB log re-read its sub-database.

import assert from "node:assert/strict";
import { fdatasyncSync, readSync, writeSync } from "node:fs";
import { type FileHandle, open, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";

import { type RecordKey, compactRecordsBy, recordKeyOf } from "../consensus/pbft/records.js";
import type { PersistRecord } from "../consensus/pbft/types.js";
import type { SyncPolicy } from "./environment.js";
import { RecordDecodeError, StorageCorruptionError, StorageError, StorageRefusedError } from "./errors.js";
import { hex, uint64Key } from "./layout.js";
import { decodeRecord, encodeRecord } from "./record-codec.js";
import {
  type RecordAppendResult,
  type RecordDatabases,
  type StoredRecord,
  hasLegacyRecords,
  formatVersionIsOlder,
  hasRecordFileMarker,
  markRecordFileInPlace,
  readLegacyRecords,
} from "./record-log.js";

export const RECORD_FILE_NAME = "records.log";
export const RECORD_FILE_TEMPORARY_NAME = "records.log.tmp";
/** Bump when the header or frame layout changes; a file of another version is refused. */
export const RECORD_FILE_FORMAT_VERSION = 1;

const MAGIC = Buffer.from("BWRECLOG", "latin1");
export const RECORD_FILE_HEADER_BYTES = MAGIC.length + 4;
export const RECORD_FRAME_HEADER_BYTES = 8;
/** Bit 31 of the length field: the next frame belongs to the same append. */
const CONTINUED = 0x8000_0000;
/** The rest of the length field. */
export const RECORD_BYTES_MAX = 0x7fff_ffff;
/** Appends queued at once; the runtime awaits each before the next, so more means a bug. */
const APPENDS_QUEUED_MAX = 1024;
/** Checksum bytes the torn-tail check may spend looking for a frame that ends the file. */
const TAIL_SCAN_CHECKSUM_BYTES_MAX = 256 * 1024 * 1024;

export interface RecordFileOptions {
  readonly directory: string;
  readonly sync: SyncPolicy;
  /** Records the log may hold before an append compacts it. */
  readonly compactionThresholdMin: number;
  /** The store's meta sub-database and the "records" one where earlier builds kept the log. */
  readonly databases: RecordDatabases;
  /**
   * "read" is the auditor's open: nothing is created, migrated, truncated or deleted, appends
   * are refused, and a store of an earlier build reads its records from LMDB.
   */
  readonly mode?: "write" | "read";
}

/** What open found and repaired. */
export interface RecordFileRecovery {
  /** Bytes of an unacknowledged append cut from the end of the file (in "read" mode: skipped). */
  readonly tornTailBytes: number;
  /** Records moved from LMDB's "records" sub-database into a new records.log. */
  readonly migratedRecords: number;
}

/**
 * Where one record's frame is in the file, with what compaction decides by: compaction reads
 * back only the frames it keeps, instead of reading and decoding the whole log (tens of MB of
 * pre-prepares at a checkpoint under load, half a second of a replica's event loop).
 */
interface FrameEntry {
  readonly key: RecordKey;
  /** File offset of the frame's header. */
  readonly offset: number;
  /** Bytes of its payload (the encoded record). */
  readonly length: number;
}

/** What open read: the records and where the log ends, or the damage that stops it being read. */
interface ReadFile {
  readonly stored: StoredRecord[];
  /** The file offset just past the last whole append. */
  readonly end: number;
  readonly fileBytes: number;
  readonly damage: StorageCorruptionError | undefined;
}

interface ParsedFrames {
  /** The records of every whole append. */
  readonly stored: StoredRecord[];
  /** Bytes from the start of the parsed region up to the end of the last whole append. */
  readonly validBytes: number;
}

export class RecordFile {
  private queue: Promise<unknown> = Promise.resolve();
  private queued = 0;
  /** Set once an append fails: what every later append rejects with. */
  private refusal: StorageError | undefined;
  private closing: Promise<void> | undefined;
  /** Moving average of an append's write and sync (on either path), in ms. */
  private appendMsAverage = 0;

  private constructor(
    private readonly options: RecordFileOptions,
    /** Undefined only in "read" mode for a store of an earlier build, whose records are in LMDB. */
    private handle: FileHandle | undefined,
    /** The file offset just past the last acknowledged frame. */
    private endOffset: number,
    /** Every record's frame, in file order (empty for a store of an earlier build, whose records are in LMDB). */
    private frames: FrameEntry[],
    private compactionThreshold: number,
    readonly recovery: RecordFileRecovery,
    /**
     * Damage open found in the frames. The store still opens, as it did when the log was in LMDB:
     * `load` throws this and appends are refused, so the runtime stops with it at restore.
     */
    private readonly damage: StorageCorruptionError | undefined,
  ) {
    this.refusal = damage;
  }

  /**
   * Opens the log in `options.directory`. The first open of a store creates records.log, with
   * the records of LMDB's "records" sub-database when the store comes from an earlier build.
   * Throws `StorageRefusedError` for a records.log that is not one, is missing or is another
   * store's, and `StorageCorruptionError` for damaged records in LMDB to migrate. Damage inside
   * records.log does not stop the open (see the constructor's `damage`).
   */
  static async open(options: RecordFileOptions): Promise<RecordFile> {
    const { directory, sync, compactionThresholdMin, databases } = options;
    assert.ok(Number.isSafeInteger(compactionThresholdMin) && compactionThresholdMin > 0, "record log: the compaction threshold must be a positive integer");
    const path = join(directory, RECORD_FILE_NAME);
    const marked = hasRecordFileMarker(databases.meta);
    const existed = await isFile(path, directory);
    if (!existed && marked) {
      throw new StorageRefusedError(
        "not-a-bulwark-store",
        directory,
        `${path} is missing: the store kept its consensus records there, and a replica started without them could vote against its own earlier votes. ` +
          `Put the file back (copy the whole data directory, not data.mdb alone), or move the directory aside and let the replica rejoin by state transfer`,
      );
    }
    if (options.mode === "read") {
      if (!existed) return new RecordFile(options, undefined, 0, [], compactionThresholdMin, { tornTailBytes: 0, migratedRecords: 0 }, undefined);
      const handle = await openHandle(path, "r", directory);
      return RecordFile.withHandle(handle, async () => {
        const { stored, end, fileBytes, damage } = await readWholeFile(handle, directory);
        return new RecordFile(options, handle, end, frameEntriesOf(stored), compactionThresholdMin, { tornTailBytes: fileBytes - end, migratedRecords: 0 }, damage);
      });
    }
    if (marked && hasLegacyRecords(databases.records)) {
      throw new StorageRefusedError(
        "format-version",
        directory,
        `${directory} holds consensus records in LMDB's "records" database although its log moved to ${RECORD_FILE_NAME}: an earlier build of Bulwark ran on it after this one, ` +
          `and its votes may contradict those in ${RECORD_FILE_NAME}. Move the directory aside and let the replica rejoin by state transfer`,
      );
    }
    await rm(join(directory, RECORD_FILE_TEMPORARY_NAME), { force: true });
    const migrating = existed ? [] : readLegacyRecords(databases.records);
    const handle = existed
      ? await openHandle(path, "r+", directory)
      : await replaceFile(directory, framed(migrating.map((stored) => stored.encoded), fileHeader()), sync);
    return RecordFile.withHandle(handle, async () => {
      const { stored, end, fileBytes, damage } = await readWholeFile(handle, directory);
      if (!marked) {
        // A file without the marker was created by an open that stopped before the marker's
        // transaction, so it holds exactly the sub-database's records; anything else is foreign.
        if (existed) refuseUnlessSame(directory, stored, readLegacyRecords(databases.records));
        await markRecordFileInPlace(databases, RECORD_FILE_FORMAT_VERSION);
      } else if (formatVersionIsOlder(databases.meta)) {
        // Marked by a build that still wrote format version 1: make older builds refuse it now.
        await markRecordFileInPlace(databases, RECORD_FILE_FORMAT_VERSION);
      }
      if (end < fileBytes) {
        await handle.truncate(end);
        if (sync === "durable") await handle.datasync();
      }
      return new RecordFile(options, handle, end, frameEntriesOf(stored), compactionThresholdMin, { tornTailBytes: fileBytes - end, migratedRecords: migrating.length }, damage);
    });
  }

  /** Runs `body`; closes `handle` when it throws. */
  private static async withHandle(handle: FileHandle, body: () => Promise<RecordFile>): Promise<RecordFile> {
    try {
      return await body();
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  get size(): number {
    return this.handle === undefined ? this.options.databases.records.getKeysCount() : this.frames.length;
  }

  /**
   * Appends `records` in order after every earlier append; resolves once they are stored under
   * the sync policy. Throws at once, writing nothing, for a record the codec refuses.
   */
  append(records: readonly PersistRecord[]): Promise<RecordAppendResult> {
    assert.ok(this.options.mode !== "read", "record log: opened for reading only");
    const encoded = records.map(encodeRecord);
    for (const bytes of encoded) if (bytes.length > RECORD_BYTES_MAX) throw new RangeError(`record log: a record of ${bytes.length} bytes; the most is ${RECORD_BYTES_MAX}`);
    const keys = records.map(recordKeyOf);
    const stable = keys.some((key) => key.kind === "stable-checkpoint");
    return this.enqueue(async (handle) => {
      if (records.length === 0) return { compacted: false, recordCount: this.frames.length };
      if (stable || this.frames.length + records.length > this.compactionThreshold) return this.compactWith(handle, keys, encoded);
      const frames = framed(encoded);
      // While the disk syncs fast, written and synced on the event loop rather than through the
      // thread pool: each append waits for its fdatasync before its votes leave anyway, and the
      // pool's hand-offs (a futex wake, an eventfd, a promise per call) cost more CPU than the
      // wait. One client's requests: 5.0 -> 3.9 ms of CPU per batch per replica, p50 11.6 ->
      // 8.7 ms; closed-loop throughput unchanged (docs/PERFORMANCE.md). Once appends average
      // RECORD_SYNC_INLINE_MS_MAX or more (a slow disk), the pool does them, so that client
      // intake, reads and metrics go on during the sync. Appends on both paths are timed. The
      // pool's durations also count its hand-offs and the loop's turns, so a busy replica stays
      // on the pool longer; timing only the loop's appends (with one in 32 sent there to probe)
      // kept replicas on the pool for dozens of batches after each slow sync, at 10-15 % more
      // CPU per batch (one client, six A/B pairs), so that was dropped.
      const startedMs = recordAppendIo.now();
      if (this.appendsOnLoop()) {
        writeFullySync(handle, frames, this.endOffset);
        if (this.options.sync === "durable") recordAppendIo.datasync(handle.fd);
      } else {
        await writeFully(handle, frames, this.endOffset);
        if (this.options.sync === "durable") await handle.datasync();
      }
      this.appendMsAverage += SYNC_AVERAGE_WEIGHT * (recordAppendIo.now() - startedMs - this.appendMsAverage);
      this.frames.push(...frameEntriesFrom(this.endOffset, keys, encoded));
      this.endOffset += frames.length;
      return { compacted: false, recordCount: this.frames.length };
    });
  }

  /** Whether the next append runs on the event loop (see `append`). */
  private appendsOnLoop(): boolean {
    const path = recordAppendIo.path;
    return path === "auto" ? this.appendMsAverage < RECORD_SYNC_INLINE_MS_MAX : path === "inline";
  }

  /** Rewrites the log as its compaction now; for an operator or a test, appends do this themselves. */
  compact(): Promise<RecordAppendResult> {
    assert.ok(this.options.mode !== "read", "record log: opened for reading only");
    return this.enqueue((handle) => this.compactWith(handle, [], []));
  }

  /**
   * Every acknowledged record, in append order: an append still in flight is not included.
   * Throws `StorageCorruptionError` for any damaged frame.
   */
  load(): PersistRecord[] {
    assert.ok(this.closing === undefined, "record log: load after close");
    if (this.damage !== undefined) throw this.damage;
    if (this.handle === undefined) return readLegacyRecords(this.options.databases.records).map((stored) => stored.record);
    const bytes = Buffer.allocUnsafe(this.endOffset - RECORD_FILE_HEADER_BYTES);
    for (let read = 0; read < bytes.length; ) {
      const count = readSync(this.handle.fd, bytes, read, bytes.length - read, RECORD_FILE_HEADER_BYTES + read);
      if (count === 0) throw shortFile(RECORD_FILE_HEADER_BYTES + read, this.endOffset);
      read += count;
    }
    return parseFrames(bytes, "refuse").stored.map((stored) => stored.record);
  }

  /** Waits for queued appends and closes the file. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.queue.then(() => this.handle?.close());
    return this.closing;
  }

  private enqueue(task: (handle: FileHandle) => Promise<RecordAppendResult>): Promise<RecordAppendResult> {
    if (this.closing !== undefined) return Promise.reject(new StorageError(`${RECORD_FILE_NAME}: append after close`));
    assert.ok(this.queued < APPENDS_QUEUED_MAX, `record log: more than ${APPENDS_QUEUED_MAX} appends queued`);
    this.queued++;
    const run = this.queue.then(async () => {
      if (this.refusal !== undefined) throw this.refusal;
      assert.ok(this.handle !== undefined, "record log: no file in write mode");
      try {
        return await task(this.handle);
      } catch (error) {
        // The file's end is unknown now (a write may have landed in part): nothing more goes in.
        const detail = error instanceof Error ? error.message : String(error);
        this.refusal = new StorageError(`${RECORD_FILE_NAME} refuses appends after an earlier append failed (${detail}); restart the replica`, { cause: error });
        throw error;
      }
    });
    const done = (): void => {
      this.queued--;
    };
    this.queue = run.then(done, done);
    return run;
  }

  /**
   * Rewrites the log as `compactRecords` of its records and then the new ones (`keys` and
   * `encoded`), deciding by the frame index: only the kept frames are read back, and their
   * checksums checked (damage in a frame that is dropped goes unseen, as it goes with the frame).
   */
  private async compactWith(handle: FileHandle, keys: readonly RecordKey[], encoded: readonly Uint8Array[]): Promise<RecordAppendResult> {
    type Item = { readonly key: RecordKey; readonly frame: FrameEntry | undefined; readonly bytes: Uint8Array | undefined };
    const items: Item[] = this.frames.map((frame) => ({ key: frame.key, frame, bytes: undefined }));
    keys.forEach((key, index) => items.push({ key, frame: undefined, bytes: encoded[index]! }));
    const kept = compactRecordsBy(items, (item) => item.key);
    const payloads = await readFramePayloads(handle, this.frames, kept.flatMap((item) => (item.frame === undefined ? [] : [item.frame])));
    const keptBytes = kept.map((item) => item.bytes ?? payloads.get(item.frame!)!);
    const contents = framed(keptBytes, fileHeader());
    this.handle = await replaceFile(this.options.directory, contents, this.options.sync);
    this.endOffset = contents.length;
    this.frames = frameEntriesFrom(
      RECORD_FILE_HEADER_BYTES,
      kept.map((item) => item.key),
      keptBytes,
    );
    this.compactionThreshold = Math.max(this.options.compactionThresholdMin, 2 * kept.length);
    // The old file is unlinked already; its handle only kept `load` reading it until the swap.
    await handle.close();
    return { compacted: true, recordCount: kept.length };
  }
}

function fileHeader(): Buffer {
  const header = Buffer.allocUnsafe(RECORD_FILE_HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(RECORD_FILE_FORMAT_VERSION, MAGIC.length);
  return header;
}

function frameChecksum(lengthField: Uint8Array, payload: Uint8Array): number {
  return crc32(payload, crc32(lengthField));
}

/** What is wrong with the checksum of the frame at `at` in `bytes`, whose payload is `payload`; undefined when it matches. */
function checksumMismatch(bytes: Buffer, at: number, payload: Uint8Array): string | undefined {
  const stored = bytes.readUInt32BE(at + 4);
  const computed = frameChecksum(bytes.subarray(at, at + 4), payload);
  return computed === stored ? undefined : `checksum mismatch (stored ${stored.toString(16).padStart(8, "0")}, computed ${computed.toString(16).padStart(8, "0")})`;
}

/** `prefix` followed by the frames of one append, one per payload, in one buffer: an append is one write. */
function framed(payloads: readonly Uint8Array[], prefix: Uint8Array = new Uint8Array(0)): Buffer {
  let total = prefix.length;
  for (const payload of payloads) total += RECORD_FRAME_HEADER_BYTES + payload.length;
  const out = Buffer.allocUnsafe(total);
  out.set(prefix, 0);
  let offset = prefix.length;
  payloads.forEach((payload, index) => {
    const continued = index < payloads.length - 1;
    out.writeUInt32BE(continued ? (CONTINUED | payload.length) >>> 0 : payload.length, offset);
    out.writeUInt32BE(frameChecksum(out.subarray(offset, offset + 4), payload), offset + 4);
    out.set(payload, offset + RECORD_FRAME_HEADER_BYTES);
    offset += RECORD_FRAME_HEADER_BYTES + payload.length;
  });
  return out;
}

/**
 * The records of `bytes`, the frames after the file header. With "truncate", a torn tail ends
 * the parse (`validBytes` says where); with "refuse", the bytes must be whole appends (they were
 * acknowledged), so a torn tail is corruption too.
 */
function parseFrames(bytes: Buffer, tornTail: "truncate" | "refuse"): ParsedFrames {
  const stored: StoredRecord[] = [];
  let pending: StoredRecord[] = [];
  let appendStart = 0;
  let offset = 0;
  for (let index = 0; offset < bytes.length; index++) {
    const damaged = (detail: string, cause?: unknown): StorageCorruptionError =>
      new StorageCorruptionError(RECORD_FILE_NAME, hex(uint64Key(index)), `frame ${index} at byte ${RECORD_FILE_HEADER_BYTES + offset}: ${detail}`, cause === undefined ? undefined : { cause });
    const remaining = bytes.length - offset;
    if (remaining < RECORD_FRAME_HEADER_BYTES) {
      if (tornTail === "truncate") return { stored, validBytes: appendStart };
      throw damaged(`${remaining} bytes, less than a frame header`);
    }
    const lengthField = bytes.readUInt32BE(offset);
    const length = lengthField & RECORD_BYTES_MAX;
    const end = offset + RECORD_FRAME_HEADER_BYTES + length;
    if (end > bytes.length) {
      if (tornTail === "truncate" && !frameEndsFileWithin(bytes, offset + RECORD_FRAME_HEADER_BYTES)) return { stored, validBytes: appendStart };
      throw damaged(`its length ${length} runs past the end of the file${tornTail === "truncate" ? ", and a valid frame ends the file after it: a damaged length, not a torn append" : ""}`);
    }
    const payload = bytes.subarray(offset + RECORD_FRAME_HEADER_BYTES, end);
    const mismatch = checksumMismatch(bytes, offset, payload);
    if (mismatch !== undefined) {
      if (tornTail === "truncate" && end === bytes.length) return { stored, validBytes: appendStart };
      throw damaged(mismatch);
    }
    try {
      pending.push({ record: decodeRecord(payload), encoded: payload });
    } catch (error) {
      if (!(error instanceof RecordDecodeError)) throw error;
      throw damaged(`record does not decode: ${error.message}`, error);
    }
    offset = end;
    if (lengthField < CONTINUED) {
      for (const record of pending) stored.push(record);
      pending = [];
      appendStart = offset;
    }
  }
  if (pending.length > 0 && tornTail === "refuse") {
    throw new StorageCorruptionError(RECORD_FILE_NAME, hex(uint64Key(stored.length + pending.length)), `the file ends inside an append, after byte ${RECORD_FILE_HEADER_BYTES + appendStart}`);
  }
  return { stored, validBytes: appendStart };
}

/** The frame index of the records parsed from a whole file: consecutive frames after its header. */
function frameEntriesOf(stored: readonly StoredRecord[]): FrameEntry[] {
  return frameEntriesFrom(
    RECORD_FILE_HEADER_BYTES,
    stored.map((parsed) => recordKeyOf(parsed.record)),
    stored.map((parsed) => parsed.encoded),
  );
}

/** The frame index of `payloads` (with their `keys`) written as consecutive frames from file offset `start`. */
function frameEntriesFrom(start: number, keys: readonly RecordKey[], payloads: readonly Uint8Array[]): FrameEntry[] {
  let offset = start;
  return keys.map((key, index) => {
    const entry = { key, offset, length: payloads[index]!.length };
    offset += RECORD_FRAME_HEADER_BYTES + entry.length;
    return entry;
  });
}

/** Frames closer than this are read in one read, the gap with them. */
const FRAME_READ_GAP_MAX = 256 * 1024;

/**
 * The payloads of `wanted` (entries of `frames`), read from the file in as few reads as their
 * places allow, each checked against its frame's length and checksum: a mismatch is
 * `StorageCorruptionError`, as any damaged acknowledged frame is.
 */
async function readFramePayloads(handle: FileHandle, frames: readonly FrameEntry[], wanted: readonly FrameEntry[]): Promise<Map<FrameEntry, Uint8Array>> {
  const payloads = new Map<FrameEntry, Uint8Array>();
  const sorted = [...wanted].sort((left, right) => left.offset - right.offset);
  const frameEnd = (frame: FrameEntry): number => frame.offset + RECORD_FRAME_HEADER_BYTES + frame.length;
  for (let first = 0; first < sorted.length; ) {
    let last = first;
    while (last + 1 < sorted.length && sorted[last + 1]!.offset - frameEnd(sorted[last]!) <= FRAME_READ_GAP_MAX) last++;
    const start = sorted[first]!.offset;
    const bytes = Buffer.allocUnsafe(frameEnd(sorted[last]!) - start);
    await readFully(handle, bytes, start);
    for (let index = first; index <= last; index++) {
      const frame = sorted[index]!;
      const at = frame.offset - start;
      const length = bytes.readUInt32BE(at) & RECORD_BYTES_MAX;
      const payload = bytes.subarray(at + RECORD_FRAME_HEADER_BYTES, at + RECORD_FRAME_HEADER_BYTES + frame.length);
      const problem = length !== frame.length ? `its length field says ${length} bytes, ${frame.length} were appended` : checksumMismatch(bytes, at, payload);
      if (problem !== undefined) {
        const position = frames.indexOf(frame);
        throw new StorageCorruptionError(RECORD_FILE_NAME, hex(uint64Key(position)), `frame ${position} at byte ${frame.offset}: ${problem}`);
      }
      payloads.set(frame, payload);
    }
    first = last + 1;
  }
  return payloads;
}

/**
 * Whether a frame that ends an append, with a valid checksum, starts at or after `from` and ends
 * exactly at the end of `bytes`. A torn append leaves a prefix of its bytes, so what follows its
 * cut frame's header is that frame's payload, which (short of a checksum collision) ends no valid
 * frame exactly at the cut; a damaged length in the middle of an intact log leaves the log's real
 * last frame behind it.
 */
function frameEndsFileWithin(bytes: Buffer, from: number): boolean {
  let budget = TAIL_SCAN_CHECKSUM_BYTES_MAX;
  for (let start = bytes.length - RECORD_FRAME_HEADER_BYTES; start >= from; start--) {
    const lengthField = bytes.readUInt32BE(start);
    if (lengthField >= CONTINUED || start + RECORD_FRAME_HEADER_BYTES + lengthField !== bytes.length) continue;
    budget -= lengthField;
    // Only crafted bytes hold this many candidates; the answer is then "torn", which is what a
    // crash inside such a frame is.
    if (budget < 0) return false;
    const payload = bytes.subarray(start + RECORD_FRAME_HEADER_BYTES);
    if (frameChecksum(bytes.subarray(start, start + 4), payload) === bytes.readUInt32BE(start + 4)) return true;
  }
  return false;
}

/**
 * Reads and checks the whole file: its header (a foreign one throws `StorageRefusedError`), its
 * frames, and where a torn tail starts.
 */
async function readWholeFile(handle: FileHandle, directory: string): Promise<ReadFile> {
  const { size } = await handle.stat();
  const bytes = Buffer.allocUnsafe(size);
  await readFully(handle, bytes, 0);
  checkHeader(bytes, directory);
  try {
    const { stored, validBytes } = parseFrames(bytes.subarray(RECORD_FILE_HEADER_BYTES), "truncate");
    return { stored, end: RECORD_FILE_HEADER_BYTES + validBytes, fileBytes: size, damage: undefined };
  } catch (error) {
    if (!(error instanceof StorageCorruptionError)) throw error;
    return { stored: [], end: size, fileBytes: size, damage: error };
  }
}

function checkHeader(bytes: Buffer, directory: string): void {
  const path = join(directory, RECORD_FILE_NAME);
  if (bytes.length < RECORD_FILE_HEADER_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new StorageRefusedError(
      "not-a-bulwark-store",
      directory,
      `${path} is not a Bulwark record log (it does not start with "${MAGIC.toString("latin1")}"); restore the directory from a backup, or move it aside and let the replica rejoin by state transfer`,
    );
  }
  const version = bytes.readUInt32BE(MAGIC.length);
  if (version !== RECORD_FILE_FORMAT_VERSION) {
    throw new StorageRefusedError(
      "format-version",
      directory,
      `${path} is in record log format version ${version}; this build of Bulwark reads version ${RECORD_FILE_FORMAT_VERSION}. Run a Bulwark release that reads version ${version}`,
    );
  }
}

function refuseUnlessSame(directory: string, inFile: readonly StoredRecord[], inDatabase: readonly StoredRecord[]): void {
  const same = inFile.length === inDatabase.length && inFile.every((stored, index) => Buffer.from(stored.encoded).equals(inDatabase[index]!.encoded));
  if (same) return;
  throw new StorageRefusedError(
    "not-a-bulwark-store",
    directory,
    `${join(directory, RECORD_FILE_NAME)} does not belong to this store: it is not marked as its record log, and its records differ from those in LMDB's "records" database. ` +
      `Move the file aside if the store's own records are the ones in LMDB; otherwise restore the directory from a backup`,
  );
}

/** Writes `contents` as the new records.log through the temporary file; returns its handle. */
async function replaceFile(directory: string, contents: Uint8Array, sync: SyncPolicy): Promise<FileHandle> {
  const temporary = join(directory, RECORD_FILE_TEMPORARY_NAME);
  const handle = await open(temporary, "w+");
  try {
    await writeFully(handle, contents, 0);
    if (sync === "durable") await handle.datasync();
    await rename(temporary, join(directory, RECORD_FILE_NAME));
    if (sync === "durable") await syncDirectory(directory);
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** Makes a rename in `directory` durable: the new name is an entry of the directory's file. */
async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  for (let written = 0; written < bytes.length; ) {
    const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, position + written);
    assert.ok(bytesWritten > 0, "record log: a write of a regular file wrote nothing");
    written += bytesWritten;
  }
}

/** Appends run on the event loop while they average less than this (ms). */
export const RECORD_SYNC_INLINE_MS_MAX = 2;
/** Weight of the newest append in the moving average of their durations. */
const SYNC_AVERAGE_WEIGHT = 0.2;

/**
 * The synchronous calls an append makes on the event loop (through the thread pool, and for a
 * compaction, it uses its FileHandle), and the clock that times appends: an object, so a test
 * can wrap them to count syncs, inject an I/O error or a slow disk, and fix the path ("auto"
 * chooses by the moving average).
 */
export const recordAppendIo: {
  path: "auto" | "inline" | "file-handle";
  now: () => number;
  write: (fd: number, bytes: Uint8Array, offset: number, length: number, position: number) => number;
  datasync: (fd: number) => void;
} = {
  path: "auto",
  now: () => performance.now(),
  write: (fd: number, bytes: Uint8Array, offset: number, length: number, position: number): number => writeSync(fd, bytes, offset, length, position),
  datasync: (fd: number): void => fdatasyncSync(fd),
};

function writeFullySync(handle: FileHandle, bytes: Uint8Array, position: number): void {
  for (let written = 0; written < bytes.length; ) {
    const bytesWritten = recordAppendIo.write(handle.fd, bytes, written, bytes.length - written, position + written);
    assert.ok(bytesWritten > 0, "record log: a write of a regular file wrote nothing");
    written += bytesWritten;
  }
}

async function readFully(handle: FileHandle, bytes: Buffer, position: number): Promise<void> {
  for (let read = 0; read < bytes.length; ) {
    const { bytesRead } = await handle.read(bytes, read, bytes.length - read, position + read);
    if (bytesRead === 0) throw shortFile(position + read, position + bytes.length);
    read += bytesRead;
  }
}

function shortFile(endOffset: number, expectedOffset: number): StorageCorruptionError {
  return new StorageCorruptionError(RECORD_FILE_NAME, hex(uint64Key(0)), `the file ends at byte ${endOffset}, before byte ${expectedOffset}, which was acknowledged`);
}

async function isFile(path: string, directory: string): Promise<boolean> {
  try {
    if ((await stat(path)).isFile()) return true;
  } catch (error) {
    if (typeof error === "object" && error !== null && "code" in error && error.code === "ENOENT") return false;
    throw unreadable(path, directory, error);
  }
  throw new StorageRefusedError("unreadable", directory, `${path} is not a file; move it aside`);
}

async function openHandle(path: string, flags: "r" | "r+", directory: string): Promise<FileHandle> {
  try {
    return await open(path, flags);
  } catch (error) {
    throw unreadable(path, directory, error);
  }
}

function unreadable(path: string, directory: string, error: unknown): StorageRefusedError {
  const detail = error instanceof Error ? error.message : String(error);
  return new StorageRefusedError("unreadable", directory, `cannot open ${path}: ${detail}`, { cause: error });
}
