// The byte format of state snapshots. State transfer (issue 3, "Storage") moves a checkpoint's
// state as a sequence of chunks, each a run of entries in ascending key-hash order; a snapshot
// of the whole state is the same format holding every entry. Because the order is fixed by the
// key hashes, the bytes depend only on the set of entries, so two correct replicas export
// identical chunks and a receiver can resume from the last key hash it installed.
//
//   u8 format version (1) | u32 big-endian entry count
//   per entry: u32 key length | key | u32 value length | value
//
// The decoder trusts nothing: every length is checked against the bytes that remain before any
// allocation, so a hostile count or length costs the receiver nothing.

export type StateEntry = readonly [key: Uint8Array, value: Uint8Array];

/** Thrown for snapshot bytes that are malformed or out of key-hash order. */
export class StateSnapshotDecodeError extends Error {
  override readonly name = "StateSnapshotDecodeError";
}

const SNAPSHOT_FORMAT_VERSION = 1;
const SNAPSHOT_HEADER_BYTES = 5;
const LENGTH_FIELD_BYTES = 4;
/** The smallest encoded entry: an empty key and an empty value. */
const ENTRY_BYTES_MIN = 2 * LENGTH_FIELD_BYTES;
/** Lengths are u32 fields; larger keys or values cannot be encoded. */
export const STATE_ENTRY_PART_BYTES_MAX = 0xffff_ffff;

export function encodeSnapshotChunk(entries: readonly StateEntry[]): Uint8Array {
  let byteCount = SNAPSHOT_HEADER_BYTES;
  for (const [key, value] of entries) byteCount += ENTRY_BYTES_MIN + key.length + value.length;
  const bytes = new Uint8Array(byteCount);
  const view = new DataView(bytes.buffer);
  bytes[0] = SNAPSHOT_FORMAT_VERSION;
  view.setUint32(1, entries.length);
  let offset = SNAPSHOT_HEADER_BYTES;
  for (const [key, value] of entries) {
    for (const part of [key, value]) {
      if (part.length > STATE_ENTRY_PART_BYTES_MAX) throw new Error(`encodeSnapshotChunk: ${part.length}-byte field`);
      view.setUint32(offset, part.length);
      bytes.set(part, offset + LENGTH_FIELD_BYTES);
      offset += LENGTH_FIELD_BYTES + part.length;
    }
  }
  return bytes;
}

/**
 * The entries of one chunk, copied out of `bytes`. Checks the format only; the tree that installs
 * them checks their key-hash order (it hashes the keys anyway).
 */
export function decodeSnapshotChunk(bytes: Uint8Array): StateEntry[] {
  if (!(bytes instanceof Uint8Array)) throw new StateSnapshotDecodeError("state snapshot: input is not a byte array");
  if (bytes.length < SNAPSHOT_HEADER_BYTES) {
    throw new StateSnapshotDecodeError(`state snapshot: ${bytes.length} bytes is shorter than the header`);
  }
  if (bytes[0] !== SNAPSHOT_FORMAT_VERSION) {
    throw new StateSnapshotDecodeError(`state snapshot: unknown format version ${bytes[0]}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entryCount = view.getUint32(1);
  if (entryCount > (bytes.length - SNAPSHOT_HEADER_BYTES) / ENTRY_BYTES_MIN) {
    throw new StateSnapshotDecodeError(`state snapshot: ${entryCount} entries cannot fit in ${bytes.length} bytes`);
  }
  let offset = SNAPSHOT_HEADER_BYTES;
  const takePart = (entry: number, what: string): Uint8Array => {
    if (offset + LENGTH_FIELD_BYTES > bytes.length) {
      throw new StateSnapshotDecodeError(`state snapshot: entry ${entry} truncated in its ${what} length`);
    }
    const length = view.getUint32(offset);
    offset += LENGTH_FIELD_BYTES;
    if (length > bytes.length - offset) {
      throw new StateSnapshotDecodeError(`state snapshot: entry ${entry} ${what} of ${length} bytes is truncated`);
    }
    // A copy, not a view: installed entries must not change if the caller reuses its buffer.
    const part = new Uint8Array(bytes.subarray(offset, offset + length));
    offset += length;
    return part;
  };
  const entries: StateEntry[] = [];
  for (let entry = 0; entry < entryCount; entry++) {
    const key = takePart(entry, "key");
    const value = takePart(entry, "value");
    entries.push([key, value]);
  }
  if (offset !== bytes.length) {
    throw new StateSnapshotDecodeError(`state snapshot: ${bytes.length - offset} trailing bytes`);
  }
  return entries;
}
