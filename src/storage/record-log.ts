// The consensus record log's contract, and the LMDB sub-database that held the log before it
// moved to its own file (record-file.ts). The log is the `PersistRecord`s the PBFT core emits, in
// emission order, which `PbftReplica`'s restore replays after a restart.
//
// Stores written by earlier builds keep their records in LMDB's "records" sub-database, one
// framed record per u64 append index. That layout put every vote's append on LMDB's one writer,
// behind the block-and-state transactions queued there (issue 5: 3 ms per batch at light load,
// 20–240 ms under load), and every vote waits for its append before it leaves. The file took the
// log off LMDB; this module reads the old sub-database once, when `RecordFile.open` migrates it,
// and keeps the marker (meta "record-file") that says the migration is done.

import type { PersistRecord } from "../consensus/pbft/types.js";
import { type BinaryDatabase, putFormatVersionSync, storedFormatVersion } from "./environment.js";
import { RecordDecodeError, StorageCorruptionError } from "./errors.js";
import { frameValue, unframeValue } from "./frame.js";
import { DATABASE_NAMES, META_KEYS, STORAGE_FORMAT_VERSION, hex, metaKey, uint64OfKey } from "./layout.js";
import { decodeRecord } from "./record-codec.js";

/** The default bound on the log between compactions, in records. */
export const RECORD_LOG_COMPACTION_THRESHOLD_DEFAULT = 4096;

export interface RecordAppendResult {
  /** True when this append rewrote the log as its compaction. */
  readonly compacted: boolean;
  /** Records in the log after the append. */
  readonly recordCount: number;
}

/** One record of the log with the bytes it is stored as, reused when compaction keeps it. */
export interface StoredRecord {
  readonly record: PersistRecord;
  readonly encoded: Uint8Array;
}

/** The LMDB sub-databases the record log touches: the old home of its records, and the marker. */
export interface RecordDatabases {
  readonly meta: BinaryDatabase;
  readonly records: BinaryDatabase;
}

const DATABASE = DATABASE_NAMES.records;

/**
 * Every record of the LMDB "records" sub-database, in index order. Throws
 * `StorageCorruptionError` for a key that is not an index, a failed checksum or a record that
 * does not decode: a migration copies nothing it cannot vouch for.
 */
export function readLegacyRecords(database: BinaryDatabase): StoredRecord[] {
  const stored: StoredRecord[] = [];
  for (const { key, value } of database.getRange({})) {
    if (uint64OfKey(key) === undefined) throw new StorageCorruptionError(DATABASE, hex(key), "not a record index key");
    const encoded = unframeValue(DATABASE, key, value);
    let record: PersistRecord;
    try {
      record = decodeRecord(encoded);
    } catch (error) {
      if (!(error instanceof RecordDecodeError)) throw error;
      throw new StorageCorruptionError(DATABASE, hex(key), `record does not decode: ${error.message}`, { cause: error });
    }
    stored.push({ record, encoded });
  }
  return stored;
}

export function hasLegacyRecords(database: BinaryDatabase): boolean {
  for (const _ of database.getKeys({ limit: 1 })) return true;
  return false;
}

const RECORD_FILE_KEY = metaKey(META_KEYS.recordFile);

/**
 * Whether the store's log lives in records.log. Set once the file is in place, so an open that
 * finds the marker but no file knows the file was lost (a copy of data.mdb alone, a deleted
 * file) instead of starting without the replica's votes.
 */
export function hasRecordFileMarker(meta: BinaryDatabase): boolean {
  const stored = meta.get(RECORD_FILE_KEY);
  if (stored === undefined) return false;
  unframeValue(DATABASE_NAMES.meta, RECORD_FILE_KEY, stored);
  return true;
}

/**
 * Completes a migration (or the creation of a new store's records.log) in one LMDB transaction:
 * the "records" sub-database is emptied and the marker set. Call it only once records.log holds
 * every record of the sub-database, durably.
 */
export function markRecordFileInPlace(databases: RecordDatabases, formatVersion: number): Promise<void> {
  const { meta, records } = databases;
  const version = Buffer.allocUnsafe(4);
  version.writeUInt32BE(formatVersion);
  const framed = frameValue(DATABASE_NAMES.meta, RECORD_FILE_KEY, version);
  return meta.childTransaction(() => {
    for (const key of [...records.getKeys()]) records.removeSync(key);
    meta.putSync(RECORD_FILE_KEY, framed);
    // In the same transaction: a build that reads only format version 1 now refuses the store.
    putFormatVersionSync(meta);
  });
}

/** Whether the store's recorded format version is older than this build's (a marked store of version 1 gets version 2 at its next open). */
export function formatVersionIsOlder(meta: BinaryDatabase): boolean {
  const version = storedFormatVersion(meta);
  return version !== undefined && version < STORAGE_FORMAT_VERSION;
}
