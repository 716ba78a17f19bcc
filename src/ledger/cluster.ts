// The cluster's public configuration: who the replicas are, their keys, the genesis authority
// and the protocol parameters. `bulwark init` writes it as `cluster.json`, every replica reads it
// at start, and it is the only trust root of every third-party verifier (verify.ts): a block, a
// transaction's inclusion or a key's value is believed because 2f + 1 of the keys listed here
// signed for it (DESIGN.md, "Data model").
//
// This file holds the types and defaults; cluster-json.ts reads (validating every rule, with
// messages that say what to fix) and writes the JSON form.

/** The JSON format version this build reads and writes. */
export const CLUSTER_CONFIG_VERSION = 1;

/**
 * Most replicas a cluster may list. PBFT's all-to-all rounds cost n² messages, so clusters far
 * beyond a few dozen replicas are impractical; the bound keeps replica ids within a u16 in
 * certificates and keeps a hostile config from making a verifier allocate without limit.
 */
export const CLUSTER_REPLICAS_MAX = 1024;

/**
 * A cluster id: 1 to 64 ASCII letters, digits, ".", "_" or "-", starting with a letter or digit.
 * It is written into every block header and every commit signature, so a block certified by one
 * cluster can never pass as another's (with sharding, several clusters share one key holder).
 */
export const CLUSTER_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface ClusterReplica {
  /** The replica's index, 0 .. n - 1; the primary of view v is replica v mod n. */
  readonly id: number;
  /** Where peers and clients reach it: "host:port" (an IPv6 host in brackets). */
  readonly address: string;
  /** Raw 32-byte Ed25519 public key; it signs checkpoints, view changes and commit certificates. */
  readonly publicKey: Uint8Array;
}

/**
 * The PBFT core's parameters (the fields of `PbftConfig` other than n, with the same names, so a
 * runtime builds that config as `{ n, ...protocol }`), plus the tick length that turns them into
 * time. Every replica must run with the same values.
 */
export interface ProtocolParameters {
  /** Milliseconds per tick of the runtime's timer; the core counts time only in ticks. */
  readonly tickMs: number;
  /** Sequence numbers between checkpoints (PBFT's K). */
  readonly checkpointInterval: number;
  /** Watermark window L: sequence numbers in (h, h + L] are accepted. A multiple of K. */
  readonly watermarkWindow: number;
  /** Most requests in one batch, and so in one block. */
  readonly maxBatchSize: number;
  /** Ticks the primary waits to fill a batch before it proposes a partial one (0: never waits). */
  readonly batchDelayTicks: number;
  /** Ticks a backup waits for a pending request to execute before it starts a view change. */
  readonly viewChangeTimeoutTicks: number;
  /** Cap on the view-change timeout, which doubles with every failed view. */
  readonly viewChangeTimeoutMaxTicks: number;
  /** Ticks between STATUS broadcasts and retransmissions of unfinished work. */
  readonly statusIntervalTicks: number;
  /** Most distinct clients with a request waiting at one replica; more are dropped and counted. */
  readonly maxPendingRequests: number;
}

/**
 * The defaults `bulwark init` writes, and the parser fills in for a field left out. Chosen for a
 * local-network cluster: with 10 ms ticks a backup suspects the primary after 2 s and backs off to
 * at most a minute; a checkpoint every 128 blocks bounds the log at 512 blocks above the last
 * stable checkpoint.
 */
export const DEFAULT_PROTOCOL_PARAMETERS: ProtocolParameters = Object.freeze({
  tickMs: 10,
  checkpointInterval: 128,
  watermarkWindow: 512,
  maxBatchSize: 256,
  // A partial batch waits only while another is in flight (consensus/pbft/normal-case.ts), so
  // this is a cap: up to 100 ms for the batch ahead to commit, after which the requests that came
  // meanwhile go as one batch. With 1 tick, partial batches went every 10 ms under load, each
  // costing every replica ~5 ms of CPU: kv open loop at 500 tx/s p50 52.7/29.2 -> 27.3/21.2 ms,
  // at 2,867 tx/s p50 714/410 -> 132/154 ms (two A/B pairs, docs/PERFORMANCE.md round 4).
  batchDelayTicks: 10,
  viewChangeTimeoutTicks: 200,
  viewChangeTimeoutMaxTicks: 6000,
  statusIntervalTicks: 50,
  maxPendingRequests: 10_000,
});

/**
 * A validated cluster config. Only `parseClusterConfig` (cluster-json.ts) makes these, so its invariants hold:
 * n = 3f + 1, `replicas[i].id === i`, every key is a usable Ed25519 key and no key or address
 * appears twice.
 */
export interface ClusterConfig {
  readonly version: typeof CLUSTER_CONFIG_VERSION;
  readonly clusterId: string;
  readonly n: number;
  readonly f: number;
  /** Sorted by id: `replicas[i]` is replica i. */
  readonly replicas: readonly ClusterReplica[];
  /** Raw Ed25519 public key of the only account that may mint tokens. */
  readonly genesisAuthority: Uint8Array;
  readonly protocol: ProtocolParameters;
}

/** Signatures a commit certificate needs: 2f + 1, so at least f + 1 come from correct replicas. */
export function certificateQuorum(cluster: ClusterConfig): number {
  return 2 * cluster.f + 1;
}

/** The public key of replica `id`, or undefined for an id outside the cluster (never throws). */
export function replicaPublicKey(cluster: ClusterConfig, id: number): Uint8Array | undefined {
  if (!Number.isSafeInteger(id) || id < 0 || id >= cluster.replicas.length) return undefined;
  return cluster.replicas[id]?.publicKey;
}
