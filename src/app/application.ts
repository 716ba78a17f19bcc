// The deterministic state machine that consensus orders requests for (DESIGN.md, "execution").
//
// Kept deliberately small: the executor needs only to apply an operation, fingerprint the state
// and move the state between replicas for state transfer. Key-value and token applications
// (issue 3) implement the same interface.

export interface Application {
  /**
   * Applies `operation` and returns its result. Must be deterministic: the same sequence of
   * operations from the same state gives the same results and the same state on every replica.
   * A malformed operation is an application-level error result, never a throw.
   */
  execute(operation: Uint8Array): Uint8Array;
  /** A digest of the whole application state; equal states give equal digests. */
  digest(): string;
  /** A self-contained copy of the state that `restore` accepts; later execution must not change it. */
  snapshot(): unknown;
  /** Replaces the state with a copy taken by `snapshot` (possibly on another replica). */
  restore(snapshot: unknown): void;
}
