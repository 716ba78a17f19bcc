// End to end, session authentication (issue 5, `--auth session`): four real replica processes
// and the SDK. A client attaches eight fresh keys to its connections (`addSessionKey`), and their
// unsigned (version 2) envelopes commit and read back, with no view change; a session envelope
// sent over a connection its key never attached to is dropped by every replica (counted as
// `session-requests-unattached` in bulwark_replica_events_total) and never commits, even when the
// key is attached on another client's connections.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { type TransactionResult } from "../../src/app/result.js";
import { type Operation, encodeTransaction, sessionTransaction } from "../../src/app/transaction.js";
import { BulwarkClient, TimeoutError } from "../../src/client/index.js";
import { type Ed25519KeyPair, generateEd25519KeyPair } from "../../src/crypto/ed25519.js";
import { ProcessCluster } from "../support/process-cluster.js";

const SESSION_KEYS = 8;
/** How long the client without attachments waits before giving up on a session envelope. */
const UNATTACHED_DEADLINE_MS = 1_500;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function sessionEnvelope(key: Ed25519KeyPair, nonce: number, operation: Operation): Uint8Array {
  return encodeTransaction(sessionTransaction({ clientKey: key.publicKey, nonce, operation }));
}

function describeResult(result: TransactionResult): string {
  if (!result.ok) return `error:${result.error}`;
  if (result.kind === "value") return `value:${decoder.decode(result.value)}`;
  return result.kind;
}

/** The value of one sample of `name` whose labels include `labels`, or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.indexOf("}");
    const labelText = line.slice(name.length + 1, close);
    if (Object.entries(labels).every(([label, value]) => labelText.includes(`${label}="${value}"`))) return Number(line.slice(close + 1).trim());
  }
  return undefined;
}

describe("session authentication across a 4-replica cluster of real processes", () => {
  it("attached keys' session envelopes commit and read back; an envelope over a connection its key did not attach to never commits", { timeout: 60_000 }, async (t) => {
    const cluster = await ProcessCluster.create(t, { replicaFlags: ["--verify-workers", "1", "--metrics-port", "0", "--session-auth"] });
    await Promise.all([0, 1, 2, 3].map((id) => cluster.start(id)));
    const metricsUrls = await Promise.all([0, 1, 2, 3].map(async (id) => String((await cluster.waitForLog(id, "metrics served", 5_000)).fields.url)));
    const scrape = async (id: number): Promise<string> => {
      const response = await fetch(metricsUrls[id]!);
      assert.equal(response.status, 200);
      return response.text();
    };

    const sessionClient = await BulwarkClient.connect({ cluster: cluster.config, privateKey: generateEd25519KeyPair().privateKey });
    t.after(() => sessionClient.close());
    const keys = Array.from({ length: SESSION_KEYS }, () => generateEd25519KeyPair());
    for (const key of keys) sessionClient.addSessionKey(key.privateKey);

    // Each key: a put, a get of it, and a noop, all unsigned; the keys run side by side.
    const results = await Promise.all(
      keys.map(async (key, index) => {
        const put = await sessionClient.submitEnvelope(sessionEnvelope(key, 1, { type: "put", key: encoder.encode(`session-${index}`), value: encoder.encode(`value-${index}`) }));
        const get = await sessionClient.submitEnvelope(sessionEnvelope(key, 2, { type: "get", key: encoder.encode(`session-${index}`) }));
        const noop = await sessionClient.submitEnvelope(sessionEnvelope(key, 3, { type: "noop" }));
        assert.ok(put.height >= 1, `a committed put names its block; got ${put.height}`);
        return [describeResult(put.result), describeResult(get.result), describeResult(noop.result)];
      }),
    );
    assert.deepEqual(
      results,
      keys.map((_, index) => ["done", `value:value-${index}`, "done"]),
    );

    // A signed client reads what the session keys wrote.
    const reader = await BulwarkClient.connect({ cluster: cluster.config, privateKey: generateEd25519KeyPair().privateKey });
    t.after(() => reader.close());
    assert.equal(decoder.decode(await reader.get("session-0")), "value-0");
    assert.equal(decoder.decode(await reader.get(`session-${SESSION_KEYS - 1}`)), `value-${SESSION_KEYS - 1}`);

    // A client whose connections carry no attachment: neither a key never attached anywhere nor one
    // attached on the other client's connections gets an envelope committed through it.
    const stranger = await BulwarkClient.connect({ cluster: cluster.config, privateKey: generateEd25519KeyPair().privateKey, deadlineMs: UNATTACHED_DEADLINE_MS });
    t.after(() => stranger.close());
    // Every replica must see the envelopes (for its count below), so wait for all four links.
    const linksDeadlineMs = Date.now() + 5_000;
    while (stranger.connectedReplicas < cluster.n) {
      assert.ok(Date.now() < linksDeadlineMs, `the stranger's client reached only ${stranger.connectedReplicas} replicas`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const neverAttached = generateEd25519KeyPair();
    const outcomes = await Promise.allSettled([
      stranger.submitEnvelope(sessionEnvelope(neverAttached, 1, { type: "put", key: encoder.encode("stranger"), value: encoder.encode("no") })),
      stranger.submitEnvelope(sessionEnvelope(keys[0]!, 4, { type: "put", key: encoder.encode("session-0"), value: encoder.encode("hijacked") })),
    ]);
    for (const outcome of outcomes) {
      assert.equal(outcome.status, "rejected", "an unattached session envelope must not commit");
      assert.ok(outcome.status === "rejected" && outcome.reason instanceof TimeoutError, `rejected with a TimeoutError, not ${outcome.status === "rejected" ? String(outcome.reason) : "a result"}`);
    }
    await stranger.close();

    // The envelope sent through the stranger did not execute: nonce 4 is still the key's next.
    const next = await sessionClient.submitEnvelope(sessionEnvelope(keys[0]!, 4, { type: "get", key: encoder.encode("session-0") }));
    assert.equal(describeResult(next.result), "value:value-0");

    // Every replica counted the unattached envelopes, the attachments, and changed no view.
    for (const id of [0, 1, 2, 3]) {
      const text = await scrape(id);
      const unattached = sample(text, "bulwark_replica_events_total", { event: "session-requests-unattached" }) ?? 0;
      assert.ok(unattached >= 2, `replica ${id} counted ${unattached} unattached session requests; expected both envelopes`);
      const attached = sample(text, "bulwark_replica_events_total", { event: "session-keys-attached" }) ?? 0;
      assert.ok(attached >= SESSION_KEYS, `replica ${id} counted ${attached} session keys attached`);
      assert.equal(sample(text, "bulwark_replica_events_total", { event: "session-attach-refused" }), undefined, `replica ${id} refused no attachment`);
      assert.equal(sample(text, "bulwark_view_changes_total", {}) ?? 0, 0, `replica ${id} changed views\n${cluster.logTail(id)}`);
    }
    await cluster.stopAll();
  });
});
