// Which client serves a call, and how many calls the gateway waits on at once.
//
// A client key has at most one request in flight (PBFT §4.1; client.ts, "One request per key at a
// time"), so every call that signs (a KV write, a linearizable read, which is a read transaction)
// queues behind the previous call of the same key. The gateway therefore signs with a pool of
// writer keys and gives each such call to the writer with the fewest calls outstanding; calls that
// sign nothing (proof reads, status, blocks, pre-signed envelopes, whose lanes are their signers'
// keys) go to the reader. Every call counts against one bound, so a burst of requests is answered
// 503 instead of queueing without limit behind a slow cluster.
//
// A proof read on the reader must see what the writers committed: a PUT answered at height H
// followed by a GET with consistency=proof must not return the value from before H. The reader's
// own client knows only the heights it saw itself, so every proof read (and account read) is given
// the highest height any of the gateway's clients has seen committed as its `minHeight`.

import assert from "node:assert/strict";

import type { Consistency, ReadOptions } from "../client/types.js";
import { GatewayError } from "./errors.js";
import type { GatewayLedger } from "./types.js";

export class LedgerPool {
  readonly reader: GatewayLedger;
  readonly writers: readonly GatewayLedger[];
  /** Calls refused because `callsPendingMax` were already waiting. */
  overloaded = 0;
  private readonly callsPendingMax: number;
  /** Calls outstanding per writer, by index. */
  private readonly outstanding: number[];
  private pendingCount = 0;
  /** Where the next search for the least busy writer starts, so ties rotate over the pool. */
  private nextWriter = 0;

  constructor(reader: GatewayLedger, writers: readonly GatewayLedger[], callsPendingMax: number) {
    assert.ok(writers.length >= 1, "the gateway needs at least one writer");
    assert.ok(Number.isSafeInteger(callsPendingMax) && callsPendingMax >= 1, `callsPendingMax must be a positive integer; got ${callsPendingMax}`);
    this.reader = reader;
    this.writers = writers;
    this.callsPendingMax = callsPendingMax;
    this.outstanding = writers.map(() => 0);
  }

  /** Calls into the cluster the gateway is waiting on. */
  get pending(): number {
    return this.pendingCount;
  }

  /** Runs a call that signs on the writer with the fewest calls outstanding. */
  withWriter<T>(call: (writer: GatewayLedger) => Promise<T>): Promise<T> {
    const index = this.leastBusyWriter();
    this.outstanding[index]! += 1;
    return this.run(() => call(this.writers[index]!)).finally(() => {
      this.outstanding[index]! -= 1;
    });
  }

  /** Runs a call that signs nothing on the reader. */
  withReader<T>(call: (reader: GatewayLedger) => Promise<T>): Promise<T> {
    return this.run(() => call(this.reader));
  }

  /**
   * Runs a read of `consistency`: a linearizable one is a read transaction, so it goes to a
   * writer; a proof read to the reader. Either way its options ask for state no older than
   * anything the gateway has seen committed (see above).
   */
  forRead<T>(consistency: Consistency, signal: AbortSignal | undefined, call: (ledger: GatewayLedger, options: ReadOptions) => Promise<T>): Promise<T> {
    const options = (): ReadOptions => ({ consistency, signal, minHeight: this.committedHeight });
    if (consistency === "linearizable") return this.withWriter((writer) => call(writer, options()));
    return this.withReader((reader) => call(reader, options()));
  }

  /** The highest block height any of the gateway's clients has seen committed or proven. */
  get committedHeight(): number {
    let height = this.reader.height;
    for (const writer of this.writers) height = Math.max(height, writer.height);
    return height;
  }

  private async run<T>(call: () => Promise<T>): Promise<T> {
    if (this.pendingCount >= this.callsPendingMax) {
      this.overloaded += 1;
      throw new GatewayError(503, "overloaded", `the gateway is already waiting on ${this.callsPendingMax} calls into the cluster; retry shortly`);
    }
    this.pendingCount += 1;
    try {
      return await call();
    } finally {
      this.pendingCount -= 1;
    }
  }

  private leastBusyWriter(): number {
    const count = this.writers.length;
    let best = this.nextWriter;
    for (let step = 1; step < count; step++) {
      const index = (this.nextWriter + step) % count;
      if (this.load(index) < this.load(best)) best = index;
    }
    this.nextWriter = (best + 1) % count;
    return best;
  }

  /**
   * How busy writer `index` is: the gateway's calls on it, or the client's own count of requests
   * in flight if that is higher. A call whose caller gave up (deadline) leaves its request in
   * flight in the client until it settles, and the key's next call waits behind it.
   */
  private load(index: number): number {
    return Math.max(this.outstanding[index]!, this.writers[index]!.inFlight);
  }
}
