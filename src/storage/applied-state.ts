// The metadata that says which block the stored application state reflects. It is written in
// the same transaction as the block and its state changes, so it can never disagree with them.
//
//   uint height | uint seq | bytes state digest      (primitives of bytes.ts)

import { ByteReader, encodeWith } from "./bytes.js";
import { RecordDecodeError, StorageCorruptionError } from "./errors.js";
import { DATABASE_NAMES, META_KEYS } from "./layout.js";

export interface AppliedState {
  /** The height of the last block whose state changes are in the store. */
  readonly height: number;
  /** The consensus sequence number that block executed. */
  readonly seq: number;
  /** The application's state digest after that block (the block's stateRoot). */
  readonly stateDigest: Uint8Array;
}

export function encodeAppliedState(applied: AppliedState): Uint8Array {
  return encodeWith((w) => {
    w.uint(applied.height);
    w.uint(applied.seq);
    w.bytesField(applied.stateDigest);
  });
}

export function decodeAppliedState(bytes: Uint8Array): AppliedState {
  try {
    const r = new ByteReader(bytes);
    const height = r.uint();
    const seq = r.uint();
    const stateDigest = r.bytesField();
    r.end();
    return { height, seq, stateDigest };
  } catch (error) {
    if (!(error instanceof RecordDecodeError)) throw error;
    throw new StorageCorruptionError(DATABASE_NAMES.meta, Buffer.from(META_KEYS.appliedState).toString("hex"), `applied-state metadata does not decode: ${error.message}`, {
      cause: error,
    });
  }
}
