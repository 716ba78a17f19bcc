// The JSON schemas of the gateway's requests and responses. Fastify validates requests against
// them (the validator coerces nothing and removes nothing, so a wrong type or an unknown field is
// a 400), serializes responses through them (a field not listed here is not sent), and
// @fastify/swagger turns them into the OpenAPI document at /docs/json. Numbers in paths and query
// strings arrive as text, so they are described as digit strings and converted by the routes.

import { TRANSACTION_KEY_BYTES_MAX } from "../app/transaction.js";
import { BLOCKS_LIMIT_MAX } from "../client/cluster-reads.js";
import { VALUE_ENCODINGS } from "./encoding.js";
import { READ_CONSISTENCIES } from "./types.js";

const integer = (description: string) => ({ type: "integer", minimum: 0, description }) as const;
const text = (description: string) => ({ type: "string", description }) as const;
const digits = (description: string) => ({ type: "string", pattern: "^[0-9]{1,15}$", description }) as const;

const HEIGHT = integer("The height of the block that committed the result (0 when the agreeing replies named none).");
const SEQ = integer("The PBFT sequence number of that block; block height and sequence number are the same number.");

/** Every error response: `error` is a stable code to branch on, `message` a sentence for a person. */
export const errorSchema = {
  description: "An error",
  type: "object",
  required: ["error", "message"],
  properties: {
    error: text("A short code, e.g. not-found, invalid-request, timeout, cluster-unavailable, or the ledger's reason for refusing a transaction."),
    message: text("What happened, and what to do about it."),
    height: integer("For a committed outcome (a refused transaction, an absent key): the height it was decided at."),
    seq: integer("The sequence number of that height."),
  },
  additionalProperties: true,
} as const;

const errorResponses = { "4xx": errorSchema, "5xx": errorSchema } as const;

const keyParams = {
  type: "object",
  required: ["key"],
  properties: { key: { type: "string", description: `The key: 1 to ${TRANSACTION_KEY_BYTES_MAX} bytes of UTF-8, percent-encoded as a path segment.` } },
} as const;

const consistencyQuery = {
  type: "object",
  properties: {
    consistency: {
      type: "string",
      enum: READ_CONSISTENCIES,
      default: "linearizable",
      description: "linearizable: a read transaction ordered by consensus. proof: one replica's answer with a commit certificate and a state proof, verified by the gateway.",
    },
  },
  additionalProperties: false,
} as const;

const encodingProperty = { type: "string", enum: VALUE_ENCODINGS, description: "utf8 when the value is valid UTF-8, else base64." } as const;

/** A transaction's result as JSON; which fields are present depends on `kind` or `error`. */
const resultSchema = {
  type: "object",
  required: ["ok"],
  properties: {
    ok: { type: "boolean" },
    kind: { type: "string", enum: ["done", "value", "absent", "flag", "amount"] },
    value: text("For kind value."),
    encoding: encodingProperty,
    flag: { type: "boolean", description: "For kind flag: whether a cas swapped, whether a delete found the key." },
    amount: text("For kind amount: a decimal integer."),
    error: text("Why the transaction failed."),
    nextNonce: integer("For stale-nonce and nonce-gap: the account's next nonce."),
  },
} as const;

const blockSchema = {
  type: "object",
  properties: {
    height: integer("The block's height."),
    seq: SEQ,
    hash: text("The header hash, hex."),
    previousHash: text("Hex."),
    stateRoot: text("Hex."),
    transactionRoot: text("Hex."),
    resultsRoot: text("Hex."),
    transactionCount: integer("Transactions in the block (also when the body was left out)."),
    bodyPruned: {
      type: "boolean",
      description: "The body was left out (pruned at the replica, or too large to travel beside other blocks; GET /v1/blocks/:height asks for it alone): only the certified header is known.",
    },
    signers: { type: "array", items: { type: "integer" }, description: "Replicas whose commit-certificate signatures the gateway verified." },
    transactions: {
      type: "array",
      items: {
        type: "object",
        properties: {
          id: text("SHA-256 of the envelope, hex."),
          envelope: text("The signed envelope, base64."),
          resultBytes: text("The encoded result, base64."),
          clientKey: text("The signer, hex (absent if the envelope does not decode)."),
          nonce: integer("The signer's nonce."),
          operation: text("put, get, delete, cas, mint, transfer or balance."),
          result: resultSchema,
        },
      },
    },
  },
} as const;

export const kvGetSchema = {
  summary: "Read a key",
  description: "The value as JSON, or the raw bytes with a Bulwark-Height header when the request accepts application/octet-stream.",
  tags: ["kv"],
  params: keyParams,
  querystring: consistencyQuery,
  response: {
    200: {
      description: "The key's value",
      content: {
        "application/json": {
          schema: { type: "object", properties: { key: { type: "string" }, value: { type: "string" }, encoding: encodingProperty, height: HEIGHT, seq: SEQ } },
        },
        "application/octet-stream": { schema: { type: "string", format: "binary" } },
      },
    },
    ...errorResponses,
  },
} as const;

export const kvPutSchema = {
  summary: "Write a key",
  description: "The request body is the value, byte for byte, whatever its Content-Type.",
  tags: ["kv"],
  params: keyParams,
  // No type: the body is a Buffer whatever was sent (see kv-routes.ts), and the OpenAPI type
  // "binary string" is not one the validator could check a Buffer against.
  body: { content: { "application/octet-stream": { schema: { description: "The value, up to 64 KiB of any bytes." } } } },
  response: {
    200: { description: "Committed", type: "object", properties: { key: { type: "string" }, height: HEIGHT, seq: SEQ } },
    ...errorResponses,
  },
} as const;

export const kvDeleteSchema = {
  summary: "Delete a key",
  tags: ["kv"],
  params: keyParams,
  response: {
    200: {
      description: "Committed; deleted says whether the key was present",
      type: "object",
      properties: { key: { type: "string" }, deleted: { type: "boolean" }, height: HEIGHT, seq: SEQ },
    },
    ...errorResponses,
  },
} as const;

export const kvCasSchema = {
  summary: "Compare and set a key",
  description: "Sets the key to value if its current value is expected (null: if it is absent). Both a swap and a mismatch are committed results: swapped says which.",
  tags: ["kv"],
  params: keyParams,
  body: {
    type: "object",
    required: ["expected", "value"],
    properties: {
      expected: { type: ["string", "null"], description: "The value the key must hold, or null for absent." },
      value: { type: "string", description: "The new value." },
      encoding: { ...encodingProperty, default: "utf8", description: "How expected and value are written: utf8 (default) or base64." },
    },
    additionalProperties: false,
  },
  response: {
    200: { description: "Committed", type: "object", properties: { key: { type: "string" }, swapped: { type: "boolean" }, height: HEIGHT, seq: SEQ } },
    ...errorResponses,
  },
} as const;

export const transactionSchema = {
  summary: "Submit a pre-signed transaction",
  description:
    "The envelope as the raw bytes (application/octet-stream) or as JSON { envelope: base64 }. It is checked (format, signature) and sent as it is. A transaction the ledger refused is answered 409 (nonce errors) or 422 with the committed result.",
  tags: ["transactions"],
  body: {
    content: {
      "application/octet-stream": { schema: { description: "The canonical envelope bytes." } },
      "application/json": {
        schema: { type: "object", required: ["envelope"], properties: { envelope: text("The envelope, base64.") }, additionalProperties: false },
      },
    },
  },
  response: {
    200: {
      description: "Committed",
      type: "object",
      properties: {
        id: text("SHA-256 of the envelope, hex."),
        clientKey: text("The signer, hex."),
        nonce: integer("The envelope's nonce."),
        operation: text("The operation type."),
        result: resultSchema,
        height: HEIGHT,
        seq: SEQ,
        replicas: { type: "array", items: { type: "integer" }, description: "The replicas whose results agreed." },
      },
    },
    ...errorResponses,
  },
} as const;

export const accountSchema = {
  summary: "Read an account",
  tags: ["accounts"],
  params: { type: "object", required: ["id"], properties: { id: { type: "string", description: "The account's public key, 64 hex digits." } } },
  querystring: consistencyQuery,
  response: {
    200: {
      description: "The account (a key never used has balance 0 and next nonce 1)",
      type: "object",
      properties: { id: text("Hex."), balance: text("A decimal integer."), nextNonce: integer("The nonce its next transaction must carry."), height: HEIGHT, seq: SEQ },
    },
    ...errorResponses,
  },
} as const;

export const blockSchemaRoute = {
  summary: "Read a block",
  description: "A block whose commit certificate (and body) the gateway verified with the cluster's keys.",
  tags: ["blocks"],
  params: { type: "object", required: ["height"], properties: { height: digits("The height, from 1.") } },
  response: { 200: { description: "The block", ...blockSchema }, ...errorResponses },
} as const;

export const blocksSchema = {
  summary: "Read consecutive blocks",
  tags: ["blocks"],
  querystring: {
    type: "object",
    properties: {
      from: digits("The first height, from 1 (default 1)."),
      limit: digits(`How many blocks, 1 to ${BLOCKS_LIMIT_MAX} (default 10).`),
    },
    additionalProperties: false,
  },
  response: {
    200: {
      description: "Ascending and contiguous from `from`; fewer than `limit` at the end of the chain",
      type: "object",
      properties: { blocks: { type: "array", items: blockSchema } },
    },
    ...errorResponses,
  },
} as const;

const replicaStatusSchema = {
  type: "object",
  properties: {
    replica: integer("The replica's id."),
    address: text("host:port."),
    reachable: { type: "boolean" },
    role: { type: "string", enum: ["primary", "backup", "view-change", "unreachable"] },
    view: integer("The replica's current view."),
    primary: integer("The primary of that view."),
    normal: { type: "boolean", description: "False during a view change." },
    executedHeight: integer("The highest block it executed."),
    stableCheckpoint: integer("Its stable checkpoint's height."),
    certifiedHeight: integer("The highest block it holds a commit certificate for."),
  },
} as const;

const vouched = (what: string) => ({
  type: ["integer", "null"],
  description: `${what}: the (f + 1)-th highest of the replicas' reports, so at least one correct replica reached it; null when fewer than f + 1 replicas answered.`,
});

export const statusSchema = {
  summary: "Cluster status",
  tags: ["cluster"],
  response: {
    200: {
      description: "What each replica reports, and what f + 1 of them vouch for",
      type: "object",
      properties: {
        n: integer("Replicas in the cluster."),
        f: integer("Faulty replicas tolerated."),
        reachable: integer("Replicas that answered."),
        quorum: integer("2f + 1: the replicas the cluster needs to commit."),
        quorumReachable: { type: "boolean", description: "Whether 2f + 1 replicas answered, enough for the cluster to commit." },
        view: vouched("The view"),
        primary: { type: ["integer", "null"], description: "The primary of that view." },
        executedHeight: vouched("The executed height"),
        stableCheckpoint: vouched("The stable checkpoint"),
        certifiedHeight: vouched("The highest certified block"),
        replicas: { type: "array", items: replicaStatusSchema },
      },
    },
    ...errorResponses,
  },
} as const;

export const metricsSchema = {
  summary: "Prometheus metrics of the gateway process",
  tags: ["operations"],
  response: { 200: { description: "Prometheus text exposition format", content: { "text/plain": { schema: { type: "string" } } } } },
} as const;

export const docsSchema = {
  summary: "This OpenAPI document",
  tags: ["operations"],
  response: { 200: { description: "OpenAPI 3", type: "object", additionalProperties: true } },
} as const;
