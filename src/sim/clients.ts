// Simulated clients (PBFT §4.1, DESIGN.md "Clients"): each sends its requests one at a time with
// strictly increasing timestamps, to the primary of the last view it saw in replies; on a timeout
// it broadcasts the request to every replica (backups relay it to the primary and start their
// view-change timers); it accepts a result on f + 1 matching replies from distinct replicas,
// since at most f of them can lie.

import type { ClientId, ClientRequest, Reply } from "../consensus/pbft/types.js";
import type { SimContext } from "./context.js";
import type { SimKeyring } from "./crypto.js";
import { bytesToHexFast } from "./crypto.js";
import type { Random } from "./random.js";

const OPERATION_BYTES = 8;
/** Ticks a client waits after a result before it sends its next request (at most). */
const THINK_TICKS_MAX = 10;
/** The first request of each client goes out within this many ticks of the start. */
const START_TICKS_MAX = 40;

interface Outstanding {
  readonly request: ClientRequest;
  readonly submittedTick: number;
  retryTick: number;
  /** Latest result (hex) per replica, and the view each reported. */
  readonly results: Map<number, string>;
  readonly views: Map<number, number>;
}

export class SimClient {
  readonly index: number;
  readonly id: ClientId;
  private readonly requestsTotal: number;
  private readonly context: SimContext;
  private readonly keyring: SimKeyring;
  private readonly random: Random;
  private completed = 0;
  private outstanding: Outstanding | undefined;
  private nextStartTick: number;
  private viewSeen = 0;

  constructor(index: number, requestsTotal: number, context: SimContext, keyring: SimKeyring, random: Random) {
    this.index = index;
    this.id = `c${index}`;
    this.requestsTotal = requestsTotal;
    this.context = context;
    this.keyring = keyring;
    this.random = random;
    this.nextStartTick = random.below(START_TICKS_MAX);
    keyring.addClient(this.id);
  }

  get done(): boolean {
    return this.completed === this.requestsTotal;
  }

  /** The submission tick of the request in flight, or -1. */
  get outstandingSinceTick(): number {
    return this.outstanding === undefined ? -1 : this.outstanding.submittedTick;
  }

  onTick(nowTicks: number): void {
    const outstanding = this.outstanding;
    if (outstanding === undefined) {
      if (!this.done && nowTicks >= this.nextStartTick) this.submit(nowTicks);
    } else if (nowTicks >= outstanding.retryTick) {
      outstanding.retryTick = nowTicks + this.context.scenario.clientRetryTicks;
      this.context.trace.record(nowTicks, "retry", -1, -1, outstanding.request);
      this.broadcast(outstanding.request);
    }
  }

  onReply(nowTicks: number, reply: Reply): void {
    const outstanding = this.outstanding;
    if (outstanding === undefined || reply.timestamp !== outstanding.request.timestamp) return;
    const { f } = this.context.scenario;
    const resultHex = bytesToHexFast(reply.result);
    outstanding.results.set(reply.replica, resultHex);
    outstanding.views.set(reply.replica, reply.view);
    let matching = 0;
    let view = 0;
    for (const [replica, result] of outstanding.results) {
      if (result !== resultHex) continue;
      matching += 1;
      view = Math.max(view, outstanding.views.get(replica) ?? 0);
    }
    if (matching < f + 1) return;
    const request = outstanding.request;
    this.context.checkers.onAccepted(nowTicks, this.id, request.timestamp, resultHex);
    this.context.checkers.onRequestSettled(nowTicks, this.id, request.timestamp, outstanding.submittedTick, nowTicks);
    this.context.trace.record(nowTicks, "accept", -1, -1, `${this.id}@${request.timestamp} after ${nowTicks - outstanding.submittedTick} ticks, view ${view}`);
    this.context.stats.requestsCommitted += 1;
    this.viewSeen = view;
    this.outstanding = undefined;
    this.completed += 1;
    this.nextStartTick = nowTicks + this.random.below(THINK_TICKS_MAX + 1);
  }

  /** At the end of a run: a request still in flight is reported to the liveness checker. */
  settle(nowTicks: number, limitReached: boolean): void {
    const outstanding = this.outstanding;
    const failuresBefore = this.context.checkers.livenessFailureCount;
    if (outstanding !== undefined) {
      this.context.checkers.onRequestSettled(nowTicks, this.id, outstanding.request.timestamp, outstanding.submittedTick, undefined);
    }
    if (limitReached && !this.done && this.context.checkers.livenessFailureCount === failuresBefore) {
      this.context.checkers.onUnfinished(nowTicks, this.id, this.completed, this.requestsTotal);
    }
  }

  private submit(nowTicks: number): void {
    const operation = new Uint8Array(OPERATION_BYTES);
    for (let i = 0; i < OPERATION_BYTES; i++) operation[i] = this.random.below(256);
    // Timestamps start at 1 and increase by one per request: strictly increasing, as PBFT needs.
    const timestamp = this.completed + 1;
    const request = this.keyring.signRequest(this.id, timestamp, operation);
    this.context.checkers.onSubmitted(this.id, timestamp, bytesToHexFast(operation));
    this.outstanding = {
      request,
      submittedTick: nowTicks,
      retryTick: nowTicks + this.context.scenario.clientRetryTicks,
      results: new Map(),
      views: new Map(),
    };
    const primary = this.context.core.primaryOf(this.viewSeen, this.context.scenario.n);
    this.context.trace.record(nowTicks, "request", -1, primary, request);
    this.context.network.sendRequest(primary, request);
  }

  private broadcast(request: ClientRequest): void {
    for (let replica = 0; replica < this.context.scenario.n; replica++) this.context.network.sendRequest(replica, request);
  }
}
