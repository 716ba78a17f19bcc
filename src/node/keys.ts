// Private-key files: the one format in which a replica's signing key and a client's key live on
// disk. `bulwark init` writes them, a replica reads its own at start, and a client reads its own
// to sign transactions. A file is a small JSON object plus a trailing newline:
//
//   {
//     "type": "bulwark-private-key",
//     "version": 1,
//     "algorithm": "ed25519",
//     "role": "replica",
//     "replica": 2,
//     "publicKey": "<64 hex>",
//     "seed": "<64 hex>"
//   }
//
// The seed alone determines the key (RFC 8032 §5.1.5); the public key is stored beside it so a
// person can match the file against cluster.json by eye, and so a damaged or hand-edited seed is
// caught when the file is read rather than when the replica's first signature fails to verify
// at every peer. Files are written with mode 0600 and never overwritten unless asked: losing a
// replica's key by accident is a membership change, not a typo.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { type FileHandle, open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SEED_BYTES,
  type Ed25519PrivateKey,
  ed25519KeyPairFromSeed,
  ed25519PublicKeyOf,
  exportEd25519Seed,
} from "../crypto/ed25519.js";
import { CLUSTER_REPLICAS_MAX } from "../ledger/cluster.js";
import { bytesEqual, toHex } from "../ledger/codec.js";

export const KEY_FILE_TYPE = "bulwark-private-key";
/** The key-file format version this build reads and writes. */
export const KEY_FILE_VERSION = 1;
export const KEY_FILE_ALGORITHM = "ed25519";
/** Owner read and write only, like ssh's private keys. */
export const KEY_FILE_MODE = 0o600;
/**
 * Largest file `readKeyFile` reads. A key file is about 250 bytes; the bound keeps a wrong path
 * (a log, a disk image) from being read whole into memory before it is refused.
 */
export const KEY_FILE_BYTES_MAX = 64 * 1024;

export type KeyRole = "replica" | "client";

export interface KeyFile {
  readonly role: KeyRole;
  /** The replica's id (0 to n - 1); present exactly when `role` is "replica". */
  readonly replica?: number;
  readonly privateKey: Ed25519PrivateKey;
  /** Raw 32-byte Ed25519 public key of `privateKey`. */
  readonly publicKey: Uint8Array;
}

/**
 * A key file that cannot be used: unreadable, malformed, inconsistent, or (when writing) already
 * there. `problems` has one line per problem, each naming its field and saying what to fix;
 * `exists` is set when writing refused to replace an existing file, so a command can suggest its
 * own way out (`--force`).
 */
export class KeyFileError extends Error {
  override readonly name = "KeyFileError";

  constructor(
    readonly path: string,
    readonly problems: readonly string[],
    readonly exists = false,
  ) {
    super(
      problems.length === 1
        ? `key file ${path}: ${problems[0]}`
        : `key file ${path} has ${problems.length} problems:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`,
    );
  }
}

export interface WriteKeyFileOptions {
  /** Replace an existing file at `path` (default: refuse with a KeyFileError whose `exists` is true). */
  readonly overwrite?: boolean;
}

export interface ReadKeyFileOptions {
  /**
   * Told when the file's mode lets the group or others read it. Such a file is still used (the
   * operator may have reasons, and refusing would stop a replica over a chmod), but it should be
   * fixed, like ssh's "unprotected private key file".
   */
  readonly warn?: (message: string) => void;
}

const KEY_FILE_FIELDS = ["type", "version", "algorithm", "role", "replica", "publicKey", "seed"] as const;

/** The text of a key file: fields in a fixed order, two-space indentation, a trailing newline. */
export function formatKeyFile(key: KeyFile): string {
  assertKeyFile(key);
  const seed = exportEd25519Seed(key.privateKey);
  const value = {
    type: KEY_FILE_TYPE,
    version: KEY_FILE_VERSION,
    algorithm: KEY_FILE_ALGORITHM,
    role: key.role,
    ...(key.role === "replica" ? { replica: key.replica } : {}),
    publicKey: toHex(key.publicKey),
    seed: toHex(seed),
  };
  seed.fill(0);
  return `${JSON.stringify(value, null, 2)}\n`;
}

/**
 * Writes `key` to `path` with mode 0600, synced to disk. Without `overwrite` the file is created
 * exclusively, so an existing key is never replaced (KeyFileError with `exists` set). With it the
 * key is written to a fresh file beside `path` and renamed over it, so the result has mode 0600
 * whatever the old file's mode was, and a crash leaves either the old key or the new one.
 */
export async function writeKeyFile(path: string, key: KeyFile, options: WriteKeyFileOptions = {}): Promise<void> {
  const text = formatKeyFile(key);
  if (options.overwrite !== true) {
    await writeNewFile(path, path, text);
    return;
  }
  const temporaryPath = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  await writeNewFile(temporaryPath, path, text);
  try {
    await rename(temporaryPath, path);
  } catch (error) {
    await unlink(temporaryPath).catch(() => undefined);
    throw new KeyFileError(path, [`cannot be written (${describeError(error)}); check that its directory is writable`]);
  }
}

/**
 * Reads and checks a key file: the JSON, its type, version and algorithm, the hex of both keys,
 * that the seed derives the stored public key, and that a replica key (and only one) names its
 * replica. Throws a KeyFileError listing every problem found.
 */
export async function readKeyFile(path: string, options: ReadKeyFileOptions = {}): Promise<KeyFile> {
  let text: string;
  let mode: number;
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, "r");
    const stats = await handle.stat();
    if (!stats.isFile()) throw new KeyFileError(path, ["is not a regular file; pass the path of a key file"]);
    if (stats.size > KEY_FILE_BYTES_MAX) {
      throw new KeyFileError(path, [`is ${stats.size} bytes, far larger than a key file (about 250 bytes); check the path`]);
    }
    mode = stats.mode & 0o777;
    text = await handle.readFile("utf8");
  } catch (error) {
    if (error instanceof KeyFileError) throw error;
    throw new KeyFileError(path, [`cannot be read (${describeError(error)}); check the path and its permissions`]);
  } finally {
    await handle?.close();
  }
  // POSIX modes mean nothing on Windows, where Node reports 0666 for every writable file.
  if ((mode & 0o077) !== 0 && process.platform !== "win32" && options.warn !== undefined) {
    options.warn(
      `key file ${path}: unprotected private key file: mode ${mode.toString(8).padStart(4, "0")} lets other users read it; run chmod 600 ${path}`,
    );
  }
  return parseKeyFile(text, path);
}

/** A checked key from the text of a key file (`source` names it in errors). Throws KeyFileError. */
export function parseKeyFile(text: string, source: string): KeyFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new KeyFileError(source, [`not valid JSON (${describeError(error)}); restore the file from a backup or generate a new key`]);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new KeyFileError(source, [`must be a JSON object with the fields ${KEY_FILE_FIELDS.join(", ")}; got ${describeJson(value)}`]);
  }
  const object = value as Record<string, unknown>;
  const problems: string[] = [];
  for (const field of Object.keys(object)) {
    if (!(KEY_FILE_FIELDS as readonly string[]).includes(field)) {
      problems.push(`${field}: unknown field; the known fields are ${KEY_FILE_FIELDS.join(", ")}`);
    }
  }
  if (object.type !== KEY_FILE_TYPE) {
    problems.push(`type: must be "${KEY_FILE_TYPE}"; got ${describeJson(object.type)} (is this a Bulwark private-key file?)`);
  }
  if (object.version !== KEY_FILE_VERSION) {
    problems.push(`version: this build reads version ${KEY_FILE_VERSION}; got ${describeJson(object.version)}`);
  }
  if (object.algorithm !== KEY_FILE_ALGORITHM) {
    problems.push(`algorithm: must be "${KEY_FILE_ALGORITHM}", the only signature scheme Bulwark uses; got ${describeJson(object.algorithm)}`);
  }
  const role = readRole(object, problems);
  const replica = readReplicaId(object, role, problems);
  const publicKey = readHex(object.publicKey, "publicKey", ED25519_PUBLIC_KEY_BYTES, "a 32-byte Ed25519 public key", problems);
  const seed = readHex(object.seed, "seed", ED25519_SEED_BYTES, "a 32-byte Ed25519 seed", problems);

  let privateKey: Ed25519PrivateKey | undefined;
  if (seed !== undefined) {
    const pair = ed25519KeyPairFromSeed(seed);
    seed.fill(0);
    privateKey = pair.privateKey;
    if (publicKey !== undefined && !bytesEqual(pair.publicKey, publicKey)) {
      problems.push(
        `publicKey does not match seed: the seed derives ${toHex(pair.publicKey)}; the file is damaged or was edited, so restore it from a backup or generate a new key`,
      );
    }
  }
  if (problems.length > 0 || role === undefined || privateKey === undefined || publicKey === undefined) {
    throw new KeyFileError(source, problems);
  }
  if (role === "client") return { role, privateKey, publicKey };
  assert.ok(replica !== undefined, "readReplicaId reports a replica key without a usable id");
  return { role, replica, privateKey, publicKey };
}

function readRole(object: Record<string, unknown>, problems: string[]): KeyRole | undefined {
  const role = object.role;
  if (role === "replica" || role === "client") return role;
  problems.push(`role: must be "replica" or "client"; got ${describeJson(role)}`);
  return undefined;
}

function readReplicaId(object: Record<string, unknown>, role: KeyRole | undefined, problems: string[]): number | undefined {
  const replica = object.replica;
  if (role === "client") {
    if (replica !== undefined) problems.push(`replica: only a replica's key names a replica id; remove it, or set "role": "replica"`);
    return undefined;
  }
  if (role !== "replica") return undefined;
  if (replica === undefined) {
    problems.push(`replica: missing; a replica's key must name its replica id (0 to n - 1, as in cluster.json)`);
    return undefined;
  }
  if (typeof replica !== "number" || !Number.isSafeInteger(replica) || replica < 0 || replica >= CLUSTER_REPLICAS_MAX) {
    problems.push(`replica: must be an integer from 0 to ${CLUSTER_REPLICAS_MAX - 1}; got ${describeJson(replica)}`);
    return undefined;
  }
  return replica;
}

function readHex(value: unknown, field: string, bytes: number, what: string, problems: string[]): Uint8Array | undefined {
  const hexLength = 2 * bytes;
  if (typeof value !== "string") {
    problems.push(`${field}: must be a string of ${hexLength} hex characters (${what}); got ${value === undefined ? "nothing" : `a ${typeof value}`}`);
    return undefined;
  }
  if (value.length !== hexLength) {
    problems.push(`${field}: must be ${hexLength} hex characters (${what}); got ${value.length} characters`);
    return undefined;
  }
  const badIndex = value.search(/[^0-9a-fA-F]/);
  if (badIndex !== -1) {
    // The position only, never the character: this may be the secret seed.
    problems.push(`${field}: the character at position ${badIndex} is not a hex digit (0-9, a-f)`);
    return undefined;
  }
  return Uint8Array.from(Buffer.from(value, "hex"));
}

/** Creates `path` exclusively with mode 0600, writes `text` and syncs; removes the file on failure. */
async function writeNewFile(path: string, reportedPath: string, text: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(path, "wx", KEY_FILE_MODE);
  } catch (error) {
    if (isErrorCode(error, "EEXIST")) throw new KeyFileError(reportedPath, ["exists; refusing to overwrite a private key"], true);
    throw new KeyFileError(reportedPath, [`cannot be created (${describeError(error)}); check that its directory exists and is writable`]);
  }
  try {
    // The umask can only clear bits of the mode given to open; chmod makes it exactly 0600.
    await handle.chmod(KEY_FILE_MODE);
    await handle.writeFile(text, "utf8");
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
    throw new KeyFileError(reportedPath, [`cannot be written (${describeError(error)}); check free space and permissions`]);
  }
  await handle.close();
}

function assertKeyFile(key: KeyFile): void {
  assert.ok(key.role === "replica" || key.role === "client", `key role must be "replica" or "client", not ${String(key.role)}`);
  if (key.role === "replica") {
    assert.ok(Number.isSafeInteger(key.replica) && (key.replica as number) >= 0, "a replica key needs a replica id");
  } else {
    assert.equal(key.replica, undefined, "a client key has no replica id");
  }
  assert.ok(bytesEqual(ed25519PublicKeyOf(key.privateKey), key.publicKey), "the key file's publicKey must be that of its privateKey");
}

function isErrorCode(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function describeJson(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value) ?? `a ${typeof value}`;
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
