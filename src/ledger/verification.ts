// The verdict of every third-party check in the ledger (certificate.ts, verify.ts, chain.ts).
// Verifiers run on data from untrusted replicas, so they never throw on bad input; they say what
// failed, with a code a program can branch on and a message a person can read.

export type VerificationFailureCode =
  /** An input is not well-formed: a wrong type, length or range. */
  | "malformed"
  /** The header belongs to another cluster than the config given. */
  | "wrong-cluster"
  /** The certificate is for another height than the header. */
  | "wrong-height"
  /** Fewer than 2f + 1 signatures. */
  | "too-few-signatures"
  /** A replica signs twice. */
  | "duplicate-signer"
  /** A signature names a replica id outside the cluster. */
  | "unknown-signer"
  /** A signature does not verify under its replica's key (forged, or over another header). */
  | "bad-signature"
  /** The body's transaction count differs from the header's txCount. */
  | "tx-count-mismatch"
  /** The body's transactions do not hash to the header's txRoot. */
  | "tx-root-mismatch"
  /** The body's results do not hash to the header's resultsRoot. */
  | "results-root-mismatch"
  /** The header does not follow the previous one: a wrong prevHash or a height that skips. */
  | "broken-link"
  /** A Merkle proof does not place the transaction or result at the index under the root. */
  | "not-included"
  /** A state proof does not show the key with that value (or absent) under the state root. */
  | "state-proof-mismatch";

export interface VerificationFailure {
  readonly ok: false;
  readonly code: VerificationFailureCode;
  readonly message: string;
}

export type Verification = { readonly ok: true } | VerificationFailure;

export const VERIFIED: Verification = Object.freeze({ ok: true });

export function failure(code: VerificationFailureCode, message: string): VerificationFailure {
  return { ok: false, code, message };
}
