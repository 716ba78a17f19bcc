// Opening one replica's data directory: the LMDB environment, its named sub-databases, and the
// checks that the directory is this replica's. A replica that opened another replica's or another
// cluster's directory would start from votes it never cast, so every mismatch is refused with a
// message that says what to do, before anything is written.

import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import { type Database, type RootDatabase, open } from "lmdb";
import { StorageRefusedError } from "./errors.js";
import { frameValue, unframeValue } from "./frame.js";
import { DATABASE_NAMES, type DatabaseName, META_KEYS, STORAGE_FORMAT_VERSION, STORAGE_FORMAT_VERSION_LEGACY, metaKey } from "./layout.js";
import { type DirectoryLock, lockDirectory } from "./directory-lock.js";

/**
 * When a write's promise resolves.
 * - "durable" (the default): after LMDB's commit has been flushed to disk with fdatasync. A vote
 *   persisted this way survives a power failure, which is what lets a replica send it.
 * - "none": after the commit is in the operating system's page cache (LMDB's MDB_NOSYNC). It
 *   survives a killed process but not a machine crash or power loss: the last commits can be lost,
 *   and if the file system reorders writes, the database can be damaged. A replica that restarts
 *   without a vote it already sent can vote differently at the same (view, seq), which breaks the
 *   f-fault bound PBFT's safety rests on. For tests and benchmarks only.
 */
export type SyncPolicy = "durable" | "none";

export type BinaryDatabase = Database<Buffer, Uint8Array>;

export interface StorageEnvironment {
  readonly directory: string;
  readonly root: RootDatabase<Buffer, Uint8Array>;
  readonly meta: BinaryDatabase;
  readonly records: BinaryDatabase;
  readonly headers: BinaryDatabase;
  readonly bodies: BinaryDatabase;
  readonly certificates: BinaryDatabase;
  readonly state: BinaryDatabase;
  readonly lock: DirectoryLock;
}

export interface EnvironmentOptions {
  readonly directory: string;
  /** The cluster this replica belongs to; recorded on first open and checked on every open. */
  readonly clusterId: string;
  /**
   * The replica this store belongs to; recorded on first open and checked on every open. "any"
   * opens an existing store of whichever replica (an auditor's view) and refuses to create one.
   */
  readonly replicaId: number | "any";
  readonly sync: SyncPolicy;
}

interface StoredIdentity {
  readonly clusterId: string;
  readonly replicaId: number;
}

/** Sub-databases: the six of the layout, with room for a few more without a format change. */
const SUB_DATABASES_MAX = 12;

/**
 * The address space LMDB maps the data file into, reserved up front: 64 GiB of virtual memory
 * that costs nothing until pages are read, and is not the file's size (LMDB grows the file page
 * by page; only MDB_WRITEMAP, not used here, would extend it to the map).
 *
 * Without it lmdb starts with a 128 KiB map and maps the file again, at twice its size, each time
 * it outgrows the map, keeping every earlier map (for read transactions that may still point into
 * one; lmdb's mdb.c, "we intentionally want to leave old maps around"). The pages each old map
 * had read stay in the process's resident set, so a replica's RSS counted the file up to twice
 * (issue 5, memory over five minutes: a data.mdb of 639 MiB showed as 1,278 MiB of the replica's
 * RSS, in twelve maps). A store that outgrows this still works: lmdb maps it again.
 */
const LMDB_MAP_BYTES = 64 * 2 ** 30;

export async function openEnvironment(options: EnvironmentOptions): Promise<StorageEnvironment> {
  const { directory } = options;
  if (existsSync(directory) && !statSync(directory).isDirectory()) {
    throw new StorageRefusedError("unreadable", directory, `${directory} is not a directory; give each replica a directory of its own`);
  }
  const lock = lockDirectory(directory);
  try {
    refuseNonLmdbFile(directory);
  } catch (error) {
    lock.release();
    throw error;
  }
  let root: RootDatabase<Buffer, Uint8Array>;
  try {
    root = open<Buffer, Uint8Array>({
      path: directory,
      // Without this, lmdb treats a path with a dot in its last part as a file name.
      noSubdir: false,
      encoding: "binary",
      keyEncoding: "binary",
      maxDbs: SUB_DATABASES_MAX,
      mapSize: LMDB_MAP_BYTES,
      // Plain LMDB commits: the writer thread fsyncs inside the commit, so a write's promise
      // resolves only once it is on disk. lmdb's default "overlapping sync" resolves at commit
      // and flushes later, which would let a vote leave before it is durable.
      overlappingSync: false,
      noSync: options.sync === "none",
    });
  } catch (error) {
    lock.release();
    const detail = error instanceof Error ? error.message : String(error);
    throw new StorageRefusedError("unreadable", directory, `cannot open ${directory} as an LMDB store: ${detail}`, { cause: error });
  }
  try {
    refuseForeignDatabases(root, directory);
    const database = (name: DatabaseName): BinaryDatabase => root.openDB<Buffer, Uint8Array>(name, { encoding: "binary", keyEncoding: "binary" });
    const environment: StorageEnvironment = {
      directory,
      root,
      meta: database(DATABASE_NAMES.meta),
      records: database(DATABASE_NAMES.records),
      headers: database(DATABASE_NAMES.headers),
      bodies: database(DATABASE_NAMES.bodies),
      certificates: database(DATABASE_NAMES.certificates),
      state: database(DATABASE_NAMES.state),
      lock,
    };
    await checkOrRecordIdentity(environment, options);
    return environment;
  } catch (error) {
    await root.close();
    lock.release();
    throw error;
  }
}

/** LMDB's meta page magic, little-endian at this offset of the data file's first page. */
const LMDB_MAGIC = 0xbeefc0de;
const LMDB_MAGIC_OFFSET = 24;

/**
 * Refuses a data file that does not start with an LMDB meta page. LMDB trusts its file's
 * structure (a damaged page can crash the process: lmdb 3.5 dies with SIGSEGV on a data.mdb of
 * zeros), so a file that is plainly not LMDB's is turned away before LMDB sees it.
 */
function refuseNonLmdbFile(directory: string): void {
  const path = join(directory, "data.mdb");
  if (!existsSync(path) || statSync(path).size === 0) return;
  const head = Buffer.alloc(LMDB_MAGIC_OFFSET + 4);
  const descriptor = openSync(path, "r");
  let length: number;
  try {
    length = readSync(descriptor, head, 0, head.length, 0);
  } finally {
    closeSync(descriptor);
  }
  if (length < head.length || head.readUInt32LE(LMDB_MAGIC_OFFSET) !== LMDB_MAGIC) {
    throw new StorageRefusedError("unreadable", directory, `cannot open ${directory} as an LMDB store: ${path} is not an LMDB data file; give the replica an empty directory or its own`);
  }
}

/** The root database lists the named sub-databases; a name that is not ours means a foreign store. */
function refuseForeignDatabases(root: RootDatabase<Buffer, Uint8Array>, directory: string): void {
  const ours = new Set<string>(Object.values(DATABASE_NAMES));
  const foreign: string[] = [];
  for (const key of root.getKeys()) {
    // lmdb stores sub-database names with a terminating zero byte.
    const name = Buffer.from(key).toString("utf8").replace(/\0$/, "");
    if (!ours.has(name)) foreign.push(name);
  }
  if (foreign.length > 0) {
    throw new StorageRefusedError(
      "not-a-bulwark-store",
      directory,
      `${directory} holds an LMDB store that is not Bulwark's (it has databases ${foreign.map((n) => JSON.stringify(n)).join(", ")}); give the replica an empty directory or its own`,
    );
  }
}

function isEmpty(database: BinaryDatabase): boolean {
  for (const _ of database.getKeys({ limit: 1 })) return false;
  return true;
}

const FORMAT_VERSION_KEY = metaKey(META_KEYS.formatVersion);

/** The store's recorded format version: undefined when none is recorded, -1 when the value is not 4 bytes. */
export function storedFormatVersion(meta: BinaryDatabase): number | undefined {
  const stored = meta.get(FORMAT_VERSION_KEY);
  if (stored === undefined) return undefined;
  const bytes = unframeValue(DATABASE_NAMES.meta, FORMAT_VERSION_KEY, stored);
  return bytes.length === 4 ? Buffer.from(bytes).readUInt32BE(0) : -1;
}

/** Records this build's format version; call inside a write transaction of `meta`. */
export function putFormatVersionSync(meta: BinaryDatabase): void {
  const version = Buffer.alloc(4);
  version.writeUInt32BE(STORAGE_FORMAT_VERSION);
  meta.putSync(FORMAT_VERSION_KEY, frameValue(DATABASE_NAMES.meta, FORMAT_VERSION_KEY, version));
}

async function checkOrRecordIdentity(environment: StorageEnvironment, options: EnvironmentOptions): Promise<void> {
  const { meta, directory } = environment;
  const identityKey = metaKey(META_KEYS.identity);
  const version = storedFormatVersion(meta);
  if (version === undefined) {
    const databases = [environment.meta, environment.records, environment.headers, environment.bodies, environment.certificates, environment.state];
    if (!databases.every(isEmpty)) {
      throw new StorageRefusedError(
        "not-a-bulwark-store",
        directory,
        `${directory} has data but no storage format version: it is not a Bulwark store, or its metadata is lost; restore it from a backup or remove it to rejoin by state transfer`,
      );
    }
    if (options.replicaId === "any") {
      throw new StorageRefusedError("not-a-bulwark-store", directory, `${directory} holds no Bulwark store: point at a replica's data directory`);
    }
    const identity: StoredIdentity = { clusterId: options.clusterId, replicaId: options.replicaId };
    await meta.childTransaction(() => {
      putFormatVersionSync(meta);
      meta.putSync(identityKey, frameValue(DATABASE_NAMES.meta, identityKey, Buffer.from(JSON.stringify(identity), "utf8")));
    });
    return;
  }
  if (version !== STORAGE_FORMAT_VERSION && version !== STORAGE_FORMAT_VERSION_LEGACY) {
    throw new StorageRefusedError(
      "format-version",
      directory,
      `${directory} was written in storage format version ${version}; this build of Bulwark reads version ${STORAGE_FORMAT_VERSION}. ` +
        `Run a Bulwark release that reads version ${version}, or move the directory aside and let the replica catch up by state transfer`,
    );
  }
  const storedIdentity = meta.get(identityKey);
  if (storedIdentity === undefined) {
    throw new StorageRefusedError("not-a-bulwark-store", directory, `${directory} has a format version but no identity record; restore it from a backup`);
  }
  const identity = parseIdentity(unframeValue(DATABASE_NAMES.meta, identityKey, storedIdentity), directory);
  if (identity.clusterId !== options.clusterId) {
    throw new StorageRefusedError(
      "cluster",
      directory,
      `${directory} belongs to cluster ${JSON.stringify(identity.clusterId)}, not ${JSON.stringify(options.clusterId)}: point this replica at its own data directory`,
    );
  }
  if (options.replicaId !== "any" && identity.replicaId !== options.replicaId) {
    throw new StorageRefusedError(
      "replica",
      directory,
      `${directory} belongs to replica ${identity.replicaId} of cluster ${JSON.stringify(identity.clusterId)}, not replica ${options.replicaId}: every replica needs its own data directory`,
    );
  }
}

function parseIdentity(bytes: Uint8Array, directory: string): StoredIdentity {
  const parsed = JSON.parse(Buffer.from(bytes).toString("utf8")) as Partial<StoredIdentity>;
  if (typeof parsed.clusterId !== "string" || typeof parsed.replicaId !== "number") {
    throw new StorageRefusedError("not-a-bulwark-store", directory, `${directory} has an identity record of the wrong shape; restore it from a backup`);
  }
  return { clusterId: parsed.clusterId, replicaId: parsed.replicaId };
}
