// The key-value routes: PUT, GET and DELETE /v1/kv/:key and POST /v1/kv/:key/cas. Every write is
// a transaction signed by one of the gateway's writer keys and committed by the cluster, and every
// answer names the block (height = sequence number) that committed it.

import type { FastifyInstance } from "fastify";

import { TRANSACTION_VALUE_BYTES_MAX } from "../app/transaction.js";
import { okResult } from "../client/operations.js";
import type { Consistency } from "../client/types.js";
import { disconnectSignal } from "./disconnect.js";
import { type ValueEncoding, decodeValue, encodeValue, keyBytes, prefersOctetStream } from "./encoding.js";
import { GatewayError } from "./errors.js";
import type { LedgerPool } from "./ledger-pool.js";
import { kvCasSchema, kvDeleteSchema, kvGetSchema, kvPutSchema } from "./schemas.js";

interface KeyRoute {
  Params: { key: string };
}

const EMPTY = new Uint8Array(0);

export function registerKvRoutes(app: FastifyInstance, pool: LedgerPool, bodyLimitBytes: number): void {
  app.get<KeyRoute & { Querystring: { consistency?: Consistency } }>("/v1/kv/:key", { schema: kvGetSchema }, async (request, reply) => {
    const key = keyBytes(request.params.key);
    const { value, height } = await pool.forRead(request.query.consistency ?? "linearizable", disconnectSignal(reply), (ledger, options) => ledger.read(key, options));
    void reply.header("vary", "accept");
    if (value === undefined) {
      throw new GatewayError(404, "not-found", `the key ${JSON.stringify(request.params.key)} is absent as of height ${height}`, { height, seq: height });
    }
    if (prefersOctetStream(request.headers.accept)) {
      void reply.type("application/octet-stream").header("bulwark-height", String(height)).header("bulwark-seq", String(height));
      return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    }
    return { key: request.params.key, ...encodeValue(value), height, seq: height };
  });

  app.put<KeyRoute & { Body: Buffer | undefined }>(
    "/v1/kv/:key",
    {
      schema: kvPutSchema,
      // The value is the body byte for byte, whatever Content-Type the client sent (curl -d sends
      // application/x-www-form-urlencoded). Declaring it octet-stream before parsing routes every
      // body, even one with no or a malformed Content-Type, to the raw-bytes parser.
      onRequest: (request, _reply, done) => {
        request.raw.headers["content-type"] = "application/octet-stream";
        done();
      },
      // A larger value would only be refused by the replicas.
      bodyLimit: Math.min(bodyLimitBytes, TRANSACTION_VALUE_BYTES_MAX),
    },
    async (request, reply) => {
      const key = keyBytes(request.params.key);
      const value: Uint8Array = request.body ?? EMPTY;
      const signal = disconnectSignal(reply);
      const committed = await pool.withWriter((writer) => writer.submit({ type: "put", key, value }, { signal }));
      okResult(committed, "put", ["done"]);
      return { key: request.params.key, height: committed.height, seq: committed.height };
    },
  );

  app.delete<KeyRoute>("/v1/kv/:key", { schema: kvDeleteSchema }, async (request, reply) => {
    const key = keyBytes(request.params.key);
    const signal = disconnectSignal(reply);
    const committed = await pool.withWriter((writer) => writer.submit({ type: "delete", key }, { signal }));
    const { flag } = okResult(committed, "delete", ["flag"]);
    return { key: request.params.key, deleted: flag, height: committed.height, seq: committed.height };
  });

  app.post<KeyRoute & { Body: { expected: string | null; value: string; encoding?: ValueEncoding } }>("/v1/kv/:key/cas", { schema: kvCasSchema }, async (request, reply) => {
    const key = keyBytes(request.params.key);
    const encoding = request.body.encoding ?? "utf8";
    const expected = request.body.expected === null ? null : decodeValue(request.body.expected, encoding, "expected");
    const value = decodeValue(request.body.value, encoding, "value");
    const signal = disconnectSignal(reply);
    const committed = await pool.withWriter((writer) => writer.submit({ type: "cas", key, expected, value }, { signal }));
    const { flag } = okResult(committed, "cas", ["flag"]);
    return { key: request.params.key, swapped: flag, height: committed.height, seq: committed.height };
  });
}
