// The gateway's view of the client SDK and its own options. `GatewayLedger` lists exactly the
// BulwarkClient members the gateway uses, written down here rather than imported, so the routes
// can be tested against an in-memory fake and so a change of the SDK's shapes shows up as one
// compile error where a BulwarkClient is handed to the gateway (gateway.ts), not as a wrong
// response. The shapes follow the issue 4 contract (docs of `read`, `status`, `block(s)`).

import type { Logger } from "pino";

import type { Operation } from "../app/transaction.js";
import type { ClientCounters, ClientOptions, Committed, SubmitOptions } from "../client/types.js";
import type { Ed25519PrivateKey } from "../crypto/ed25519.js";
import type { ClusterConfig } from "../ledger/cluster.js";

/** How a read is answered: through consensus (a read transaction), or by one replica with a verified proof. */
export type ReadConsistency = "linearizable" | "proof";

export const READ_CONSISTENCIES: readonly ReadConsistency[] = ["linearizable", "proof"];

export interface LedgerReadOptions {
  readonly consistency?: ReadConsistency;
  readonly signal?: AbortSignal;
}

/** One replica's answer to a status request, as the SDK reports it; the optional fields are absent when it did not answer. */
export interface LedgerReplicaStatus {
  readonly replica: number;
  readonly address: string;
  readonly reachable: boolean;
  readonly view?: number;
  readonly primary?: number;
  /** False while the replica is in a view change. */
  readonly normal?: boolean;
  readonly executedHeight?: number;
  readonly stableCheckpoint?: number;
  readonly certifiedHeight?: number;
}

/**
 * A block whose commit certificate (and body, unless pruned) the SDK verified against the
 * cluster's keys. The header carries no view, so neither does this.
 */
export interface LedgerBlock {
  readonly height: number;
  readonly seq: number;
  /** Hex, like the other hashes and roots. */
  readonly hash: string;
  readonly previousHash: string;
  readonly stateRoot: string;
  readonly transactionRoot: string;
  readonly resultsRoot: string;
  readonly transactionCount: number;
  /** Transaction envelopes, in block order; empty when the body was not sent (`bodyPruned`). */
  readonly transactions: readonly Uint8Array[];
  /** The encoded result of each transaction, in the same order. */
  readonly results: readonly Uint8Array[];
  /** Replicas whose certificate signatures verified. */
  readonly signers: readonly number[];
  /** Whether the body was left out (pruned at the replica, or too large for a `blocks` answer): only the certified header is known. */
  readonly bodyPruned: boolean;
}

/** The members of a connected BulwarkClient the gateway calls. */
export interface GatewayLedger {
  readonly counters: Readonly<ClientCounters>;
  /** Requests in flight in the client, including those whose callers stopped waiting. */
  readonly inFlight: number;
  readonly connectedReplicas: number;
  /** Signs `operation` with the client's key and its next nonce; the result f + 1 replicas agreed on. */
  submit(operation: Operation, options?: SubmitOptions): Promise<Committed>;
  /** Sends a pre-signed envelope as it is; its result, failures included, is returned. */
  submitEnvelope(envelope: Uint8Array, options?: SubmitOptions): Promise<Committed>;
  read(key: Uint8Array, options?: LedgerReadOptions): Promise<{ readonly value: Uint8Array | undefined; readonly height: number }>;
  account(id: Uint8Array, options?: LedgerReadOptions): Promise<{ readonly balance: bigint; readonly nextNonce: number; readonly height: number }>;
  /** One entry per replica; never rejects for unreachable ones. */
  status(options?: { readonly timeoutMs?: number }): Promise<readonly LedgerReplicaStatus[]>;
  /** Undefined when no replica has the block (yet). */
  block(height: number, options?: { readonly signal?: AbortSignal }): Promise<LedgerBlock | undefined>;
  /** Ascending and contiguous from `from`; at most `limit` (at most BLOCKS_PER_PAGE_MAX) blocks. */
  blocks(from: number, limit: number, options?: { readonly signal?: AbortSignal }): Promise<readonly LedgerBlock[]>;
  close(): Promise<void>;
}

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
/** Most blocks one GET /v1/blocks returns (the SDK's limit). */
export const BLOCKS_PER_PAGE_MAX = 100;
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
}

export interface Gateway {
  /** The base URL, e.g. "http://127.0.0.1:8080". */
  readonly url: string;
  /** Stops accepting requests, waits for the ones in progress, and closes the clients the gateway connected. */
  close(): Promise<void>;
}
