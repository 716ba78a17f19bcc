// What every benchmark workload shares: each closed-loop client's envelopes, built before the
// timed window and kept ready in one contiguous buffer per client.
//
// Building an envelope costs microseconds (tens for a signature), and the load generator shares
// the machine's cores with the replicas it measures, so `prepare(n)` builds each client's next n
// envelopes ahead of the run; `next` then only hands out views of them. Keeping them in one
// buffer per client, not one object per envelope, keeps millions of prepared envelopes from
// becoming millions of objects that every garbage collection of the timed window would scan. A
// client that runs out is served by building on demand, which is counted (`builtOnDemand`) so the
// report can say the measurement paid for it.

import assert from "node:assert/strict";

import type { Operation } from "../app/transaction.js";
import { type BenchKey, buildEnvelope } from "./bench-keys.js";
import type { AuthMode, BenchWorkload, WorkloadName } from "./types.js";

/**
 * Most envelopes a run builds ahead, over all its clients. An envelope takes 46 (noop, session) to
 * 173 bytes (kv, signed) with its offset, so the cap holds 90 to 350 MB. Without it the envelopes
 * of a long run at a high rate would not fit in memory (600 s at the session default of 25,000
 * tx/s, with its margin: 18.9 million, about 2 GB for kv); past the cap clients build their
 * envelopes as they need them (`builtOnDemand`), which the report notes.
 */
export const PREPARED_ENVELOPES_MAX = 2_000_000;

/** Clients built between two progress reports: few enough that progress shows, enough that reports are few. */
const PREPARE_PROGRESS_CLIENTS = 16;

/** One client's prepared envelopes: `slab[offsets[i] .. offsets[i + 1])` is envelope i. */
export interface PreparedEnvelopes {
  readonly slab: Uint8Array;
  /** count + 1 offsets into `slab`. */
  readonly offsets: Uint32Array;
}

interface PreparedQueue extends PreparedEnvelopes {
  readonly count: number;
  head: number;
}

/** A client's next transaction before it is encoded: its key, nonce and operation. */
export interface Draft {
  readonly key: BenchKey;
  readonly nonce: number;
  readonly operation: Operation;
}

export abstract class PreparedWorkload implements BenchWorkload {
  abstract readonly name: WorkloadName;
  private readonly queues: Array<PreparedQueue | undefined>;
  private onDemand = 0;

  protected constructor(
    readonly auth: AuthMode,
    readonly clients: number,
  ) {
    assert.ok(Number.isSafeInteger(clients) && clients >= 1, `a workload needs at least one client; got ${clients}`);
    this.queues = new Array<PreparedQueue | undefined>(clients).fill(undefined);
  }

  /** The keys client `client`'s envelopes carry (one, or its accounts in `transfer`); in session mode its connection attaches them. */
  abstract keysOfClient(client: number): readonly BenchKey[];

  abstract setupRounds(): Iterable<readonly Uint8Array[]>;

  /** Client `client`'s next transaction: advances its nonce and its random draws. */
  protected abstract draw(client: number): Draft;

  /** Builds client `client`'s next envelope. */
  private build(client: number): Uint8Array {
    const { key, nonce, operation } = this.draw(client);
    return buildEnvelope(key, this.auth, nonce, operation);
  }

  /** Envelopes built by `next` because the client's prepared ones ran out. */
  get builtOnDemand(): number {
    return this.onDemand;
  }

  /** Prepared envelopes not handed out yet, over all clients. */
  get preparedLeft(): number {
    let left = 0;
    for (const queue of this.queues) if (queue !== undefined) left += queue.count - queue.head;
    return left;
  }

  /** Builds `perClient` more envelopes for every client, after those already prepared. */
  prepare(perClient: number): void {
    assert.ok(Number.isSafeInteger(perClient) && perClient >= 0, `perClient must be a whole number; got ${perClient}`);
    for (let client = 0; client < this.clients; client++) this.prepareClient(client, perClient);
  }

  /**
   * Builds `perClient` more envelopes for each of `clients` in turn (a preparation or loader
   * thread's share), calling `onProgress` with the clients built since its last call after every
   * PREPARE_PROGRESS_CLIENTS of them, and once more, `finished`, after the last (with those left,
   * possibly none).
   */
  prepareClients(clients: readonly number[], perClient: number, onProgress: (built: readonly number[], finished: boolean) => void): void {
    let built: number[] = [];
    for (const client of clients) {
      this.prepareClient(client, perClient);
      built.push(client);
      if (built.length === PREPARE_PROGRESS_CLIENTS) {
        onProgress(built, false);
        built = [];
      }
    }
    onProgress(built, true);
  }

  /** Builds `count` more envelopes for client `client`, after those already prepared. */
  prepareClient(client: number, count: number): void {
    const envelopes: Uint8Array[] = [];
    const queue = this.queues[client];
    if (queue !== undefined) for (let i = queue.head; i < queue.count; i++) envelopes.push(queue.slab.subarray(queue.offsets[i], queue.offsets[i + 1]));
    for (let i = 0; i < count; i++) envelopes.push(this.build(client));
    let bytes = 0;
    for (const envelope of envelopes) bytes += envelope.length;
    const slab = new Uint8Array(bytes);
    const offsets = new Uint32Array(envelopes.length + 1);
    let offset = 0;
    envelopes.forEach((envelope, index) => {
      slab.set(envelope, offset);
      offset += envelope.length;
      offsets[index + 1] = offset;
    });
    this.queues[client] = { slab, offsets, count: envelopes.length, head: 0 };
  }

  /**
   * Client `client`'s prepared envelopes, built elsewhere (a preparation thread's copy of this
   * workload, `exportPrepared`) in place of its own: its draws move on past them, so that
   * envelopes built later continue where they end.
   */
  adoptPrepared(client: number, prepared: PreparedEnvelopes): void {
    assert.equal(this.queues[client], undefined, "envelopes are adopted only for a client with none prepared");
    const count = prepared.offsets.length - 1;
    for (let i = 0; i < count; i++) this.draw(client);
    this.queues[client] = { slab: prepared.slab, offsets: prepared.offsets, count, head: 0 };
  }

  /** Client `client`'s prepared envelopes, handed over (for adoptPrepared in another thread); none are left here. */
  exportPrepared(client: number): PreparedEnvelopes {
    const queue = this.queues[client];
    this.queues[client] = undefined;
    if (queue === undefined) return { slab: new Uint8Array(0), offsets: new Uint32Array(1) };
    assert.equal(queue.head, 0, "only untouched envelopes are exported");
    return { slab: queue.slab, offsets: queue.offsets };
  }

  next(client: number): Uint8Array {
    const queue = this.queues[client];
    if (queue !== undefined && queue.head < queue.count) {
      const at = queue.head++;
      const envelope = queue.slab.subarray(queue.offsets[at], queue.offsets[at + 1]);
      // The buffer goes once its last envelope is handed out (the views keep it while in flight).
      if (queue.head === queue.count) this.queues[client] = undefined;
      return envelope;
    }
    assert.ok(Number.isSafeInteger(client) && client >= 0 && client < this.clients, `no client ${client} in a workload of ${this.clients}`);
    this.onDemand += 1;
    return this.build(client);
  }
}

/**
 * The seed of stream `stream` under the run's `seed`: each client draws from a stream of its own,
 * so its sequence depends only on the seed and its index, not on how fast other clients run or on
 * which loader prepares it.
 */
export function streamSeed(seed: number, stream: number): number {
  let h = Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(stream + 1, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  h = Math.imul(h ^ (h >>> 12), 0x297a2d39);
  return (h ^ (h >>> 15)) >>> 0;
}
