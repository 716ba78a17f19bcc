// How the commands that run a cluster on this machine (`bulwark up`, `bulwark bench`) start its
// replicas: each is `bulwark replica` in a child process of its own (replica-processes.ts), with
// its data and log in the cluster's directory, and the machine's cores shared among them.

import { createServer } from "node:net";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import type { ClusterConfig } from "../ledger/cluster.js";
import type { ReplicaProcessSpec } from "./replica-processes.js";

/** dist/src/cli/ → the repository root, where bin/bulwark.js loads dist/src/cli/main.js. */
export const BULWARK_BIN = fileURLToPath(new URL("../../../bin/bulwark.js", import.meta.url));
/** How long a SIGTERM'd replica may take to finish its blocks and close its store before SIGKILL. */
export const STOP_GRACE_MS = 10_000;

/**
 * Whether `port` on `host` can be listened on now: undefined if so, else the listen error. Both
 * commands check the ports a cluster will take before starting it (`up` to name a conflict,
 * `bench` to find free ones).
 */
export function tryListen(host: string, port: number): Promise<unknown> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", (error) => resolve(error));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/**
 * Signature-verification threads per replica: the machine's cores shared among the n replicas,
 * not the replica's default of one per core, which would run n times as many threads as there
 * are cores.
 */
export function verifyWorkersPerReplica(n: number): number {
  return Math.max(1, Math.floor(availableParallelism() / n));
}

/**
 * Node flags for replicas that share the machine's cores: V8's single-threaded garbage
 * collection when there are fewer than two cores per replica. V8 otherwise runs each scavenge
 * and mark on helper threads as well, which on a machine already busy with the other replicas
 * only adds hand-offs: 4 replicas on 2 cores, kv at full load, four A/B pairs of 40 s (2026-11-22,
 * docs/PERFORMANCE.md): 3.4-4.4 % less CPU per transaction and 3-6 % more committed with the flag,
 * in every pair. A replica with cores to itself (one per machine) keeps the parallel collector.
 */
export function sharedCoreNodeFlags(n: number, cores = availableParallelism()): string[] {
  return cores < 2 * n ? ["--single-threaded-gc"] : [];
}

export interface LocalReplicaOptions {
  readonly cluster: ClusterConfig;
  readonly clusterPath: string;
  /** Replica i keeps its data in DIR/replica-<i> and logs to DIR/replica-<i>.log. */
  readonly dir: string;
  /** Replica i serves metrics on this port + i; none when undefined. */
  readonly metricsBasePort?: number;
  /** Node flags before the script (e.g. --cpu-prof), after `sharedCoreNodeFlags`; none by default. */
  readonly nodeFlags?: readonly string[];
  /** Start the replicas with --session-auth (the benchmark's `--auth session`); off by default. */
  readonly sessionAuth?: boolean;
  /** Start the replicas with --retain-blocks N (the benchmark's option); all bodies kept by default. */
  readonly retainBlocks?: number;
}

export function localReplicaSpecs(options: LocalReplicaOptions): ReplicaProcessSpec[] {
  const { cluster, clusterPath, dir, metricsBasePort, nodeFlags = [] } = options;
  const verifyWorkers = String(verifyWorkersPerReplica(cluster.n));
  return cluster.replicas.map(({ id }) => ({
    id,
    logPath: join(dir, `replica-${id}.log`),
    args: [
      ...sharedCoreNodeFlags(cluster.n),
      ...nodeFlags,
      BULWARK_BIN,
      "replica",
      "--cluster",
      clusterPath,
      "--id",
      String(id),
      "--data",
      join(dir, `replica-${id}`),
      "--verify-workers",
      verifyWorkers,
      ...(metricsBasePort === undefined ? [] : ["--metrics-port", String(metricsBasePort + id)]),
      ...(options.sessionAuth === true ? ["--session-auth"] : []),
      ...(options.retainBlocks === undefined ? [] : ["--retain-blocks", String(options.retainBlocks)]),
    ],
  }));
}
