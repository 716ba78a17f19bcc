// One replica process (DESIGN.md, "The consensus core contract"; issue 3 §4, issue 4 §3): the
// pure PBFT core wired to TCP, the LMDB store, execution and a tick timer.
//
// The Ready loop. Inputs (peer messages, client requests, ticks, executed batches) are stepped
// into the core as they arrive. One Ready at a time is handled: its records are made durable
// BEFORE any of its messages leaves (so a restarted replica can never contradict a vote it sent;
// ResilientDB's issue #220 is what happens without), then its messages go out, its committed
// batches go to execution, cached replies go to clients and state fetches start. While a Ready's
// records are being written, later output accumulates in the core and is drained as the next
// Ready: one fsync covers everything produced meanwhile. Client requests and consensus messages
// that carry client signatures pass through the verification stage first (request-verification.ts):
// the signatures are verified in batches on worker threads, and the core's synchronous check then
// answers from those verdicts, keeping the event loop free. Replies go back over the connection
// the client's latest verified request came from (reply-routes.ts).
//
// Execution. Committed batches execute in sequence order (block-pipeline.ts) as soon as they are
// handed over; their block writes queue behind each other and resolve in order. The clients of a
// batch are answered when it executes: its order is already durable at 2f + 1 replicas as their
// commit records, which is what an acknowledged transaction rests on (block-pipeline.ts). Only
// when a block is durable does the replica tell the core it executed (which may sign a
// checkpoint) and sign the block for its commit certificate (block-certifier.ts). At a
// checkpoint height execution waits for the block to be durable before the next batch, so the
// store's state at that moment IS the checkpoint's and can be pinned for state transfer
// (state-transfer.ts).
//
// The checkpoint digest the core signs is the hash of the block header at the checkpoint height:
// the header commits to the state root and, through prevHash, to the whole chain, so a proof of
// 2f + 1 checkpoint signatures certifies both, and a fetched state is checked against it.
//
// Failure: a store write that fails leaves memory ahead of the disk; nothing may continue. The
// runtime reports it to `onFatal` (the replica command exits; restarting resumes from the store).

import { createLedgerApplication } from "../app/ledger-application.js";
import { requestFromTransaction } from "../app/request.js";
import { type Transaction, TransactionDecodeError, decodeTransaction, isSessionTransaction } from "../app/transaction.js";
import { PbftReplica, type ReplicaStatus } from "../consensus/pbft/replica.js";
import type { CheckpointProof, CommittedBatch, Outbound, PbftConfig, Ready } from "../consensus/pbft/types.js";
import type { Ed25519PrivateKey } from "../crypto/ed25519.js";
import { cryptoBackends } from "../crypto/sodium.js";
import { VerifyPool, resolveVerifyWorkers } from "../crypto/verify-pool.js";
import { type BlockHeader, decodeBlockHeader } from "../ledger/block-header.js";
import { type CommitCertificate, encodeCertificate, signBlock } from "../ledger/certificate.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import type { Connection } from "../net/connection.js";
import { FRAME_BYTES_MAX_DEFAULT } from "../net/frame.js";
import { Listener } from "../net/listener.js";
import { RateLimitedLog, type TransportLogger } from "../net/log.js";
import { PeerLink } from "../net/peer-link.js";
import { ReplicaStore, type SyncPolicy } from "../storage/index.js";
import { parseAddress } from "./address.js";
import { BlockBackfill } from "./block-backfill.js";
import { BlockCertifier, headerDigest } from "./block-certifier.js";
import { CertificateRepair, REPAIR_MISSING_MAX, REPAIR_WINDOW_HEIGHTS } from "./certificate-repair.js";
import { ClientServices } from "./client-services.js";
import { BlockPipeline, type CommittedBlock } from "./block-pipeline.js";
import { type ReplicaIdentity, replicaDialHandshake, replicaListenerHandshake } from "./handshake.js";
import { ReplicaCrypto } from "./replica-crypto.js";
import type { ReplicaMetricsSnapshot, RuntimeObserver } from "./replica-metrics.js";
import { ReplyRoutes } from "./reply-routes.js";
import { RequestVerification, type StagedInput, requestsCarried } from "./request-verification.js";
import { SessionAttachments } from "./session-attach.js";
import { SessionRequests } from "./session-requests.js";
import { signedItemOfTransaction } from "./signature-pool.js";
import { type FetchedState, StateFetch, StateServer } from "./state-transfer.js";
import { WireDecodeError, decodeWireFrame, encodeWireFrame } from "./wire.js";
import type { PeerSession, WireBlock, WireFrame } from "./wire-types.js";

export interface RuntimeLogger extends TransportLogger {
  error(fields: Record<string, unknown>, message: string): void;
}

export interface ReplicaRuntimeOptions {
  readonly cluster: ClusterConfig;
  readonly id: number;
  readonly privateKey: Ed25519PrivateKey;
  readonly dataDirectory: string;
  /** "durable" (default): a vote leaves only after its record is fsynced. See storage/README.md. */
  readonly sync?: SyncPolicy;
  /**
   * Take session-authenticated requests (node/session-requests.ts; issue 5 `--auth session`).
   * Default false: attachments are refused and such requests dropped and counted, because a client
   * whose key is attached can force view changes; only for clients the operator trusts.
   */
  readonly sessionAuth?: boolean;
  /** Address to bind; default: the host of this replica's address in the cluster config. */
  readonly listenHost?: string;
  /** Keep block bodies for this many heights below the tip; older bodies are pruned (headers and certificates stay). */
  readonly retainBlocks?: number;
  readonly logger?: RuntimeLogger;
  /** A failure that leaves the replica unable to continue correctly; default: log and exit(70). */
  readonly onFatal?: (error: unknown) => void;
  /** Threads verifying client signatures (request-verification.ts); default os.availableParallelism() (at most VERIFY_WORKERS_MAX); 0 verifies inline. */
  readonly verifyWorkers?: number;
  /** Metrics hooks (replica-metrics.ts); default none. */
  readonly observer?: RuntimeObserver;
}

export interface RuntimeStatus extends ReplicaStatus {
  /** Height of the last block stored (executed) here. */
  readonly height: number;
  readonly stateRoot: string;
  readonly certified: number;
  /** Stored heights still without a certificate that the repair is gathering signatures for. */
  readonly uncertified: number;
  readonly pinnedCheckpoints: readonly number[];
  readonly stateTransfers: number;
  readonly peersConnected: number;
  readonly clientConnections: number;
  readonly counters: Readonly<Record<string, number>>;
}

/**
 * Most verification threads: beyond the cores of any machine this runs on, each more is only
 * memory and a thread start (a worker costs about 10 MiB).
 */
export const VERIFY_WORKERS_MAX = 64;
/** A state fetch waits this long for a peer's answer before asking another. */
const STATE_FETCH_TIMEOUT_MS = 5_000;
/** After every peer failed once in a row, wait this long before the next round. */
const STATE_FETCH_ROUND_PAUSE_MS = 500;
/** Most client keys one client connection may have replies routed to. */
const ROUTES_PER_CONNECTION_MAX = 4_096;
/** The first certificate repair round after start waits this long, so the peer links can open. */
const REPAIR_FIRST_DELAY_MS = 300;
/** Between repair rounds that made progress; rounds that did not back off up to the maximum. */
const REPAIR_INTERVAL_MS = 1_000;
const REPAIR_INTERVAL_MAX_MS = 30_000;
/** A block of ours still uncertified this long after it was signed goes to the repair. */
const CERTIFY_GRACE_MS = 2_000;
/** On a graceful stop, how long to wait for the certificates of the blocks executed so far. */
const STOP_CERTIFY_WAIT_MS = 3_000;
/** Bytes of one blocks answer: well under the frame limit, leaving room for the frame's own fields. */
const BLOCKS_ANSWER_BYTES_MAX = FRAME_BYTES_MAX_DEFAULT / 2;
/** A generous bound on what one block adds to a blocks frame beyond its byte fields (height, lengths, flags). */
const WIRE_BLOCK_OVERHEAD_BYTES = 32;
/** Blocks served per blocks-request. */
const BLOCKS_PER_ANSWER_MAX = 64;
/** Prune bodies at most every this many heights when retention is on. */
const PRUNE_EVERY_HEIGHTS_MAX = 256;

/**
 * How often (in heights) a replica retaining `retain` block bodies prunes: a quarter of the
 * retention, at most PRUNE_EVERY_HEIGHTS_MAX, so that it never holds more than about 1.25 ×
 * `retain` bodies (a fixed 256 let a retention of 100 hold 356, and the data file kept growing
 * for as long as that took to fill).
 */
export function pruneEveryHeights(retain: number): number {
  return Math.min(PRUNE_EVERY_HEIGHTS_MAX, Math.max(1, Math.ceil(retain / 4)));
}

/** Which peer a multi-request job (state fetch, backfill) asks now, and how that is going. */
interface PeerTurn {
  peer: number;
  failuresInRow: number;
  timer: NodeJS.Timeout | undefined;
}

const silentRuntimeLogger: RuntimeLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

export class ReplicaRuntime {
  readonly id: number;
  readonly cluster: ClusterConfig;
  private readonly options: ReplicaRuntimeOptions;
  private readonly logger: RuntimeLogger;
  private readonly store: ReplicaStore;
  private pipeline: BlockPipeline;
  private readonly core: PbftReplica;
  private readonly identity: ReplicaIdentity;
  private readonly certifier: BlockCertifier;
  private readonly repair: CertificateRepair;
  private repairTimer: NodeJS.Timeout | undefined;
  private repairIntervalMs = REPAIR_INTERVAL_MS;
  private lastGraceCheckMs = 0;
  /** Stopping: no new input but block signatures, so the last blocks can still be certified. */
  private stopping = false;
  private readonly stateServer: StateServer;
  /** Status, proof reads and blocks for clients (client-services.ts). */
  private readonly clientServices: ClientServices<Connection<PeerSession>>;
  private readonly listener: Listener<PeerSession>;
  private readonly links: Array<PeerLink<PeerSession> | undefined>;
  private readonly checkpointInterval: number;
  private readonly counts: Record<string, number> = {};
  /** The client connection each client's replies go to (reply-routes.ts). */
  private readonly routes: ReplyRoutes<Connection<PeerSession>>;
  /** The core's crypto; the runtime asks it for the verdict on a request before routing replies by it. */
  private readonly crypto: ReplicaCrypto;
  private readyBusy = false;
  private readyDone: Promise<void> = Promise.resolve();
  private executionTail: Promise<void> = Promise.resolve();
  private durableTail: Promise<void> = Promise.resolve();
  private certificateTail: Promise<void> = Promise.resolve();
  private tickTimer: NodeJS.Timeout | undefined;
  private fetch: ({ state: StateFetch } & PeerTurn) | undefined;
  private backfill: ({ job: BlockBackfill; missingBodies: number } & PeerTurn) | undefined;
  private nextRequestId = 1;
  /** The highest checkpoint whose fetched state is installed or waiting in `installTail`. */
  private installingSeq = 0;
  private installTail: Promise<void> = Promise.resolve();
  private stateTransfers = 0;
  private stopped = false;
  private fatalError: unknown = undefined;
  /** Client signatures verified on worker threads before their inputs reach the core. */
  private readonly verification: RequestVerification<Connection<PeerSession>>;
  /** Session-authenticated requests received, and the keys attached to each client connection (issue 5, `--auth session`). */
  private readonly sessions = new SessionRequests();
  private readonly attachments = new SessionAttachments<Connection<PeerSession>>();
  private readonly observer: RuntimeObserver;

  private constructor(options: ReplicaRuntimeOptions, store: ReplicaStore, pool: VerifyPool | undefined) {
    const { cluster, id } = options;
    this.options = options;
    this.id = id;
    this.cluster = cluster;
    this.logger = options.logger ?? silentRuntimeLogger;
    this.store = store;
    const { tornTailBytes, migratedRecords } = store.recordLogRecovery;
    if (tornTailBytes > 0) this.logger.warn({ tornTailBytes }, "cut an unacknowledged append from the end of the consensus record log (a crash during a write)");
    if (migratedRecords > 0) this.logger.info({ migratedRecords }, "moved the consensus records from LMDB to records.log (a store of an earlier build)");
    this.checkpointInterval = cluster.protocol.checkpointInterval;
    this.identity = { cluster, id, privateKey: options.privateKey };
    this.pipeline = this.openPipeline();
    const applied = store.appliedState();
    const lastExecuted = applied?.seq ?? 0;
    const header = applied === undefined ? undefined : this.storedHeader(applied.height);
    const config: PbftConfig = { n: cluster.n, ...cluster.protocol };
    this.observer = options.observer ?? {};
    this.verification = new RequestVerification<Connection<PeerSession>>({
      pool,
      deliver: (input, source) => this.stepVerified(input, source),
      hooks: this.observer,
      sessions: this.sessions,
      hasExecuted: (request) => (this.pipeline.executor.lastReply(request.client)?.timestamp ?? -1) >= request.timestamp,
      replicaCount: cluster.n,
    });
    this.crypto = new ReplicaCrypto(cluster, options.privateKey, { requestVerifier: this.verification.verifier, sessions: this.sessions });
    this.routes = new ReplyRoutes<Connection<PeerSession>>({
      verify: (request) => this.crypto.verifyRequest(request),
      isOpen: (connection) => connection.state === "open",
      perConnectionMax: ROUTES_PER_CONNECTION_MAX,
      count: (name) => this.count(name),
    });
    this.core = new PbftReplica(
      { id, config, crypto: this.crypto, replies: { lastReply: (client) => this.pipeline.executor.lastReply(client) } },
      { records: store.loadRecords(), lastExecuted, ...(header === undefined ? {} : { stateDigest: headerDigest(header) }) },
    );
    this.certifier = new BlockCertifier({
      cluster,
      aheadMax: cluster.protocol.watermarkWindow,
      behindMax: cluster.protocol.watermarkWindow,
      onCertified: (certified, certificate) => this.storeCertificate(certified, certificate),
      onAbandoned: (height) => this.addRepair([height]),
      verify: this.crypto.checkSignature,
    });
    this.certifier.skipTo(lastExecuted);
    this.repair = new CertificateRepair(cluster, this.crypto.checkSignature);
    this.stateServer = new StateServer(store);
    if (lastExecuted > 0 && lastExecuted % this.checkpointInterval === 0) this.stateServer.pinCheckpoint(lastExecuted);
    this.clientServices = new ClientServices({
      replica: id,
      executed: () => ({ height: this.pipeline.height, tree: this.pipeline.application.ledgerState.tree }),
      storedCertified: (height) => {
        const stored = this.store.getHeaders(height, height)[0];
        return stored?.certificate === undefined ? undefined : { header: stored.header, certificate: stored.certificate };
      },
      consensus: () => {
        const core = this.core.status();
        return { view: core.view, primary: core.primary, normal: core.normal, stableCheckpoint: core.stableSeq };
      },
      blocks: (from, to) => this.blocksFor(from, to),
      send: (connection, frame) => void this.sendBytes(connection, encodeWireFrame(frame)),
      count: (name) => this.count(name),
    });
    const log = new RateLimitedLog({ logger: this.logger });
    const own = parseAddress(cluster.replicas[id]!.address);
    this.listener = new Listener<PeerSession>(
      { host: options.listenHost ?? own.host, port: own.port, handshake: replicaListenerHandshake(this.identity), settings: { log } },
      { onFrame: (connection, payload) => this.onFrame(connection, payload), onClose: (connection) => this.routes.forget(connection) },
    );
    this.links = cluster.replicas.map((replica) => {
      if (replica.id === id) return undefined;
      const address = parseAddress(replica.address);
      return new PeerLink<PeerSession>(
        { host: address.host, port: address.port, label: `replica-${replica.id}`, handshake: replicaDialHandshake(this.identity, replica.id), random: Math.random, settings: { log } },
        { onFrame: (connection, payload) => this.onFrame(connection, payload), onClose: () => this.onLinkClosed(replica.id) },
      );
    });
  }

  /** Opens the store, restores the core from it, binds the port and starts. */
  static async start(options: ReplicaRuntimeOptions): Promise<ReplicaRuntime> {
    const { cluster, id } = options;
    if (!Number.isSafeInteger(id) || id < 0 || id >= cluster.n) throw new RangeError(`replica id ${id} is not in the cluster (0 .. ${cluster.n - 1})`);
    const verifyWorkers = resolveVerifyWorkers(options.verifyWorkers, VERIFY_WORKERS_MAX);
    const store = await ReplicaStore.open({ directory: options.dataDirectory, clusterId: cluster.clusterId, replicaId: id, ...(options.sync === undefined ? {} : { sync: options.sync }) });
    // Worker threads keep a process alive, and the store holds its lock: a start that fails must end both.
    let pool: VerifyPool | undefined;
    let runtime: ReplicaRuntime;
    try {
      pool = verifyWorkers > 0 ? new VerifyPool({ workerCount: verifyWorkers }) : undefined;
      runtime = new ReplicaRuntime(options, store, pool);
      await runtime.listener.listen();
    } catch (error) {
      await pool?.close();
      await store.close();
      throw error;
    }
    for (const link of runtime.links) link?.start();
    runtime.resumeBackfill();
    runtime.addRepair(store.uncertifiedHeights(1, REPAIR_MISSING_MAX), REPAIR_FIRST_DELAY_MS);
    runtime.tickTimer = setInterval(() => runtime.onTick(), cluster.protocol.tickMs);
    runtime.process();
    const status = runtime.status();
    const { fallbackReason, ...backends } = cryptoBackends();
    if (fallbackReason !== null) runtime.logger.warn({ ...backends, reason: fallbackReason }, "sodium-native is not in use for every primitive; node:crypto computes the rest, about half as fast");
    const verifyBackend = pool?.backend ?? runtime.verification.verifier.fallbackBackend;
    runtime.logger.info({ view: status.view, height: status.height, address: cluster.replicas[id]!.address, verifyWorkers: pool?.workerCount ?? 0, verifyBackend, cryptoBackends: backends }, "replica started");
    return runtime;
  }

  status(): RuntimeStatus {
    const core = this.core.status();
    return {
      ...core,
      height: this.pipeline.height,
      stateRoot: Buffer.from(this.pipeline.application.stateRoot()).toString("hex"),
      certified: this.certifier.counters.certified + this.repair.counters.certified,
      uncertified: this.repair.size,
      pinnedCheckpoints: this.stateServer.pinnedSeqs,
      stateTransfers: this.stateTransfers,
      peersConnected: this.links.filter((link) => link?.state === "open").length,
      clientConnections: [...this.listener.connections].filter((connection) => connection.session?.kind === "client").length,
      counters: { ...this.core.counters(), ...this.counts },
    };
  }

  /** What a metrics scrape reads (replica-metrics.ts). */
  metricsSnapshot(): ReplicaMetricsSnapshot {
    const core = this.core.status();
    return {
      view: core.view,
      normal: core.normal,
      executedHeight: this.pipeline.height,
      certifiedHeight: this.clientServices.certifiedHeight,
      stableCheckpoint: core.stableSeq,
      pendingRequests: core.pendingRequests,
      heldReads: this.clientServices.heldReads,
      consensusCounters: this.core.counters(),
      runtimeCounters: this.counts,
      peers: this.links.flatMap((link, peer) =>
        link === undefined
          ? []
          : [{ peer, connected: link.state === "open", sendQueueFrames: link.sendQueueFrames, sendQueueBytes: link.sendQueueBytes, transport: link.counters }],
      ),
      inbound: this.listener.counters,
      verification: this.verification.stats(),
    };
  }

  /** Graceful stop: no new input, finish what is in flight, close the store. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.clientServices.close();
    if (this.tickTimer !== undefined) clearInterval(this.tickTimer);
    if (this.fetch?.timer !== undefined) clearTimeout(this.fetch.timer);
    if (this.backfill?.timer !== undefined) clearTimeout(this.backfill.timer);
    await this.installTail;
    await this.settle();
    await this.certifyBeforeStop();
    this.stopped = true;
    if (this.repairTimer !== undefined) clearTimeout(this.repairTimer);
    for (const link of this.links) link?.close();
    await this.listener.close();
    await this.settle();
    this.stateServer.close();
    await this.verification.close();
    await this.store.close();
    this.logger.info({}, "replica stopped");
  }

  // -------------------------------------------------------------------------------------------
  // Input

  private onTick(): void {
    if (this.stopped) return;
    this.core.step({ type: "tick" });
    this.verification.expire();
    this.process();
    const nowMs = Date.now();
    if (nowMs - this.lastGraceCheckMs >= REPAIR_INTERVAL_MS) {
      this.lastGraceCheckMs = nowMs;
      const late = this.certifier.takeUncertified(nowMs, CERTIFY_GRACE_MS);
      if (late.length > 0) this.addRepair(late);
    }
  }

  /**
   * A graceful stop leaves every executed block certified when the peers are up: the blocks not
   * certified yet go to the repair at once, and the stop waits (bounded) while the links stay
   * open and peers' signatures are still taken. What is left is repaired at the next start.
   */
  private async certifyBeforeStop(): Promise<void> {
    this.addRepair(this.certifier.takeUncertified(Number.POSITIVE_INFINITY, 0), 0);
    if (this.repair.size === 0) return;
    if (this.repairTimer !== undefined) clearTimeout(this.repairTimer);
    this.repairIntervalMs = REPAIR_INTERVAL_MS;
    this.repairTimer = setTimeout(() => this.repairRound(), 0);
    const deadlineMs = Date.now() + STOP_CERTIFY_WAIT_MS;
    while (this.repair.size > 0 && Date.now() < deadlineMs) await new Promise((resolve) => setTimeout(resolve, 25));
    if (this.repair.size > 0) this.logger.warn({ uncertified: this.repair.size }, "stopping with uncertified blocks; they are certified at the next start");
  }

  private onFrame(connection: Connection<PeerSession>, payload: Uint8Array): void {
    if (this.stopped) return;
    const session = connection.session;
    if (session === undefined) return;
    let frame: WireFrame;
    try {
      frame = decodeWireFrame(payload);
    } catch (error) {
      if (!(error instanceof WireDecodeError)) throw error;
      this.count("frames-malformed");
      connection.protocolError(error.message);
      return;
    }
    if (session.kind === "client") {
      if (frame.kind === "session-attach") return this.onSessionAttach(connection, session.binding, frame.key, frame.signature);
      if (frame.kind !== "client-request") return this.clientServices.onFrame(connection, frame);
      if (this.stopping) return;
      return this.onClientRequest(connection, frame.transaction);
    }
    // While stopping, only what certifies the blocks already executed is taken.
    if (this.stopping && frame.kind !== "block-signature" && frame.kind !== "signatures-request") return;
    const from = session.id;
    switch (frame.kind) {
      case "consensus":
        this.verification.submit(connection, { type: "message", from, message: frame.message }, payload.length);
        return;
      case "block-signature":
        if (this.repair.wants(frame.height)) return this.onRepairSignature(from, frame.height, frame.signature);
        return this.certifier.onSignature(from, frame.height, frame.signature);
      case "signatures-request":
        return this.signStoredBlocks(connection, frame.from, frame.to);
      case "state-request":
        this.sendBytes(connection, encodeWireFrame(this.stateServer.serve(frame)));
        return;
      case "state-chunk":
      case "state-unavailable":
        return this.onStateAnswer(from, frame);
      case "blocks-request":
        this.sendBytes(connection, encodeWireFrame({ kind: "blocks", requestId: frame.requestId, blocks: this.blocksFor(frame.from, frame.to) }));
        return;
      case "blocks":
        return this.onBlocks(from, frame);
      case "client-request":
      case "session-attach":
      case "client-reply":
      case "status-request":
      case "status":
      case "read-request":
      case "read-proof":
      case "read-unavailable":
        return connection.protocolError(`a replica sent a ${frame.kind} frame`);
    }
  }

  /** Decoded once here: the request and the signature the verification stage checks both come from this decode. */
  private onClientRequest(connection: Connection<PeerSession>, envelope: Uint8Array): void {
    let transaction: Transaction;
    try {
      transaction = decodeTransaction(envelope);
    } catch (error) {
      if (!(error instanceof TransactionDecodeError)) throw error;
      this.count("client-requests-malformed");
      return;
    }
    const request = requestFromTransaction(transaction);
    if (isSessionTransaction(transaction)) {
      // Authentic when its key attached to this connection (session-attach.ts); then this replica
      // can vouch for it (session-requests.ts) and pre-prepares waiting for it may go on.
      if (!this.attachments.carries(connection, request)) return this.count("session-requests-unattached");
      this.sessions.record(request);
      this.verification.sessionArrived(request);
      this.verification.submit(connection, { type: "request", request }, envelope.length);
      return;
    }
    this.verification.submit(connection, { type: "request", request }, envelope.length, signedItemOfTransaction(transaction));
  }

  /** A client attaches a key to this connection for session requests; a bad attachment or too many close it. */
  private onSessionAttach(connection: Connection<PeerSession>, binding: Uint8Array | undefined, key: Uint8Array, signature: Uint8Array): void {
    if (binding === undefined) throw new Error("replica runtime: a client session without a handshake binding");
    if (this.options.sessionAuth !== true) {
      this.count("session-attach-disabled");
      connection.protocolError("this replica does not take session authentication (start it with --session-auth)");
      return;
    }
    const outcome = this.attachments.attach(connection, binding, key, signature);
    if (outcome === "attached") return this.count("session-keys-attached");
    this.count(outcome === "too-many" ? "session-attach-over-limit" : "session-attach-refused");
    connection.protocolError(outcome === "too-many" ? "too many session attachments on one connection" : "a session attachment's signature does not verify");
  }

  /** An input whose client signatures have their verdicts now (request-verification.ts), from `source`. */
  private stepVerified(input: StagedInput, source: Connection<PeerSession>): void {
    if (this.stopping || this.fatalError !== undefined) return;
    // This runs from a settled verification batch (a promise callback) as often as from a frame
    // handler; the core never throws on input, so a throw here is a bug, and it must stop the
    // replica through its fatal path rather than escape as an unhandled rejection.
    try {
      // The verdict is cached by now, and the core's own check of the same request reuses it.
      if (input.type === "request") this.routes.offer(input.request, source);
      this.core.step(input);
      this.timeVerified(input);
    } catch (error) {
      this.fatal(error);
      return;
    }
    this.process();
  }

  /**
   * Starts the latency clock (bulwark_request_execution_seconds) of the requests in `input` whose
   * signatures were checked and found valid: a forged request, or one the core dropped before
   * checking it, is never timed, so it cannot skew the figure or push real entries out.
   */
  private timeVerified(input: StagedInput): void {
    if (this.observer.requestsVerified === undefined) return;
    // Requests arrive first as requests or in a pre-prepare; the other carriers (certificates,
    // view changes) only repeat requests already timed here.
    if (input.type === "message" && input.message.type !== "pre-prepare") return;
    const verified = requestsCarried(input).filter((request) => this.crypto.verdictOf(request) === true);
    if (verified.length > 0) this.observer.requestsVerified(verified);
  }

  // -------------------------------------------------------------------------------------------
  // The Ready loop

  private process(): void {
    if (this.readyBusy || this.stopped || this.fatalError !== undefined) return;
    const ready = this.core.drain();
    if (ready.persist.length === 0 && ready.send.length === 0 && ready.execute.length === 0 && ready.replies.length === 0 && ready.fetchState.length === 0) return;
    this.readyBusy = true;
    this.readyDone = this.handleReady(ready).then(
      () => {
        this.readyBusy = false;
        this.process();
      },
      (error: unknown) => this.fatal(error),
    );
  }

  private async handleReady(ready: Ready): Promise<void> {
    if (ready.persist.length > 0) {
      const startedMs = performance.now();
      await this.store.appendRecords(ready.persist);
      this.observer.recordsPersisted?.((performance.now() - startedMs) / 1000);
    }
    for (const outbound of ready.send) this.sendConsensus(outbound);
    for (const batch of ready.execute) this.enqueueExecution(batch);
    for (const reply of ready.replies) this.sendReply(reply.client, reply.timestamp, reply.view, 0, reply.result);
    for (const fetch of ready.fetchState) this.startFetch(fetch.proof);
  }

  private sendConsensus(outbound: Outbound): void {
    const bytes = encodeWireFrame({ kind: "consensus", message: outbound.message });
    if (outbound.to === "all") this.sendToPeers(bytes);
    else this.sendBytes(this.links[outbound.to], bytes);
  }

  private broadcast(frame: WireFrame): void {
    this.sendToPeers(encodeWireFrame(frame));
  }

  private sendToPeers(bytes: Uint8Array): void {
    for (const link of this.links) if (link !== undefined) this.sendBytes(link, bytes);
  }

  /**
   * Every frame this replica sends goes through here. The transport throws on a frame above its
   * size limit (a caller bug there); here such a frame is possible (a batch of the largest
   * transactions, a view change carrying many of them), so it is dropped and counted instead of
   * stopping the replica. The protocol's retransmission then has the same fate, which the
   * counter shows; sizing batches to the frame limit is the fix for that.
   */
  private sendBytes(target: { send(bytes: Uint8Array): boolean } | undefined, bytes: Uint8Array): boolean {
    if (bytes.length > FRAME_BYTES_MAX_DEFAULT) {
      this.count("frames-oversized");
      this.logger.warn({ bytes: bytes.length, limit: FRAME_BYTES_MAX_DEFAULT }, "dropped a frame above the size limit");
      return false;
    }
    if (target?.send(bytes) === true) return true;
    this.count("sends-dropped");
    return false;
  }

  private sendReply(client: string, nonce: number, view: number, height: number, result: Uint8Array): void {
    const connection = this.routes.connectionOf(client);
    if (connection === undefined) return;
    const frame: WireFrame = { kind: "client-reply", replica: this.id, view, height, client: Buffer.from(client, "hex"), nonce, result };
    this.sendBytes(connection, encodeWireFrame(frame));
  }

  // -------------------------------------------------------------------------------------------
  // Execution

  private enqueueExecution(batch: CommittedBatch): void {
    this.executionTail = this.executionTail.then(() => this.execute(batch));
  }

  /** Executes now; resolves at once, or (at a checkpoint height) once the block is durable. */
  private execute(batch: CommittedBatch): Promise<void> {
    if (this.fatalError !== undefined) return Promise.resolve();
    const startedMs = performance.now();
    let committed: Promise<CommittedBlock>;
    let executed: CommittedBlock | undefined;
    try {
      const staged = this.pipeline.stage(batch);
      committed = staged.stored;
      executed = staged.block;
    } catch (error) {
      committed = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    // Clients hear of their results now, not after the block's write (block-pipeline.ts says why
    // that is safe); the block's signature and checkpoint vote still wait for the disk. Outside
    // the try: a failing send is not a failed block write.
    if (executed !== undefined) for (const request of executed.executed) this.sendReply(request.client, request.timestamp, batch.view, batch.seq, request.result);
    if (this.observer.blockPersisted !== undefined) void committed.then(() => this.observer.blockPersisted?.((performance.now() - startedMs) / 1000), () => undefined);
    const durable = this.durableTail.then(() => committed).then((block) => this.onDurable(batch, block));
    this.durableTail = durable.catch((error: unknown) => this.fatal(error));
    return batch.seq % this.checkpointInterval === 0 ? this.durableTail : Promise.resolve();
  }

  private onDurable(batch: CommittedBatch, committed: CommittedBlock): void {
    if (this.fatalError !== undefined) return;
    const { header } = committed.block;
    const checkpoint = batch.seq % this.checkpointInterval === 0;
    if (checkpoint) this.stateServer.pinCheckpoint(batch.seq);
    this.core.step(checkpoint ? { type: "executed", seq: batch.seq, stateDigest: headerDigest(header) } : { type: "executed", seq: batch.seq });
    this.verification.executed(batch.requests);
    this.sessions.forget(batch.requests);
    this.observer.batchExecuted?.(batch.requests);
    const own = signBlock(this.options.privateKey, this.id, header);
    this.broadcast({ kind: "block-signature", height: header.height, signature: own.signature });
    this.certifier.onOwnBlock(header, own);
    const retain = this.options.retainBlocks;
    if (retain !== undefined && header.height % pruneEveryHeights(retain) === 0 && header.height > retain) {
      this.certificateTail = this.certificateTail.then(() => this.store.pruneBodiesBelow(header.height - retain)).then(() => undefined, (error: unknown) => this.fatal(error));
    }
    this.process();
  }

  private storeCertificate(header: BlockHeader, certificate: CommitCertificate): void {
    const bytes = encodeCertificate(certificate);
    this.clientServices.onCertified(header, bytes);
    this.certificateTail = this.certificateTail
      .then(() => this.store.attachCertificate(header.height, bytes))
      .catch((error: unknown) => {
        // The block may be gone (a state transfer replaced the suffix above a checkpoint): not fatal.
        if (error instanceof RangeError) this.count("certificates-orphaned");
        else this.fatal(error);
      });
  }

  /** Everything queued (Ready, execution, block writes, certificates) has finished. */
  private async settle(): Promise<void> {
    for (;;) {
      const pending = [this.readyDone, this.executionTail, this.durableTail, this.certificateTail];
      await Promise.all(pending);
      if (pending[0] === this.readyDone && pending[1] === this.executionTail && pending[2] === this.durableTail && pending[3] === this.certificateTail) return;
    }
  }

  // -------------------------------------------------------------------------------------------
  // State transfer (state-transfer.ts)

  private startFetch(proof: CheckpointProof): void {
    // The core repeats its request every status interval until the state is installed: a fetch
    // running, or done and installing, for this checkpoint or a later one, already answers it.
    if (this.fetch !== undefined && this.fetch.state.seq >= proof.seq) return;
    if (proof.seq <= this.installingSeq) return;
    if (this.fetch?.timer !== undefined) clearTimeout(this.fetch.timer);
    const state = new StateFetch(proof.seq, proof.stateDigest, this.nextRequestId);
    this.nextRequestId += 1_000_000;
    this.fetch = { state, ...this.firstTurn() };
    this.stateTransfers++;
    this.logger.info({ seq: proof.seq }, "fetching the state of a stable checkpoint from peers");
    this.askForState();
  }

  private firstTurn(): PeerTurn {
    return { peer: (this.id + 1 + Math.floor(Math.random() * (this.cluster.n - 1))) % this.cluster.n, failuresInRow: 0, timer: undefined };
  }

  private askForState(): void {
    const fetch = this.fetch;
    if (fetch === undefined || this.stopped) return;
    this.ask(fetch, fetch.state.request(), () => {
      if (this.fetch !== fetch) return;
      fetch.state.onPeerLost();
      this.nextPeer(fetch, () => this.askForState());
    });
  }

  /** Sends `frame` to the turn's peer and arms its timeout (at once when the link cannot take it). */
  private ask(turn: PeerTurn, frame: WireFrame, onTimeout: () => void): void {
    const sent = this.sendBytes(this.links[turn.peer], encodeWireFrame(frame));
    turn.timer = setTimeout(onTimeout, sent ? STATE_FETCH_TIMEOUT_MS : 0);
  }

  /** Moves the turn to the next peer; after a whole round of failures, pauses before asking. */
  private nextPeer(turn: PeerTurn, askAgain: () => void): void {
    turn.peer = (turn.peer + 1) % this.cluster.n;
    if (turn.peer === this.id) turn.peer = (turn.peer + 1) % this.cluster.n;
    turn.failuresInRow++;
    if (turn.failuresInRow % (this.cluster.n - 1) === 0) {
      turn.timer = setTimeout(askAgain, STATE_FETCH_ROUND_PAUSE_MS);
    } else {
      askAgain();
    }
  }

  private onLinkClosed(peer: number): void {
    const fetch = this.fetch;
    if (fetch !== undefined && fetch.peer === peer && fetch.timer !== undefined) {
      clearTimeout(fetch.timer);
      fetch.state.onPeerLost();
      this.nextPeer(fetch, () => this.askForState());
    }
    const backfill = this.backfill;
    if (backfill !== undefined && backfill.peer === peer && backfill.timer !== undefined) {
      clearTimeout(backfill.timer);
      this.nextPeer(backfill, () => this.askForBlocks());
    }
  }

  private onStateAnswer(from: number, frame: Extract<WireFrame, { kind: "state-chunk" | "state-unavailable" }>): void {
    const fetch = this.fetch;
    if (fetch === undefined || from !== fetch.peer || !fetch.state.awaits(frame.requestId)) return this.count("state-answers-unexpected");
    if (fetch.timer !== undefined) clearTimeout(fetch.timer);
    fetch.timer = undefined;
    const verdict = frame.kind === "state-unavailable" ? fetch.state.onUnavailable() : fetch.state.onChunk(frame);
    switch (verdict.kind) {
      case "continue":
        fetch.failuresInRow = 0;
        return this.askForState();
      case "peer-failed":
        if (frame.kind === "state-chunk") this.logger.warn({ peer: from, seq: fetch.state.seq, reason: verdict.reason }, "state transfer: a peer served a bad state; asking another");
        return this.nextPeer(fetch, () => this.askForState());
      case "complete":
        this.fetch = undefined;
        this.installingSeq = Math.max(this.installingSeq, verdict.state.seq);
        // One install at a time, in the order fetched: two overlapping ones could finish out of order.
        this.installTail = this.installTail.then(() => this.install(verdict.state)).catch((error: unknown) => this.fatal(error));
        return;
    }
  }

  private async install(fetched: FetchedState): Promise<void> {
    // Every block executed before the transfer began must be on disk before the state is replaced.
    await this.settle();
    if (this.stopped) return;
    if (this.pipeline.height >= fetched.seq) {
      // Execution (or an install before this one) already reached it; installing would take the
      // state back below blocks this replica executed and answered for.
      this.count("state-installs-skipped");
      this.logger.warn({ seq: fetched.seq, height: this.pipeline.height }, "not installing a fetched state below the executed height");
      return;
    }
    await this.store.installState({
      height: fetched.seq,
      header: fetched.headerBytes,
      entries: fetched.entries,
      meta: { seq: fetched.seq, stateDigest: fetched.header.stateRoot },
    });
    this.pipeline = this.openPipeline();
    this.certifier.skipTo(fetched.seq);
    this.stateServer.pinCheckpoint(fetched.seq);
    this.logger.info({ seq: fetched.seq, entries: fetched.entries.length }, "installed the state of a stable checkpoint");
    this.startBackfill(fetched.header);
    // A newer checkpoint may have superseded this one while it was being installed; the core then
    // waits for that one instead, and its fetch is already running.
    if (this.core.status().fetchingSeq === fetched.seq) this.core.step({ type: "state-installed", seq: fetched.seq, stateDigest: headerDigest(fetched.header) });
    this.process();
  }

  // -------------------------------------------------------------------------------------------
  // Block backfill (block-backfill.ts)

  /** At start: a history with a gap below the applied height (a state transfer that did not finish its backfill) resumes. */
  private resumeBackfill(): void {
    const applied = this.store.appliedState();
    if (applied === undefined) return;
    let from = this.store.contiguousHeadersFrom(applied.height);
    if (from <= 1) {
      // Headers complete; bodies missing below the retention height that no retention setting asked for.
      const retention = this.store.bodyRetentionHeight();
      if (this.options.retainBlocks !== undefined || retention <= 1) return;
      from = Math.min(retention - 1, applied.height);
    }
    const header = this.storedHeader(from);
    if (header !== undefined) this.startBackfill(header);
  }

  private startBackfill(trusted: BlockHeader): void {
    if (this.backfill?.timer !== undefined) clearTimeout(this.backfill.timer);
    const job = new BlockBackfill(this.cluster, trusted, this.nextRequestId);
    this.nextRequestId += 1_000_000;
    this.backfill = { job, missingBodies: 0, ...this.firstTurn() };
    this.logger.info({ from: trusted.height }, "backfilling the blocks at and below an installed checkpoint from peers");
    this.askForBlocks();
  }

  private askForBlocks(): void {
    const backfill = this.backfill;
    if (backfill === undefined || this.stopped) return;
    const { job } = backfill;
    if (!job.done) {
      // A block this replica executed itself (header, body and certificate present) ends the walk.
      const below = job.lowestHeight - 1 < this.store.bodyRetentionHeight() ? undefined : this.store.getBlock(job.lowestHeight - 1);
      if (below?.body !== undefined && below.certificate !== undefined && job.linksTo(below.header)) job.finish();
    }
    if (job.done) {
      this.backfill = undefined;
      const retention = this.options.retainBlocks === undefined ? 0 : Math.max(0, this.pipeline.height - this.options.retainBlocks);
      this.certificateTail = this.certificateTail
        .then(() => (backfill.missingBodies === 0 ? this.store.lowerBodyRetention(retention) : this.store.bodyRetentionHeight()))
        .then((kept) => this.logger.info({ bodyRetentionHeight: kept, missingBodies: backfill.missingBodies }, "backfill complete"))
        .catch((error: unknown) => this.fatal(error));
      return;
    }
    this.ask(backfill, job.request(), () => {
      if (this.backfill !== backfill) return;
      this.nextPeer(backfill, () => this.askForBlocks());
    });
  }

  private onBlocks(from: number, frame: Extract<WireFrame, { kind: "blocks" }>): void {
    const backfill = this.backfill;
    if (backfill === undefined || from !== backfill.peer || !backfill.job.awaits(frame.requestId)) return this.count("blocks-unexpected");
    if (backfill.timer !== undefined) clearTimeout(backfill.timer);
    backfill.timer = undefined;
    const verdict = backfill.job.onBlocks(frame.blocks);
    if (verdict.kind === "peer-failed") {
      this.count("backfill-peer-failures");
      return this.nextPeer(backfill, () => this.askForBlocks());
    }
    backfill.failuresInRow = 0;
    backfill.missingBodies += verdict.missingBodies;
    this.certificateTail = this.certificateTail.then(() => this.store.storeHistory(verdict.blocks));
    // Blocks the peer had not certified come without a certificate; gather theirs like our own.
    const uncertified = verdict.blocks.filter((block) => block.certificate === undefined).map((block) => block.height);
    if (uncertified.length > 0) void this.certificateTail.then(() => this.addRepair(uncertified), () => undefined);
    this.certificateTail.then(
      () => this.askForBlocks(),
      (error: unknown) => this.fatal(error),
    );
  }

  // -------------------------------------------------------------------------------------------
  // Certificate repair (certificate-repair.ts)

  /** Heights to gather certificates for; arms a round unless one is armed already. */
  private addRepair(heights: readonly number[], delayMs = REPAIR_INTERVAL_MS): void {
    const before = this.repair.size;
    this.repair.add(heights);
    if (before === 0 && this.repair.size > 0) this.logger.info({ heights: this.repair.size, lowest: heights.reduce((low, height) => Math.min(low, height), Infinity) }, "gathering certificates for uncertified blocks");
    if (this.repair.size > 0 && this.repairTimer === undefined && !this.stopped) this.repairTimer = setTimeout(() => this.repairRound(), delayMs);
  }

  /** Asks every peer to sign the current window's blocks; rounds without progress back off. */
  private repairRound(): void {
    this.repairTimer = undefined;
    if (this.stopped) return;
    const certifiedBefore = this.repair.counters.certified;
    const range = this.repair.startRound((height) => {
      const stored = this.store.getHeaders(height, height)[0];
      if (stored === undefined || stored.certificate !== undefined) return undefined;
      const header = decodeBlockHeader(stored.header);
      return { header, signature: signBlock(this.options.privateKey, this.id, header) };
    });
    if (range === undefined) {
      this.repairIntervalMs = REPAIR_INTERVAL_MS;
      this.logger.info({ certified: this.repair.counters.certified, rounds: this.repair.counters.rounds }, "every stored block is certified");
      return;
    }
    this.broadcast({ kind: "signatures-request", from: range.from, to: range.to });
    this.repairTimer = setTimeout(() => {
      this.repairIntervalMs = this.repair.counters.certified > certifiedBefore ? REPAIR_INTERVAL_MS : Math.min(2 * this.repairIntervalMs, REPAIR_INTERVAL_MAX_MS);
      this.repairRound();
    }, this.repairIntervalMs);
  }

  private onRepairSignature(from: number, height: number, signature: Uint8Array): void {
    const certified = this.repair.onSignature(from, height, signature);
    if (certified === undefined) return;
    this.storeCertificate(certified.header, certified.certificate);
    // The window is done: go on with the next one now rather than at the timer.
    if (this.repair.windowSize === 0 && this.repairTimer !== undefined) {
      clearTimeout(this.repairTimer);
      this.repairTimer = undefined;
      this.repairIntervalMs = REPAIR_INTERVAL_MS;
      this.repairTimer = setTimeout(() => this.repairRound(), 0);
    }
  }

  /**
   * A peer's signatures-request: sign each stored block in the (bounded) range with this replica's
   * key. Most are blocks this replica executed; those below an installed checkpoint came from
   * peers, verified against the checkpoint's 2f + 1 signed digest or down a certified hash chain
   * (block-backfill.ts), so signing them vouches for nothing that f + 1 correct replicas did not
   * compute.
   */
  private signStoredBlocks(connection: Connection<PeerSession>, from: number, to: number): void {
    const last = Math.min(to, from + REPAIR_WINDOW_HEIGHTS - 1, this.pipeline.height);
    if (from < 1 || last < from) return;
    for (const stored of this.store.getHeaders(from, last)) {
      const header = decodeBlockHeader(stored.header);
      const own = signBlock(this.options.privateKey, this.id, header);
      this.sendBytes(connection, encodeWireFrame({ kind: "block-signature", height: stored.height, signature: own.signature }));
    }
  }

  /**
   * The stored blocks of a requested range, from its top down (a backfill walks down and needs
   * the block at `to` first), at most BLOCKS_PER_ANSWER_MAX and within BLOCKS_ANSWER_BYTES_MAX. A
   * body that does not fit is left out (the asker counts it missing, as if pruned), so even a
   * block larger than a frame still moves its header and certificate down the chain.
   */
  private blocksFor(from: number, to: number): WireBlock[] {
    const blocks: WireBlock[] = [];
    let bytes = 0;
    const last = Math.min(to, this.pipeline.height);
    for (let height = last; height >= Math.max(1, from, last - BLOCKS_PER_ANSWER_MAX + 1); height--) {
      const stored = this.store.getBlock(height);
      if (stored === undefined) break;
      const fixed = stored.header.length + (stored.certificate?.length ?? 0) + WIRE_BLOCK_OVERHEAD_BYTES;
      if (bytes + fixed > BLOCKS_ANSWER_BYTES_MAX) break;
      bytes += fixed;
      const body = stored.body !== undefined && bytes + stored.body.length <= BLOCKS_ANSWER_BYTES_MAX ? stored.body : undefined;
      bytes += body?.length ?? 0;
      blocks.push({ height, header: stored.header, ...(body === undefined ? {} : { body }), ...(stored.certificate === undefined ? {} : { certificate: stored.certificate }) });
    }
    return blocks.reverse();
  }

  // -------------------------------------------------------------------------------------------
  // Helpers

  private openPipeline(): BlockPipeline {
    const application = createLedgerApplication({ authority: this.cluster.genesisAuthority, verifySignatures: false });
    return BlockPipeline.open({ cluster: this.cluster, store: this.store, application });
  }

  private storedHeader(height: number): BlockHeader | undefined {
    const stored = this.store.getHeaders(height, height)[0];
    return stored === undefined ? undefined : decodeBlockHeader(stored.header);
  }

  private count(name: string): void {
    this.counts[name] = (this.counts[name] ?? 0) + 1;
  }

  private fatal(error: unknown): void {
    if (this.fatalError !== undefined) return;
    this.fatalError = error;
    this.logger.error({ error: error instanceof Error ? error.stack ?? error.message : String(error) }, "replica cannot continue");
    if (this.options.onFatal !== undefined) {
      this.options.onFatal(error);
    } else {
      process.exit(70);
    }
  }
}
