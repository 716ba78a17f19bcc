// One seed's run: builds the cluster, clients, network and fault schedule from the scenario, and
// advances integer time until every client is done (or a checker fails, or the run overstays).
//
// Within a tick: scheduled events in the order they were scheduled, then one tick input to every
// live replica, then the clients' timers. Nothing else decides an order, so a seed replays exactly.

import type { ReplicaId } from "../consensus/pbft/types.js";
import { ByzantineHost } from "./byzantine/byzantine-host.js";
import { Checkers, type Violation } from "./checkers.js";
import { SimClient } from "./clients.js";
import { emptyByzantineCounts, type SimContext, type SimNode, type SimStats } from "./context.js";
import type { CoreModule } from "./core-port.js";
import { SimKeyring } from "./crypto.js";
import { EventQueue, SimNetwork, type SimEvent } from "./network.js";
import { Random } from "./random.js";
import { CorrectReplicaHost } from "./replica-host.js";
import { drawScenario, type BehaviourName, type Scenario, type ScenarioOptions } from "./scenario.js";
import { StateFetcher } from "./state-fetcher.js";
import { TraceRing } from "./trace.js";

/** Events kept for the failure trace. */
export const TRACE_EVENTS_MAX = 400;
/** Core counters that count protocol events rather than dropped input. */
const PROTOCOL_EVENT_COUNTERS: ReadonlySet<string> = new Set(["view-changes", "state-transfers"]);

export interface SeedResult {
  readonly seed: number;
  readonly scenario: Scenario;
  readonly violations: readonly Violation[];
  readonly safetyViolations: number;
  readonly livenessFailures: number;
  readonly requestsTotal: number;
  readonly requestsCommitted: number;
  readonly viewChanges: number;
  readonly stateTransfers: number;
  readonly crashes: number;
  readonly droppedByCore: number;
  readonly coreCounters: Readonly<Record<string, number>>;
  readonly byzantine: Readonly<Record<BehaviourName, number>>;
  readonly ticks: number;
  readonly events: number;
  /** A fingerprint of every traced event of the run: equal runs have equal fingerprints. */
  readonly fingerprint: number;
  /** The last events, oldest first; filled when the run failed or `traceAlways` was set. */
  readonly trace: readonly string[];
}

export interface RunOptions extends ScenarioOptions {
  readonly core: CoreModule;
  /** Format the trace even when the run passes (replays, --verbose); formatting costs time. */
  readonly traceAlways?: boolean;
  /** Events kept for the trace (default TRACE_EVENTS_MAX). */
  readonly traceEvents?: number;
}

export function runSeed(seed: number, options: RunOptions): SeedResult {
  const simulation = new Simulation(drawScenario(seed, options), options.core, options.traceEvents ?? TRACE_EVENTS_MAX);
  return simulation.run(options.traceAlways === true);
}

class Simulation {
  private readonly scenario: Scenario;
  private readonly queue = new EventQueue();
  private readonly network: SimNetwork;
  private readonly trace: TraceRing;
  private readonly checkers: Checkers;
  private readonly context: SimContext;
  private readonly fetcher: StateFetcher;
  private readonly nodes: SimNode[] = [];
  private readonly clients: SimClient[] = [];
  private readonly random: Random;

  constructor(scenario: Scenario, core: CoreModule, traceEvents: number) {
    this.scenario = scenario;
    this.trace = new TraceRing(traceEvents);
    // Independent streams: a change in how one part draws does not shift the others.
    const master = new Random(scenario.seed);
    const networkRandom = master.fork();
    const keyRandom = master.fork();
    const fetchRandom = master.fork();
    this.random = master.fork();
    this.network = new SimNetwork(this.queue, networkRandom, scenario.network, this.trace);
    this.checkers = new Checkers(scenario.gstTick, scenario.livenessBoundTicks);
    this.fetcher = new StateFetcher(this.network, fetchRandom, this.trace, scenario.n);
    const clientIndexOf = new Map<string, number>();
    for (let i = 0; i < scenario.requestsPerClient.length; i++) clientIndexOf.set(`c${i}`, i);
    const stats: SimStats = {
      requestsCommitted: 0,
      viewChanges: 0,
      stateTransfers: 0,
      crashes: 0,
      droppedByCore: 0,
      coreCounters: {},
      byzantine: emptyByzantineCounts(),
    };
    this.context = {
      scenario,
      core,
      network: this.network,
      trace: this.trace,
      checkers: this.checkers,
      stats,
      clientIndexOf,
      fetcher: this.fetcher,
      viewsEntered: new Set(),
      schedule: (atTick, event) => this.queue.schedule(atTick, event),
    };
    const keyring = new SimKeyring(keyRandom, scenario.n);
    for (let i = 0; i < scenario.requestsPerClient.length; i++) {
      this.clients.push(new SimClient(i, scenario.requestsPerClient[i] ?? 0, this.context, keyring, master.fork()));
    }
    for (let id = 0; id < scenario.n; id++) {
      const plan = scenario.byzantine.find((candidate) => candidate.replica === id);
      const crypto = keyring.cryptoFor(id);
      this.nodes.push(
        plan === undefined
          ? new CorrectReplicaHost(id, this.context, crypto, master.fork())
          : new ByzantineHost(id, this.context, plan, crypto, master.fork()),
      );
    }
    this.fetcher.attach(this.nodes);
    this.scheduleFaults();
  }

  run(traceAlways: boolean): SeedResult {
    const { scenario, checkers, network } = this;
    let now = 0;
    let threw = false;
    try {
      for (; now <= scenario.ticksMax; now++) {
        network.nowTicks = now;
        const events = this.queue.take(now);
        if (events !== undefined) for (const event of events) this.handle(event);
        for (const node of this.nodes) if (node.up) node.onTick();
        for (const client of this.clients) client.onTick(now);
        if (checkers.safetyViolationCount > 0) break;
        if (this.finished(now) || this.overdue(now)) break;
      }
    } catch (error) {
      threw = true;
      checkers.onException(now, error);
    }
    const endTick = Math.min(now, scenario.ticksMax);
    const limitReached = now > scenario.ticksMax;
    if (!threw) for (const client of this.clients) client.settle(endTick, limitReached);
    return this.result(endTick, traceAlways);
  }

  private finished(now: number): boolean {
    if (now < this.scenario.gstTick) return false;
    for (const client of this.clients) if (!client.done) return false;
    for (const node of this.nodes) if (!node.up) return false;
    return true;
  }

  /** A request past its liveness bound ends the run: the failure is certain, waiting is wasted time. */
  private overdue(now: number): boolean {
    if ((now & 15) !== 0) return false;
    for (const client of this.clients) {
      const since = client.outstandingSinceTick;
      if (since >= 0 && this.checkers.overdue(now, since)) return true;
    }
    return false;
  }

  private handle(event: SimEvent): void {
    const now = this.network.nowTicks;
    switch (event.kind) {
      case "message": {
        const node = this.nodes[event.to] as SimNode;
        if (!node.up) {
          this.trace.record(now, "drop", event.from, event.to, event.message);
          return;
        }
        this.trace.record(now, "deliver", event.from, event.to, event.message);
        node.onMessage(event.from, event.message);
        return;
      }
      case "request": {
        const node = this.nodes[event.to] as SimNode;
        if (node.up) node.onRequest(event.request);
        return;
      }
      case "reply":
        this.trace.record(now, "reply", event.reply.replica, -1, event.reply);
        this.clients[event.clientIndex]?.onReply(now, event.reply);
        return;
      case "fetch":
        this.fetcher.attempt(event.replica, event.taskId);
        return;
      case "crash": {
        const node = this.nodes[event.replica];
        if (node instanceof CorrectReplicaHost) node.crash(this.random.chance(0.5), event.downTicks);
        return;
      }
      case "restart": {
        const node = this.nodes[event.replica];
        if (node instanceof CorrectReplicaHost) node.restart();
        return;
      }
      case "partition":
        this.network.partitionMask = event.sideMask;
        this.trace.record(now, "partition", -1, -1, `replicas ${this.describeMask(event.sideMask)} cut off from the rest`);
        return;
      case "heal":
        this.network.partitionMask = 0;
        this.trace.record(now, "heal", -1, -1, "partition healed");
        return;
      case "gst":
        this.network.stabilise();
        this.trace.record(now, "gst", -1, -1, "network stable from now on");
        return;
    }
  }

  private scheduleFaults(): void {
    const scenario = this.scenario;
    for (const crash of scenario.crashes) {
      this.queue.schedule(crash.atTick, { kind: "crash", replica: crash.replica, downTicks: crash.downTicks });
    }
    for (const partition of scenario.partitions) {
      this.queue.schedule(partition.startTick, { kind: "partition", sideMask: partition.sideMask });
      this.queue.schedule(partition.endTick, { kind: "heal" });
    }
    this.queue.schedule(scenario.gstTick, { kind: "gst" });
  }

  private describeMask(mask: number): string {
    const members: ReplicaId[] = [];
    for (let id = 0; id < this.scenario.n; id++) if ((mask >>> id) & 1) members.push(id);
    return members.map((id) => `r${id}`).join(",");
  }

  private result(endTick: number, traceAlways: boolean): SeedResult {
    const stats = this.context.stats;
    for (const node of this.nodes) if (node instanceof CorrectReplicaHost) node.collectCounters();
    let droppedByCore = 0;
    for (const [name, count] of Object.entries(stats.coreCounters)) if (!PROTOCOL_EVENT_COUNTERS.has(name)) droppedByCore += count;
    const violations = this.checkers.violations;
    for (const violation of violations) this.trace.record(violation.timeTicks, "violation", -1, -1, `${violation.kind}: ${violation.message}`);
    return {
      seed: this.scenario.seed,
      scenario: this.scenario,
      violations,
      safetyViolations: this.checkers.safetyViolationCount,
      livenessFailures: this.checkers.livenessFailureCount,
      requestsTotal: this.scenario.requestsPerClient.reduce((sum, count) => sum + count, 0),
      requestsCommitted: stats.requestsCommitted,
      viewChanges: this.context.viewsEntered.size,
      stateTransfers: stats.stateTransfers,
      crashes: stats.crashes,
      droppedByCore,
      coreCounters: stats.coreCounters,
      byzantine: stats.byzantine,
      ticks: endTick,
      events: this.trace.count,
      fingerprint: this.trace.fingerprint,
      trace: traceAlways || violations.length > 0 ? this.trace.lines() : [],
    };
  }
}
