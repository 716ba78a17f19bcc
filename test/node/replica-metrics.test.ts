// Replica metrics (src/node/replica-metrics.ts, metrics-server.ts): the registry's figures follow
// the runtime's hooks and snapshot, and a real `bulwark replica --metrics-port` process serves
// them over HTTP, with committed transactions rising as clients write.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { ClientRequest } from "../../src/consensus/pbft/types.js";
import { cryptoBackends } from "../../src/crypto/sodium.js";
import { newListenerCounters, newPeerLinkCounters } from "../../src/net/metrics.js";
import { startMetricsServer } from "../../src/node/metrics-server.js";
import { ReplicaMetrics, type ReplicaMetricsSnapshot } from "../../src/node/replica-metrics.js";
import { ProcessCluster, PutLoad } from "../support/process-cluster.js";

/** The value of the sample `name{labels}` in Prometheus text, or undefined when absent. */
function sample(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const present = new Map([...(match[2] ?? "").matchAll(/([a-zA-Z_]+)="([^"]*)"/g)].map((pair) => [pair[1], pair[2]]));
    if (Object.entries(labels).every(([key, value]) => present.get(key) === value)) return Number(match[3]);
  }
  return undefined;
}

function snapshot(overrides: Partial<ReplicaMetricsSnapshot> = {}): ReplicaMetricsSnapshot {
  return {
    view: 3,
    normal: true,
    executedHeight: 42,
    certifiedHeight: 41,
    stableCheckpoint: 32,
    pendingRequests: 5,
    heldReads: 12,
    consensusCounters: { "view-changes": 2, "bad-signature": 7, stale: 1 },
    runtimeCounters: { "frames-oversized": 4, "frames-malformed": 1, "routes-full": 9 },
    peers: [
      { peer: 1, connected: true, sendQueueFrames: 3, sendQueueBytes: 1_500, transport: { ...newPeerLinkCounters(), framesSent: 70, connectAttempts: 2, reconnects: 1 } },
      { peer: 2, connected: false, sendQueueFrames: 0, sendQueueBytes: 0, transport: { ...newPeerLinkCounters(), framesBadMac: 1 } },
    ],
    inbound: { ...newListenerCounters(), framesReceived: 900, framesBadMac: 4, connectionsAccepted: 6, connectionsFailed: 4 },
    verification: {
      waiting: { replica: { inputs: 2, bytes: 5_000 }, client: { inputs: 4, bytes: 1_000 } },
      inputsDropped: { replica: 1, client: 7 },
      collectingItems: 2,
      batchesInFlight: 1,
      batchesVerified: 10,
      batchesFailed: 0,
      batchesDeferred: 3,
      sessionWaits: 2,
      sessionWaitsExpired: 5,
      sessionRequests: { entries: 12, bytes: 3_400, recorded: 40, evicted: 1, queued: 15 },
      itemsVerified: 300,
      verdicts: { verdicts: 11, invalidVerdicts: 2, hits: 290, misses: 3, evictions: 0 },
      pool: { backend: "sodium-native", workerCount: 2, pendingBatches: 1, queuedChunks: 0, inFlightChunks: 1, workerCrashes: 0 },
    },
    ...overrides,
  };
}

function request(client: string, timestamp: number): ClientRequest {
  return { client, timestamp, operation: new Uint8Array(0), signature: "" };
}

describe("replica metrics registry", () => {
  it("exports the snapshot's state, queue depths and counters under bulwark_ names with units", async () => {
    const metrics = new ReplicaMetrics({ replica: 2, defaultMetrics: false });
    try {
      metrics.attach(() => snapshot());
      const text = await metrics.render();
      assert.equal(sample(text, "bulwark_view", { replica: "2" }), 3, "every sample carries the replica label");
      assert.equal(sample(text, "bulwark_view_normal"), 1);
      assert.equal(sample(text, "bulwark_executed_height"), 42);
      assert.equal(sample(text, "bulwark_certified_height"), 41);
      assert.equal(sample(text, "bulwark_stable_checkpoint"), 32);
      assert.equal(sample(text, "bulwark_pending_client_requests"), 5);
      assert.equal(sample(text, "bulwark_client_reads_held"), 12);
      assert.equal(sample(text, "bulwark_view_changes_total"), 2);
      assert.equal(sample(text, "bulwark_consensus_dropped_total", { reason: "bad-signature" }), 7);
      assert.equal(sample(text, "bulwark_consensus_dropped_total", { reason: "view-changes" }), undefined, "view changes have their own metric");
      assert.equal(sample(text, "bulwark_frames_rejected_total", { reason: "oversized" }), 4);
      assert.equal(sample(text, "bulwark_frames_rejected_total", { reason: "malformed" }), 1);
      assert.equal(sample(text, "bulwark_replica_events_total", { event: "routes-full" }), 9);
      assert.equal(sample(text, "bulwark_peer_send_queue_bytes", { peer: "1" }), 1_500);
      assert.equal(sample(text, "bulwark_peer_send_queue_frames", { peer: "1" }), 3);
      assert.equal(sample(text, "bulwark_peer_connected", { peer: "2" }), 0);
      assert.equal(sample(text, "bulwark_verify_waiting_inputs", { origin: "replica" }), 2);
      assert.equal(sample(text, "bulwark_verify_waiting_inputs", { origin: "client" }), 4);
      assert.equal(sample(text, "bulwark_verify_waiting_bytes", { origin: "replica" }), 5_000);
      assert.equal(sample(text, "bulwark_verify_pool_pending_batches"), 1);
      assert.equal(sample(text, "bulwark_verify_pool_workers"), 2);
      assert.equal(sample(text, "bulwark_verify_inputs_dropped_total", { origin: "client" }), 7);
      assert.equal(sample(text, "bulwark_verify_inputs_dropped_total", { origin: "replica" }), 1);
      assert.equal(sample(text, "bulwark_verify_batches_deferred_total"), 3);
      assert.equal(sample(text, "bulwark_session_waiting_requests"), 2);
      assert.equal(sample(text, "bulwark_session_waits_expired_total"), 5);
      assert.equal(sample(text, "bulwark_session_requests_kept"), 12);
      assert.equal(sample(text, "bulwark_session_request_bytes"), 3_400);
      assert.equal(sample(text, "bulwark_session_requests_evicted_total"), 1);
      assert.equal(sample(text, "bulwark_verify_verdicts_cached", { verdict: "invalid" }), 2);
      assert.equal(sample(text, "bulwark_verify_verdict_lookups_total", { result: "hit" }), 290);
      // The transport's counters: the listener's as link "inbound", each outgoing link's as "peer-<id>".
      assert.equal(sample(text, "bulwark_transport_frames_bad_mac_total", { link: "inbound" }), 4);
      assert.equal(sample(text, "bulwark_transport_frames_bad_mac_total", { link: "peer-2" }), 1);
      assert.equal(sample(text, "bulwark_transport_frames_received_total", { link: "inbound" }), 900);
      assert.equal(sample(text, "bulwark_transport_frames_sent_total", { link: "peer-1" }), 70);
      assert.equal(sample(text, "bulwark_transport_connect_attempts_total", { link: "peer-1" }), 2);
      assert.equal(sample(text, "bulwark_transport_reconnects_total", { link: "peer-1" }), 1);
      assert.equal(sample(text, "bulwark_transport_connections_accepted_total"), 6);
      assert.equal(sample(text, "bulwark_transport_connections_failed_total"), 4);
      for (const name of ["bulwark_event_loop_lag_p50_seconds", "bulwark_event_loop_lag_p99_seconds", "bulwark_event_loop_lag_max_seconds"]) {
        const value = sample(text, name);
        assert.ok(value !== undefined && value >= 0, `${name} is exported`);
      }
    } finally {
      metrics.close();
    }
  });

  it("counts executed batches and transactions, and times each request from its first verified arrival to its execution", async () => {
    const metrics = new ReplicaMetrics({ replica: 0, defaultMetrics: false });
    try {
      metrics.requestsVerified([request("a", 1), request("b", 1)]);
      metrics.requestsVerified([request("a", 1)]);
      metrics.batchExecuted([request("a", 1), request("b", 1), request("c", 1)]);
      metrics.batchExecuted([request("d", 1)]);
      metrics.blockPersisted(0.004);
      metrics.batchVerified(0.002, 64);
      const text = await metrics.render();
      assert.equal(sample(text, "bulwark_committed_transactions_total"), 4);
      assert.equal(sample(text, "bulwark_committed_batches_total"), 2);
      assert.equal(sample(text, "bulwark_request_execution_seconds_count"), 2, "only the requests seen arriving are timed, each once");
      assert.equal(sample(text, "bulwark_block_persist_seconds_count"), 1);
      assert.equal(sample(text, "bulwark_block_persist_seconds_bucket", { le: "0.005" }), 1);
      assert.equal(sample(text, "bulwark_verify_batch_signatures_sum"), 64);
    } finally {
      metrics.close();
    }
  });

  it("serves the registry at /metrics over HTTP and nothing elsewhere", async (t) => {
    const metrics = new ReplicaMetrics({ replica: 1 });
    metrics.attach(() => snapshot());
    const server = await startMetricsServer({ metrics, port: 0 });
    t.after(async () => {
      await server.close();
      metrics.close();
    });
    const response = await fetch(server.url);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain/);
    const text = await response.text();
    assert.equal(sample(text, "bulwark_view"), 3);
    assert.notEqual(sample(text, "nodejs_eventloop_lag_seconds"), undefined, "prom-client's default Node.js metrics are included");
    assert.equal((await fetch(new URL("/other", server.url))).status, 404);
  });
});

describe("replica metrics from a real replica process", () => {
  it("a replica started with --metrics-port serves /metrics, and its committed transactions rise after writes", async (t) => {
    const cluster = await ProcessCluster.create(t, { replicaFlags: ["--metrics-port", "0", "--verify-workers", "1"] });
    for (let replica = 0; replica < cluster.n; replica++) await cluster.start(replica);
    const started = await cluster.waitForLog(1, "replica started", 5_000);
    assert.equal(started.fields.verifyWorkers, 1);
    assert.equal(started.fields.verifyBackend, cryptoBackends().ed25519, "the faster library verifies");
    const url = (await cluster.waitForLog(1, "metrics served", 5_000)).fields.url;
    assert.ok(typeof url === "string", "the log line names the URL");
    const scrape = async (): Promise<string> => {
      const response = await fetch(url);
      assert.equal(response.status, 200);
      return response.text();
    };
    const before = await scrape();
    assert.equal(sample(before, "bulwark_committed_transactions_total", { replica: "1" }), 0);
    assert.equal(sample(before, "bulwark_verify_pool_workers"), 1);

    const load = await PutLoad.connect(cluster, 2);
    t.after(() => load.close());
    const puts = 10;
    await load.putCount(puts);
    // Acknowledged puts executed at f + 1 replicas at least; this one may still be finishing them.
    const deadlineMs = Date.now() + 10_000;
    let after = await scrape();
    while ((sample(after, "bulwark_committed_transactions_total") ?? 0) < puts && Date.now() < deadlineMs) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = await scrape();
    }
    assert.ok((sample(after, "bulwark_committed_transactions_total") ?? 0) >= puts, `committed transactions rose to at least ${puts}\n${cluster.logTail(1)}`);
    assert.ok((sample(after, "bulwark_committed_batches_total") ?? 0) >= 1);
    assert.ok((sample(after, "bulwark_executed_height") ?? 0) >= 1);
    assert.ok((sample(after, "bulwark_verify_batch_seconds_count") ?? 0) >= 1, "client signatures were verified on the worker pool");
    assert.ok((sample(after, "bulwark_request_execution_seconds_count") ?? 0) >= 1, "request latency was observed");
    assert.ok((sample(after, "bulwark_block_persist_seconds_count") ?? 0) >= 1);
    assert.equal(sample(after, "bulwark_peer_connected", { peer: "0" }), 1);
    assert.notEqual(sample(after, "bulwark_event_loop_lag_p99_seconds"), undefined);
    await load.close();
    await cluster.stopAll();
  });
});
