// The simulated network: an event queue keyed by integer ticks, and links that delay, drop,
// duplicate and (through random delays) reorder messages, and cut replicas off from each other
// while a partition lasts. After GST (the global stabilisation time) nothing is lost or cut and
// every delay is bounded (the partial-synchrony model PBFT's liveness rests on, seed 003
// "Consensus in practice": termination only when communication is reliable).
//
// Links are authenticated: the receiver learns the true sender of every replica message.

import type { ClientRequest, ReplicaId, ReplicaMessage, Reply } from "../consensus/pbft/types.js";
import type { Random } from "./random.js";
import type { NetworkPlan } from "./scenario.js";
import type { TraceRing } from "./trace.js";

export type SimEvent =
  | { readonly kind: "message"; readonly from: ReplicaId; readonly to: ReplicaId; readonly message: ReplicaMessage }
  | { readonly kind: "request"; readonly to: ReplicaId; readonly request: ClientRequest }
  | { readonly kind: "reply"; readonly clientIndex: number; readonly reply: Reply }
  | { readonly kind: "fetch"; readonly replica: ReplicaId; readonly taskId: number }
  | { readonly kind: "crash"; readonly replica: ReplicaId; readonly downTicks: number }
  | { readonly kind: "restart"; readonly replica: ReplicaId }
  | { readonly kind: "partition"; readonly sideMask: number }
  | { readonly kind: "heal" }
  | { readonly kind: "gst" };

/** Events in buckets indexed by tick; within a tick, in the order they were scheduled. */
export class EventQueue {
  private readonly buckets: (SimEvent[] | undefined)[] = [];
  /** The last tick taken: scheduling at or before it would lose the event. */
  private takenTick = -1;

  schedule(atTick: number, event: SimEvent): void {
    if (!Number.isInteger(atTick) || atTick <= this.takenTick) {
      throw new Error(`event queue: cannot schedule at tick ${atTick}, already past tick ${this.takenTick}`);
    }
    let bucket = this.buckets[atTick];
    if (bucket === undefined) {
      bucket = [];
      this.buckets[atTick] = bucket;
    }
    bucket.push(event);
  }

  /** Removes and returns the events of `tick`; ticks must be taken in increasing order. */
  take(tick: number): SimEvent[] | undefined {
    this.takenTick = tick;
    const bucket = this.buckets[tick];
    if (bucket !== undefined) this.buckets[tick] = undefined;
    return bucket;
  }
}

export class SimNetwork {
  /** The current tick; the simulation advances it. */
  nowTicks = 0;
  /** Replicas on one side of the active partition (bit i = replica i); 0 when healed. */
  partitionMask = 0;
  private stable = false;
  private readonly queue: EventQueue;
  private readonly random: Random;
  private readonly plan: NetworkPlan;
  private readonly trace: TraceRing;

  constructor(queue: EventQueue, random: Random, plan: NetworkPlan, trace: TraceRing) {
    this.queue = queue;
    this.random = random;
    this.plan = plan;
    this.trace = trace;
  }

  /** From now on the network is synchronous: no loss, no partitions, bounded delays. */
  stabilise(): void {
    this.stable = true;
    this.partitionMask = 0;
  }

  sendToReplica(from: ReplicaId, to: ReplicaId, message: ReplicaMessage): void {
    if (this.isCut(from, to) || this.lost()) {
      this.trace.record(this.nowTicks, "drop", from, to, message);
      return;
    }
    this.queue.schedule(this.nowTicks + this.delayTicks(), { kind: "message", from, to, message });
    if (this.duplicated()) this.queue.schedule(this.nowTicks + this.delayTicks(), { kind: "message", from, to, message });
  }

  sendRequest(to: ReplicaId, request: ClientRequest): void {
    if (this.lost()) {
      this.trace.record(this.nowTicks, "drop", -1, to, request);
      return;
    }
    this.queue.schedule(this.nowTicks + this.delayTicks(), { kind: "request", to, request });
    if (this.duplicated()) this.queue.schedule(this.nowTicks + this.delayTicks(), { kind: "request", to, request });
  }

  sendReply(clientIndex: number, reply: Reply): void {
    if (this.lost()) {
      this.trace.record(this.nowTicks, "drop", reply.replica, -1, reply);
      return;
    }
    this.queue.schedule(this.nowTicks + this.delayTicks(), { kind: "reply", clientIndex, reply });
  }

  /** Schedules a simulator-internal event (a fetch attempt) after one network delay. */
  scheduleAfterDelay(event: SimEvent): void {
    this.queue.schedule(this.nowTicks + this.delayTicks(), event);
  }

  private isCut(from: ReplicaId, to: ReplicaId): boolean {
    const mask = this.partitionMask;
    return mask !== 0 && ((mask >>> from) & 1) !== ((mask >>> to) & 1);
  }

  private lost(): boolean {
    return !this.stable && this.plan.dropRate > 0 && this.random.float() < this.plan.dropRate;
  }

  private duplicated(): boolean {
    return !this.stable && this.plan.duplicateRate > 0 && this.random.float() < this.plan.duplicateRate;
  }

  private delayTicks(): number {
    const max = this.stable ? this.plan.delayTicksMaxAfterGst : this.plan.delayTicksMaxBeforeGst;
    return 1 + this.random.below(max);
  }
}
