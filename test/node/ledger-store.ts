// A replica store built the way a replica builds it: a random signed workload (kv traffic, mints,
// transfers, double spends, replays, forgeries, gapped nonces, undecodable envelopes) committed
// batch by batch through the BlockPipeline, every block certified by the test cluster's replica
// keys. Shared by the pipeline and verify tests and the verify measurement. Not a test file.

import type { Ed25519KeyPair } from "../../src/crypto/ed25519.js";
import type { ClientRequest } from "../../src/consensus/pbft/types.js";
import type { ClusterConfig } from "../../src/ledger/cluster.js";
import { parseClusterConfig } from "../../src/ledger/cluster-json.js";
import { BlockPipeline } from "../../src/node/block-pipeline.js";
import { certifyWithKeys } from "../../src/node/certify.js";
import { Random } from "../../src/sim/random.js";
import { ReplicaStore } from "../../src/storage/index.js";
import { AUTHORITY } from "../app/ledger-fixtures.js";
import { LedgerWorkload } from "../app/ledger-workload.js";
import { clusterJson } from "../ledger/fixtures.js";
import { hex, randomBytes } from "../support/random-bytes.js";

export interface LedgerCluster {
  readonly config: ClusterConfig;
  readonly keys: readonly Ed25519KeyPair[];
}

/** Four replicas with seeded keys; the genesis authority is the ledger fixtures' AUTHORITY. */
export function ledgerCluster(clusterId = "test-cluster"): LedgerCluster {
  const { json, keys } = clusterJson(4, 11, clusterId);
  return { config: parseClusterConfig({ ...json, genesisAuthority: hex(AUTHORITY.publicKey) }), keys };
}

export interface BuildOptions {
  readonly directory: string;
  readonly batches: number;
  readonly clientCount: number;
  readonly seed: number;
  /** Attach the certificates of every `lateCertificateEvery`-th block after the commit (default 4). */
  readonly lateCertificateEvery?: number;
  /** Pad each batch with extra transfers up to this many requests (for large stores). */
  readonly requestsPerBatchMin?: number;
}

export interface BuiltStore {
  readonly blocks: number;
  readonly transactions: number;
}

/** An undecodable envelope: committed with an error result like any other transaction. */
function garbageRequest(random: Random): ClientRequest {
  return { client: "", timestamp: 0, operation: randomBytes(random, random.between(1, 80)), signature: "" };
}

/** Opens (creating) replica 0's store in `options.directory`, fills it and closes it. */
export async function buildLedgerStore(cluster: LedgerCluster, options: BuildOptions): Promise<BuiltStore> {
  const store = await ReplicaStore.open({ directory: options.directory, clusterId: cluster.config.clusterId, replicaId: 0, sync: "none" });
  try {
    const pipeline = BlockPipeline.open({ cluster: cluster.config, store });
    const random = new Random(options.seed);
    const workload = new LedgerWorkload(random, pipeline.application, { clientCount: options.clientCount, forgeries: true });
    const privateKeys = cluster.keys.map((key) => key.privateKey);
    const lateEvery = options.lateCertificateEvery ?? 4;
    let transactions = 0;
    for (let index = 0; index < options.batches; index++) {
      const requests = index === 0 ? workload.genesis(1_000_000n) : workload.nextBatch();
      while (requests.length < (options.requestsPerBatchMin ?? 0)) requests.push(...workload.nextBatch());
      if (random.chance(0.3)) requests.splice(random.below(requests.length + 1), 0, garbageRequest(random));
      const seq = pipeline.height + 1;
      const batch = { seq, view: Math.floor(seq / 10), digest: `batch ${seq}`, requests };
      transactions += requests.length;
      if (seq % lateEvery === 0) {
        // A replica's way: the block first, its certificate when the signatures have arrived.
        const { block } = await pipeline.commit(batch);
        await pipeline.attachCertificate(seq, certifyWithKeys(privateKeys, block.header));
      } else {
        await pipeline.commit(batch, (header) => certifyWithKeys(privateKeys, header));
      }
    }
    return { blocks: pipeline.height, transactions };
  } finally {
    await store.close();
  }
}
