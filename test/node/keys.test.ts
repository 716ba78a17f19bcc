import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { ed25519KeyPairFromSeed, ed25519Sign, ed25519Verify, exportEd25519Seed } from "../../src/crypto/ed25519.js";
import { type KeyFile, KeyFileError, formatKeyFile, readKeyFile, writeKeyFile } from "../../src/node/keys.js";
import { temporaryDirectory } from "../storage/helpers.js";

const SEED = Uint8Array.from({ length: 32 }, (_, index) => index + 1);
const OTHER_SEED = Uint8Array.from({ length: 32 }, (_, index) => 200 - index);

function replicaKey(replica = 2, seed = SEED): KeyFile {
  return { role: "replica", replica, ...ed25519KeyPairFromSeed(seed) };
}

/** The JSON object of a valid replica key file, to be broken one field at a time. */
function keyObject(): Record<string, unknown> {
  return JSON.parse(formatKeyFile(replicaKey())) as Record<string, unknown>;
}

/** Writes `value` as a key file (mode 0600) and returns the error reading it throws. */
async function readError(directory: string, value: unknown): Promise<KeyFileError> {
  const path = join(directory, "broken.key");
  writeFileSync(path, typeof value === "string" ? value : JSON.stringify(value), { mode: 0o600 });
  const error = await readKeyFile(path).then(
    () => assert.fail("a broken key file was accepted"),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof KeyFileError, `expected a KeyFileError, got ${String(error)}`);
  assert.match(error.message, new RegExp(`^key file ${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`), "the message names the file");
  return error;
}

describe("key files", () => {
  it("round-trip a replica key and a client key: same role, id, public key, and a private key that signs for it", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-keys-");
    const replicaPath = join(directory, "replica-2.key");
    const clientPath = join(directory, "client.key");
    await writeKeyFile(replicaPath, replicaKey());
    await writeKeyFile(clientPath, { role: "client", ...ed25519KeyPairFromSeed(OTHER_SEED) });

    const replica = await readKeyFile(replicaPath);
    assert.equal(replica.role, "replica");
    assert.equal(replica.replica, 2);
    assert.deepEqual(replica.publicKey, ed25519KeyPairFromSeed(SEED).publicKey);
    assert.deepEqual(exportEd25519Seed(replica.privateKey), SEED);
    const message = Uint8Array.of(1, 2, 3);
    assert.ok(ed25519Verify(replica.publicKey, message, ed25519Sign(replica.privateKey, message)));

    const client = await readKeyFile(clientPath);
    assert.equal(client.role, "client");
    assert.equal(client.replica, undefined);
    assert.equal("replica" in client, false);
    assert.deepEqual(exportEd25519Seed(client.privateKey), OTHER_SEED);
  });

  it("are JSON with the documented fields in order and a trailing newline", () => {
    const text = formatKeyFile(replicaKey(0));
    assert.ok(text.endsWith("}\n"));
    const value = JSON.parse(text) as Record<string, unknown>;
    assert.deepEqual(Object.keys(value), ["type", "version", "algorithm", "role", "replica", "publicKey", "seed"]);
    assert.equal(value.type, "bulwark-private-key");
    assert.equal(value.version, 1);
    assert.equal(value.algorithm, "ed25519");
    assert.equal(value.replica, 0);
    assert.equal(value.seed, Buffer.from(SEED).toString("hex"));
    assert.equal(value.publicKey, Buffer.from(ed25519KeyPairFromSeed(SEED).publicKey).toString("hex"));
    const client = JSON.parse(formatKeyFile({ role: "client", ...ed25519KeyPairFromSeed(SEED) })) as Record<string, unknown>;
    assert.equal("replica" in client, false);
  });

  it("are written with mode 0600, whatever the umask", { skip: process.platform === "win32" }, async (t) => {
    const directory = temporaryDirectory(t, "bulwark-keys-");
    const path = join(directory, "replica-2.key");
    const umask = process.umask(0o000);
    try {
      await writeKeyFile(path, replicaKey());
    } finally {
      process.umask(umask);
    }
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  it("are never overwritten unless asked; an overwrite replaces the key and restores mode 0600", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-keys-");
    const path = join(directory, "replica-2.key");
    await writeKeyFile(path, replicaKey());
    const refused = await writeKeyFile(path, replicaKey(2, OTHER_SEED)).then(
      () => assert.fail("an existing key file was overwritten"),
      (caught: unknown) => caught,
    );
    assert.ok(refused instanceof KeyFileError);
    assert.equal(refused.exists, true);
    assert.match(refused.message, /exists; refusing to overwrite a private key/);
    assert.deepEqual(exportEd25519Seed((await readKeyFile(path)).privateKey), SEED);

    chmodSync(path, 0o644);
    await writeKeyFile(path, replicaKey(2, OTHER_SEED), { overwrite: true });
    assert.deepEqual(exportEd25519Seed((await readKeyFile(path)).privateKey), OTHER_SEED);
    if (process.platform !== "win32") assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  it("refuse a publicKey that the seed does not derive", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-keys-");
    const tampered = keyObject();
    tampered.publicKey = Buffer.from(ed25519KeyPairFromSeed(OTHER_SEED).publicKey).toString("hex");
    const error = await readError(directory, tampered);
    assert.match(error.message, /publicKey does not match seed/);
    assert.match(error.message, /restore it from a backup or generate a new key/);
  });

  it("refuse bad hex, naming the field and the position but never echoing the seed", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-keys-");
    const badSeed = keyObject();
    badSeed.seed = `${(badSeed.seed as string).slice(0, 10)}zz${(badSeed.seed as string).slice(12)}`;
    const seedError = await readError(directory, badSeed);
    assert.match(seedError.message, /seed: the character at position 10 is not a hex digit/);
    assert.equal(seedError.message.includes((badSeed.seed as string).slice(0, 10)), false, "the message leaks the seed");

    const shortKey = keyObject();
    shortKey.publicKey = (shortKey.publicKey as string).slice(1);
    assert.match((await readError(directory, shortKey)).message, /publicKey: must be 64 hex characters \(a 32-byte Ed25519 public key\); got 63 characters/);

    const numberSeed = keyObject();
    numberSeed.seed = 42;
    assert.match((await readError(directory, numberSeed)).message, /seed: must be a string of 64 hex characters/);
  });

  it("refuse a file of another type, version or algorithm", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-keys-");
    const wrongType = keyObject();
    wrongType.type = "openssh-private-key";
    assert.match((await readError(directory, wrongType)).message, /type: must be "bulwark-private-key"; got "openssh-private-key"/);

    const wrongVersion = keyObject();
    wrongVersion.version = 2;
    assert.match((await readError(directory, wrongVersion)).message, /version: this build reads version 1; got 2/);

    const wrongAlgorithm = keyObject();
    wrongAlgorithm.algorithm = "secp256k1";
    assert.match((await readError(directory, wrongAlgorithm)).message, /algorithm: must be "ed25519"/);

    const unknownField = keyObject();
    unknownField.comment = "hello";
    assert.match((await readError(directory, unknownField)).message, /comment: unknown field/);

    assert.match((await readError(directory, "{ not json")).message, /not valid JSON/);
    assert.match((await readError(directory, "[1, 2]")).message, /must be a JSON object/);
  });

  it("refuse a replica key without its id, a client key with one, and an unknown role", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-keys-");
    const noId = keyObject();
    delete noId.replica;
    assert.match((await readError(directory, noId)).message, /replica: missing; a replica's key must name its replica id/);

    const badId = keyObject();
    badId.replica = -1;
    assert.match((await readError(directory, badId)).message, /replica: must be an integer from 0 to 1023; got -1/);

    const clientWithId = keyObject();
    clientWithId.role = "client";
    assert.match((await readError(directory, clientWithId)).message, /replica: only a replica's key names a replica id/);

    const badRole = keyObject();
    badRole.role = "primary";
    assert.match((await readError(directory, badRole)).message, /role: must be "replica" or "client"; got "primary"/);
  });

  it("list every problem of a file at once", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-keys-");
    const broken = keyObject();
    broken.type = "other";
    broken.version = 9;
    delete broken.replica;
    const error = await readError(directory, broken);
    assert.equal(error.problems.length, 3);
    assert.match(error.message, /has 3 problems:\n {2}- type: .*\n {2}- version: .*\n {2}- replica: /);
  });

  it("refuse a missing file with a message naming it", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-keys-");
    const path = join(directory, "absent.key");
    await assert.rejects(readKeyFile(path), (error: unknown) => error instanceof KeyFileError && error.message.startsWith(`key file ${path}: cannot be read`));
  });

  it("warn about a key file others can read, and still read it", { skip: process.platform === "win32" }, async (t) => {
    const directory = temporaryDirectory(t, "bulwark-keys-");
    const path = join(directory, "replica-2.key");
    await writeKeyFile(path, replicaKey());
    const warnings: string[] = [];
    await readKeyFile(path, { warn: (message) => warnings.push(message) });
    assert.equal(warnings.length, 0, "a 0600 key file is not unprotected");

    chmodSync(path, 0o644);
    const key = await readKeyFile(path, { warn: (message) => warnings.push(message) });
    assert.equal(key.replica, 2);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, new RegExp(`unprotected private key file: mode 0644 lets other users read it; run chmod 600 .*replica-2\\.key`));
    assert.equal(readFileSync(path, "utf8"), formatKeyFile(replicaKey()), "reading leaves the file alone");
  });
});
