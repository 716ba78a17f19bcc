// The local cluster `bulwark bench` measures when no --cluster is given: created in a directory
// (a fresh temporary one by default, removed afterwards) as `bulwark init` would, with the
// benchmark's batch size, on free localhost ports, its replicas real `bulwark replica` processes
// started as `bulwark up` starts them (local-replicas.ts), with --session-auth only for a run in
// session mode (a replica takes session-authenticated requests only on that flag, so a signed run
// measures replicas as deployed without it). Storage stays durable, as a replica's default is.
// With --profile the replicas run under node's --cpu-prof, and since a profile is written only
// when the process exits on its own, they are always stopped with SIGTERM first.

import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";

import type { ClusterConfig } from "../ledger/cluster.js";
import { UsageError, readClusterForCli } from "./cluster-client.js";
import { CLUSTER_FILE_NAME, INIT_DEFAULTS, runInit } from "./init-command.js";
import { STOP_GRACE_MS, localReplicaSpecs, tryListen } from "./local-replicas.js";
import type { CliOutput } from "./output.js";
import { PORT_MAX } from "./parse.js";
import { ReplicaProcesses, type ReplicaProcessEvents, type ReplicaProcessSpec } from "./replica-processes.js";

/** Where the search for free replica ports starts: above `bulwark up`'s default 7000, so a running local cluster is left alone. */
const BASE_PORT_FIRST = 7400;
const BASE_PORT_STEP = 16;
const BASE_PORT_ATTEMPTS = 200;

export interface BenchClusterOptions {
  readonly dir: string;
  /** Whether `dir` is the bench's own temporary directory, removed when the cluster stops. */
  readonly temporary: boolean;
  readonly replicas: number;
  readonly batchSize: number;
  /** Whether --batch-size was given (an existing cluster with another batch size is then refused). */
  readonly batchSizeGiven: boolean;
  /** Start the replicas with --session-auth: for a run with `--auth session` only. */
  readonly sessionAuth: boolean;
  /** Write the replicas' CPU profiles here (node --cpu-prof). */
  readonly profileDir?: string;
  /** Start the replicas with --retain-blocks N. */
  readonly retainBlocks?: number;
  readonly output: CliOutput;
  readonly events?: ReplicaProcessEvents;
}

/**
 * The cluster `dir` holds already (reused as it is), or undefined when it holds none. Throws a
 * UsageError for a cluster file that cannot be read, or whose batch size is not a --batch-size
 * given on the command line.
 */
export function existingBenchCluster(dir: string, options: { readonly batchSize: number; readonly batchSizeGiven: boolean }): ClusterConfig | undefined {
  const clusterPath = join(dir, CLUSTER_FILE_NAME);
  if (!existsSync(clusterPath)) return undefined;
  const config = readClusterForCli(clusterPath);
  if (options.batchSizeGiven && config.protocol.maxBatchSize !== options.batchSize) {
    throw new UsageError(`${clusterPath} has a batch size of ${config.protocol.maxBatchSize}, not --batch-size ${options.batchSize}; drop --batch-size, or use another --dir`);
  }
  return config;
}

/** How the bench starts each replica of `config`: as `bulwark up` does, profiled with --profile, with --session-auth for a session run. */
export function benchReplicaSpecs(config: ClusterConfig, clusterPath: string, options: Pick<BenchClusterOptions, "dir" | "sessionAuth" | "profileDir" | "retainBlocks">): ReplicaProcessSpec[] {
  const nodeFlags = options.profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${options.profileDir}`];
  return localReplicaSpecs({
    cluster: config,
    clusterPath,
    dir: options.dir,
    nodeFlags,
    sessionAuth: options.sessionAuth,
    ...(options.retainBlocks === undefined ? {} : { retainBlocks: options.retainBlocks }),
  });
}

/** The first base port from which `n` consecutive ports are free. */
async function freeBasePort(host: string, n: number): Promise<number> {
  for (let attempt = 0; attempt < BASE_PORT_ATTEMPTS; attempt++) {
    const base = BASE_PORT_FIRST + attempt * BASE_PORT_STEP;
    if (base + n - 1 > PORT_MAX) break;
    let free = true;
    for (let id = 0; id < n && free; id++) free = (await tryListen(host, base + id)) === undefined;
    if (free) return base;
  }
  throw new Error(`no ${n} consecutive free ports on ${host} from ${BASE_PORT_FIRST}`);
}

export class BenchCluster {
  private constructor(
    readonly config: ClusterConfig,
    readonly clusterPath: string,
    private readonly processes: ReplicaProcesses,
    private readonly options: BenchClusterOptions,
    /** Whether the cluster was created for this run (so its authority's nonce starts at 1). */
    readonly created: boolean,
  ) {}

  /**
   * Creates the cluster in `dir` unless it is there already, and starts its replicas; resolves
   * once each one logged "replica started". Whatever fails, nothing is left running.
   */
  static async start(options: BenchClusterOptions): Promise<BenchCluster> {
    const clusterPath = join(options.dir, CLUSTER_FILE_NAME);
    let config = existingBenchCluster(options.dir, options);
    const created = config === undefined;
    if (config === undefined) {
      const basePort = await freeBasePort(INIT_DEFAULTS.host, options.replicas);
      const quiet: CliOutput = { out: () => undefined, err: (text) => options.output.err(text), interactive: false };
      const flags = { replicas: options.replicas, host: INIT_DEFAULTS.host, basePort, clusterId: "bulwark-bench", protocol: { maxBatchSize: options.batchSize } };
      const code = await runInit(options.dir, flags, quiet);
      if (code !== 0) throw new UsageError(`could not create the benchmark's cluster in ${options.dir} (see above)`);
      config = readClusterForCli(clusterPath);
    }
    const processes = new ReplicaProcesses(benchReplicaSpecs(config, clusterPath, options), options.events);
    const cluster = new BenchCluster(config, clusterPath, processes, options, created);
    try {
      await processes.start();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** Replica `id`'s process id while it runs. */
  pid(id: number): number | undefined {
    return this.processes.pid(id);
  }

  /** Stops every replica (SIGTERM, SIGKILL after the grace period) and removes a temporary directory; the ids that had to be killed. */
  async stop(): Promise<number[]> {
    const killed = await this.processes.stop(STOP_GRACE_MS);
    if (this.options.temporary) await rm(this.options.dir, { recursive: true, force: true });
    return killed;
  }

  /** SIGKILLs every replica at once (a second Ctrl-C). */
  killAll(): void {
    this.processes.killAll();
  }
}
