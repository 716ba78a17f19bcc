// Reconnection delays: exponential back-off with jitter, capped.
//
// Exponential, so a peer that is down for long is probed rarely; capped, so a peer that comes
// back is found within `maxMs`; jittered, so the n − 1 replicas that lost the same peer do not
// redial it in lock-step. "Equal jitter": the delay is uniform in [ceiling / 2, ceiling], which
// keeps a floor under the retry rate that pure random jitter lacks. The random source is
// injected, so a seeded test replays the same delays.

export interface BackoffOptions {
  /** Ceiling of the first delay. */
  readonly initialMs: number;
  /** No delay exceeds this. */
  readonly maxMs: number;
}

export const BACKOFF_DEFAULTS: BackoffOptions = { initialMs: 50, maxMs: 5_000 };

// 2^30 × any sane initial delay is past every cap; stopping there keeps the power finite.
const BACKOFF_EXPONENT_MAX = 30;

/** A uniform random number in [0, 1): `Math.random`, or a seeded generator's `float` in tests. */
export type RandomSource = () => number;

export function assertBackoffOptions(options: BackoffOptions): void {
  if (!(options.initialMs > 0) || !(options.maxMs >= options.initialMs) || !Number.isFinite(options.maxMs)) {
    throw new RangeError(`back-off needs 0 < initialMs <= maxMs < infinity; got initialMs ${options.initialMs}, maxMs ${options.maxMs}`);
  }
}

/** The delay before reconnection attempt `attempt` (0 for the first retry), in whole milliseconds. */
export function backoffDelayMs(attempt: number, options: BackoffOptions, random: RandomSource): number {
  const ceilingMs = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(Math.max(attempt, 0), BACKOFF_EXPONENT_MAX));
  const delayMs = ceilingMs / 2 + (random() * ceilingMs) / 2;
  return Math.min(options.maxMs, Math.round(delayMs));
}
