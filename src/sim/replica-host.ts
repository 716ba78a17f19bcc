// A correct replica in the simulation: the real core, its simulated disk and its execution site,
// run the way DESIGN.md's runtime contract says (step, then drain; persist before send; execute
// in order and report back; serve replies; fetch state when asked).
//
// Crashes: a crashed replica receives nothing and keeps only its disk and its executed state.
// A crash may land in the middle of handling a Ready: every record of it is durable (the
// runtime writes them first) but only a random prefix of its messages left the machine and only
// a prefix of its batches executed. Restarting rebuilds the core from the compacted records.

import type { AppliedRequest, ExecutorSnapshot } from "../app/executor.js";
import type {
  ClientRequest,
  CommittedBatch,
  Input,
  Outbound,
  PbftOptions,
  PersistRecord,
  Ready,
  ReplicaId,
  ReplicaMessage,
  Reply,
} from "../consensus/pbft/types.js";
import type { SimContext, SimNode } from "./context.js";
import { addCounters, isEmptyReady, type ReplicaCore } from "./core-port.js";
import type { SimCrypto } from "./crypto.js";
import { ExecutionSite } from "./execution-site.js";
import type { Random } from "./random.js";

const TICK: Input = Object.freeze({ type: "tick" });

/** A Ready loop that does not settle within this many drains is a core bug (an output storm). */
const DRAINS_PER_INPUT_MAX = 10_000;

/** How long an armed mid-Ready crash waits for a Ready with messages before crashing cleanly. */
const CRASH_ARMED_TICKS_MAX = 10;

export class CorrectReplicaHost implements SimNode {
  readonly id: ReplicaId;
  readonly correct = true;
  private readonly context: SimContext;
  private readonly options: PbftOptions;
  private readonly random: Random;
  private readonly site: ExecutionSite;
  private core: ReplicaCore | undefined;
  private disk: PersistRecord[] = [];
  /** The tick by which an armed mid-Ready crash happens anyway; -1 when not armed. */
  private crashDeadlineTick = -1;
  /** How long the pending or current crash lasts. */
  private downTicks = 0;

  constructor(id: ReplicaId, context: SimContext, crypto: SimCrypto, random: Random) {
    this.id = id;
    this.context = context;
    this.random = random;
    this.site = new ExecutionSite(context.scenario.config.checkpointInterval);
    const mutation = context.scenario.mutation;
    this.options = {
      id,
      config: context.scenario.config,
      crypto,
      replies: this.site.executor,
      ...(mutation === undefined ? {} : { mutation }),
    };
    this.core = context.core.createReplica(this.options);
    this.process();
  }

  get up(): boolean {
    return this.core !== undefined;
  }

  onMessage(from: ReplicaId, message: ReplicaMessage): void {
    this.stepAndProcess({ type: "message", from, message });
  }

  onRequest(request: ClientRequest): void {
    this.stepAndProcess({ type: "request", request });
  }

  onTick(): void {
    if (this.crashDeadlineTick >= 0 && this.context.network.nowTicks >= this.crashDeadlineTick) this.crashNow();
    this.stepAndProcess(TICK);
  }

  lastExecuted(): number {
    return this.site.lastExecuted;
  }

  serveSnapshot(seq: number): ExecutorSnapshot | undefined {
    return this.up ? this.site.snapshotAt(seq) : undefined;
  }

  installSnapshot(snapshot: ExecutorSnapshot, stateDigest: string): void {
    if (this.core === undefined) return;
    const now = this.context.network.nowTicks;
    this.site.install(snapshot);
    this.context.checkers.onCheckpointState(now, this.id, snapshot.seq, this.site.executor.stateDigest());
    this.context.stats.stateTransfers += 1;
    this.context.trace.record(now, "install", -1, this.id, `state at s${snapshot.seq} ${stateDigest}`);
    this.stepAndProcess({ type: "state-installed", seq: snapshot.seq, stateDigest });
  }

  /**
   * Crash now, or (midReady) while handling the next Ready that sends or executes something;
   * restart `downTicks` after the crash actually happened.
   */
  crash(midReady: boolean, downTicks: number): void {
    if (this.core === undefined || this.crashDeadlineTick >= 0) return;
    this.downTicks = downTicks;
    if (midReady) this.crashDeadlineTick = this.context.network.nowTicks + CRASH_ARMED_TICKS_MAX;
    else this.crashNow();
  }

  restart(): void {
    if (this.core !== undefined) return;
    this.disk = this.context.core.compactRecords(this.disk);
    const executor = this.site.executor;
    this.core = this.context.core.createReplica(this.options, {
      records: this.disk,
      lastExecuted: executor.lastExecuted,
      stateDigest: executor.stateDigest(),
    });
    this.context.trace.record(this.context.network.nowTicks, "restart", -1, this.id, `from ${this.disk.length} records, executed s${executor.lastExecuted}`);
    this.process();
  }

  /** Adds the live core's counters to the run's totals (at a crash and at the end of the run). */
  collectCounters(): void {
    if (this.core !== undefined) addCounters(this.context.stats.coreCounters, this.core.counters());
  }

  private crashNow(): void {
    if (this.core === undefined) return;
    this.collectCounters();
    this.core = undefined;
    this.crashDeadlineTick = -1;
    this.context.fetcher.cancel(this.id);
    this.context.stats.crashes += 1;
    const now = this.context.network.nowTicks;
    this.context.trace.record(now, "crash", -1, this.id, `disk holds ${this.disk.length} records; down for ${this.downTicks} ticks`);
    this.context.schedule(now + this.downTicks, { kind: "restart", replica: this.id });
  }

  private stepAndProcess(input: Input): void {
    if (this.core === undefined) return;
    this.core.step(input);
    this.process();
  }

  private process(): void {
    for (let drains = 0; this.core !== undefined; drains++) {
      if (drains >= DRAINS_PER_INPUT_MAX) throw new Error(`replica ${this.id}: the core keeps producing output`);
      const ready = this.core.drain();
      if (isEmptyReady(ready)) return;
      this.persist(ready.persist);
      if (this.crashDeadlineTick >= 0 && (ready.send.length > 0 || ready.execute.length > 0)) {
        this.crashInTheMiddle(ready);
        return;
      }
      for (const outbound of ready.send) this.send(outbound);
      for (const batch of ready.execute) {
        const applied = this.execute(batch.seq, batch);
        this.core.step({ type: "executed", seq: batch.seq, stateDigest: this.site.executor.stateDigest() });
        // The executor's results are the replies (the core's own replies are re-sends from the cache).
        const view = this.core.status().view;
        for (const request of applied) {
          this.sendReply({ client: request.client, timestamp: request.timestamp, view, replica: this.id, result: request.result });
        }
      }
      for (const reply of ready.replies) this.sendReply(reply);
      for (const fetch of ready.fetchState) this.context.fetcher.start(this.id, fetch.proof);
    }
  }

  private persist(records: readonly PersistRecord[]): void {
    let stable = false;
    for (const record of records) {
      this.disk.push(record);
      if (record.kind === "stable-checkpoint") stable = true;
      else if (record.kind === "view") this.observeView(record.view, record.normal);
    }
    // A stable checkpoint makes older records obsolete: the disk is truncated like a real log.
    if (stable) this.disk = this.context.core.compactRecords(this.disk);
  }

  private observeView(view: number, normal: boolean): void {
    const now = this.context.network.nowTicks;
    this.context.trace.record(now, "view", -1, this.id, normal ? `entered view ${view}` : `view change to ${view} started`);
    if (normal && view > 0) this.context.viewsEntered.add(view);
  }

  private crashInTheMiddle(ready: Ready): void {
    const sent = this.random.below(ready.send.length + 1);
    for (let i = 0; i < sent; i++) this.send(ready.send[i] as Outbound);
    const executed = this.random.below(ready.execute.length + 1);
    for (let i = 0; i < executed; i++) {
      const batch = ready.execute[i];
      if (batch !== undefined) this.execute(batch.seq, batch);
    }
    this.crashNow();
  }

  private send(outbound: Outbound): void {
    const network = this.context.network;
    if (outbound.to === "all") {
      for (let to = 0; to < this.context.scenario.n; to++) if (to !== this.id) network.sendToReplica(this.id, to, outbound.message);
    } else if (outbound.to !== this.id) {
      network.sendToReplica(this.id, outbound.to, outbound.message);
    }
  }

  private sendReply(reply: Reply): void {
    const clientIndex = this.context.clientIndexOf.get(reply.client);
    if (clientIndex !== undefined) this.context.network.sendReply(clientIndex, reply);
  }

  private execute(seq: number, batch: CommittedBatch): AppliedRequest[] {
    const context = this.context;
    const now = context.network.nowTicks;
    const applied = this.site.execute(batch);
    const crypto = this.options.crypto;
    context.checkers.onExecuted(now, this.id, seq, crypto.batchDigest(batch.requests), batch.requests);
    if (applied.length > 0) context.checkers.onApplied(now, this.id, seq, applied);
    const stateDigest = this.site.executor.stateDigest();
    if (seq % context.scenario.config.checkpointInterval === 0) context.checkers.onCheckpointState(now, this.id, seq, stateDigest);
    context.trace.record(now, "execute", -1, this.id, `s${seq} v${batch.view} ${batch.digest} [${batch.requests.length} req, ${applied.length} applied]`);
    return applied;
  }
}
