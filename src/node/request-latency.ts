// When each client request first reached this replica's core with a verified signature, so its
// execution can be timed (bulwark_request_execution_seconds). The runtime reports a request only
// once its signature checked out (replica-runtime.ts, `timeVerified`): a forged request, say one
// with a far-future nonce, never enters, so it cannot skew the figure or push real arrivals out.
// A request is named by (client, timestamp), which the core executes at most once. Memory is bounded: past `entriesMax` the oldest arrivals are forgotten,
// so a request that waits longer than the newest `entriesMax` arrivals goes untimed, as do
// requests that never execute (refused, superseded), which age out the same way.

import type { ClientRequest } from "../consensus/pbft/types.js";
import { positiveInteger } from "../crypto/verify-pool.js";

const REQUEST_LATENCY_ENTRIES_MAX_DEFAULT = 65_536;

export class RequestLatency {
  private readonly entriesMax: number;
  private readonly nowMs: () => number;
  /** "client/timestamp" → arrival (ms); a Map iterates in insertion order, oldest first. */
  private readonly arrivals = new Map<string, number>();

  constructor(options: { readonly entriesMax?: number; readonly nowMs?: () => number } = {}) {
    this.entriesMax = positiveInteger("entriesMax", options.entriesMax ?? REQUEST_LATENCY_ENTRIES_MAX_DEFAULT);
    this.nowMs = options.nowMs ?? (() => performance.now());
  }

  get size(): number {
    return this.arrivals.size;
  }

  /** Notes the arrival of each request not seen before (a retransmission keeps the first time). */
  arrived(requests: readonly ClientRequest[]): void {
    let nowMs: number | undefined;
    for (const request of requests) {
      const key = keyOf(request);
      if (this.arrivals.has(key)) continue;
      nowMs ??= this.nowMs();
      if (this.arrivals.size >= this.entriesMax) {
        const oldest = this.arrivals.keys().next();
        if (oldest.done !== true) this.arrivals.delete(oldest.value);
      }
      this.arrivals.set(key, nowMs);
    }
  }

  /** Seconds from arrival to now for each executed request that was timed; forgets them. */
  executed(requests: readonly ClientRequest[], observe: (seconds: number) => void): void {
    let nowMs: number | undefined;
    for (const request of requests) {
      const key = keyOf(request);
      const arrivedMs = this.arrivals.get(key);
      if (arrivedMs === undefined) continue;
      this.arrivals.delete(key);
      nowMs ??= this.nowMs();
      observe((nowMs - arrivedMs) / 1000);
    }
  }
}

function keyOf(request: ClientRequest): string {
  return `${request.client}/${request.timestamp}`;
}
