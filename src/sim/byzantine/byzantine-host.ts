// A Byzantine replica: one real core (two for Twins, both under the same identity) whose outputs
// pass through the replica's behaviours before reaching the network. Its cores are never mutated
// and never checked. It executes what its cores commit, so its cores keep going and it can serve
// (or lie about) state and replies.

import type { ExecutorSnapshot } from "../../app/executor.js";
import type { ClientRequest, Input, Outbound, Ready, ReplicaId, ReplicaMessage, Reply } from "../../consensus/pbft/types.js";
import type { SimContext, SimNode } from "../context.js";
import { isEmptyReady, type ReplicaCore, type SignedMessage } from "../core-port.js";
import type { SimCrypto } from "../crypto.js";
import { ExecutionSite } from "../execution-site.js";
import { hashText } from "../hash.js";
import type { Random } from "../random.js";
import type { BehaviourName, ByzantinePlan } from "../scenario.js";
import type { Behaviour, ByzantineActor } from "./behaviour.js";
import { createBehaviours } from "./registry.js";

const TICK: Input = Object.freeze({ type: "tick" });
const HISTORY_MAX = 256;
const RECENT_REQUESTS_MAX = 32;
const DRAINS_PER_INPUT_MAX = 10_000;
/** With Twins, the chance that each copy receives a given incoming message. */
const TWIN_DELIVERY_CHANCE = 0.7;

interface Twin {
  readonly core: ReplicaCore;
  readonly site: ExecutionSite;
  /** The checkpoint whose state this copy's core asked for, or -1. */
  fetchingSeq: number;
}

export class ByzantineHost implements SimNode, ByzantineActor {
  readonly id: ReplicaId;
  readonly correct = false;
  readonly up = true;
  readonly n: number;
  readonly f: number;
  readonly checkpointInterval: number;
  readonly watermarkWindow: number;
  readonly random: Random;
  private readonly context: SimContext;
  private readonly crypto: SimCrypto;
  private readonly plan: ByzantinePlan;
  private readonly twins: Twin[] = [];
  private readonly behaviours: Behaviour[];
  private readonly othersList: ReplicaId[] = [];
  private readonly seen: ReplicaMessage[] = [];
  private readonly requestsSeen: ClientRequest[] = [];
  private readonly lies: boolean;
  /** The twin whose output is being handled. */
  private current = 0;
  private fakeCounter = 0;

  constructor(id: ReplicaId, context: SimContext, plan: ByzantinePlan, crypto: SimCrypto, random: Random) {
    this.id = id;
    this.context = context;
    this.plan = plan;
    this.crypto = crypto;
    this.random = random;
    this.n = context.scenario.n;
    this.f = context.scenario.f;
    this.checkpointInterval = context.scenario.config.checkpointInterval;
    this.watermarkWindow = context.scenario.config.watermarkWindow;
    for (let other = 0; other < this.n; other++) if (other !== id) this.othersList.push(other);
    this.behaviours = createBehaviours(plan);
    this.lies = plan.behaviours.includes("forgery");
    const copies = plan.behaviours.includes("twins") ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const site = new ExecutionSite(this.checkpointInterval);
      const core = context.core.createReplica({ id, config: context.scenario.config, crypto, replies: site.executor });
      this.twins.push({ core, site, fetchingSeq: -1 });
    }
    for (let i = 0; i < this.twins.length; i++) this.process(i);
  }

  // ---- SimNode ----

  onMessage(from: ReplicaId, message: ReplicaMessage): void {
    this.remember(message);
    if (message.type === "request") this.rememberRequest(message.request);
    else if (message.type === "pre-prepare") for (const request of message.requests) this.rememberRequest(request);
    this.deliver({ type: "message", from, message });
  }

  onRequest(request: ClientRequest): void {
    this.rememberRequest(request);
    this.deliver({ type: "request", request });
  }

  onTick(): void {
    for (let i = 0; i < this.twins.length; i++) this.stepTwin(i, TICK);
    this.current = 0;
    for (const behaviour of this.behaviours) behaviour.onTick(this);
  }

  lastExecuted(): number {
    let lowest = Infinity;
    for (const twin of this.twins) lowest = Math.min(lowest, twin.site.lastExecuted);
    return lowest;
  }

  serveSnapshot(seq: number): ExecutorSnapshot | undefined {
    const snapshot = this.twins[0]?.site.snapshotAt(seq);
    if (snapshot === undefined || !this.lies || !this.random.chance(this.plan.actRate)) return snapshot;
    // A lying peer serves a state that is not the proven one; the fetcher's digest check must catch it.
    this.count("forgery", 1);
    this.note("forgery", `served a corrupted snapshot at s${seq}`);
    return { ...snapshot, app: { head: hashText(`lie${seq}`), count: 0 } };
  }

  installSnapshot(snapshot: ExecutorSnapshot, stateDigest: string): void {
    // Only a copy that asked for exactly this state may be given it (the core asserts so).
    for (let i = 0; i < this.twins.length; i++) {
      const twin = this.twins[i] as Twin;
      if (twin.fetchingSeq !== snapshot.seq || twin.site.lastExecuted >= snapshot.seq) continue;
      twin.fetchingSeq = -1;
      twin.site.install(snapshot);
      this.stepTwin(i, { type: "state-installed", seq: snapshot.seq, stateDigest });
    }
  }

  // ---- ByzantineActor ----

  nowTicks(): number {
    return this.context.network.nowTicks;
  }

  view(): number {
    return (this.twins[this.current] as Twin).core.status().view;
  }

  stableSeq(): number {
    return (this.twins[this.current] as Twin).core.status().stableSeq;
  }

  primaryOf(view: number): ReplicaId {
    return this.context.core.primaryOf(view, this.n);
  }

  others(): readonly ReplicaId[] {
    return this.othersList;
  }

  sign<M extends SignedMessage>(message: M): M {
    return { ...message, signature: this.crypto.sign(this.context.core.signingPayload(message)) };
  }

  batchDigest(requests: readonly ClientRequest[]): string {
    return this.crypto.batchDigest(requests);
  }

  fakeDigest(): string {
    this.fakeCounter += 1;
    return hashText(`fake:${this.id}:${this.fakeCounter}:${this.random.nextUint32()}`);
  }

  send(to: ReplicaId, message: ReplicaMessage, behaviour: BehaviourName): void {
    this.count(behaviour, 1);
    this.remember(message);
    this.context.network.sendToReplica(this.id, to, message);
  }

  count(behaviour: BehaviourName, actions: number): void {
    this.context.stats.byzantine[behaviour] += actions;
  }

  note(behaviour: BehaviourName, text: string): void {
    this.context.trace.record(this.nowTicks(), "byzantine", this.id, -1, `${behaviour}: ${text}`);
  }

  history(): readonly ReplicaMessage[] {
    return this.seen;
  }

  recentRequests(): readonly ClientRequest[] {
    return this.requestsSeen;
  }

  // ---- internals ----

  /** Twins each receive a random subset of the input (at least one of them receives it). */
  private deliver(input: Input): void {
    if (this.twins.length === 1) {
      this.stepTwin(0, input);
      return;
    }
    const first = this.random.chance(TWIN_DELIVERY_CHANCE);
    const second = !first || this.random.chance(TWIN_DELIVERY_CHANCE);
    if (first) this.stepTwin(0, input);
    if (second) this.stepTwin(1, input);
  }

  private stepTwin(index: number, input: Input): void {
    (this.twins[index] as Twin).core.step(input);
    this.process(index);
  }

  private process(index: number): void {
    const twin = this.twins[index] as Twin;
    for (let drains = 0; ; drains++) {
      if (drains >= DRAINS_PER_INPUT_MAX) throw new Error(`byzantine replica ${this.id}: the core keeps producing output`);
      const ready: Ready = twin.core.drain();
      if (isEmptyReady(ready)) return;
      // Persistence is skipped: a Byzantine replica owes nobody a consistent disk.
      this.current = index;
      for (const outbound of ready.send) this.sendOutbound(outbound, index);
      for (const batch of ready.execute) {
        const applied = twin.site.execute(batch);
        twin.core.step({ type: "executed", seq: batch.seq, stateDigest: twin.site.executor.stateDigest() });
        const view = twin.core.status().view;
        for (const request of applied) {
          this.reply({ client: request.client, timestamp: request.timestamp, view, replica: this.id, result: request.result });
        }
      }
      for (const reply of ready.replies) this.reply(reply);
      for (const fetch of ready.fetchState) {
        twin.fetchingSeq = fetch.proof.seq;
        this.context.fetcher.start(this.id, fetch.proof);
      }
    }
  }

  private sendOutbound(outbound: Outbound, twinIndex: number): void {
    for (const behaviour of this.behaviours) {
      if (this.random.chance(this.plan.actRate) && behaviour.transform(this, outbound)) return;
    }
    // The second twin's own sends are what Twins adds to the cluster; count them as its actions.
    const counted: BehaviourName | undefined = twinIndex === 1 ? "twins" : undefined;
    if (outbound.to === "all") {
      for (const to of this.othersList) this.plainSend(to, outbound.message, counted);
    } else if (outbound.to !== this.id) {
      this.plainSend(outbound.to, outbound.message, counted);
    }
  }

  private plainSend(to: ReplicaId, message: ReplicaMessage, counted: BehaviourName | undefined): void {
    if (counted !== undefined) this.count(counted, 1);
    this.remember(message);
    this.context.network.sendToReplica(this.id, to, message);
  }

  private reply(reply: Reply): void {
    const clientIndex = this.context.clientIndexOf.get(reply.client);
    if (clientIndex === undefined) return;
    if (this.lies && this.random.chance(this.plan.actRate)) {
      // A wrong result: clients must not accept it without f + 1 matching replies.
      const result = new Uint8Array(reply.result);
      result[0] = (result[0] ?? 0) ^ 0xff;
      this.count("forgery", 1);
      this.context.network.sendReply(clientIndex, { ...reply, result });
      return;
    }
    this.context.network.sendReply(clientIndex, reply);
  }

  private remember(message: ReplicaMessage): void {
    if (message.type === "status") return;
    this.seen.push(message);
    if (this.seen.length > HISTORY_MAX) this.seen.shift();
  }

  private rememberRequest(request: ClientRequest): void {
    if (this.requestsSeen.includes(request)) return;
    this.requestsSeen.push(request);
    if (this.requestsSeen.length > RECENT_REQUESTS_MAX) this.requestsSeen.shift();
  }
}
