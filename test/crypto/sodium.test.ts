// The choice between sodium-native and node:crypto (src/crypto/sodium.ts): with the addon
// installed every primitive runs on it; in a process where it cannot load, every primitive falls
// back to node:crypto, still computes the same results, and cryptoBackends() says so and why.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { modulePath, runWithoutSodium } from "../support/without-sodium.js";
import { chooseSodium, cryptoBackends } from "../../src/crypto/sodium.js";
import { FRAME_MAC_KEY_BYTES, frameMac } from "../../src/net/frame-mac.js";
import { ed25519KeyPairFromSeed, ed25519Sign, ed25519SigningBackend } from "../../src/crypto/ed25519.js";

const KEY = new Uint8Array(FRAME_MAC_KEY_BYTES).fill(7);
const PAYLOAD = Uint8Array.from([1, 2, 3, 4, 5]);

/** The tag of PAYLOAD as frame 0 under KEY, as hex. */
function firstTagHex(backend: "auto" | "node:crypto"): string {
  const tag = new Uint8Array(16);
  assert.ok(frameMac({ sendKey: KEY, receiveKey: KEY }, backend).seal(PAYLOAD, tag, 0));
  return Buffer.from(tag).toString("hex");
}

const CHILD_SCRIPT = `
const { cryptoBackends } = await import(${modulePath("../../src/crypto/sodium.js", import.meta.url)});
const { frameMac } = await import(${modulePath("../../src/net/frame-mac.js", import.meta.url)});
const { x25519Backend, x25519KeyPair, x25519SharedSecret } = await import(${modulePath("../../src/crypto/x25519.js", import.meta.url)});
const { createEd25519VerifyBackend } = await import(${modulePath("../../src/crypto/verify-pool.js", import.meta.url)});
const { ed25519KeyPairFromSeed, ed25519Sign, ed25519SigningBackend } = await import(${modulePath("../../src/crypto/ed25519.js", import.meta.url)});
const key = new Uint8Array(${FRAME_MAC_KEY_BYTES}).fill(7);
const payload = Uint8Array.from([1, 2, 3, 4, 5]);
const tag = new Uint8Array(16);
frameMac({ sendKey: key, receiveKey: key }).seal(payload, tag, 0);
const a = x25519KeyPair();
const b = x25519KeyPair();
const agreed = Buffer.from(x25519SharedSecret(a.secretKey, b.publicKey)).equals(Buffer.from(x25519SharedSecret(b.secretKey, a.publicKey)));
let explicit = "no error";
try {
  frameMac({ sendKey: key, receiveKey: key }, "sodium-native");
} catch (error) {
  explicit = error.message;
}
console.log(JSON.stringify({
  report: cryptoBackends(),
  used: { x25519: x25519Backend().name, ed25519: createEd25519VerifyBackend().name, sign: ed25519SigningBackend() },
  signature: Buffer.from(ed25519Sign(ed25519KeyPairFromSeed(new Uint8Array(32).fill(9)).privateKey, payload)).toString("hex"),
  tag: Buffer.from(tag).toString("hex"),
  agreed,
  explicit,
}));
`;

interface ChildReport {
  readonly report: ReturnType<typeof cryptoBackends>;
  readonly used: { readonly x25519: string; readonly ed25519: string; readonly sign: string };
  readonly signature: string;
  readonly tag: string;
  readonly agreed: boolean;
  readonly explicit: string;
}

async function childReport(): Promise<ChildReport> {
  return JSON.parse(await runWithoutSodium(CHILD_SCRIPT)) as ChildReport;
}

describe("crypto backends", () => {
  it("with sodium-native installed, every primitive runs on it and there is no fallback to report", () => {
    assert.deepEqual(cryptoBackends(), { mac: "sodium-native", x25519: "sodium-native", ed25519: "sodium-native", sign: "sodium-native", fallbackReason: null });
    assert.equal(ed25519SigningBackend(), "sodium-native");
    for (const primitive of ["mac", "x25519", "ed25519", "sign"] as const) assert.notEqual(chooseSodium(primitive, "auto"), null, primitive);
    assert.equal(chooseSodium("mac", "node:crypto"), null, "an explicit node:crypto is honoured");
  });

  it("when sodium-native cannot load, every primitive falls back to node:crypto with the same results, and the report says why", async () => {
    const child = await childReport();
    assert.deepEqual(child.report, {
      mac: "node:crypto",
      x25519: "node:crypto",
      ed25519: "node:crypto",
      sign: "node:crypto",
      fallbackReason: "sodium-native did not load: simulated: no prebuild for this platform",
    });
    assert.deepEqual(child.used, { x25519: "node:crypto", ed25519: "node:crypto", sign: "node:crypto" }, "the report matches what the primitives use");
    const signature = ed25519Sign(ed25519KeyPairFromSeed(new Uint8Array(32).fill(9)).privateKey, PAYLOAD);
    assert.equal(child.signature, Buffer.from(signature).toString("hex"), "node:crypto signs the bytes sodium-native signs (Ed25519 is deterministic)");
    assert.equal(child.tag, firstTagHex("auto"), "the fallback's tag is sodium-native's: the two ends still interoperate");
    assert.equal(child.tag, firstTagHex("node:crypto"));
    assert.ok(child.agreed, "X25519 still agrees");
    assert.match(child.explicit, /^the frame MAC: sodium-native was asked for but cannot be used \(sodium-native did not load: simulated/);
  });
});
