// End to end (issue 4, "Done when"): four real replica processes on localhost, the HTTP gateway
// and the SDK as their clients. Writes and reads go through both; then the primary is killed with
// SIGKILL and writes must complete again once the backups changed views. Each round records the
// time from the kill to the first commit of a put sent after the kill (the dead primary cannot
// have proposed it, so it committed in a new view).
//
// `BULWARK_E2E_KILLS=5 node --test dist/test/e2e/cluster.test.js` kills the primary five times in
// a row (restarting each killed replica before the next round) and prints the times and their
// median; `npm test` runs two rounds.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { pino } from "pino";

import { BulwarkClient } from "../../src/client/index.js";
import { generateEd25519KeyPair } from "../../src/crypto/ed25519.js";
import { startGateway } from "../../src/gateway/index.js";
import { ProcessCluster } from "../support/process-cluster.js";

const KILLS = parseKills(process.env.BULWARK_E2E_KILLS, 2);
/** A put that takes longer than this after the kill fails the test: recovery is stuck. */
const RECOVERY_DEADLINE_MS = 30_000;
/** Writers that keep putting while the primary dies: several keys, so a batch has company. */
const WRITERS = 4;

function parseKills(text: string | undefined, fallback: number): number {
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1 || value > 50) throw new Error(`BULWARK_E2E_KILLS must be a whole number from 1 to 50; got ${JSON.stringify(text)}`);
  return value;
}

function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function http(url: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, init);
  const text = await response.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error(`${init?.method ?? "GET"} ${url} answered ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  return { status: response.status, body };
}

/** The view most reachable replicas report, and its primary. */
async function currentView(client: BulwarkClient): Promise<{ view: number; primary: number }> {
  const statuses = await client.status({ timeoutMs: 2_000 });
  const views = statuses.filter((s) => s.reachable && s.normal === true && s.view !== undefined).map((s) => s.view!);
  assert.ok(views.length > 0, `no replica reports a view: ${JSON.stringify(statuses)}`);
  const view = Math.max(...views);
  return { view, primary: view % statuses.length };
}

describe("a 4-replica cluster of real processes, through the SDK and the gateway", () => {
  it("serves writes and reads, and commits again after its primary is SIGKILLed", { timeout: 120_000 + KILLS * 60_000 }, async (t) => {
    const cluster = await ProcessCluster.create(t, { replicaFlags: ["--verify-workers", "1"] });
    await Promise.all([0, 1, 2, 3].map((id) => cluster.start(id)));

    const sdk = await BulwarkClient.connect({ cluster: cluster.config, privateKey: cluster.authority.privateKey });
    t.after(() => sdk.close());
    const gateway = await startGateway({ cluster: cluster.config, privateKey: cluster.authority.privateKey, port: 0, logger: pino({ level: "silent" }), writerKeys: 4 });
    t.after(() => gateway.close());

    // The SDK: a write, then a linearizable read and a proof read of it.
    const put = await sdk.put("sdk-key", "from the sdk");
    assert.ok(put.height >= 1, `a committed put names its block; got height ${put.height}`);
    assert.equal(new TextDecoder().decode(await sdk.get("sdk-key")), "from the sdk");
    const proven = await sdk.read("sdk-key", { consistency: "proof" });
    assert.equal(new TextDecoder().decode(proven.value), "from the sdk");
    assert.ok(proven.height >= put.height, `a proof read is at or above the write's block ${put.height}; got ${proven.height}`);

    // The gateway: curl's form-encoded body is the raw value; the read names its block.
    const written = await http(`${gateway.url}/v1/kv/a`, { method: "PUT", body: "1", headers: { "content-type": "application/x-www-form-urlencoded" } });
    assert.equal(written.status, 200, JSON.stringify(written.body));
    assert.ok(typeof written.body.height === "number" && written.body.height >= 1, JSON.stringify(written.body));
    assert.equal(written.body.seq, written.body.height);
    const read = await http(`${gateway.url}/v1/kv/a`);
    assert.equal(read.status, 200, JSON.stringify(read.body));
    assert.equal(read.body.value, "1");
    assert.ok(typeof read.body.height === "number" && read.body.height >= (written.body.height), JSON.stringify(read.body));
    // What the SDK wrote, the gateway reads, and the other way round.
    assert.equal((await http(`${gateway.url}/v1/kv/sdk-key`)).body.value, "from the sdk");
    assert.equal(new TextDecoder().decode(await sdk.get("a")), "1");
    const block = await http(`${gateway.url}/v1/blocks/${written.body.height}`);
    assert.equal(block.status, 200, JSON.stringify(block.body));

    // Kill the primary, KILLS times; writers keep writing through the SDK all along.
    const writerClients = await Promise.all(Array.from({ length: WRITERS }, () => BulwarkClient.connect({ cluster: cluster.config, privateKey: generateEd25519KeyPair().privateKey, requestTimeoutMs: 500 })));
    t.after(() => Promise.all(writerClients.map((client) => client.close())));
    let writing = true;
    const commits: { sentMs: number; atMs: number }[] = [];
    const failures: unknown[] = [];
    const writers = writerClients.map(async (client, index) => {
      for (let i = 0; writing; i += 1) {
        const sentMs = performance.now();
        try {
          await client.put(`writer-${index}`, String(i), { signal: AbortSignal.timeout(RECOVERY_DEADLINE_MS) });
          commits.push({ sentMs, atMs: performance.now() });
        } catch (error) {
          failures.push(error);
          return;
        }
      }
    });

    const recoveryMs: number[] = [];
    const views: number[] = [];
    try {
      for (let round = 1; round <= KILLS; round += 1) {
        // Let the writers commit under this primary first.
        const before = commits.length;
        while (commits.length < before + 20) {
          assert.deepEqual(failures, [], "a writer failed");
          await sleep(20);
        }
        const { view, primary } = await currentView(sdk);
        views.push(view);
        const killedAtMs = performance.now();
        await cluster.kill(primary, "SIGKILL");
        let recovered: { sentMs: number; atMs: number } | undefined;
        while (recovered === undefined) {
          assert.deepEqual(failures, [], `a writer failed after replica ${primary} (primary of view ${view}) was killed`);
          recovered = commits.find((commit) => commit.sentMs > killedAtMs);
          assert.ok(performance.now() - killedAtMs < RECOVERY_DEADLINE_MS, `no put sent after the kill committed within ${RECOVERY_DEADLINE_MS} ms of killing replica ${primary}\n${cluster.logTails()}`);
          await sleep(5);
        }
        recoveryMs.push(recovered.atMs - killedAtMs);
        const after = await currentView(sdk);
        assert.ok(after.view > view, `the cluster left view ${view} after its primary ${primary} died; it reports view ${after.view}`);
        // Bring the killed replica back before the next round, so a round never has two down.
        await cluster.start(primary);
        await sleep(1_000);
      }
    } finally {
      writing = false;
      await Promise.all(writers);
    }
    assert.deepEqual(failures, [], "a writer failed");
    t.diagnostic(`views killed: ${views.join(", ")}; kill → first new commit (ms): ${recoveryMs.map((ms) => ms.toFixed(0)).join(", ")}; median ${median(recoveryMs).toFixed(0)} ms`);

    // After the view changes, the gateway and the SDK still write and read.
    const late = await http(`${gateway.url}/v1/kv/a`, { method: "PUT", body: "2" });
    assert.equal(late.status, 200, JSON.stringify(late.body));
    assert.equal((await http(`${gateway.url}/v1/kv/a`)).body.value, "2");
    assert.equal(new TextDecoder().decode(await sdk.get("a")), "2");
    const status = await http(`${gateway.url}/v1/status`);
    assert.equal(status.status, 200, JSON.stringify(status.body));
  });
});
