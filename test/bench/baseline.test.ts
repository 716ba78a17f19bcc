import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { accountStateKey, decodeAccount, kvStateKey } from "../../src/app/ledger-state.js";
import { resultErrorCode } from "../../src/app/result.js";
import { type Operation, type TransactionBody, encodeTransaction, sessionTransaction, signTransaction } from "../../src/app/transaction.js";
import type { Ed25519KeyPair } from "../../src/crypto/ed25519.js";
import { decodeBlockBody } from "../../src/ledger/block.js";
import { BlockPipeline } from "../../src/node/block-pipeline.js";
import { BASELINE_CLUSTER_ID, type BaselineOptions, type BaselineResult, baselineCluster, runBaseline } from "../../src/bench/baseline.js";
import type { AuthMode, BenchWorkload } from "../../src/bench/types.js";
import { ReplicaStore } from "../../src/storage/index.js";
import { AUTHORITY, bytes, keyOf } from "../app/ledger-fixtures.js";
import { temporaryDirectory } from "../storage/helpers.js";

const KEYS = 8;
const MINTED = 1000n;
const BATCH_SIZE = 8;

interface WorkloadOptions {
  readonly auth: AuthMode;
  readonly clients: number;
  /** Every `badEvery`-th envelope of client 0 is bad (alternately undecodable and forged) and uses no nonce. */
  readonly badEvery?: number;
  /** Who signs the setup mint; default the authority. */
  readonly minter?: Ed25519KeyPair;
}

/**
 * Puts to 8 keys from `clients` keys of their own, each in its nonce order. Setup: the authority
 * mints to client 0, then 8 setup keys write the 8 keys side by side.
 */
function kvWorkload(options: WorkloadOptions): BenchWorkload {
  const { auth, clients, badEvery } = options;
  const keys = Array.from({ length: clients }, (_, client) => keyOf(`baseline client ${client}`));
  const nonces = new Array<number>(clients).fill(1);
  const calls = new Array<number>(clients).fill(0);
  const envelope = (key: Ed25519KeyPair, nonce: number, operation: Operation, mode: AuthMode): Uint8Array => {
    const body: TransactionBody = { clientKey: key.publicKey, nonce, operation };
    return encodeTransaction(mode === "signed" ? signTransaction(key.privateKey, body) : sessionTransaction(body));
  };
  return {
    name: "kv",
    auth,
    clients,
    *setupRounds() {
      yield [envelope(options.minter ?? AUTHORITY, 1, { type: "mint", to: keys[0]!.publicKey, amount: MINTED }, "signed")];
      yield Array.from({ length: KEYS }, (_, index) => envelope(keyOf(`baseline setup ${index}`), 1, { type: "put", key: bytes(`k${index}`), value: bytes("init") }, auth));
    },
    next(client) {
      calls[client]! += 1;
      const call = calls[client]!;
      if (client === 0 && badEvery !== undefined && call % badEvery === 0) {
        if ((call / badEvery) % 2 === 1) return Uint8Array.of(1, 2, 3);
        const forged = envelope(keys[0]!, nonces[0]!, { type: "put", key: bytes("forged"), value: bytes("x") }, "signed");
        forged[forged.length - 1]! ^= 0x01;
        return forged;
      }
      const nonce = nonces[client]!;
      nonces[client] = nonce + 1;
      return envelope(keys[client]!, nonce, { type: "put", key: bytes(`k${(client + nonce) % KEYS}`), value: bytes(`v${nonce}`) }, auth);
    },
  };
}

function options(directory: string, workload: BenchWorkload, overrides: Partial<BaselineOptions> = {}): BaselineOptions {
  return { workload, authority: AUTHORITY.publicKey, clients: workload.clients, durationS: 2, warmupS: 0.25, batchSize: BATCH_SIZE, dataDir: directory, ...overrides };
}

function assertMeasured(result: BaselineResult, durationS: number): void {
  assert.ok(result.committed > 0, "transactions committed in the timed window");
  assert.equal(result.windows.length, durationS);
  assert.ok(result.windows.every((count) => count > 0), `every second committed some: ${result.windows.join(", ")}`);
  assert.equal(result.windows.reduce((sum, count) => sum + count, 0), result.committed, "the windows split the timed window");
  const sorted = [...result.windows].sort((a, b) => a - b);
  assert.equal(result.throughputTps, (sorted[0]! + sorted[1]!) / 2, "the throughput is the median second");
  const { latency } = result;
  assert.equal(latency.count, result.committed);
  assert.ok(latency.p50Ms > 0 && latency.p50Ms <= latency.p90Ms && latency.p90Ms <= latency.p99Ms, JSON.stringify(latency));
  // Percentiles are clamped to the recorded maximum (histogram.ts).
  assert.ok(latency.p99Ms <= latency.maxMs, JSON.stringify(latency));
  // The histogram the summary comes from, for the JSON report.
  assert.equal(result.histogram.count, result.committed);
  assert.deepEqual(result.histogram.summary(), latency);
  assert.ok(result.cpuSeconds > 0);
  assert.ok(result.peakRssBytes > 0);
}

/** Reopens the store: the chain must resume (state and header roots agree), with every ok result at least the run's. */
async function assertStored(directory: string, result: BaselineResult): Promise<void> {
  const store = await ReplicaStore.open({ directory, clusterId: BASELINE_CLUSTER_ID, replicaId: 0, sync: "none" });
  try {
    const height = store.latestHeight();
    assert.ok(height !== undefined && height >= 3, `blocks stored: ${height}`);
    const pipeline = BlockPipeline.open({ cluster: baselineCluster(AUTHORITY.publicKey, BATCH_SIZE), store });
    assert.equal(pipeline.height, height);
    let okResults = 0;
    for (let block = 1; block <= height; block += 1) {
      for (const bytes of decodeBlockBody(store.getBlock(block)!.body!).results) if (resultErrorCode(bytes) === undefined) okResults += 1;
    }
    assert.ok(okResults >= 1 + KEYS + result.committed, `${okResults} ok results stored, ${result.committed} committed in the window`);
    assert.equal(decodeAccount(store.getState(accountStateKey(keyOf("baseline client 0").publicKey))!).balance, MINTED, "the setup mint is stored");
    for (let index = 0; index < KEYS; index += 1) assert.ok(store.getState(kvStateKey(bytes(`k${index}`))) !== undefined, `k${index} is stored`);
  } finally {
    await store.close();
  }
}

describe("the single-process baseline", () => {
  it("runs signed kv puts through execution and durable storage, with a window per second and ordered latencies", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-baseline-");
    const result = await runBaseline(options(directory, kvWorkload({ auth: "signed", clients: 16 }), { verifyWorkers: 2 }));
    assertMeasured(result, 2);
    assert.equal(result.errors, 0);
    await assertStored(directory, result);
  });

  it("runs session-authenticated kv puts, which need no signature check", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-baseline-");
    const result = await runBaseline(options(directory, kvWorkload({ auth: "session", clients: 16 }), { verifyWorkers: 0 }));
    assertMeasured(result, 2);
    assert.equal(result.errors, 0);
    await assertStored(directory, result);
  });

  it("counts undecodable and forged envelopes as errors and keeps going", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-baseline-");
    const seconds: number[] = [];
    const result = await runBaseline(
      options(directory, kvWorkload({ auth: "signed", clients: 4, badEvery: 5 }), { verifyWorkers: 0, warmupS: 0, onSecond: (committed) => seconds.push(committed) }),
    );
    assertMeasured(result, 2);
    assert.ok(result.errors > 0, "bad envelopes are refusals");
    assert.ok(seconds.length >= 1 && seconds.every((committed, index) => index === 0 || committed >= seconds[index - 1]!), `progress: ${seconds.join(", ")}`);
    await assertStored(directory, result);
  });

  it("refuses a setup whose mint is not the authority's, naming the transaction, and releases the store", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-baseline-");
    const workload = kvWorkload({ auth: "signed", clients: 2, minter: keyOf("not the authority") });
    await assert.rejects(runBaseline(options(directory, workload, { verifyWorkers: 0 })), /setup: transaction 1 of round 1 failed: not-authority/);
    const store = await ReplicaStore.open({ directory, clusterId: BASELINE_CLUSTER_ID, replicaId: 0, sync: "none" });
    await store.close();
  });

  it("refuses a directory that already holds a baseline store, and options out of range", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-baseline-");
    const workload = kvWorkload({ auth: "signed", clients: 2 });
    await runBaseline(options(directory, workload, { verifyWorkers: 0, durationS: 1, warmupS: 0 }));
    await assert.rejects(runBaseline(options(directory, kvWorkload({ auth: "signed", clients: 2 }), { verifyWorkers: 0 })), /already holds a baseline store/);
    await assert.rejects(runBaseline(options(directory, workload, { clients: 3 })), /clients must be a whole number from 1 to the workload's 2/);
    await assert.rejects(runBaseline(options(directory, workload, { batchSize: 0 })), RangeError);
    await assert.rejects(runBaseline(options(directory, workload, { durationS: 0.5 })), /durationS must be at least 1/);
    await assert.rejects(runBaseline(options(directory, workload, { authority: new Uint8Array(31) })), /authority is not a usable public key/);
    // A replica's rule (resolveVerifyWorkers): 0 (inline) to VERIFY_WORKERS_MAX.
    await assert.rejects(runBaseline(options(directory, workload, { verifyWorkers: 65 })), /verifyWorkers must be a whole number from 0 to 64, not 65/);
    await assert.rejects(runBaseline(options(directory, workload, { verifyWorkers: -1 })), RangeError);
  });

  it("ends early when its signal fires during the load, with the whole seconds measured", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-baseline-");
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("stopped by the test")), 1_500);
    const startedMs = performance.now();
    const result = await runBaseline(options(directory, kvWorkload({ auth: "signed", clients: 4 }), { verifyWorkers: 0, warmupS: 0, durationS: 30, signal: controller.signal }));
    assert.ok(performance.now() - startedMs < 5_000, "it did not run its 30 seconds");
    assert.equal(result.windows.length, 1, "one whole second ran");
    assert.ok(result.committed >= result.windows[0]! && result.windows[0]! > 0);
    await assertStored(directory, result);
  });

  it("rejects with the signal's reason when it fires before the load starts", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-baseline-");
    const signal = AbortSignal.abort(new Error("stopped before the start"));
    await assert.rejects(runBaseline(options(directory, kvWorkload({ auth: "signed", clients: 4 }), { verifyWorkers: 0, signal })), /stopped before the start/);
  });
});
