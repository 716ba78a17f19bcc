// Ed25519 verification throughput by backend, on one core and through the VerifyPool, and the
// event-loop lag each way costs. A script, not a test:
//   node dist/src/bench/ed25519-bench.js [--items 6144] [--runs 3] [--message-bytes 100]
// It prints one JSON line per measurement and run, then tables of medians.
//
//   single core   each backend verifies every item on the main thread (the shared policy
//                 included, so the figures are what the pool's workers do per item)
//   pool          1 and 2 workers, both backends, batches of 1, 64 and 512 items, with enough
//                 batches in flight to keep every worker busy
//   event loop    monitorEventLoopDelay while 2 workers verify in batches of 512, against the
//                 main thread verifying the same batches itself, yielding between batches

import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { setImmediate as nextTurn } from "node:timers/promises";
import { parseArgs } from "node:util";
import { ed25519KeyPairFromSeed, ed25519Sign } from "../crypto/ed25519.js";
import { type CryptoBackendName, cryptoBackends } from "../crypto/sodium.js";
import { type SignedItem, VerifyPool, createEd25519VerifyBackend } from "../crypto/verify-pool.js";
import { median } from "./load-driver.js";

const KEY_COUNT = 64;
const POOL_PENDING_BATCHES_MAX = 1024;
// Items in flight across all pending batches: enough that no worker waits for the main thread.
const POOL_ITEMS_IN_FLIGHT = 2048;

function parseOptions(): { items: number; runs: number; messageBytes: number } {
  const { values } = parseArgs({
    options: {
      items: { type: "string", default: "6144" },
      runs: { type: "string", default: "3" },
      "message-bytes": { type: "string", default: "100" },
    },
  });
  return { items: Number(values.items), runs: Number(values.runs), messageBytes: Number(values["message-bytes"]) };
}

function makeItems(count: number, messageBytes: number): SignedItem[] {
  const pairs = Array.from({ length: KEY_COUNT }, (_, index) => ed25519KeyPairFromSeed(new Uint8Array(32).fill(index + 1)));
  return Array.from({ length: count }, (_, index) => {
    const pair = pairs[index % KEY_COUNT] as (typeof pairs)[number];
    const message = new Uint8Array(messageBytes);
    new DataView(message.buffer).setUint32(0, index);
    return { publicKey: pair.publicKey, message, signature: ed25519Sign(pair.privateKey, message) };
  });
}

function singleCorePerSecond(backendName: CryptoBackendName, items: readonly SignedItem[]): number {
  const backend = createEd25519VerifyBackend(backendName);
  const started = performance.now();
  for (const item of items) {
    if (!backend.verify(item.publicKey, item.message, item.signature)) throw new Error(`${backendName} refused a valid signature`);
  }
  return items.length / ((performance.now() - started) / 1000);
}

/** Verifies all items through the pool in batches of `batchItems`, with a window of batches in flight. */
async function runThroughPool(pool: VerifyPool, items: readonly SignedItem[], batchItems: number): Promise<void> {
  const batches: SignedItem[][] = [];
  for (let start = 0; start < items.length; start += batchItems) batches.push(items.slice(start, start + batchItems));
  const window = Math.min(POOL_PENDING_BATCHES_MAX, Math.max(4, Math.ceil(POOL_ITEMS_IN_FLIGHT / batchItems)));
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < batches.length) {
      const batch = batches[next++] as SignedItem[];
      const verdicts = await pool.verifyBatch(batch);
      if (verdicts.includes(0)) throw new Error("the pool refused a valid signature");
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
}

async function poolPerSecond(pool: VerifyPool, items: readonly SignedItem[], batchItems: number): Promise<number> {
  const started = performance.now();
  await runThroughPool(pool, items, batchItems);
  return items.length / ((performance.now() - started) / 1000);
}

interface LagFigures {
  verifiesPerSecond: number;
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
}

async function measureLag(work: () => Promise<void>, itemCount: number): Promise<LagFigures> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const started = performance.now();
  await work();
  const seconds = (performance.now() - started) / 1000;
  histogram.disable();
  // The histogram records nanoseconds, and includes the 1 ms resolution timer's own period.
  return {
    verifiesPerSecond: Math.round(itemCount / seconds),
    lagP50Ms: histogram.percentile(50) / 1e6,
    lagP99Ms: histogram.percentile(99) / 1e6,
    lagMaxMs: histogram.max / 1e6,
  };
}

async function main(): Promise<void> {
  const options = parseOptions();
  const items = makeItems(options.items, options.messageBytes);
  const available = cryptoBackends();
  if (available.ed25519 !== "sodium-native") console.error(`sodium-native cannot be loaded (${available.fallbackReason ?? "unknown reason"}); measuring node:crypto only`);
  const backends: CryptoBackendName[] = available.ed25519 === "sodium-native" ? ["sodium-native", "node:crypto"] : ["node:crypto"];

  const singleCore: Record<string, number> = {};
  for (const backend of backends) {
    singleCorePerSecond(backend, items.slice(0, 512)); // warm-up: caches, JIT
    const rates: number[] = [];
    for (let run = 0; run < options.runs; run += 1) {
      const rate = singleCorePerSecond(backend, items);
      rates.push(rate);
      console.log(JSON.stringify({ measure: "single-core", backend, run, verifiesPerSecond: Math.round(rate) }));
    }
    singleCore[backend] = median(rates);
  }

  const poolRows: { backend: string; workers: number; batchItems: number; verifiesPerSecond: number }[] = [];
  for (const backend of backends) {
    for (const workers of [1, 2]) {
      const pool = new VerifyPool({ workerCount: workers, backend, pendingBatchesMax: POOL_PENDING_BATCHES_MAX });
      try {
        await runThroughPool(pool, items.slice(0, 1024), 64); // warm-up: worker start, caches, JIT
        for (const batchItems of [1, 64, 512]) {
          const rates: number[] = [];
          for (let run = 0; run < options.runs; run += 1) {
            const rate = await poolPerSecond(pool, items, batchItems);
            rates.push(rate);
            console.log(JSON.stringify({ measure: "pool", backend, workers, batchItems, run, verifiesPerSecond: Math.round(rate) }));
          }
          poolRows.push({ backend, workers, batchItems, verifiesPerSecond: Math.round(median(rates)) });
        }
      } finally {
        await pool.close();
      }
    }
  }

  const lagBatchItems = 512;
  const lagItems = items.concat(items);
  const pool = new VerifyPool({ workerCount: 2, pendingBatchesMax: POOL_PENDING_BATCHES_MAX });
  let poolLag: LagFigures;
  try {
    await runThroughPool(pool, items.slice(0, 1024), 64);
    poolLag = await measureLag(() => runThroughPool(pool, lagItems, lagBatchItems), lagItems.length);
  } finally {
    await pool.close();
  }
  const mainBackend = createEd25519VerifyBackend(pool.backend);
  const mainLag = await measureLag(async () => {
    for (let start = 0; start < lagItems.length; start += lagBatchItems) {
      for (const item of lagItems.slice(start, start + lagBatchItems)) mainBackend.verify(item.publicKey, item.message, item.signature);
      await nextTurn();
    }
  }, lagItems.length);
  console.log(JSON.stringify({ measure: "event-loop-lag", where: "pool, 2 workers", backend: pool.backend, batchItems: lagBatchItems, ...poolLag }));
  console.log(JSON.stringify({ measure: "event-loop-lag", where: "main thread", backend: pool.backend, batchItems: lagBatchItems, ...mainLag }));

  console.log(`\nsingle core, ${options.messageBytes}-byte messages, median of ${options.runs} (verifies/s):`);
  for (const [backend, rate] of Object.entries(singleCore)) console.log(`  ${backend.padEnd(14)} ${Math.round(rate)}`);
  console.log(`\nVerifyPool (verifies/s, median of ${options.runs}):`);
  console.log(`  ${"backend".padEnd(14)} workers  batch=1  batch=64  batch=512`);
  for (const backend of backends) {
    for (const workers of [1, 2]) {
      const cells = [1, 64, 512].map((batchItems) =>
        String(poolRows.find((row) => row.backend === backend && row.workers === workers && row.batchItems === batchItems)?.verifiesPerSecond ?? "-"),
      );
      console.log(`  ${backend.padEnd(14)} ${String(workers).padStart(7)}  ${cells[0]?.padStart(7)}  ${cells[1]?.padStart(8)}  ${cells[2]?.padStart(9)}`);
    }
  }
  console.log(`\nevent-loop delay while verifying ${lagItems.length} signatures in batches of ${lagBatchItems} (${pool.backend}):`);
  for (const [where, figures] of [["pool, 2 workers", poolLag], ["main thread", mainLag]] as const) {
    console.log(
      `  ${where.padEnd(16)} ${String(figures.verifiesPerSecond).padStart(6)}/s  p50 ${figures.lagP50Ms.toFixed(2)} ms  ` +
        `p99 ${figures.lagP99Ms.toFixed(2)} ms  max ${figures.lagMaxMs.toFixed(2)} ms`,
    );
  }
}

await main();
