// The gateway's Fastify application, without a listening socket: tests drive it with `inject`,
// startGateway (gateway.ts) listens with it. What it adds to the routes: one error shape for every
// failure (errors.ts), bodies parsed strictly and within limits, a JSON 404, per-request metrics,
// and the OpenAPI document built from the routes' schemas.

import swagger from "@fastify/swagger";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from "fastify";
import type { Logger } from "pino";

import { TRANSACTION_KEY_BYTES_MAX } from "../app/transaction.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import { GatewayError, frameworkErrorOf, gatewayErrorOf } from "./errors.js";
import { registerKvRoutes } from "./kv-routes.js";
import type { LedgerPool } from "./ledger-pool.js";
import { registerLedgerRoutes } from "./ledger-routes.js";
import { GatewayMetrics } from "./metrics.js";
import { docsSchema, metricsSchema } from "./schemas.js";
import { BODY_LIMIT_BYTES_DEFAULT } from "./types.js";

/**
 * Longest path parameter, in characters after percent-decoding. No key is longer than 1024
 * characters (a character is at least one byte of UTF-8); the margin lets a moderately long key
 * reach the route, whose check says exactly what is wrong, while an absurd one is refused (414)
 * before any work.
 */
const PATH_PARAMETER_CHARS_MAX = 4 * TRANSACTION_KEY_BYTES_MAX;
/** How much of a request's URL a 404 message repeats. */
const URL_ECHO_CHARS_MAX = 200;

export interface GatewayAppOptions {
  readonly cluster: ClusterConfig;
  readonly pool: LedgerPool;
  readonly logger: Logger;
  /** Log every request at info when it arrives and when it is answered. Default false. */
  readonly logRequests?: boolean;
  readonly bodyLimitBytes?: number;
}

export async function buildGatewayApp(options: GatewayAppOptions): Promise<FastifyInstance> {
  const { cluster, pool } = options;
  const bodyLimitBytes = options.bodyLimitBytes ?? BODY_LIMIT_BYTES_DEFAULT;
  if (!(Number.isSafeInteger(bodyLimitBytes) && bodyLimitBytes >= 1)) throw new RangeError(`bodyLimitBytes must be a positive integer; got ${bodyLimitBytes}`);
  const metrics = new GatewayMetrics(pool);
  // Typed as Fastify's logger so the instance keeps Fastify's default types; a pino logger is one.
  const logger: FastifyBaseLogger = options.logger;
  const app = Fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: options.logRequests !== true }),
    bodyLimit: bodyLimitBytes,
    routerOptions: { maxParamLength: PATH_PARAMETER_CHARS_MAX },
    // A HEAD of a key would be a read transaction through consensus for nothing.
    exposeHeadRoutes: false,
    // The schemas say exactly what a body holds: a number where text belongs, or a field nobody
    // reads, is the client's mistake to hear about, not to have silently fixed.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
    // Malformed URLs (bad percent-encoding) are refused before routing; answer them in our shape.
    frameworkErrors: (error, request, reply) => {
      answerError(error, request, reply);
    },
  });

  await app.register(swagger, {
    openapi: {
      info: {
        title: "Bulwark gateway",
        description: "HTTP access to a Bulwark cluster. Every write is committed through PBFT consensus; every committed answer names its block height (= sequence number).",
        version: "1.0.0",
      },
      tags: [
        { name: "kv", description: "The key-value store" },
        { name: "transactions", description: "Pre-signed transactions" },
        { name: "accounts", description: "Token accounts" },
        { name: "blocks", description: "Verified blocks" },
        { name: "cluster", description: "Replica status" },
        { name: "operations", description: "Metrics and this document" },
      ],
    },
  });

  app.addContentTypeParser("application/octet-stream", { parseAs: "buffer" }, (_request, body, done) => done(null, body));
  app.setErrorHandler((error, request, reply) => {
    answerError(error, request, reply);
  });
  app.setNotFoundHandler((request, reply) => {
    const url = request.url.length > URL_ECHO_CHARS_MAX ? `${request.url.slice(0, URL_ECHO_CHARS_MAX)}...` : request.url;
    sendError(reply, new GatewayError(404, "not-found", `no route for ${request.method} ${url}; the routes are listed at /docs/json`));
  });
  app.addHook("onResponse", (request, reply, done) => {
    metrics.observe(request.method, request.routeOptions.url ?? "unmatched", reply.statusCode, reply.elapsedTime / 1000);
    done();
  });

  registerKvRoutes(app, pool, bodyLimitBytes);
  registerLedgerRoutes(app, pool, cluster, bodyLimitBytes);
  app.get("/metrics", { schema: metricsSchema }, async (_request, reply) => {
    void reply.type(metrics.contentType);
    return metrics.text();
  });
  app.get("/docs/json", { schema: docsSchema }, () => app.swagger());

  await app.ready();
  return app;
}

/** Answers any error: a known one with its status, anything else as a logged 500 that reveals nothing. */
function answerError(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const known = gatewayErrorOf(error) ?? frameworkErrorOf(error, request.routeOptions.bodyLimit);
  if (known === undefined) {
    request.log.error({ err: error }, "unexpected error while answering a request");
    sendError(reply, new GatewayError(500, "internal", "the gateway failed unexpectedly; its log has the details"));
    return;
  }
  if (known.statusCode >= 500) request.log.warn({ err: error, code: known.code }, "request failed on the cluster side");
  else request.log.debug({ err: error, code: known.code }, "request refused");
  sendError(reply, known);
}

function sendError(reply: FastifyReply, error: GatewayError): void {
  // The details come first, so they can never replace the code or the message.
  const body = { ...error.details, error: error.code, message: error.message };
  void reply.code(error.statusCode).type("application/json; charset=utf-8");
  if (error.statusCode === 503) void reply.header("retry-after", "1");
  void reply.send(body);
}
