// Prometheus metrics of one replica process (issue 4 §7): one prom-client Registry per process,
// served by metrics-server.ts at /metrics. Names start with bulwark_ and end in their unit
// (_seconds, _bytes, _total for counters).
//
// Two kinds of figures. Events on the hot path (a batch executed, a block or record written, a
// verification batch answered) update counters and histograms through the `RuntimeObserver`
// hooks: an increment or one observation, never a label per transaction. Everything else (view,
// heights, queue depths, drop counters, event-loop delay) is read from the runtime's snapshot
// when a scrape renders, so it costs nothing between scrapes.
//
// Transport counters (net/metrics.ts) of the listener (every inbound connection: clients, and
// peers that dialled this replica) and of each outgoing peer link are exported under
// bulwark_transport_*, with a `link` label: "inbound" or "peer-<id>".
//
// Event-loop delay comes from perf_hooks.monitorEventLoopDelay; the p50/p99/max gauges cover the
// time since the previous scrape (the histogram is reset at each), so a spike shows in exactly
// one scrape. The monitor records the whole interval between its timer's runs, sampling period
// included, so the period is subtracted: an idle loop reads as 0, not as the resolution. prom-client's default Node.js metrics (its own event-loop lag, heap, GC, handles)
// are registered too.

import { type IntervalHistogram, monitorEventLoopDelay } from "node:perf_hooks";

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

import type { ClientRequest } from "../consensus/pbft/types.js";
import type { ListenerCounters, PeerLinkCounters, TransportCounters } from "../net/metrics.js";
import { RequestLatency } from "./request-latency.js";
import type { InputOrigin, RequestVerificationStats, VerificationHooks } from "./request-verification.js";

/** What the runtime reports at each scrape (ReplicaRuntime.metricsSnapshot). */
export interface ReplicaMetricsSnapshot {
  readonly view: number;
  /** False during a view change. */
  readonly normal: boolean;
  readonly executedHeight: number;
  /** The highest height this replica holds a commit certificate for. */
  readonly certifiedHeight: number;
  readonly stableCheckpoint: number;
  readonly pendingRequests: number;
  /** Proof reads waiting for their block's certificate (client-services.ts). */
  readonly heldReads: number;
  /** The PBFT core's counters: inputs dropped by reason, plus "view-changes" and a few other events. */
  readonly consensusCounters: Readonly<Record<string, number>>;
  /** The runtime's own counters ("frames-malformed", "frames-oversized", "sends-dropped", ...). */
  readonly runtimeCounters: Readonly<Record<string, number>>;
  readonly peers: readonly PeerQueueSnapshot[];
  /** The listener's counters, summed over every inbound connection. */
  readonly inbound: Readonly<ListenerCounters>;
  readonly verification: RequestVerificationStats;
}

export interface PeerQueueSnapshot {
  readonly peer: number;
  readonly connected: boolean;
  readonly sendQueueFrames: number;
  readonly sendQueueBytes: number;
  /** The outgoing link's counters, over all its connections. */
  readonly transport: Readonly<PeerLinkCounters>;
}

/** Hooks the runtime calls on events; all optional, so a runtime without metrics passes `{}`. */
export interface RuntimeObserver extends VerificationHooks {
  /** Client requests the core was handed whose signatures were checked and are valid (from a client, a peer, or in a pre-prepare). */
  requestsVerified?(requests: readonly ClientRequest[]): void;
  /** A committed batch executed and its block is durable. */
  batchExecuted?(requests: readonly ClientRequest[]): void;
  /** A block write (and its fsync, under the durable policy) took `seconds`. */
  blockPersisted?(seconds: number): void;
  /** The core's records of one Ready were written (and fsynced) in `seconds`. */
  recordsPersisted?(seconds: number): void;
}

export interface ReplicaMetricsOptions {
  readonly replica: number;
  /** Register prom-client's default Node.js metrics (default true). */
  readonly defaultMetrics?: boolean;
  /** Sampling period of the event-loop delay monitor (default 10 ms); delays are reported above it. */
  readonly eventLoopResolutionMs?: number;
}

/**
 * Runtime counters that describe frames refused or dropped, exported as one metric with a reason
 * label; every other runtime counter goes to bulwark_replica_events_total.
 */
const FRAME_REJECTION_REASONS: Readonly<Record<string, string>> = {
  "frames-malformed": "malformed",
  "frames-oversized": "oversized",
  "sends-dropped": "send-queue-full",
  "client-requests-malformed": "malformed-transaction",
};
/** The core counts view changes with its drops; they get their own metric. */
const VIEW_CHANGES_COUNTER = "view-changes";
const ORIGINS: readonly InputOrigin[] = ["replica", "client"];

/** Each transport counter's metric, for the listener and every peer link (label `link`). */
const TRANSPORT_METRICS: Readonly<Record<keyof TransportCounters, readonly [name: string, help: string]>> = {
  framesSent: ["bulwark_transport_frames_sent_total", "Frames handed to the socket, handshake frames included."],
  bytesSent: ["bulwark_transport_sent_bytes_total", "Bytes handed to the socket, length prefixes and MAC tags included."],
  framesReceived: ["bulwark_transport_frames_received_total", "Frames read from the socket."],
  bytesReceived: ["bulwark_transport_received_bytes_total", "Bytes read from the socket, length prefixes and MAC tags included."],
  framesDropped: ["bulwark_transport_frames_dropped_total", "Frames refused because the send queue was full or the link closed."],
  bytesDropped: ["bulwark_transport_dropped_bytes_total", "Bytes of the frames refused."],
  framesDiscarded: ["bulwark_transport_frames_discarded_total", "Frames queued but never written because their connection closed."],
  socketWrites: ["bulwark_transport_socket_writes_total", "socket.write() calls (frames sent per write is the coalescing factor)."],
  framesBadMac: ["bulwark_transport_frames_bad_mac_total", "Frames whose MAC tag failed; each closed its connection (someone on the path altered traffic)."],
};
type PeerLinkOnly = Exclude<keyof PeerLinkCounters, keyof TransportCounters | "connected">;
const PEER_LINK_METRICS: Readonly<Record<PeerLinkOnly, readonly [name: string, help: string]>> = {
  connectAttempts: ["bulwark_transport_connect_attempts_total", "Connection attempts to a peer replica."],
  connectFailures: ["bulwark_transport_connect_failures_total", "Attempts to a peer that ended before the handshake finished."],
  reconnects: ["bulwark_transport_reconnects_total", "Connections to a peer opened after the first one."],
};
type ListenerOnly = Exclude<keyof ListenerCounters, keyof TransportCounters>;
const LISTENER_METRICS: Readonly<Record<ListenerOnly, readonly [name: string, help: string]>> = {
  connectionsAccepted: ["bulwark_transport_connections_accepted_total", "Inbound connections accepted (clients and peers)."],
  connectionsRefused: ["bulwark_transport_connections_refused_total", "Inbound connections refused because the most allowed were open."],
  connectionsFailed: ["bulwark_transport_connections_failed_total", "Inbound connections closed for a malformed frame, a failed handshake, a bad MAC or a protocol error."],
};

// Buckets in seconds: execution latency spans a local commit (ms) to a view change (s); disk
// writes and verification batches run from tens of microseconds to a slow fsync.
const EXECUTION_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const IO_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const BATCH_SIZE_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096];
const EVENT_LOOP_RESOLUTION_MS_DEFAULT = 10;

export class ReplicaMetrics implements RuntimeObserver {
  readonly registry = new Registry();
  private readonly latency = new RequestLatency();
  private readonly eventLoop: IntervalHistogram;
  private readonly eventLoopResolutionNs: number;
  private source: (() => ReplicaMetricsSnapshot) | undefined;

  private readonly committedTransactions: Counter;
  private readonly committedBatches: Counter;
  private readonly executionSeconds: Histogram;
  private readonly blockPersistSeconds: Histogram;
  private readonly recordPersistSeconds: Histogram;
  private readonly verifyBatchSeconds: Histogram;
  private readonly verifyBatchSignatures: Histogram;
  private readonly verifyBatchFailures: Counter;
  private readonly gauges: Record<
    | "view"
    | "viewNormal"
    | "executedHeight"
    | "stableCheckpoint"
    | "certifiedHeight"
    | "pendingRequests"
    | "heldReads"
    | "verifyCollecting"
    | "verifyBatchesInFlight"
    | "verifyPoolPendingBatches"
    | "verifyPoolQueuedChunks"
    | "verifyPoolWorkers"
    | "sessionWaiting"
    | "sessionRequestsKept"
    | "sessionRequestBytes"
    | "lagP50"
    | "lagP99"
    | "lagMax",
    Gauge
  >;
  private readonly peerQueueFrames: Gauge;
  private readonly peerQueueBytes: Gauge;
  private readonly peerConnected: Gauge;
  private readonly verifyWaitingInputs: Gauge;
  private readonly verifyWaitingBytes: Gauge;
  private readonly verdictsCached: Gauge;
  private readonly verifyBatchesDeferred: Counter;
  private readonly sessionWaitsExpired: Counter;
  private readonly sessionRequestsEvicted: Counter;
  /** One counter per transport figure, by `link`; then the peer links' and the listener's own. */
  private readonly transportCounters: Readonly<Record<keyof TransportCounters, Counter>>;
  private readonly peerLinkCounters: Readonly<Record<PeerLinkOnly, Counter>>;
  private readonly listenerCounters: Readonly<Record<ListenerOnly, Counter>>;
  private readonly viewChanges: Counter;
  private readonly consensusDropped: Counter;
  private readonly framesRejected: Counter;
  private readonly replicaEvents: Counter;
  private readonly verifyInputsDropped: Counter;
  private readonly verdictLookups: Counter;

  constructor(options: ReplicaMetricsOptions) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ replica: String(options.replica) });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    const counter = (name: string, help: string, labelNames: string[] = []): Counter => new Counter({ name, help, labelNames, registers });
    const gauge = (name: string, help: string, labelNames: string[] = []): Gauge => new Gauge({ name, help, labelNames, registers });
    const histogram = (name: string, help: string, buckets: number[]): Histogram => new Histogram({ name, help, buckets, registers });

    this.committedTransactions = counter("bulwark_committed_transactions_total", "Transactions in batches executed here (their blocks durable).");
    this.committedBatches = counter("bulwark_committed_batches_total", "Batches (blocks) executed here.");
    this.executionSeconds = histogram(
      "bulwark_request_execution_seconds",
      "From a request's first arrival at the core with a valid signature (from its client, a peer, or in a pre-prepare) to its block being durable here.",
      EXECUTION_BUCKETS_SECONDS,
    );
    this.blockPersistSeconds = histogram("bulwark_block_persist_seconds", "Writing one block (with its fsync under --sync durable).", IO_BUCKETS_SECONDS);
    this.recordPersistSeconds = histogram("bulwark_consensus_persist_seconds", "Writing the consensus records of one Ready before its votes leave (with fsync).", IO_BUCKETS_SECONDS);
    this.verifyBatchSeconds = histogram("bulwark_verify_batch_seconds", "From sending a batch of client signatures to the worker pool to its verdicts.", IO_BUCKETS_SECONDS);
    this.verifyBatchSignatures = histogram("bulwark_verify_batch_signatures", "Signatures per batch sent to the worker pool.", BATCH_SIZE_BUCKETS);
    this.verifyBatchFailures = counter("bulwark_verify_batch_failures_total", "Batches the worker pool failed (their signatures were verified inline).");
    this.gauges = {
      view: gauge("bulwark_view", "The current view."),
      viewNormal: gauge("bulwark_view_normal", "1 in normal operation, 0 during a view change."),
      executedHeight: gauge("bulwark_executed_height", "Height of the last block executed and stored here."),
      stableCheckpoint: gauge("bulwark_stable_checkpoint", "Sequence number of the stable checkpoint."),
      certifiedHeight: gauge("bulwark_certified_height", "Highest height this replica holds a commit certificate for."),
      pendingRequests: gauge("bulwark_pending_client_requests", "Client requests waiting at this replica to be ordered and executed (one per client)."),
      heldReads: gauge("bulwark_client_reads_held", "Proof reads waiting for the certificate of the block they were proven at."),
      verifyCollecting: gauge("bulwark_verify_collecting_signatures", "Signatures collected and not yet sent to the worker pool."),
      verifyBatchesInFlight: gauge("bulwark_verify_batches_in_flight", "Verification batches sent to the worker pool and not answered."),
      verifyPoolPendingBatches: gauge("bulwark_verify_pool_pending_batches", "Batches pending in the worker pool."),
      verifyPoolQueuedChunks: gauge("bulwark_verify_pool_queued_chunks", "Chunks queued in the worker pool for a free worker."),
      verifyPoolWorkers: gauge("bulwark_verify_pool_workers", "Verification worker threads (0: verification inline)."),
      sessionWaiting: gauge("bulwark_session_waiting_requests", "Session requests the primary's pre-prepares wait for (their client's copy has not arrived here yet)."),
      sessionRequestsKept: gauge("bulwark_session_requests_kept", "Session-authenticated requests received and not executed yet."),
      sessionRequestBytes: gauge("bulwark_session_request_bytes", "Bytes of the session-authenticated requests kept."),
      lagP50: gauge("bulwark_event_loop_lag_p50_seconds", "Median event-loop delay since the previous scrape."),
      lagP99: gauge("bulwark_event_loop_lag_p99_seconds", "99th percentile event-loop delay since the previous scrape."),
      lagMax: gauge("bulwark_event_loop_lag_max_seconds", "Largest event-loop delay since the previous scrape."),
    };
    this.peerQueueFrames = gauge("bulwark_peer_send_queue_frames", "Frames queued to a peer replica.", ["peer"]);
    this.peerQueueBytes = gauge("bulwark_peer_send_queue_bytes", "Bytes queued to a peer replica.", ["peer"]);
    this.peerConnected = gauge("bulwark_peer_connected", "1 when the link to a peer replica is open.", ["peer"]);
    this.verifyWaitingInputs = gauge("bulwark_verify_waiting_inputs", "Requests and consensus messages waiting for signature verdicts before the core sees them, by origin (client or replica).", ["origin"]);
    this.verifyWaitingBytes = gauge("bulwark_verify_waiting_bytes", "Bytes of the frames waiting for signature verdicts, by origin.", ["origin"]);
    this.verdictsCached = gauge("bulwark_verify_verdicts_cached", "Signature verdicts kept for the core, by verdict (valid or invalid; kept apart).", ["verdict"]);
    this.verifyBatchesDeferred = counter("bulwark_verify_batches_deferred_total", "Batches the worker pool refused as full and that were sent again later.");
    this.sessionWaitsExpired = counter(
      "bulwark_session_waits_expired_total",
      "Pre-prepares that waited in vain for a session request's own copy (a client that sent to the primary alone, or a slow link); each usually costs a view change.",
    );
    this.sessionRequestsEvicted = counter("bulwark_session_requests_evicted_total", "Session requests forgotten before they executed, to stay within the table's bounds.");
    const counters = <K extends string>(table: Readonly<Record<K, readonly [name: string, help: string]>>, labelNames: string[]): Record<K, Counter> =>
      Object.fromEntries(entriesOf(table).map(([field, [name, help]]) => [field, counter(name, help, labelNames)])) as Record<K, Counter>;
    this.transportCounters = counters(TRANSPORT_METRICS, ["link"]);
    this.peerLinkCounters = counters(PEER_LINK_METRICS, ["link"]);
    this.listenerCounters = counters(LISTENER_METRICS, []);
    this.viewChanges = counter("bulwark_view_changes_total", "View changes this replica started or joined.");
    this.consensusDropped = counter("bulwark_consensus_dropped_total", "Inputs the PBFT core dropped, by reason (and a few core events such as state-transfers).", ["reason"]);
    this.framesRejected = counter("bulwark_frames_rejected_total", "Frames refused or dropped by the runtime, by reason.", ["reason"]);
    this.replicaEvents = counter("bulwark_replica_events_total", "Other runtime events, by name.", ["event"]);
    this.verifyInputsDropped = counter("bulwark_verify_inputs_dropped_total", "Requests and consensus messages dropped because too many of their origin (client or replica) were waiting for verdicts.", ["origin"]);
    this.verdictLookups = counter("bulwark_verify_verdict_lookups_total", "The core's client-signature checks, answered from a verdict (hit) or inline (miss).", ["result"]);

    const resolutionMs = options.eventLoopResolutionMs ?? EVENT_LOOP_RESOLUTION_MS_DEFAULT;
    this.eventLoopResolutionNs = resolutionMs * 1e6;
    this.eventLoop = monitorEventLoopDelay({ resolution: resolutionMs });
    this.eventLoop.enable();
  }

  /** Where scrapes read the runtime's state from. */
  attach(source: () => ReplicaMetricsSnapshot): void {
    this.source = source;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text of every metric, refreshed from the runtime's snapshot. */
  async render(): Promise<string> {
    this.sampleEventLoop();
    if (this.source !== undefined) this.refresh(this.source());
    return this.registry.metrics();
  }

  /** Stops the event-loop monitor. */
  close(): void {
    this.eventLoop.disable();
  }

  // RuntimeObserver ------------------------------------------------------------------------------

  requestsVerified(requests: readonly ClientRequest[]): void {
    this.latency.arrived(requests);
  }

  batchExecuted(requests: readonly ClientRequest[]): void {
    this.committedBatches.inc();
    this.committedTransactions.inc(requests.length);
    this.latency.executed(requests, (seconds) => this.executionSeconds.observe(seconds));
  }

  blockPersisted(seconds: number): void {
    this.blockPersistSeconds.observe(seconds);
  }

  recordsPersisted(seconds: number): void {
    this.recordPersistSeconds.observe(seconds);
  }

  batchVerified(seconds: number, items: number): void {
    this.verifyBatchSeconds.observe(seconds);
    this.verifyBatchSignatures.observe(items);
  }

  batchFailed(): void {
    this.verifyBatchFailures.inc();
  }

  // Scrape ---------------------------------------------------------------------------------------

  private sampleEventLoop(): void {
    const histogram = this.eventLoop;
    // No sample yet (a scrape right after the previous one): report no delay.
    const seconds = (nanoseconds: number): number => (histogram.count === 0 ? 0 : Math.max(0, nanoseconds - this.eventLoopResolutionNs) / 1e9);
    this.gauges.lagP50.set(seconds(histogram.percentile(50)));
    this.gauges.lagP99.set(seconds(histogram.percentile(99)));
    this.gauges.lagMax.set(seconds(histogram.max));
    histogram.reset();
  }

  private refresh(snapshot: ReplicaMetricsSnapshot): void {
    const { gauges } = this;
    gauges.view.set(snapshot.view);
    gauges.viewNormal.set(snapshot.normal ? 1 : 0);
    gauges.executedHeight.set(snapshot.executedHeight);
    gauges.stableCheckpoint.set(snapshot.stableCheckpoint);
    gauges.certifiedHeight.set(snapshot.certifiedHeight);
    gauges.pendingRequests.set(snapshot.pendingRequests);
    gauges.heldReads.set(snapshot.heldReads);
    for (const peer of snapshot.peers) {
      const labels = { peer: String(peer.peer) };
      this.peerQueueFrames.set(labels, peer.sendQueueFrames);
      this.peerQueueBytes.set(labels, peer.sendQueueBytes);
      this.peerConnected.set(labels, peer.connected ? 1 : 0);
    }
    this.refreshTransport(snapshot);
    const verification = snapshot.verification;
    this.verifyInputsDropped.reset();
    for (const origin of ORIGINS) {
      this.verifyWaitingInputs.set({ origin }, verification.waiting[origin].inputs);
      this.verifyWaitingBytes.set({ origin }, verification.waiting[origin].bytes);
      this.verifyInputsDropped.inc({ origin }, verification.inputsDropped[origin]);
    }
    gauges.verifyCollecting.set(verification.collectingItems);
    gauges.verifyBatchesInFlight.set(verification.batchesInFlight);
    gauges.verifyPoolPendingBatches.set(verification.pool?.pendingBatches ?? 0);
    gauges.verifyPoolQueuedChunks.set(verification.pool?.queuedChunks ?? 0);
    gauges.verifyPoolWorkers.set(verification.pool?.workerCount ?? 0);
    this.verdictsCached.set({ verdict: "valid" }, verification.verdicts.verdicts);
    this.verdictsCached.set({ verdict: "invalid" }, verification.verdicts.invalidVerdicts);
    setCounter(this.verifyBatchesDeferred, verification.batchesDeferred);
    gauges.sessionWaiting.set(verification.sessionWaits);
    setCounter(this.sessionWaitsExpired, verification.sessionWaitsExpired);
    gauges.sessionRequestsKept.set(verification.sessionRequests?.entries ?? 0);
    gauges.sessionRequestBytes.set(verification.sessionRequests?.bytes ?? 0);
    setCounter(this.sessionRequestsEvicted, verification.sessionRequests?.evicted ?? 0);
    this.verdictLookups.reset();
    this.verdictLookups.inc({ result: "hit" }, verification.verdicts.hits);
    this.verdictLookups.inc({ result: "miss" }, verification.verdicts.misses);

    setCounter(this.viewChanges, snapshot.consensusCounters[VIEW_CHANGES_COUNTER] ?? 0);
    this.consensusDropped.reset();
    for (const [reason, count] of Object.entries(snapshot.consensusCounters)) {
      if (reason !== VIEW_CHANGES_COUNTER) this.consensusDropped.inc({ reason }, count);
    }
    this.framesRejected.reset();
    this.replicaEvents.reset();
    for (const [event, count] of Object.entries(snapshot.runtimeCounters)) {
      const reason = FRAME_REJECTION_REASONS[event];
      if (reason !== undefined) this.framesRejected.inc({ reason }, count);
      else this.replicaEvents.inc({ event }, count);
    }
  }

  private refreshTransport(snapshot: ReplicaMetricsSnapshot): void {
    for (const [field, counter] of entriesOf(this.transportCounters)) {
      counter.reset();
      counter.inc({ link: "inbound" }, snapshot.inbound[field]);
      for (const peer of snapshot.peers) counter.inc({ link: `peer-${peer.peer}` }, peer.transport[field]);
    }
    for (const [field, counter] of entriesOf(this.peerLinkCounters)) {
      counter.reset();
      for (const peer of snapshot.peers) counter.inc({ link: `peer-${peer.peer}` }, peer.transport[field]);
    }
    for (const [field, counter] of entriesOf(this.listenerCounters)) setCounter(counter, snapshot.inbound[field]);
  }
}

/** Sets a counter read from a monotonic source to that source's value. */
function setCounter(counter: Counter, value: number): void {
  counter.reset();
  counter.inc(value);
}

/** The entries of a record keyed by a union of field names, typed as such. */
function entriesOf<K extends string, V>(record: Readonly<Record<K, V>>): [K, V][] {
  return Object.entries(record) as [K, V][];
}
