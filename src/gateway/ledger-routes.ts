// The ledger routes beyond the key-value store: POST /v1/transactions (a pre-signed envelope, sent
// as it is), GET /v1/accounts/:id, GET /v1/blocks/:height, GET /v1/blocks and GET /v1/status.

import type { FastifyInstance } from "fastify";

import { bytesToHex } from "../app/bytes.js";
import { TRANSACTION_BYTES_MAX, decodeTransaction, transactionId, verifyTransaction } from "../app/transaction.js";
import { BLOCKS_LIMIT_MAX } from "../client/cluster-reads.js";
import { RejectedError } from "../client/errors.js";
import { summarizeStatus } from "../client/status-summary.js";
import type { Consistency } from "../client/types.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import { disconnectSignal } from "./disconnect.js";
import { accountBytes, base64Bytes } from "./encoding.js";
import { GatewayError, gatewayErrorOf } from "./errors.js";
import type { LedgerPool } from "./ledger-pool.js";
import { accountSchema, blockSchemaRoute, blocksSchema, statusSchema, transactionSchema } from "./schemas.js";
import { BLOCKS_PER_PAGE_DEFAULT } from "./types.js";
import { blockView, resultView } from "./views.js";

/** The largest envelope as base64 in `{ "envelope": "..." }`, with room for whitespace. */
const TRANSACTION_BODY_BYTES_MAX = Math.ceil(TRANSACTION_BYTES_MAX / 3) * 4 + 1024;

export function registerLedgerRoutes(app: FastifyInstance, pool: LedgerPool, cluster: ClusterConfig, bodyLimitBytes: number): void {
  app.post<{ Body: unknown }>("/v1/transactions", { schema: transactionSchema, bodyLimit: Math.min(bodyLimitBytes, TRANSACTION_BODY_BYTES_MAX) }, async (request, reply) => {
    const envelope = envelopeOf(request.body);
    const transaction = decodeTransaction(envelope);
    // The gateway is the cluster's public face: an envelope whose signature does not verify is
    // refused here rather than handed to every replica to refuse.
    if (!verifyTransaction(transaction)) throw new GatewayError(422, "bad-signature", "the envelope's signature does not verify under its client key");
    const signal = disconnectSignal(reply);
    const committed = await pool.withReader((reader) => reader.submitEnvelope(envelope, { signal, decoded: transaction }));
    const { result, height } = committed;
    const answer = {
      id: bytesToHex(transactionId(envelope)),
      clientKey: bytesToHex(transaction.clientKey),
      nonce: committed.nonce,
      operation: transaction.operation.type,
      result: resultView(result),
      height,
      seq: height,
      replicas: committed.replicas,
    };
    // Committed, and final: a failure's answer still says where, beside why.
    if (!result.ok) throw gatewayErrorOf(new RejectedError(result.error, transaction.operation.type, committed), answer)!;
    return answer;
  });

  app.get<{ Params: { id: string }; Querystring: { consistency?: Consistency } }>("/v1/accounts/:id", { schema: accountSchema }, async (request, reply) => {
    const id = accountBytes(request.params.id);
    const account = await pool.forRead(request.query.consistency ?? "linearizable", disconnectSignal(reply), (ledger, options) => ledger.account(id, options));
    return { id: bytesToHex(id), balance: account.balance.toString(), nextNonce: account.nextNonce, height: account.height, seq: account.height };
  });

  app.get<{ Params: { height: string } }>("/v1/blocks/:height", { schema: blockSchemaRoute }, async (request, reply) => {
    const height = heightOf(request.params.height, "height");
    const signal = disconnectSignal(reply);
    const block = await pool.withReader((reader) => reader.block(height, { signal }));
    if (block === undefined) throw new GatewayError(404, "not-found", `block ${height} is not certified (yet): f + 1 replicas say they do not have it`);
    return blockView(block);
  });

  app.get<{ Querystring: { from?: string; limit?: string } }>("/v1/blocks", { schema: blocksSchema }, async (request, reply) => {
    const from = request.query.from === undefined ? 1 : heightOf(request.query.from, "from");
    const limit = request.query.limit === undefined ? BLOCKS_PER_PAGE_DEFAULT : Number(request.query.limit);
    if (!(limit >= 1 && limit <= BLOCKS_LIMIT_MAX)) throw new GatewayError(400, "invalid-request", `limit must be 1 to ${BLOCKS_LIMIT_MAX}; got ${limit}`);
    const signal = disconnectSignal(reply);
    const blocks = await pool.withReader((reader) => reader.blocks(from, limit, { signal }));
    return { blocks: blocks.map(blockView) };
  });

  app.get("/v1/status", { schema: statusSchema }, async (_request, reply) => {
    const signal = disconnectSignal(reply);
    return summarizeStatus(cluster, await pool.withReader((reader) => reader.status({ signal })));
  });
}

/** The envelope of a POST /v1/transactions body: the raw bytes, or base64 in JSON. */
function envelopeOf(body: unknown): Uint8Array {
  if (body === undefined || (Buffer.isBuffer(body) && body.length === 0)) throw new GatewayError(400, "invalid-request", "the body is empty; send the envelope as application/octet-stream (the raw bytes) or application/json ({ \"envelope\": base64 })");
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === "object" && body !== null && "envelope" in body && typeof body.envelope === "string") return base64Bytes(body.envelope, "envelope");
  // Only the two content types the route documents reach here with a body the schema accepted.
  throw new GatewayError(415, "unsupported-media-type", "send the envelope as application/octet-stream (the raw bytes) or application/json ({ \"envelope\": base64 })");
}

/** A block height from a path or query (already checked to be digits): heights start at 1. */
function heightOf(text: string, what: string): number {
  const height = Number(text);
  if (height < 1) throw new GatewayError(400, "invalid-request", `${what} must be a block height, from 1; got ${text}`);
  return height;
}
