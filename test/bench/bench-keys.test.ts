// The bench's keys sign with the library crypto/sodium.ts chooses for Ed25519 signing: libsodium
// when sodium-native loads, node:crypto otherwise, with the same keys and signatures either way.

import assert from "node:assert/strict";
import { modulePath, runWithoutSodium } from "../support/without-sodium.js";
import { describe, it } from "node:test";

import { BenchKey, benchSigningBackend } from "../../src/bench/bench-keys.js";
import { ed25519KeyPairFromSeed, ed25519Sign, ed25519Verify, exportEd25519Seed } from "../../src/crypto/ed25519.js";
import { chooseSodium } from "../../src/crypto/sodium.js";

const KEY_SEED = new Uint8Array(32).fill(5);
const MESSAGE = new TextEncoder().encode("bench keys sign the same either way");

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

const CHILD_SCRIPT = `
const { BenchKey, benchSigningBackend } = await import(${modulePath("../../src/bench/bench-keys.js", import.meta.url)});
const key = BenchKey.derive(new Uint8Array(32).fill(5), "client", 7);
const signature = key.sign(new TextEncoder().encode("bench keys sign the same either way"));
console.log(JSON.stringify({ backend: benchSigningBackend(), publicKey: Buffer.from(key.publicKey).toString("hex"), signature: Buffer.from(signature).toString("hex") }));
`;

async function signWithoutSodium(): Promise<{ backend: string; publicKey: string; signature: string }> {
  return JSON.parse(await runWithoutSodium(CHILD_SCRIPT)) as { backend: string; publicKey: string; signature: string };
}

describe("the bench's signing keys", () => {
  it("sign with sodium-native when it is installed, as sodium.ts chooses, and node:crypto's key and signature result", () => {
    assert.notEqual(chooseSodium("sign", "auto"), null);
    assert.equal(benchSigningBackend(), "sodium-native");
    const key = BenchKey.derive(KEY_SEED, "client", 7);
    const pair = ed25519KeyPairFromSeed(exportEd25519Seed(key.privateKey));
    assert.equal(hex(key.publicKey), hex(pair.publicKey));
    const signature = key.sign(MESSAGE);
    assert.equal(hex(signature), hex(ed25519Sign(pair.privateKey, MESSAGE)), "Ed25519 is deterministic: one signature whichever library");
    assert.ok(ed25519Verify(key.publicKey, MESSAGE, signature));
  });

  it("fall back to node:crypto when sodium-native cannot load, with the same keys and signatures", async () => {
    const child = await signWithoutSodium();
    const key = BenchKey.derive(KEY_SEED, "client", 7);
    assert.deepEqual(child, { backend: "node:crypto", publicKey: hex(key.publicKey), signature: hex(key.sign(MESSAGE)) });
  });

  it("keep a key read from a key file as it is", () => {
    const pair = ed25519KeyPairFromSeed(new Uint8Array(32).fill(8));
    const key = BenchKey.fromPrivateKey(pair.privateKey);
    assert.equal(hex(key.publicKey), hex(pair.publicKey));
    assert.ok(ed25519Verify(pair.publicKey, MESSAGE, key.sign(MESSAGE)));
  });
});
