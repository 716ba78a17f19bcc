// How a signed transaction travels through consensus: one consensus request carries one
// transaction envelope (transaction.ts), and the request's other fields repeat what the envelope
// says, in the form the PBFT core reads (it never decodes operations):
//
//   ClientRequest field   value
//   operation             the envelope's canonical encoding (what blocks store and hash)
//   client                lowercase hex of the client's public key (64 characters)
//   timestamp             the transaction's nonce
//   signature             lowercase hex of the envelope's signature (128 characters); empty
//                         for a session-authenticated envelope (format version 2, no signature)
//
// The repeated fields are bound to the envelope: a request whose fields differ from it is
// refused, by `verifyRequest` before ordering and as "malformed" at execution. So the core's
// per-client bookkeeping (keyed by `client`, ordered by `timestamp`) is exactly the accounts'
// nonce bookkeeping, and a block's transaction bytes determine the request they came from
// (`requestFromEnvelope`), which is what lets an auditor replay execution from blocks alone.

import type { ClientRequest } from "../consensus/pbft/types.js";
import { ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES, type Ed25519Verifier } from "../crypto/ed25519.js";
import { bytesToHex, isHexOf } from "./bytes.js";
import type { TransactionErrorCode } from "./result.js";
import {
  TRANSACTION_BYTES_MAX,
  type Transaction,
  TransactionDecodeError,
  decodeTransaction,
  encodeTransaction,
  isSessionTransaction,
  verifyTransaction,
} from "./transaction.js";

/** The consensus request that carries `transaction`. */
export function requestFromTransaction(transaction: Transaction): ClientRequest {
  return {
    client: bytesToHex(transaction.clientKey),
    timestamp: transaction.nonce,
    operation: encodeTransaction(transaction),
    signature: bytesToHex(transaction.signature),
  };
}

/**
 * The request a block's transaction bytes came from, for replaying execution. Bytes that do not
 * decode give a request that execution refuses on its bytes alone (malformed, oversized,
 * unknown-op), whatever its other fields, so placeholders serve.
 */
export function requestFromEnvelope(envelope: Uint8Array): ClientRequest {
  try {
    return requestFromTransaction(decodeTransaction(envelope));
  } catch (error) {
    if (!(error instanceof TransactionDecodeError)) throw error;
    return { client: "", timestamp: 0, operation: envelope, signature: "" };
  }
}

/** Which of the request-level failures a refused request met. */
export type AdmissionErrorCode = Extract<TransactionErrorCode, "malformed" | "oversized" | "unknown-op" | "bad-signature">;

export type RequestAdmission =
  | { readonly ok: true; readonly transaction: Transaction }
  | { readonly ok: false; readonly error: AdmissionErrorCode };

export interface AdmitOptions {
  /**
   * Check the envelope's signature (default true). A replica may skip it at execution because
   * consensus already did: the core's `verifyRequest` (this module's) refuses unsigned requests,
   * and a batch commits only after 2f + 1 replicas, f + 1 of them correct, accepted it, so every
   * committed request carries a valid signature and the check cannot change any result.
   */
  readonly verifySignature?: boolean;
  /** The verifier (and its key cache) to use; the thread's shared one by default. */
  readonly verifier?: Ed25519Verifier;
  /**
   * Admit session-authenticated envelopes (no signature) even when signatures are checked.
   * Execution does (`LedgerApplication`): it runs only committed batches, and a batch commits only
   * after 2f + 1 replicas, f + 1 of them correct, accepted each session request from a session its
   * key had attached to. The core's admission check (`verifyRequest`) does not: only the replica's
   * session table can vouch for such a request there (node/session-requests.ts).
   */
  readonly acceptSessions?: boolean;
}

/**
 * Decodes the request's envelope and checks it: size, canonical form, binding of the request's
 * fields to the envelope, then the signature. Never throws: requests come from anyone.
 */
export function admitRequest(request: ClientRequest, options: AdmitOptions = {}): RequestAdmission {
  const { operation } = request;
  if (!(operation instanceof Uint8Array)) return { ok: false, error: "malformed" };
  if (operation.length > TRANSACTION_BYTES_MAX) return { ok: false, error: "oversized" };
  let transaction: Transaction;
  try {
    transaction = decodeTransaction(operation);
  } catch (error) {
    if (!(error instanceof TransactionDecodeError)) throw error;
    return { ok: false, error: admissionErrorOf(error) };
  }
  if (!isBound(request, transaction)) return { ok: false, error: "malformed" };
  if (options.verifySignature !== false) {
    const authentic = isSessionTransaction(transaction) ? options.acceptSessions === true : verifyTransaction(transaction, options.verifier);
    if (!authentic) return { ok: false, error: "bad-signature" };
  }
  return { ok: true, transaction };
}

/**
 * `PbftCrypto.verifyRequest` for real transactions: true when the request carries a canonical
 * envelope, its fields match the envelope, and the envelope's signature verifies (with the
 * thread's shared verifier; `requestVerifier` binds another).
 */
export function verifyRequest(request: ClientRequest): boolean {
  if (typeof request !== "object" || request === null) return false;
  return admitRequest(request).ok;
}

/** `verifyRequest` using `verifier` and its key cache (a verification worker holds its own). */
export function requestVerifier(verifier: Ed25519Verifier): (request: ClientRequest) => boolean {
  return (request) => typeof request === "object" && request !== null && admitRequest(request, { verifier }).ok;
}

function admissionErrorOf(error: TransactionDecodeError): AdmissionErrorCode {
  switch (error.code) {
    case "oversize":
      return "oversized";
    case "unknown-operation":
      return "unknown-op";
    default:
      return "malformed";
  }
}

function isBound(request: ClientRequest, transaction: Transaction): boolean {
  return (
    request.timestamp === transaction.nonce &&
    typeof request.client === "string" &&
    request.client.length === 2 * ED25519_PUBLIC_KEY_BYTES &&
    isHexOf(request.client, transaction.clientKey) &&
    typeof request.signature === "string" &&
    (request.signature.length === 2 * ED25519_SIGNATURE_BYTES || (request.signature.length === 0 && isSessionTransaction(transaction))) &&
    isHexOf(request.signature, transaction.signature)
  );
}
