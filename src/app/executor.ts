// Runs committed batches against an Application exactly once per request, and keeps the
// per-client reply table the PBFT core reads (PBFT §4.1, DESIGN.md "Clients"): each client's
// timestamps increase strictly, so a request whose timestamp is not above the client's last
// executed one is a retransmission or a replay and is skipped without effect or reply.
//
// The client table is part of the replicated state: it goes into the state digest and into
// snapshots, so a replica that installs a snapshot by state transfer still answers
// retransmissions correctly and still refuses to execute a request twice.

import { createHash } from "node:crypto";

import type { ClientId, CommittedBatch, Digest, ReplyCache } from "../consensus/pbft/types.js";
import type { Application } from "./application.js";

/** A request that took effect, with the result to send back to its client. */
export interface AppliedRequest {
  readonly client: ClientId;
  readonly timestamp: number;
  readonly operation: Uint8Array;
  readonly result: Uint8Array;
}

/** One row of the client table: the client's last executed request and its result. */
export interface ClientEntry {
  readonly client: ClientId;
  readonly timestamp: number;
  readonly result: Uint8Array;
}

/** Everything a replica needs to take over another's state at `seq`. */
export interface ExecutorSnapshot {
  readonly seq: number;
  readonly app: unknown;
  /** Sorted by client id, so equal tables give equal snapshots. */
  readonly clients: readonly ClientEntry[];
}

export interface ExecutorOptions {
  /** Hash of the canonical state text; SHA-256 (hex) unless the simulator injects a cheaper one. */
  readonly digestOf?: (text: string) => Digest;
}

function sha256Hex(text: string): Digest {
  return createHash("sha256").update(text).digest("hex");
}

export function bytesToHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

export class Executor implements ReplyCache {
  private readonly app: Application;
  private readonly digestOf: (text: string) => Digest;
  private readonly clients = new Map<ClientId, ClientEntry>();
  private executedSeq = 0;
  /** The digest of the current state, or undefined when a change made it stale. */
  private digestCached: Digest | undefined;

  constructor(app: Application, options: ExecutorOptions = {}) {
    this.app = app;
    this.digestOf = options.digestOf ?? sha256Hex;
  }

  /** The sequence number of the last batch executed (or installed by state transfer). */
  get lastExecuted(): number {
    return this.executedSeq;
  }

  lastReply(client: ClientId): { readonly timestamp: number; readonly result: Uint8Array } | undefined {
    return this.clients.get(client);
  }

  /**
   * Executes `batch`, which must be the next sequence number. Returns the requests that took
   * effect, in batch order; skipped duplicates are absent.
   */
  executeBatch(batch: CommittedBatch): AppliedRequest[] {
    if (batch.seq !== this.executedSeq + 1) {
      throw new Error(`executor: batch seq ${batch.seq} is not the next after ${this.executedSeq}`);
    }
    const applied: AppliedRequest[] = [];
    for (const request of batch.requests) {
      const last = this.clients.get(request.client);
      if (last !== undefined && request.timestamp <= last.timestamp) continue;
      const result = this.app.execute(request.operation);
      const entry: ClientEntry = { client: request.client, timestamp: request.timestamp, result };
      this.clients.set(request.client, entry);
      applied.push({ client: request.client, timestamp: request.timestamp, operation: request.operation, result });
    }
    this.executedSeq = batch.seq;
    if (applied.length > 0) this.digestCached = undefined;
    return applied;
  }

  /** Digest over the application state and the client table, in client id order. */
  stateDigest(): Digest {
    if (this.digestCached === undefined) {
      const lines = [this.app.digest()];
      for (const entry of this.sortedEntries()) {
        lines.push(`${entry.client} ${entry.timestamp} ${bytesToHex(entry.result)}`);
      }
      this.digestCached = this.digestOf(lines.join("\n"));
    }
    return this.digestCached;
  }

  snapshot(): ExecutorSnapshot {
    return { seq: this.executedSeq, app: this.app.snapshot(), clients: this.sortedEntries() };
  }

  /** Replaces the whole state (application, client table, position) with `snapshot`'s. */
  restore(snapshot: ExecutorSnapshot): void {
    this.app.restore(snapshot.app);
    this.clients.clear();
    for (const entry of snapshot.clients) this.clients.set(entry.client, entry);
    this.executedSeq = snapshot.seq;
    this.digestCached = undefined;
  }

  private sortedEntries(): ClientEntry[] {
    const entries = [...this.clients.values()];
    // Plain code-unit order: locale-independent, so every replica sorts identically.
    entries.sort((a, b) => (a.client < b.client ? -1 : a.client > b.client ? 1 : 0));
    return entries;
  }
}
