// Every failure the gateway answers, as one shape: an HTTP status, a short machine-readable code
// and a sentence for a person, `{ "error": code, "message": text }` on the wire, plus the fields
// that still matter when something failed (a rejected transaction committed at a height).
// `gatewayErrorOf` is the one place that decides which status an SDK error deserves.

import type { TransactionErrorCode } from "../app/result.js";
import { TransactionDecodeError } from "../app/transaction.js";
import { type ClientErrorCode, RejectedError, classifyClientError } from "../client/errors.js";

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

/** The status and code of each class of client error (client/errors.ts, `classifyClientError`). */
const CLIENT_ERROR_RESPONSES: Readonly<Record<Exclude<ClientErrorCode, "rejected">, { readonly statusCode: number; readonly code: string }>> = {
  timeout: { statusCode: 504, code: "timeout" },
  unavailable: { statusCode: 503, code: "cluster-unavailable" },
  // The gateway's writer keys are its own and fresh, so a nonce error means the cluster and the
  // gateway disagree about an account; the request did not execute and may be retried.
  nonce: { statusCode: 503, code: "nonce-conflict" },
  closed: { statusCode: 503, code: "shutting-down" },
  aborted: { statusCode: 503, code: "aborted" },
  "invalid-answer": { statusCode: 502, code: "cluster-error" },
  "invalid-request": { statusCode: 400, code: "invalid-request" },
};

/**
 * The response an error deserves, or undefined for an error nobody anticipated (a bug: the caller
 * logs it and answers 500 without its text). `details` are added to a rejected transaction's
 * answer (beside the height it committed at).
 */
export function gatewayErrorOf(error: unknown, details: ErrorDetails = {}): GatewayError | undefined {
  if (error instanceof GatewayError) return error;
  const kind = classifyClientError(error);
  if (kind === undefined) return undefined;
  const { message } = error as Error;
  if (error instanceof RejectedError) {
    const { height } = error.committed;
    return new GatewayError(rejectionStatus(error.code), error.code, message, { ...details, height, seq: height });
  }
  if (error instanceof TransactionDecodeError) return error.code === "oversize" ? new GatewayError(413, "too-large", message) : new GatewayError(400, "malformed-envelope", message);
  const response = CLIENT_ERROR_RESPONSES[kind.code as Exclude<ClientErrorCode, "rejected">];
  return new GatewayError(response.statusCode, response.code, message);
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
