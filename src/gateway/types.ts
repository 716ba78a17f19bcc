// The gateway's view of the client SDK and its own options. `GatewayLedger` names exactly the
// BulwarkClient members the gateway uses, with the SDK's own types, so the routes can be tested
// against an in-memory fake (test/gateway/fake-ledger.ts) that a change of the SDK breaks at
// compile time.

import type { Logger } from "pino";

import type { BulwarkClient } from "../client/client.js";
import type { ClientOptions, Consistency } from "../client/types.js";
import type { Ed25519PrivateKey } from "../crypto/ed25519.js";
import type { ClusterConfig } from "../ledger/cluster.js";

export const READ_CONSISTENCIES: readonly Consistency[] = ["linearizable", "proof"];

/** The members of a connected BulwarkClient the gateway calls. */
export type GatewayLedger = Pick<
  BulwarkClient,
  "counters" | "inFlight" | "connectedReplicas" | "height" | "submit" | "submitEnvelope" | "read" | "account" | "status" | "block" | "blocks" | "close"
>;

/** Default number of writer keys: KV writes and linearizable reads of one key run one at a time, so the pool sets the parallelism. */
export const WRITER_KEYS_DEFAULT = 16;
/** Upper bound of `writerKeys`: each writer holds a connection to every replica. */
export const WRITER_KEYS_MAX = 256;
/** Default bound of calls into the cluster the gateway waits on at once; beyond it requests get 503. */
export const CALLS_PENDING_MAX_DEFAULT = 4_096;
/**
 * Default limit of a request body. The largest legitimate body is a compare-and-set of two 64 KiB
 * values in base64 JSON (about 171 KiB); a pre-signed envelope in base64 JSON is about 172 KiB.
 */
export const BODY_LIMIT_BYTES_DEFAULT = 256 * 1024;
export const BLOCKS_PER_PAGE_DEFAULT = 10;
export const GATEWAY_HOST_DEFAULT = "127.0.0.1";
export const GATEWAY_PORT_DEFAULT = 8080;

/** Per-call options of the clients the gateway connects itself. */
export type GatewayClientOptions = Omit<ClientOptions, "cluster" | "privateKey" | "firstNonce">;

export interface GatewayOptions {
  readonly cluster: ClusterConfig;
  /** Where `cluster` was read from; only reported in the start-up log line. */
  readonly clusterPath?: string;
  /**
   * The key of the client the gateway connects for calls that sign nothing (proof reads, status,
   * blocks, pre-signed envelopes) when `client` is not given. The gateway never signs with it, so
   * sharing it with another process (the CLI's client.key) costs no nonces.
   */
  readonly privateKey: Ed25519PrivateKey;
  /** A connected client for the calls that sign nothing; the gateway does not close it. */
  readonly client?: GatewayLedger;
  /**
   * Connected clients for the calls that sign (KV writes, linearizable reads), each with its own
   * key; the gateway does not close them. Default: `writerKeys` clients of fresh keys, closed with
   * the gateway.
   */
  readonly writers?: readonly GatewayLedger[];
  /** How many fresh writer keys to connect when `writers` is not given. Default 16. */
  readonly writerKeys?: number;
  /** Options of the clients the gateway connects (deadlines, transport). */
  readonly clientOptions?: GatewayClientOptions;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 8080; 0 picks a free port (see the returned url). */
  readonly port?: number;
  /** Fastify logs through it; default: pino at "info" on stdout. */
  readonly logger?: Logger;
  /** Whether every request is logged (at info) when it arrives and when it is answered. Default false. */
  readonly logRequests?: boolean;
  /** Largest request body; larger ones are answered 413 without being read whole. Default 256 KiB. */
  readonly bodyLimitBytes?: number;
  /** Most calls into the cluster waited on at once; more are answered 503. Default 4,096. */
  readonly callsPendingMax?: number;
  /**
   * Stops starting: connecting the clients stops at once, startGateway rejects with
   * RequestAbortedError and leaves nothing running. (It has no effect once the gateway listens;
   * use `close`.)
   */
  readonly signal?: AbortSignal;
}

export interface Gateway {
  /** The base URL, e.g. "http://127.0.0.1:8080". */
  readonly url: string;
  /** Stops accepting requests, waits for the ones in progress, and closes the clients the gateway connected. */
  close(): Promise<void>;
}
