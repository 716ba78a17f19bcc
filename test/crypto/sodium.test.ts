// The choice between sodium-native and node:crypto (src/crypto/sodium.ts): with the addon
// installed every primitive runs on it; in a process where it cannot load, every primitive falls
// back to node:crypto, still computes the same results, and cryptoBackends() says so and why.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chooseSodium, cryptoBackends } from "../../src/crypto/sodium.js";
import { FRAME_MAC_KEY_BYTES, frameMac } from "../../src/net/frame-mac.js";

const KEY = new Uint8Array(FRAME_MAC_KEY_BYTES).fill(7);
const PAYLOAD = Uint8Array.from([1, 2, 3, 4, 5]);

/** The tag of PAYLOAD as frame 0 under KEY, as hex. */
function firstTagHex(backend: "auto" | "node:crypto"): string {
  const tag = new Uint8Array(16);
  assert.ok(frameMac({ sendKey: KEY, receiveKey: KEY }, backend).seal(PAYLOAD, tag, 0));
  return Buffer.from(tag).toString("hex");
}

const modulePath = (relative: string): string => JSON.stringify(fileURLToPath(new URL(relative, import.meta.url)));

// Runs in a child process whose require("sodium-native") throws, as on a platform without a
// prebuild; prints what it saw as one JSON line.
const CHILD_PRELOAD = `
const Module = require("node:module");
const load = Module._load;
Module._load = function (request, ...rest) {
  if (request === "sodium-native") throw new Error("simulated: no prebuild for this platform");
  return load.call(this, request, ...rest);
};
`;
const CHILD_SCRIPT = `
const { cryptoBackends } = await import(${modulePath("../../src/crypto/sodium.js")});
const { frameMac } = await import(${modulePath("../../src/net/frame-mac.js")});
const { x25519Backend, x25519KeyPair, x25519SharedSecret } = await import(${modulePath("../../src/crypto/x25519.js")});
const { createEd25519VerifyBackend } = await import(${modulePath("../../src/crypto/verify-pool.js")});
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
  used: { x25519: x25519Backend().name, ed25519: createEd25519VerifyBackend().name },
  tag: Buffer.from(tag).toString("hex"),
  agreed,
  explicit,
}));
`;

interface ChildReport {
  readonly report: ReturnType<typeof cryptoBackends>;
  readonly used: { readonly x25519: string; readonly ed25519: string };
  readonly tag: string;
  readonly agreed: boolean;
  readonly explicit: string;
}

async function runWithoutSodium(): Promise<ChildReport> {
  const directory = mkdtempSync(join(tmpdir(), "bulwark-sodium-"));
  const preloadPath = join(directory, "no-sodium.cjs");
  const scriptPath = join(directory, "report.mjs");
  writeFileSync(preloadPath, CHILD_PRELOAD);
  writeFileSync(scriptPath, CHILD_SCRIPT);
  const output = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ["--require", preloadPath, scriptPath], { timeout: 10_000 }, (error, stdout, stderr) => {
      rmSync(directory, { recursive: true, force: true });
      if (error !== null) reject(new Error(`the child process failed: ${error.message}\n${stderr}`, { cause: error }));
      else resolve(stdout);
    });
  });
  return JSON.parse(output) as ChildReport;
}

describe("crypto backends", () => {
  it("with sodium-native installed, every primitive runs on it and there is no fallback to report", () => {
    assert.deepEqual(cryptoBackends(), { mac: "sodium-native", x25519: "sodium-native", ed25519: "sodium-native", fallbackReason: null });
    for (const primitive of ["mac", "x25519", "ed25519"] as const) assert.notEqual(chooseSodium(primitive, "auto"), null, primitive);
    assert.equal(chooseSodium("mac", "node:crypto"), null, "an explicit node:crypto is honoured");
  });

  it("when sodium-native cannot load, every primitive falls back to node:crypto with the same results, and the report says why", async () => {
    const child = await runWithoutSodium();
    assert.deepEqual(child.report, {
      mac: "node:crypto",
      x25519: "node:crypto",
      ed25519: "node:crypto",
      fallbackReason: "sodium-native did not load: simulated: no prebuild for this platform",
    });
    assert.deepEqual(child.used, { x25519: "node:crypto", ed25519: "node:crypto" }, "the report matches what the primitives use");
    assert.equal(child.tag, firstTagHex("auto"), "the fallback's tag is sodium-native's: the two ends still interoperate");
    assert.equal(child.tag, firstTagHex("node:crypto"));
    assert.ok(child.agreed, "X25519 still agrees");
    assert.match(child.explicit, /^the frame MAC: sodium-native was asked for but cannot be used \(sodium-native did not load: simulated/);
  });
});
