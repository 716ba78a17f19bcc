// The single-process baseline of `bulwark bench --baseline` (issue 5 §1): the same application and
// storage a replica runs, in one process, with no network, no consensus and no replication, so
// that the cost of Byzantine fault tolerance is the ratio of two figures measured in one run.
//
// What is the same as a replica: each envelope is decoded and (when signed) verified once, with
// the replica's backend and, by default, as many verification workers as a replica starts
// (baseline-admission.ts); batches go through the replica's BlockPipeline, which executes them
// with the ledger application (built as a replica builds it: signatures already checked at
// intake, so not again at execution) and stores each block with its state changes in ONE LMDB
// transaction, with the replica's durability ("durable": fsynced before a reply). What is left
// out is exactly what replication costs: the network, the three-phase agreement and its record
// log, checkpoints, and the commit certificate (blocks are stored without one).
//
// The cluster is one node (n = 1, f = 0) whose genesis authority is the workload's, so the setup
// rounds' mints succeed. The store is a fresh one in `dataDir` and stays there afterwards.

import { createLedgerApplication } from "../app/ledger-application.js";
import { resultErrorCode } from "../app/result.js";
import type { ClientRequest } from "../consensus/pbft/types.js";
import { describePublicKeyProblem, ed25519KeyPairFromSeed, ed25519PublicKeyProblem } from "../crypto/ed25519.js";
import { sha256 } from "../crypto/sha256.js";
import { BLOCK_TRANSACTIONS_MAX } from "../ledger/block-header.js";
import { CLUSTER_CONFIG_VERSION, type ClusterConfig, DEFAULT_PROTOCOL_PARAMETERS } from "../ledger/cluster.js";
import { resolveVerifyWorkers } from "../crypto/verify-pool.js";
import { BlockPipeline } from "../node/block-pipeline.js";
import { VERIFY_WORKERS_MAX } from "../node/replica-runtime.js";
import { ReplicaStore, type SyncPolicy } from "../storage/index.js";
import { EnvelopeAdmission } from "./baseline-admission.js";
import { ClosedLoop } from "./baseline-loop.js";
import type { LatencyHistogram } from "./histogram.js";
import type { BenchWorkload, LoadResult } from "./types.js";

/** The cluster id of the baseline's store (and of its blocks). */
export const BASELINE_CLUSTER_ID = "bulwark-baseline";

export interface BaselineOptions {
  readonly workload: BenchWorkload;
  /** The genesis authority's raw public key: the workload's minting key. */
  readonly authority: Uint8Array;
  /** Closed-loop clients, 1 .. workload.clients. */
  readonly clients: number;
  /** The timed window, at least 1 second; `windows` has one entry per whole second of it. */
  readonly durationS: number;
  /** Seconds of load before the timed window, not measured. */
  readonly warmupS: number;
  /** Most transactions in one batch (one block), 1 .. BLOCK_TRANSACTIONS_MAX. */
  readonly batchSize: number;
  /** Where the store is created; it must not hold one already, and it is left in place. */
  readonly dataDir: string;
  /** Default "durable", a replica's default: every block is fsynced before its clients count it. */
  readonly sync?: SyncPolicy;
  /** Signature verification threads; default as a replica: os.availableParallelism(), at most VERIFY_WORKERS_MAX; 0 verifies inline. */
  readonly verifyWorkers?: number;
  /** Called every second of warm-up and timed window with the transactions committed in the timed window so far (0 in warm-up). */
  readonly onSecond?: (committedSoFar: number) => void;
  /**
   * Ctrl-C: during setup the run rejects with the signal's reason; during the load it ends early
   * and resolves with what was measured (whole seconds only), as the load driver does.
   */
  readonly signal?: AbortSignal;
}

/**
 * The load's figures with the latency histogram they summarize (for the JSON report), and what the
 * whole process spent in the timed window (worker threads included).
 */
export interface BaselineResult extends LoadResult {
  readonly histogram: LatencyHistogram;
  readonly cpuSeconds: number;
  readonly peakRssBytes: number;
}

/**
 * Runs the workload's setup rounds (untimed), then its closed loop for warm-up and the timed
 * window. Rejects with a RangeError for bad options, an Error naming the transaction when a setup
 * transaction is refused, StorageRefusedError for a data directory the store cannot use, and the
 * abort reason when `signal` fires before the load starts. Envelopes the workload hands out
 * during the load are input: bad ones count as errors.
 */
export async function runBaseline(options: BaselineOptions): Promise<BaselineResult> {
  const verifyWorkers = checkOptions(options);
  options.signal?.throwIfAborted();
  const cluster = baselineCluster(options.authority, options.batchSize);
  const store = await ReplicaStore.open({ directory: options.dataDir, clusterId: cluster.clusterId, replicaId: 0, sync: options.sync ?? "durable" });
  let admission: EnvelopeAdmission | undefined;
  try {
    if (store.latestHeight() !== undefined || store.appliedState() !== undefined) {
      throw new Error(`baseline: ${options.dataDir} already holds a baseline store; give an empty or new directory`);
    }
    admission = EnvelopeAdmission.create(verifyWorkers);
    // As a replica builds it (replica-runtime.ts): the intake verified every signature already.
    const application = createLedgerApplication({ authority: cluster.genesisAuthority, verifySignatures: false });
    const pipeline = BlockPipeline.open({ cluster, store, application });
    await runSetup(options, admission, pipeline);
    return await new ClosedLoop({
      workload: options.workload,
      admission,
      pipeline,
      clients: options.clients,
      batchSize: options.batchSize,
      writesInFlightMax: cluster.protocol.watermarkWindow,
      warmupS: options.warmupS,
      durationS: options.durationS,
      ...(options.onSecond === undefined ? {} : { onSecond: options.onSecond }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    }).run();
  } finally {
    await admission?.close();
    await store.close();
  }
}

/**
 * A one-node cluster: n = 1, f = 0 (n = 3f + 1 holds), the workload's authority, and the batch
 * size as its maxBatchSize. `parseClusterConfig` refuses it (a deployed cluster has at least four
 * replicas), so it is built here; the pipeline reads only its id, since no block is certified.
 * The node's key is fixed and signs nothing.
 */
export function baselineCluster(authority: Uint8Array, batchSize: number): ClusterConfig {
  const node = ed25519KeyPairFromSeed(sha256(new TextEncoder().encode("bulwark baseline node")));
  return {
    version: CLUSTER_CONFIG_VERSION,
    clusterId: BASELINE_CLUSTER_ID,
    n: 1,
    f: 0,
    replicas: [{ id: 0, address: "127.0.0.1:0", publicKey: node.publicKey }],
    genesisAuthority: authority,
    protocol: { ...DEFAULT_PROTOCOL_PARAMETERS, maxBatchSize: batchSize },
  };
}

/** Commits the workload's setup rounds in order, each in batches; every transaction must succeed. */
async function runSetup(options: BaselineOptions, admission: EnvelopeAdmission, pipeline: BlockPipeline): Promise<void> {
  let round = 0;
  for (const envelopes of options.workload.setupRounds()) {
    round += 1;
    options.signal?.throwIfAborted();
    const verdicts = await admission.admit(envelopes);
    const requests: ClientRequest[] = verdicts.map((verdict, index) => {
      if (!verdict.ok) throw new Error(`baseline setup: transaction ${index + 1} of round ${round} was refused before ordering (${verdict.refusal})`);
      return verdict.request;
    });
    const writes = [];
    for (let start = 0; start < requests.length; start += options.batchSize) {
      writes.push(pipeline.commit({ seq: pipeline.height + 1, view: 0, digest: "", requests: requests.slice(start, start + options.batchSize) }));
    }
    let position = 0;
    for (const block of await Promise.all(writes)) {
      for (const executed of block.executed) {
        position += 1;
        if (resultErrorCode(executed.result) !== undefined) {
          throw new Error(`baseline setup: transaction ${position} of round ${round} failed: ${resultErrorCode(executed.result)}`);
        }
      }
    }
  }
}

/** Checks what a user can get wrong (through the command's flags); returns the verify worker count. */
function checkOptions(options: BaselineOptions): number {
  const { workload, clients, durationS, warmupS, batchSize, authority } = options;
  if (!Number.isSafeInteger(clients) || clients < 1 || clients > workload.clients) {
    throw new RangeError(`baseline: clients must be a whole number from 1 to the workload's ${workload.clients}, not ${clients}`);
  }
  if (!Number.isFinite(durationS) || durationS < 1) throw new RangeError(`baseline: durationS must be at least 1 (throughput is the median of whole seconds), not ${durationS}`);
  if (!Number.isFinite(warmupS) || warmupS < 0) throw new RangeError(`baseline: warmupS must be 0 or more, not ${warmupS}`);
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > BLOCK_TRANSACTIONS_MAX) {
    throw new RangeError(`baseline: batchSize must be a whole number from 1 to ${BLOCK_TRANSACTIONS_MAX}, not ${batchSize}`);
  }
  const problem = ed25519PublicKeyProblem(authority);
  if (problem !== null) throw new RangeError(`baseline: the authority is not a usable public key: ${describePublicKeyProblem(problem, authority)}`);
  // As a replica resolves its own (replica-runtime.ts).
  return resolveVerifyWorkers(options.verifyWorkers, VERIFY_WORKERS_MAX);
}
