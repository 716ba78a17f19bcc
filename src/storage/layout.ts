// The on-disk layout: the named sub-databases of one replica's LMDB environment and the shape of
// their keys. Every value is stored inside a checksummed frame (frame.ts).
//
//   meta                utf-8 names → format version, identity, applied-state metadata,
//                       body retention height, record-file marker
//   records             in stores of earlier builds only: u64 big-endian append index → one
//                       encoded PersistRecord; emptied when the log moves to records.log (below)
//   block-headers       u64 big-endian height → header bytes
//   block-bodies        u64 big-endian height → body bytes (pruned below the retention height)
//   block-certificates  u64 big-endian height → commit certificate bytes
//   state               0x00 | application key → application value
//
// The consensus record log lives beside the environment in its own append-only file,
// records.log (record-file.ts): appending a vote there is one write and one fdatasync, not a turn
// on LMDB's one writer behind block transactions (issue 5). The first open by a build with the
// file moves the "records" sub-database's records into it and sets the meta "record-file" marker;
// the sub-database keeps its name so that stores of both builds open under one format version.
//
// Big-endian heights make LMDB's byte order the numeric order, so a range of heights is one
// cursor walk. Headers, bodies and certificates live in separate sub-databases so that walking
// headers never pages in bodies, and pruning bodies touches nothing else.

import assert from "node:assert/strict";

/**
 * Bump when any stored encoding changes; a store written by another version is refused.
 * Version 2: the consensus records live in records.log (record-file.ts), not in the "records"
 * sub-database. The version is written in the same LMDB transaction that marks the move, so a
 * build that reads only version 1, and would find no records and vote afresh, refuses the store.
 */
export const STORAGE_FORMAT_VERSION = 2;

/**
 * Version 1 is read too: its records are moved to records.log at the first open for writing,
 * which writes version 2 (an auditor's read-only open reads them where they are).
 */
export const STORAGE_FORMAT_VERSION_LEGACY = 1;

export const DATABASE_NAMES = {
  meta: "meta",
  records: "records",
  headers: "block-headers",
  bodies: "block-bodies",
  certificates: "block-certificates",
  state: "state",
} as const;

export type DatabaseName = (typeof DATABASE_NAMES)[keyof typeof DATABASE_NAMES];

export const META_KEYS = {
  formatVersion: "format-version",
  identity: "identity",
  appliedState: "applied-state",
  bodyRetentionHeight: "body-retention-height",
  /** Present once the record log lives in records.log; its value is the file's format version. */
  recordFile: "record-file",
} as const;

/** Heights and record indexes are u64 big-endian keys. */
export const UINT64_KEY_BYTES = 8;

/**
 * LMDB's largest key (as built into the `lmdb` package) is 1978 bytes; a state key spends one
 * of them on its prefix byte. The application layer must keep its keys within this bound.
 */
export const STATE_KEY_BYTES_MAX = 1977;

/**
 * State keys are stored behind one prefix byte: LMDB refuses empty keys, and an application may
 * well use the empty key. The prefix also leaves room for other key spaces in the same database.
 */
const STATE_KEY_PREFIX = 0x00;

export function uint64Key(value: number): Buffer {
  assert.ok(Number.isSafeInteger(value) && value >= 0, `key ${value} is not a safe non-negative integer`);
  const key = Buffer.allocUnsafe(UINT64_KEY_BYTES);
  key.writeUInt32BE(Math.floor(value / 0x1_0000_0000), 0);
  key.writeUInt32BE(value % 0x1_0000_0000, 4);
  return key;
}

/** The number a u64 key holds; undefined when the key has the wrong length or is above 2^53 - 1. */
export function uint64OfKey(key: Uint8Array): number | undefined {
  if (key.length !== UINT64_KEY_BYTES) return undefined;
  const view = Buffer.from(key.buffer, key.byteOffset, key.length);
  const value = view.readUInt32BE(0) * 0x1_0000_0000 + view.readUInt32BE(4);
  return Number.isSafeInteger(value) ? value : undefined;
}

export function metaKey(name: (typeof META_KEYS)[keyof typeof META_KEYS]): Buffer {
  return Buffer.from(name, "utf8");
}

export function stateKey(key: Uint8Array): Buffer {
  const stored = Buffer.allocUnsafe(key.length + 1);
  stored[0] = STATE_KEY_PREFIX;
  stored.set(key, 1);
  return stored;
}

/** A copy of the application key inside a stored state key; undefined when the prefix is wrong. */
export function applicationKeyOf(stored: Uint8Array): Uint8Array | undefined {
  if (stored.length < 1 || stored[0] !== STATE_KEY_PREFIX) return undefined;
  return plainCopy(stored.subarray(1));
}

/**
 * A copy of `bytes` as a plain Uint8Array. Bulwark's APIs return plain arrays, never Buffers
 * (see crypto/sha256.ts), and a copy cannot be changed by LMDB reusing its read buffers.
 */
export function plainCopy(bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex");
}
