// Cost of one frame tag by MAC primitive and library, the measurement behind frame-mac.ts's
// choice. A script, not a test: `node dist/src/bench/frame-mac-bench.js [--runs 3]
// [--payload-bytes 64,100,1024,16384]`. Each candidate tags (implicit u64 counter, payload) into
// 16 or 32 bytes, as the transport would per frame; it prints one JSON line per candidate, size
// and run, then a table of medians in µs per tag. Runs interleave candidates, so drift in machine
// speed hits them all alike.
//
//   chacha20poly1305-sodium   frame-mac.ts's sodium-native backend (the counter is the nonce)
//   chacha20poly1305-node     frame-mac.ts's node:crypto fallback, same tags
//   blake2b-sodium            keyed BLAKE2b-128 over counter || payload, copied into one buffer
//   hmac-sha256-node          HMAC-SHA256 (KeyObject) over counter, then payload
//   hmac-sha512-256-sodium    libsodium crypto_auth over counter || payload, copied into one buffer

import { createHmac, createSecretKey } from "node:crypto";
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import { FRAME_MAC_KEY_BYTES, frameMac } from "../net/frame-mac.js";

interface SodiumMacs {
  crypto_generichash(output: Uint8Array, input: Uint8Array, key: Uint8Array): void;
  crypto_auth(output: Uint8Array, input: Uint8Array, key: Uint8Array): void;
}

type Tagger = (counter: number, payload: Uint8Array) => void;

function candidates(payloadBytes: number): Record<string, Tagger> {
  const key = Buffer.alloc(FRAME_MAC_KEY_BYTES, 7);
  const sodium = createRequire(import.meta.url)("sodium-native") as SodiumMacs;
  const sodiumMac = frameMac({ sendKey: key, receiveKey: key }, "sodium-native");
  const nodeMac = frameMac({ sendKey: key, receiveKey: key }, "node:crypto");
  const tag16 = Buffer.alloc(16);
  const tag32 = Buffer.alloc(32);
  const counterBytes = Buffer.alloc(8);
  const joined = Buffer.alloc(8 + payloadBytes);
  const hmacKey = createSecretKey(key);
  const writeCounter = (target: Buffer, counter: number): void => {
    target.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), 0);
    target.writeUInt32BE(counter >>> 0, 4);
  };
  return {
    "chacha20poly1305-sodium": (_counter, payload) => sodiumMac.seal(payload, tag16, 0),
    "chacha20poly1305-node": (_counter, payload) => nodeMac.seal(payload, tag16, 0),
    "blake2b-sodium": (counter, payload) => {
      writeCounter(joined, counter);
      joined.set(payload, 8);
      sodium.crypto_generichash(tag16, joined, key);
    },
    "hmac-sha256-node": (counter, payload) => {
      writeCounter(counterBytes, counter);
      createHmac("sha256", hmacKey).update(counterBytes).update(payload).digest();
    },
    "hmac-sha512-256-sodium": (counter, payload) => {
      writeCounter(joined, counter);
      joined.set(payload, 8);
      sodium.crypto_auth(tag32, joined, key);
    },
  };
}

/** µs per tag over enough calls to take about `targetMs`. */
function measure(tagger: Tagger, payload: Uint8Array, targetMs: number): number {
  for (let counter = 0; counter < 2_000; counter++) tagger(counter, payload);
  let calls = 1_000;
  for (;;) {
    const started = process.hrtime.bigint();
    for (let counter = 0; counter < calls; counter++) tagger(counter, payload);
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    if (elapsedMs >= targetMs) return (elapsedMs * 1000) / calls;
    calls *= 2;
  }
}

function main(): void {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "3" },
      "payload-bytes": { type: "string", default: "64,100,1024,16384" },
    },
  });
  const runs = Number(values.runs);
  const sizes = values["payload-bytes"].split(",").map(Number);
  const results = new Map<string, number[]>();
  for (let run = 0; run < runs; run++) {
    for (const payloadBytes of sizes) {
      const payload = Buffer.alloc(payloadBytes, 3);
      for (const [name, tagger] of Object.entries(candidates(payloadBytes))) {
        const microsecondsPerTag = measure(tagger, payload, 200);
        console.log(JSON.stringify({ run, candidate: name, payloadBytes, microsecondsPerTag: Number(microsecondsPerTag.toFixed(3)) }));
        const key = `${name}/${payloadBytes}`;
        results.set(key, [...(results.get(key) ?? []), microsecondsPerTag]);
      }
    }
  }
  console.log(`\nmedian of ${runs} runs, µs per tag:`);
  console.log(`${"candidate".padEnd(24)}${sizes.map((size) => `${size} B`.padStart(10)).join("")}`);
  for (const name of Object.keys(candidates(1))) {
    const cells = sizes.map((size) => {
      const sorted = [...(results.get(`${name}/${size}`) ?? [])].sort((a, b) => a - b);
      return (sorted[Math.floor(sorted.length / 2)] ?? Number.NaN).toFixed(2).padStart(10);
    });
    console.log(`${name.padEnd(24)}${cells.join("")}`);
  }
}

main();
