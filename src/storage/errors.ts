// The errors the storage layer raises for conditions outside the program's control: bytes on
// disk that are not what was written, and data directories that are not this replica's. Misuse
// by the caller (a block at the wrong height, a malformed argument) is a bug and throws an
// assertion or a TypeError/RangeError instead (STYLE.md: errors that mean a bug assert).

/** Base class, so a runtime can catch every storage failure it should surface to an operator. */
export class StorageError extends Error {
  override readonly name: string = "StorageError";
}

/**
 * A value or record read back does not match what was written: its checksum fails, it does not
 * decode, or an entry that must exist alongside it is missing. The store never returns such a
 * value; the operator restores the directory from a peer (state transfer) or a backup.
 */
export class StorageCorruptionError extends StorageError {
  override readonly name = "StorageCorruptionError";
  constructor(
    /** The sub-database holding the bad entry. */
    readonly database: string,
    /** The entry's key, hex-encoded. */
    readonly keyHex: string,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`storage corruption in "${database}" at key ${keyHex}: ${detail}`, options);
  }
}

/** Why a data directory was refused. */
export type StorageRefusalReason = "format-version" | "cluster" | "replica" | "not-a-bulwark-store" | "in-use" | "unreadable";

/**
 * A data directory that this replica must not use: written by another storage format version,
 * owned by another cluster or replica, or not a Bulwark store at all. The message names the
 * directory and what to do.
 */
export class StorageRefusedError extends StorageError {
  override readonly name = "StorageRefusedError";
  constructor(
    readonly reason: StorageRefusalReason,
    readonly directory: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Thrown by the record codec for bytes that are not one canonical encoded record. */
export class RecordDecodeError extends Error {
  override readonly name = "RecordDecodeError";
}
