// The consensus record log: the `PersistRecord`s the PBFT core emits, in emission order, which
// `PbftReplica`'s restore replays after a restart. Appends are one LMDB transaction each and
// resolve under the store's sync policy, so the runtime sends a `Ready`'s messages only after its
// records are durable (DESIGN.md's ordering rule).
//
// The log stays bounded: an append that carries a stable-checkpoint record, or that takes the log
// past its bound, rewrites the log as `compactRecords` of it in the same transaction, so a crash
// leaves either the old log plus nothing or the compacted log with the new records. After a
// compaction the bound is at least twice what compaction kept, so a log whose live part is large
// (a long view change) is not rewritten on every append.

import assert from "node:assert/strict";
import { compactRecords } from "../consensus/pbft/records.js";
import type { PersistRecord } from "../consensus/pbft/types.js";
import type { BinaryDatabase } from "./environment.js";
import { RecordDecodeError, StorageCorruptionError } from "./errors.js";
import { frameValue, unframeValue } from "./frame.js";
import { DATABASE_NAMES, hex, uint64Key, uint64OfKey } from "./layout.js";
import { decodeRecord, encodeRecord } from "./record-codec.js";

/** The default bound on the log between compactions, in records. */
export const RECORD_LOG_COMPACTION_THRESHOLD_DEFAULT = 4096;

export interface RecordAppendResult {
  /** True when this append rewrote the log as its compaction. */
  readonly compacted: boolean;
  /** Records in the log after the append. */
  readonly recordCount: number;
}

interface StoredRecord {
  readonly index: number;
  readonly record: PersistRecord;
  /** The encoded record, reused when compaction keeps it. */
  readonly encoded: Uint8Array;
}

const DATABASE = DATABASE_NAMES.records;

export class RecordLog {
  private recordCount: number;
  private compactionThreshold: number;

  constructor(
    private readonly database: BinaryDatabase,
    private readonly compactionThresholdMin: number,
  ) {
    assert.ok(Number.isSafeInteger(compactionThresholdMin) && compactionThresholdMin > 0, "record log: the compaction threshold must be a positive integer");
    this.recordCount = database.getKeysCount();
    this.compactionThreshold = compactionThresholdMin;
  }

  get size(): number {
    return this.recordCount;
  }

  /** Appends `records` in order; resolves once they are stored under the sync policy. */
  append(records: readonly PersistRecord[]): Promise<RecordAppendResult> {
    // Encode before queuing anything, so a record outside its type fails alone and early.
    const encoded = records.map(encodeRecord);
    const stable = records.some((record) => record.kind === "stable-checkpoint");
    return this.database.childTransaction((): RecordAppendResult => {
      if (records.length === 0) return { compacted: false, recordCount: this.recordCount };
      if (stable || this.recordCount + records.length > this.compactionThreshold) {
        return this.compactWith(records, encoded);
      }
      let index = this.nextIndex();
      for (const bytes of encoded) this.put(index++, bytes);
      this.recordCount += records.length;
      return { compacted: false, recordCount: this.recordCount };
    });
  }

  /** Every record, in append order. Throws `StorageCorruptionError` for any damaged record. */
  load(): PersistRecord[] {
    return this.readAll().map((stored) => stored.record);
  }

  /** Rewrites the log as its compaction; for an operator or a test, appends do this themselves. */
  compact(): Promise<RecordAppendResult> {
    return this.database.childTransaction(() => this.compactWith([], []));
  }

  private compactWith(records: readonly PersistRecord[], encoded: readonly Uint8Array[]): RecordAppendResult {
    const existing = this.readAll();
    const bytesOf = new Map<PersistRecord, Uint8Array>();
    for (const stored of existing) bytesOf.set(stored.record, stored.encoded);
    records.forEach((record, position) => bytesOf.set(record, encoded[position]!));
    const kept = compactRecords([...existing.map((stored) => stored.record), ...records]);
    let index = this.nextIndex();
    for (const stored of existing) this.database.removeSync(uint64Key(stored.index));
    for (const record of kept) this.put(index++, bytesOf.get(record) ?? encodeRecord(record));
    this.recordCount = kept.length;
    this.compactionThreshold = Math.max(this.compactionThresholdMin, 2 * kept.length);
    return { compacted: true, recordCount: kept.length };
  }

  private put(index: number, encoded: Uint8Array): void {
    const key = uint64Key(index);
    this.database.putSync(key, frameValue(DATABASE, key, encoded));
  }

  /** One past the highest index in use; indexes only grow, so a key is never reused. */
  private nextIndex(): number {
    for (const key of this.database.getKeys({ reverse: true, limit: 1 })) {
      const index = uint64OfKey(key);
      if (index === undefined) throw new StorageCorruptionError(DATABASE, hex(key), "not a record index key");
      return index + 1;
    }
    return 0;
  }

  private readAll(): StoredRecord[] {
    const stored: StoredRecord[] = [];
    for (const { key, value } of this.database.getRange({})) {
      const index = uint64OfKey(key);
      if (index === undefined) throw new StorageCorruptionError(DATABASE, hex(key), "not a record index key");
      const encoded = unframeValue(DATABASE, key, value);
      let record: PersistRecord;
      try {
        record = decodeRecord(encoded);
      } catch (error) {
        if (!(error instanceof RecordDecodeError)) throw error;
        throw new StorageCorruptionError(DATABASE, hex(key), `record does not decode: ${error.message}`, { cause: error });
      }
      stored.push({ index, record, encoded });
    }
    return stored;
  }
}
