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

export interface LocalReplicaOptions {
  readonly cluster: ClusterConfig;
  readonly clusterPath: string;
  /** Replica i keeps its data in DIR/replica-<i> and logs to DIR/replica-<i>.log. */
  readonly dir: string;
  /** Replica i serves metrics on this port + i; none when undefined. */
  readonly metricsBasePort?: number;
  /** Node flags before the script (e.g. --cpu-prof); none by default. */
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
    // V8's default, parallel collector. `--single-threaded-gc` (2f5a737, when replicas share the
    // cores) saved 3.4-4.4 % of a transaction's CPU, but with it a major GC stopped a replica for
    // up to 0.52 s (the old generation compacted on the main thread) against 0.05-0.24 s, and
    // scavenges took 28-30 ms against 19-20 ms mean (kv at full load, --trace-gc, 2026-11-22).
    // A backup that sees no execution for the view-change timeout suspects the primary, and the
    // two 300 s runs with the flag each had a view change (none before them had one); pauses like
    // these are the likely cause, not a shown one (docs/PERFORMANCE.md, round 5). Short pauses
    // are worth more than the CPU the flag saved.
    args: [
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
