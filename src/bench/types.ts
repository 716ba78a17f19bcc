// The types the benchmark's parts share (issue 5): a workload hands out transaction envelopes,
// the replicated run and the single-process baseline both consume them, and both report a
// LoadResult, so the cost of Byzantine fault tolerance is one ratio of like figures.

export type WorkloadName = "noop" | "kv" | "transfer";

/**
 * How clients authenticate their transactions:
 *   signed   every envelope carries its key's Ed25519 signature, which every replica verifies;
 *   session  the envelope carries no signature (format version 2, an empty `signature`): the
 *            client signs once per connection per key (`BulwarkClient.addSessionKey`) and the
 *            connection's per-frame MAC authenticates each request, as PBFT's authenticators do.
 */
export type AuthMode = "session" | "signed";

export interface BenchWorkload {
  readonly name: WorkloadName;
  readonly auth: AuthMode;
  /** Closed-loop clients the workload was built for; `next(client)` takes 0 <= client < clients. */
  readonly clients: number;
  /**
   * Transactions to commit before the timed run, in rounds: the envelopes of one round may run
   * side by side (different keys); a round starts once the one before it committed.
   */
  setupRounds(): Iterable<readonly Uint8Array[]>;
  /** Client `client`'s next envelope. One client's envelopes come in its keys' nonce order and must commit in turn. */
  next(client: number): Uint8Array;
}

/** Latency figures from an HDR histogram, in milliseconds. */
export interface LatencySummary {
  readonly count: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** What one timed run of a load measured (after warm-up). */
export interface LoadResult {
  /** Transactions committed in the timed window (after warm-up). */
  readonly committed: number;
  /** Committed transactions in each whole second of the timed window. */
  readonly windows: readonly number[];
  /** Median of `windows`: the throughput figure. */
  readonly throughputTps: number;
  readonly latency: LatencySummary;
  /** Calls that failed (timeouts, refusals) in the timed window. */
  readonly errors: number;
}
