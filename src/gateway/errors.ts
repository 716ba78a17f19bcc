// Every failure the gateway answers, as one shape: an HTTP status, a short machine-readable code
// and a sentence for a person, `{ "error": code, "message": text }` on the wire, plus the fields
// that still matter when something failed (a rejected transaction committed at a height).
// `gatewayErrorOf` is the one place that decides which status an SDK error deserves.

import type { TransactionErrorCode } from "../app/result.js";
import { TransactionDecodeError, TransactionEncodeError } from "../app/transaction.js";
import {
  BulwarkClientError,
  ClientClosedError,
  ClusterUnavailableError,
  NonceError,
  RejectedError,
  RequestAbortedError,
  TimeoutError,
} from "../client/errors.js";

/** Fields an error response carries beside `error` and `message`. */
export type ErrorDetails = Readonly<Record<string, unknown>>;

export class GatewayError extends Error {
  override readonly name = "GatewayError";

  constructor(
    readonly statusCode: number,
    /** Short, stable, kebab-case: what a program branches on. */
    readonly code: string,
    message: string,
    readonly details: ErrorDetails = {},
  ) {
    super(message);
  }
}

/**
 * Transaction failures that are about the account's nonce: the request conflicts with the
 * account's state (409). The others are requests the ledger understood but refuses (422).
 */
const CONFLICT_CODES: ReadonlySet<TransactionErrorCode> = new Set(["stale-nonce", "nonce-gap"]);

export function rejectionStatus(code: TransactionErrorCode): number {
  return CONFLICT_CODES.has(code) ? 409 : 422;
}

/**
 * The response an error deserves, or undefined for an error nobody anticipated (a bug: the caller
 * logs it and answers 500 without its text).
 */
export function gatewayErrorOf(error: unknown): GatewayError | undefined {
  if (error instanceof GatewayError) return error;
  if (error instanceof TimeoutError) return new GatewayError(504, "timeout", error.message);
  if (error instanceof ClusterUnavailableError) return new GatewayError(503, "cluster-unavailable", error.message);
  if (error instanceof RejectedError) {
    const { height } = error.committed;
    return new GatewayError(rejectionStatus(error.code), error.code, error.message, { height, seq: height });
  }
  // The gateway's writer keys are its own and fresh, so a nonce error means the cluster and the
  // gateway disagree about an account; the request did not execute and may be retried.
  if (error instanceof NonceError) return new GatewayError(503, "nonce-conflict", error.message);
  if (error instanceof ClientClosedError) return new GatewayError(503, "shutting-down", error.message);
  if (error instanceof RequestAbortedError) return new GatewayError(503, "aborted", error.message);
  if (error instanceof BulwarkClientError) return new GatewayError(502, "cluster-error", error.message);
  if (error instanceof TransactionDecodeError) {
    return error.code === "oversize" ? new GatewayError(413, "too-large", error.message) : new GatewayError(400, "malformed-envelope", error.message);
  }
  if (error instanceof TransactionEncodeError) return new GatewayError(400, "invalid-request", error.message);
  return undefined;
}

/**
 * The errors Fastify raises before a handler runs (routing, body parsing, limits, validation):
 * their status, code, and a message of our own where Fastify's would repeat the whole URL.
 */
const FRAMEWORK_ERRORS: Readonly<Record<string, { readonly statusCode: number; readonly code: string; readonly message?: string }>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { statusCode: 413, code: "too-large" },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { statusCode: 400, code: "invalid-request" },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { statusCode: 415, code: "unsupported-media-type" },
  FST_ERR_CTP_INVALID_JSON_BODY: { statusCode: 400, code: "invalid-json" },
  FST_ERR_CTP_EMPTY_JSON_BODY: { statusCode: 400, code: "invalid-json" },
  FST_ERR_BAD_URL: { statusCode: 400, code: "invalid-url", message: "the URL is not valid percent-encoded UTF-8" },
  FST_ERR_MAX_PARAM_LENGTH: { statusCode: 414, code: "uri-too-long", message: "a path segment is far longer than any key (keys are at most 1024 bytes)" },
  FST_ERR_VALIDATION: { statusCode: 400, code: "invalid-request" },
};

/** Fastify's own client errors (and the JSON parser's) as gateway errors; undefined for anything else. */
export function frameworkErrorOf(error: unknown, bodyLimitBytes: number | undefined): GatewayError | undefined {
  if (!(error instanceof Error)) return undefined;
  const { code, statusCode } = error as Error & { code?: unknown; statusCode?: unknown };
  const known = typeof code === "string" ? FRAMEWORK_ERRORS[code] : undefined;
  if (known !== undefined) {
    const tooLarge = known.code === "too-large" && bodyLimitBytes !== undefined ? `the request body is larger than this route's limit of ${bodyLimitBytes} bytes` : undefined;
    return new GatewayError(known.statusCode, known.code, tooLarge ?? known.message ?? error.message);
  }
  // Other client errors Fastify marks with a 4xx status (a prototype-poisoned JSON body, a bad
  // header) keep their status; 5xx statuses are not trusted to mean a client mistake.
  if (typeof statusCode === "number" && statusCode >= 400 && statusCode < 500) return new GatewayError(statusCode, "bad-request", error.message);
  return undefined;
}
