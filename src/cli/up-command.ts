// `bulwark up`: a whole cluster on this machine in one command (issue 4 §4; `npm start` runs it).
// It creates the cluster in --dir when cluster.json is absent (as `bulwark init` would), starts
// each replica as a child process of its own (replica-processes.ts), waits until the cluster
// commits a block, starts the HTTP gateway in this process, prints the URLs, and on Ctrl-C (or
// SIGTERM, SIGHUP, SIGQUIT: stop-signals.ts) stops everything: the gateway first (no new requests),
// then the replicas (SIGTERM, and SIGKILL for any still running after STOP_GRACE_MS), and exits 0.
// A second Ctrl-C kills at once.
//
// The replicas share this machine's cores: each gets max(1, cores / n) signature-verification
// workers, not the replica's default of one per core, which would run n times as many threads as
// there are cores.
//
// Readiness is a read through consensus: the same path as a write (ordered by the primary,
// prepared and committed by 2f + 1 replicas, executed into a block), without leaving a key behind.
// When it answers, a client's request can commit; that is what "up" promises.
//
// A replica that exits while the cluster runs is reported with its last log lines and restarted
// with back-off (see replica-processes.ts for when it is not); the cluster keeps serving as long
// as no more than f replicas are down.

import { existsSync } from "node:fs";
import { join } from "node:path";

import type { Command } from "commander";
import { destination, pino } from "pino";

import { type BulwarkClient, TimeoutError, connect } from "../client/index.js";
import { generateEd25519KeyPair } from "../crypto/ed25519.js";
import { startGateway } from "../gateway/index.js";
import { GATEWAY_HOST_DEFAULT, GATEWAY_PORT_DEFAULT, type Gateway } from "../gateway/types.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import { parseAddress } from "../node/address.js";
import { METRICS_HOST_DEFAULT } from "../node/metrics-server.js";
import { DEFAULT_CLUSTER_DIRECTORY, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, UsageError, readClusterForCli, reportFailure } from "./cluster-client.js";
import { GATEWAY_START_LISTENERS_MAX, listenProblem } from "./gateway-command.js";
import { CLUSTER_FILE_NAME, INIT_DEFAULTS, initFlagProblems, runInit } from "./init-command.js";
import { STOP_GRACE_MS, localReplicaSpecs, tryListen } from "./local-replicas.js";
import type { CliOutput } from "./output.js";
import { PORT_MAX, parseInteger, portParser, secondsParser, usageErrorsExitWith2 } from "./parse.js";
import { stderrProgress } from "./progress.js";
import { ReplicaProcesses, type ReplicaProcessSpec, ReplicaStartError, describeExit } from "./replica-processes.js";
import { EXIT_FORCED, StopSignals, startupController } from "./stop-signals.js";

const COMMAND = "bulwark up";
const parsePort = portParser(1);
const METRICS_BASE_PORT_DEFAULT = 9100;
const READY_TIMEOUT_SECONDS_DEFAULT = 60;
/** How long the gateway may take to finish the requests in progress before the replicas stop anyway. */
const GATEWAY_CLOSE_MS_MAX = 5_000;
/** The key the readiness probe reads: any key will do, and reading leaves nothing behind. */
const READY_PROBE_KEY = "_bulwark/ready";
/** Exit code when the replicas could not be started or the cluster did not become ready. */
const EXIT_START_FAILED = 1;

interface UpFlags {
  readonly replicas: number;
  readonly dir: string;
  readonly port: number;
  readonly host: string;
  readonly basePort: number;
  readonly metricsBasePort: number;
  /** False with --no-metrics. */
  readonly metrics: boolean;
  readonly readyTimeout: number;
}

/** The start-up was cut short by Ctrl-C or SIGTERM. */
class StopRequested extends Error {
  override readonly name = "StopRequested";
}

/** The cluster did not answer within --ready-timeout. */
class NotReadyInTime extends Error {
  override readonly name = "NotReadyInTime";
}

/** Where each replica will listen: from cluster.json, or for a cluster not created yet, as init will write it. */
interface PlannedReplica {
  readonly id: number;
  readonly address: string;
}

/** Every port `up` is about to bind, checked before anything is created or started, so a conflict names its port at once. */
async function portProblems(replicas: readonly PlannedReplica[], existing: string | undefined, flags: UpFlags): Promise<string[]> {
  const wanted: Array<{ host: string; port: number; what: string; remedy: string }> = [
    { host: flags.host, port: flags.port, what: "the gateway, --port", remedy: "choose another with --port" },
  ];
  for (const replica of replicas) {
    const { host, port } = parseAddress(replica.address);
    wanted.push(
      existing === undefined
        ? { host, port, what: `replica ${replica.id}, --base-port + ${replica.id}`, remedy: "choose another --base-port" }
        : { host, port, what: `replica ${replica.id}, from ${existing}`, remedy: "edit its address there, or use another --dir and --base-port for a new cluster" },
    );
    if (flags.metrics) {
      wanted.push({
        host: METRICS_HOST_DEFAULT,
        port: flags.metricsBasePort + replica.id,
        what: `replica ${replica.id}'s metrics, --metrics-base-port + ${replica.id}`,
        remedy: "choose another --metrics-base-port, or pass --no-metrics",
      });
    }
  }
  const problems: string[] = [];
  for (const { host, port, what, remedy } of wanted) {
    const error = await tryListen(host, port);
    if (error === undefined) continue;
    problems.push(listenProblem(error, host, port, what, remedy) ?? `cannot listen on ${host}:${port} (${what}): ${(error as Error).message}`);
  }
  return problems;
}

/** The cluster in `dir` if cluster.json is there (and matches an explicit --replicas). */
function existingCluster(flags: UpFlags, replicasGiven: boolean): ClusterConfig | undefined {
  const clusterPath = join(flags.dir, CLUSTER_FILE_NAME);
  if (!existsSync(clusterPath)) return undefined;
  const cluster = readClusterForCli(clusterPath);
  if (replicasGiven && cluster.n !== flags.replicas) {
    throw new UsageError(
      `${clusterPath} is a cluster of ${cluster.n} replicas, not ${flags.replicas}; drop --replicas to run it, or use another --dir for a new cluster of ${flags.replicas}`,
    );
  }
  return cluster;
}

/** Creates the cluster as `bulwark init` would; an exit code when it could not. */
async function createCluster(flags: UpFlags, output: CliOutput): Promise<ClusterConfig | number> {
  // init's own summary tells the reader to start replicas by hand, which up is about to do.
  const quiet: CliOutput = { out: () => undefined, err: (text) => output.err(text), interactive: false };
  const code = await runInit(flags.dir, { replicas: flags.replicas, host: INIT_DEFAULTS.host, basePort: flags.basePort, clusterId: INIT_DEFAULTS.clusterId }, quiet);
  if (code !== EXIT_OK) return code;
  return readClusterForCli(join(flags.dir, CLUSTER_FILE_NAME));
}

function replicaSpecs(cluster: ClusterConfig, clusterPath: string, flags: UpFlags): ReplicaProcessSpec[] {
  return localReplicaSpecs({ cluster, clusterPath, dir: flags.dir, ...(flags.metrics ? { metricsBasePort: flags.metricsBasePort } : {}) });
}

function summary(cluster: ClusterConfig, flags: UpFlags, url: string, specs: readonly ReplicaProcessSpec[], replicas: ReplicaProcesses, created: boolean, elapsedMs: number): string {
  const clusterPath = join(flags.dir, CLUSTER_FILE_NAME);
  const clusterFlag = flags.dir === DEFAULT_CLUSTER_DIRECTORY ? "" : ` --cluster ${clusterPath}`;
  const rows = specs.map((spec) => {
    const address = cluster.replicas[spec.id]!.address;
    const metrics = flags.metrics ? `  metrics http://${METRICS_HOST_DEFAULT}:${flags.metricsBasePort + spec.id}/metrics` : "";
    return `  replica ${spec.id}  ${address}  pid ${replicas.pid(spec.id) ?? "-"}${metrics}  log ${spec.logPath}`;
  });
  return [
    `Bulwark is up (${(elapsedMs / 1000).toFixed(1)} s): cluster "${cluster.clusterId}", ${cluster.n} replicas tolerating f = ${cluster.f}, ` +
      `${created ? "created in" : "from"} ${flags.dir}`,
    `  gateway    ${url}`,
    `  API docs   ${url}/docs/json`,
    `  metrics    ${url}/metrics`,
    ...rows,
    `  gateway log ${join(flags.dir, "gateway.log")}`,
    "Try:",
    `  curl -X PUT ${url}/v1/kv/greeting -d hello`,
    `  curl ${url}/v1/kv/greeting`,
    `  curl ${url}/v1/status`,
    `  npx bulwark client put greeting hello${clusterFlag}`,
    `  npx bulwark status${clusterFlag}`,
    "Press Ctrl-C to stop.",
    "",
  ].join("\n");
}

/**
 * Resolves with `promise`, or rejects with StopRequested (when `stop` fires) or NotReadyInTime,
 * whichever comes first. Whichever settles it clears the timer and removes the abort listener, so
 * a call per probe round leaves nothing behind. A promise that loses the race may still settle
 * later; nothing is left unhandled.
 */
function bounded<T>(promise: Promise<T>, stop: AbortSignal, deadlineMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const cleanUp = (): void => {
      clearTimeout(timer);
      stop.removeEventListener("abort", onStop);
    };
    const onStop = (): void => {
      cleanUp();
      reject(new StopRequested());
    };
    if (stop.aborted) {
      onStop();
    } else {
      timer = setTimeout(() => {
        cleanUp();
        reject(new NotReadyInTime());
      }, Math.max(0, deadlineMs - Date.now()));
      stop.addEventListener("abort", onStop, { once: true });
    }
    void promise.finally(cleanUp).then(resolve, reject);
  });
}

/**
 * Reads the probe key through consensus until it answers. A read that times out (a replica still
 * connecting, a view change) is tried again; the caller's deadline bounds the whole wait.
 */
async function probe(client: BulwarkClient, stop: AbortSignal, deadlineMs: number): Promise<number> {
  for (;;) {
    // Aborted when the read loses to a stop or the deadline, so it does not wait out its own timeout.
    const controller = new AbortController();
    try {
      const { height } = await bounded(client.read(READY_PROBE_KEY, { signal: controller.signal }), stop, deadlineMs);
      return height;
    } catch (error) {
      controller.abort();
      if (!(error instanceof TimeoutError)) throw error;
    }
  }
}

/**
 * The problems of the flags for the cluster about to run, each naming its flag: for a new cluster
 * what init checks, and for any cluster that each of its n replicas' metrics port is a port.
 */
function flagProblems(flags: UpFlags, existing: ClusterConfig | undefined): string[] {
  const problems =
    existing === undefined ? initFlagProblems({ replicas: flags.replicas, host: INIT_DEFAULTS.host, basePort: flags.basePort, clusterId: INIT_DEFAULTS.clusterId }) : [];
  const n = existing?.n ?? flags.replicas;
  if (flags.metrics && flags.metricsBasePort + n - 1 > PORT_MAX) {
    problems.push(`--metrics-base-port: replica ${n - 1}'s metrics port would be ${flags.metricsBasePort + n - 1}, above ${PORT_MAX}; use at most ${PORT_MAX - n + 1}`);
  }
  return problems;
}

async function runUp(flags: UpFlags, replicasGiven: boolean, output: CliOutput): Promise<number> {
  const clusterPath = join(flags.dir, CLUSTER_FILE_NAME);
  let existing: ClusterConfig | undefined;
  try {
    existing = existingCluster(flags, replicasGiven);
  } catch (error) {
    return reportFailure(COMMAND, error, output);
  }
  const problems = flagProblems(flags, existing);
  if (problems.length > 0) {
    for (const problem of problems) output.err(`${COMMAND}: ${problem}\n`);
    return EXIT_USAGE;
  }
  const startedAtMs = Date.now();
  const deadlineMs = startedAtMs + flags.readyTimeout * 1000;
  const progress = stderrProgress(output, { prefix: COMMAND });
  const signals = new StopSignals((signal) =>
    output.err(`\n${COMMAND}: ${signal}: stopping the gateway and the replicas (press Ctrl-C again to kill them at once)\n`),
  );
  // Aborted by the first stop signal, and on the way out whatever ended the run, so that a connect
  // or a gateway start the run no longer waits for (after NotReadyInTime, say) stops too instead
  // of holding the process until its own 30 s deadline.
  const startup = startupController(signals, GATEWAY_START_LISTENERS_MAX);
  let replicas: ReplicaProcesses | undefined;
  let client: BulwarkClient | undefined;
  let gateway: Gateway | undefined;
  let clientConnecting: Promise<BulwarkClient> | undefined;
  let gatewayStarting: Promise<Gateway> | undefined;
  signals.whenForced(() => {
    output.err(`${COMMAND}: killing the replicas\n`);
    replicas?.killAll();
    // The gateway may hold connections open; a forced stop does not wait for them.
    process.exit(EXIT_FORCED);
  });
  try {
    const planned =
      existing?.replicas ?? Array.from({ length: flags.replicas }, (_, id) => ({ id, address: `${INIT_DEFAULTS.host}:${flags.basePort + id}` }));
    const busy = await portProblems(planned, existing === undefined ? undefined : clusterPath, flags);
    if (busy.length > 0) throw new UsageError(busy.join(`\n${COMMAND}: `));
    const created = existing === undefined;
    let cluster: ClusterConfig;
    if (existing === undefined) {
      const made = await createCluster(flags, output);
      if (typeof made === "number") return made;
      cluster = made;
      output.err(`${COMMAND}: created a cluster of ${cluster.n} replicas in ${flags.dir} (cluster.json, replica keys, client.key)\n`);
    } else {
      cluster = existing;
    }

    const specs = replicaSpecs(cluster, clusterPath, flags);
    const down = new Set<number>();
    const started = new Set<number>();
    replicas = new ReplicaProcesses(specs, {
      started: (id, pid, restarts) => {
        down.delete(id);
        started.add(id);
        progress.detail(`${[...started].filter((replica) => !down.has(replica)).length} of ${cluster.n} started`);
        if (restarts > 0) output.err(`${COMMAND}: replica ${id} restarted (pid ${pid})\n`);
      },
      exited: (id, exit, tail, restart) => {
        down.add(id);
        const then = "inMs" in restart ? `restarting it in ${(restart.inMs / 1000).toFixed(0)} s` : `not restarting it: ${restart.reason}`;
        const danger =
          down.size > cluster.f
            ? `\n${COMMAND}: ${down.size} of ${cluster.n} replicas are down, more than f = ${cluster.f}: the cluster cannot commit until enough are back`
            : "";
        output.err(
          `${COMMAND}: replica ${id} exited unexpectedly (${describeExit(exit)}); ${then}. Its last log lines (all in ${specs[id]!.logPath}):\n` +
            `${tail.map((line) => `  ${line}`).join("\n")}${danger}\n`,
        );
      },
      logFailed: (id, logPath, error) => {
        output.err(`${COMMAND}: cannot write replica ${id}'s log ${logPath} (${error.message}); its output is dropped from now on, and it keeps running\n`);
      },
    });
    progress.start(`starting ${cluster.n} replicas (logs in ${join(flags.dir, "replica-<id>.log")})`);
    await bounded(replicas.start(), startup.signal, deadlineMs);
    progress.succeed(`${cluster.n} replicas started`);

    progress.start(`waiting for the cluster to commit a block (a read through consensus)`);
    // The probe's client signs one read with a key of its own, so it shares no nonces with
    // client.key (which `bulwark client` uses); afterwards it serves the gateway's unsigned calls.
    const probeKey = generateEd25519KeyPair().privateKey;
    clientConnecting = connect({ cluster, key: probeKey, firstNonce: 1, signal: startup.signal });
    client = await bounded(clientConnecting, startup.signal, deadlineMs);
    const height = await probe(client, startup.signal, deadlineMs);
    progress.succeed(`the cluster committed a block (height ${height})`);

    progress.start(`starting the gateway on ${flags.host}:${flags.port}`);
    const gatewayLog = pino({ level: "info" }, destination({ dest: join(flags.dir, "gateway.log"), append: true, sync: true }));
    gatewayStarting = startGateway({ cluster, clusterPath, privateKey: probeKey, client, host: flags.host, port: flags.port, logger: gatewayLog, signal: startup.signal });
    try {
      gateway = await bounded(gatewayStarting, startup.signal, deadlineMs);
    } catch (error) {
      const problem = listenProblem(error, flags.host, flags.port, "the gateway, --port", "choose another with --port");
      if (problem !== undefined) throw new UsageError(problem);
      throw error;
    }
    const { url } = gateway;
    progress.succeed(`gateway listening at ${url}`);
    output.out(summary(cluster, flags, url, specs, replicas, created, Date.now() - startedAtMs));

    await signals.stopped;
    return EXIT_OK;
  } catch (error) {
    progress.fail();
    if (error instanceof StopRequested) return EXIT_OK;
    if (error instanceof NotReadyInTime) {
      output.err(`${COMMAND}: the cluster did not answer within --ready-timeout ${flags.readyTimeout} s; see the replicas' logs in ${flags.dir}\n`);
      return EXIT_UNAVAILABLE;
    }
    if (error instanceof ReplicaStartError) {
      output.err(`${COMMAND}: ${error.message}\n`);
      return EXIT_START_FAILED;
    }
    return reportFailure(COMMAND, error, output);
  } finally {
    startup.abort();
    try {
      await shutDown();
    } finally {
      signals.remove();
    }
  }

  /** Stops the gateway, then the replicas; the replicas are stopped even when closing the gateway fails. */
  async function shutDown(): Promise<void> {
    if (gateway === undefined && replicas === undefined) return;
    progress.start("stopping the gateway and the replicas");
    // A connect or a gateway start still running was aborted and leaves nothing running; one that
    // got past its last abortable step (the gateway's listen) is closed when it finishes.
    if (gateway === undefined) void gatewayStarting?.then((late) => late.close()).catch(() => undefined);
    void clientConnecting?.then((late) => late.close()).catch(() => undefined);
    try {
      if (gateway !== undefined) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([gateway.close(), new Promise<void>((resolve) => (timer = setTimeout(resolve, GATEWAY_CLOSE_MS_MAX)))]).finally(() => clearTimeout(timer));
      }
      await client?.close();
    } finally {
      const killed = (await replicas?.stop(STOP_GRACE_MS)) ?? [];
      progress.succeed("stopped");
      if (killed.length > 0) output.err(`${COMMAND}: replicas ${killed.join(", ")} did not stop within ${STOP_GRACE_MS / 1000} s of SIGTERM and were killed\n`);
      output.err(`${COMMAND}: stopped\n`);
    }
  }
}

export function registerUpCommand(program: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  usageErrorsExitWith2(
    program
      .command("up")
      .description("Run a whole cluster on this machine: create it if absent, start every replica as a child process and the HTTP gateway, and wait until it answers (Ctrl-C stops everything).")
      .option("--replicas <n>", "replicas of a new cluster, n = 3f + 1 (4, 7, 10, ...)", parseInteger, INIT_DEFAULTS.replicas)
      .option("--dir <dir>", "the cluster's directory: cluster.json, keys, replica data and logs", DEFAULT_CLUSTER_DIRECTORY)
      .option("--port <port>", "the gateway's port", parsePort, GATEWAY_PORT_DEFAULT)
      .option("--host <host>", "the gateway's address (0.0.0.0 for every interface)", GATEWAY_HOST_DEFAULT)
      .option("--base-port <port>", "replica 0's port in a new cluster; replica i listens on base port + i", parsePort, INIT_DEFAULTS.basePort)
      .option("--metrics-base-port <port>", "replica i serves Prometheus metrics on this port + i", parsePort, METRICS_BASE_PORT_DEFAULT)
      .option("--no-metrics", "do not serve the replicas' metrics")
      .option("--ready-timeout <seconds>", "give up when the cluster has not answered a read through consensus within this many seconds", secondsParser(1), READY_TIMEOUT_SECONDS_DEFAULT)
      .addHelpText(
        "after",
        "\nReplica i stores its data in DIR/replica-<i> and logs to DIR/replica-<i>.log; the gateway logs to DIR/gateway.log.\n" +
          "Each replica verifies client signatures on max(1, CPU cores / n) worker threads.\n" +
          "A replica that exits unexpectedly is reported and restarted with back-off (1 s doubling to 30 s).\n\n" +
          "Examples:\n  bulwark up\n  bulwark up --replicas 7 --dir ./staging --port 9080 --base-port 7100 --metrics-base-port 9200\n\n" +
          "Exit code 0 after Ctrl-C, SIGTERM, SIGHUP or SIGQUIT (130 after a second Ctrl-C, which kills the replicas at once);\n" +
          "1 when a replica could not start; 2 on a bad option or a port in use; 3 when the cluster did not answer within --ready-timeout.",
      )
      .action(async (flags: UpFlags, command: Command) => {
        setExitCode(await runUp(flags, command.getOptionValueSource("replicas") === "cli", output));
      }),
  );
}
