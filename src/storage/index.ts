// Durable storage for one replica (DESIGN.md, "storage"): blocks, application state and the
// consensus record log in one LMDB environment. See README.md in this folder.
export {
  ReplicaStore,
  HEADERS_PER_READ_MAX,
  STATE_CHUNK_ENTRIES_MAX,
  type BlockCommit,
  type ReplicaStoreOptions,
  type StateChunk,
  type PinnedState,
  type StateChunkOptions,
  type StateInstall,
  type StateWrite,
  type StoreCounters,
  type StoredBlock,
  type StoredHeader,
} from "./replica-store.js";
export type { AppliedState } from "./applied-state.js";
export type { SyncPolicy } from "./environment.js";
export { RECORD_LOG_COMPACTION_THRESHOLD_DEFAULT, type RecordAppendResult } from "./record-log.js";
export { RECORD_CODEC_VERSION, decodeRecord, encodeRecord } from "./record-codec.js";
export { DATABASE_NAMES, STATE_KEY_BYTES_MAX, STORAGE_FORMAT_VERSION } from "./layout.js";
export { LOCK_FILE_NAME } from "./directory-lock.js";
export { RecordDecodeError, StorageCorruptionError, StorageError, StorageRefusedError, type StorageRefusalReason } from "./errors.js";
