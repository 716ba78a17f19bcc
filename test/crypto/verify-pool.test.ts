import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CryptoBackendName, cryptoBackends } from "../../src/crypto/sodium.js";
import { type SignedItem, VerifyPool, VerifyPoolError, createEd25519VerifyBackend } from "../../src/crypto/verify-pool.js";
import { createPublicKey, verify as nodeVerify } from "node:crypto";
import { ed25519KeyPairFromSeed, ed25519Sign, ed25519Verify } from "../../src/crypto/ed25519.js";
import { Random } from "../../src/sim/random.js";
import { randomBytes } from "../support/random-bytes.js";

const GROUP_ORDER = (1n << 252n) + 27742317777372353535851937790883648493n;
const BACKENDS: readonly CryptoBackendName[] = cryptoBackends().ed25519 === "sodium-native" ? ["sodium-native", "node:crypto"] : ["node:crypto"];

function littleEndianToBigInt(bytes: Uint8Array): bigint {
  let value = 0n;
  for (let index = bytes.length - 1; index >= 0; index -= 1) value = (value << 8n) | BigInt(bytes[index] as number);
  return value;
}

function bigIntToLittleEndian(value: bigint, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let index = 0; index < length; index += 1) {
    bytes[index] = Number(value & 0xffn);
    value >>= 8n;
  }
  assert.equal(value, 0n);
  return bytes;
}

function sha512(...parts: Uint8Array[]): Uint8Array {
  const hash = createHash("sha512");
  for (const part of parts) hash.update(part);
  return new Uint8Array(hash.digest());
}

/**
 * A signature whose R is the identity (a point of small order) that passes the cofactorless
 * equation: S = k·a mod L, so [S]B = [k]A = R + [k]A. Only the key's owner can make it.
 */
function smallOrderRSignature(seed: Uint8Array, publicKey: Uint8Array, message: Uint8Array): Uint8Array {
  const scalarBytes = sha512(seed).slice(0, 32);
  scalarBytes[0] = (scalarBytes[0] as number) & 248;
  scalarBytes[31] = ((scalarBytes[31] as number) & 127) | 64;
  const secretScalar = littleEndianToBigInt(scalarBytes);
  const identity = new Uint8Array(32);
  identity[0] = 1;
  const challenge = littleEndianToBigInt(sha512(identity, publicKey, message)) % GROUP_ORDER;
  const s = (challenge * secretScalar) % GROUP_ORDER;
  const signature = new Uint8Array(64);
  signature.set(identity, 0);
  signature.set(bigIntToLittleEndian(s, 32), 32);
  return signature;
}

interface Fixture {
  readonly items: SignedItem[];
  readonly labels: string[];
}

/** Valid signatures mixed with every kind of bad one, deterministic from the seed. */
function mixedBatch(seedNumber: number, validCount: number): Fixture {
  const random = new Random(seedNumber);
  const pairs = Array.from({ length: 4 }, () => {
    const seed = randomBytes(random, 32);
    return { seed, ...ed25519KeyPairFromSeed(seed) };
  });
  const items: SignedItem[] = [];
  const labels: string[] = [];
  const add = (label: string, item: SignedItem): void => {
    items.push(item);
    labels.push(label);
  };
  for (let index = 0; index < validCount; index += 1) {
    const pair = pairs[index % pairs.length] as (typeof pairs)[number];
    const message = randomBytes(random, 100);
    const signature = ed25519Sign(pair.privateKey, message);
    add(`valid ${index}`, { publicKey: pair.publicKey, message, signature });
    if (index % 7 === 0) {
      const other = pairs[(index + 1) % pairs.length] as (typeof pairs)[number];
      add(`wrong key ${index}`, { publicKey: other.publicKey, message, signature });
      const tamperedMessage = message.slice();
      tamperedMessage[index % 100] = (tamperedMessage[index % 100] as number) ^ 1;
      add(`tampered message ${index}`, { publicKey: pair.publicKey, message: tamperedMessage, signature });
      const tamperedSignature = signature.slice();
      tamperedSignature[index % 64] = (tamperedSignature[index % 64] as number) ^ 0x10;
      add(`tampered signature ${index}`, { publicKey: pair.publicKey, message, signature: tamperedSignature });
      const malleated = signature.slice();
      const s = littleEndianToBigInt(signature.subarray(32)) + GROUP_ORDER;
      if (s < 1n << 256n) {
        malleated.set(bigIntToLittleEndian(s, 32), 32);
        add(`S + L ${index}`, { publicKey: pair.publicKey, message, signature: malleated });
      }
    }
  }
  // Under the all-zero (small-order) key, the all-zero signature passes OpenSSL's raw check for
  // about a quarter of messages; both backends must refuse every one.
  for (let counter = 0; counter < 8; counter += 1) {
    add(`small-order key ${counter}`, { publicKey: new Uint8Array(32), message: Uint8Array.of(counter), signature: new Uint8Array(64) });
  }
  const pair = pairs[0] as (typeof pairs)[number];
  const message = Uint8Array.of(1, 2, 3);
  const signature = ed25519Sign(pair.privateKey, message);
  add("short key", { publicKey: pair.publicKey.subarray(0, 31), message, signature });
  add("long signature", { publicKey: pair.publicKey, message, signature: Uint8Array.from([...signature, 0]) });
  add("empty message, valid", { publicKey: pair.publicKey, message: new Uint8Array(0), signature: ed25519Sign(pair.privateKey, new Uint8Array(0)) });
  add("not bytes", { publicKey: pair.publicKey, message: "hello" as unknown as Uint8Array, signature });
  return { items, labels };
}

function expectedVerdicts(items: readonly SignedItem[]): number[] {
  return items.map((item) => (ed25519Verify(item.publicKey, item.message, item.signature) ? 1 : 0));
}

for (const backend of BACKENDS) {
  test(`a mixed batch gets the same verdicts as ed25519Verify, split across workers (${backend})`, async () => {
    const pool = new VerifyPool({ workerCount: 2, backend, chunkItemsMin: 8 });
    try {
      assert.equal(pool.backend, backend);
      const { items, labels } = mixedBatch(4242, 60);
      const expected = expectedVerdicts(items);
      assert.ok(expected.includes(0) && expected.includes(1));
      const pending = pool.verifyBatch(items);
      assert.equal(pool.stats().inFlightChunks, 2, "the batch went to both workers at once");
      const verdicts = await pending;
      assert.ok(verdicts instanceof Uint8Array);
      assert.deepEqual(
        [...verdicts].map((verdict, index) => `${labels[index]}: ${verdict}`),
        expected.map((verdict, index) => `${labels[index]}: ${verdict}`),
      );
    } finally {
      await pool.close();
    }
  });

  test(`a signature with a small-order R is refused although OpenSSL's raw check accepts it (${backend})`, async () => {
    const seed = new Uint8Array(32).fill(7);
    const pair = ed25519KeyPairFromSeed(seed);
    const message = Uint8Array.of(1, 2, 3, 4);
    const signature = smallOrderRSignature(seed, pair.publicKey, message);
    // The divergence the shared policy closes: OpenSSL's raw check accepts this signature,
    // libsodium refuses it; a replica's verdict must not depend on its library, so every
    // Bulwark verifier (ed25519Verify included) refuses it.
    const rawKey = createPublicKey({ key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), pair.publicKey]), format: "der", type: "spki" });
    assert.equal(nodeVerify(null, message, rawKey, signature), true);
    assert.equal(ed25519Verify(pair.publicKey, message, signature), false);
    assert.equal(createEd25519VerifyBackend(backend).verify(pair.publicKey, message, signature), false);
    const pool = new VerifyPool({ workerCount: 1, backend });
    try {
      assert.deepEqual([...(await pool.verifyBatch([{ publicKey: pair.publicKey, message, signature }]))], [0]);
    } finally {
      await pool.close();
    }
  });
}

test("an empty batch resolves to no verdicts", async () => {
  const pool = new VerifyPool({ workerCount: 1 });
  try {
    const verdicts = await pool.verifyBatch([]);
    assert.equal(verdicts.length, 0);
    assert.equal(pool.stats().pendingBatches, 0);
  } finally {
    await pool.close();
  }
});

test("a large batch is split across all workers and its verdicts come back in order", async () => {
  const { items } = mixedBatch(77, 1500);
  const expected = expectedVerdicts(items);
  const pool = new VerifyPool({ workerCount: 3 });
  try {
    const pending = pool.verifyBatch(items);
    assert.equal(pool.stats().inFlightChunks, 3);
    assert.deepEqual([...(await pending)], expected);
  } finally {
    await pool.close();
  }
});

test("the pending-batch bound rejects one batch too many with queue-full, then recovers", async () => {
  const { items } = mixedBatch(5, 40);
  const pool = new VerifyPool({ workerCount: 1, pendingBatchesMax: 2 });
  try {
    const first = pool.verifyBatch(items);
    const second = pool.verifyBatch(items);
    await assert.rejects(pool.verifyBatch(items), (error: unknown) => error instanceof VerifyPoolError && error.code === "queue-full");
    await Promise.all([first, second]);
    assert.equal((await pool.verifyBatch(items)).length, items.length);
  } finally {
    await pool.close();
  }
});

test("a batch over batchItemsMax is rejected with too-large", async () => {
  const { items } = mixedBatch(6, 10);
  const pool = new VerifyPool({ workerCount: 1, batchItemsMax: 5 });
  try {
    await assert.rejects(pool.verifyBatch(items), (error: unknown) => error instanceof VerifyPoolError && error.code === "too-large");
  } finally {
    await pool.close();
  }
});

test("a worker crash fails its pending batches, is reported, and the worker is replaced", async () => {
  const { items } = mixedBatch(9, 20);
  const crashes: string[] = [];
  const pool = new VerifyPool({ workerCount: 1, onWorkerCrash: (error, index) => crashes.push(`${index}: ${error.message}`) });
  try {
    pool.crashWorkerForTesting(0);
    await assert.rejects(pool.verifyBatch(items), (error: unknown) => error instanceof VerifyPoolError && error.code === "worker-crashed");
    assert.equal(crashes.length, 1);
    assert.match(crashes[0] ?? "", /crashWorkerForTesting/);
    assert.equal(pool.stats().workerCrashes, 1);
    assert.deepEqual([...(await pool.verifyBatch(items))], expectedVerdicts(items));
  } finally {
    await pool.close();
  }
});

test("close() fails pending batches with closed and later calls are refused", async () => {
  const { items } = mixedBatch(10, 200);
  const pool = new VerifyPool({ workerCount: 1 });
  const pending = pool.verifyBatch(items);
  const closing = pool.close();
  await assert.rejects(pending, (error: unknown) => error instanceof VerifyPoolError && error.code === "closed");
  await closing;
  await assert.rejects(pool.verifyBatch(items), (error: unknown) => error instanceof VerifyPoolError && error.code === "closed");
  await pool.close();
});

test("after close() the process exits on its own", async () => {
  const poolModule = fileURLToPath(new URL("../../src/crypto/verify-pool.js", import.meta.url));
  const script = `
    const { VerifyPool } = await import(${JSON.stringify(poolModule)});
    const pool = new VerifyPool({ workerCount: 2 });
    const verdicts = await pool.verifyBatch([{ publicKey: new Uint8Array(32), message: new Uint8Array(1), signature: new Uint8Array(64) }]);
    await pool.close();
    console.log("verdicts", verdicts.length);
  `;
  // A file, not `node -e`: workers inherit execArgv, and --input-type is refused in a worker.
  const directory = mkdtempSync(join(tmpdir(), "bulwark-verify-pool-"));
  const scriptPath = join(directory, "exit.mjs");
  writeFileSync(scriptPath, script);
  const output = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [scriptPath], { timeout: 5000 }, (error, stdout) => {
      rmSync(directory, { recursive: true, force: true });
      if (error !== null) reject(new Error(`the child process failed: ${error.message}`, { cause: error }));
      else resolve(stdout);
    });
  });
  assert.match(output, /verdicts 1/);
});
