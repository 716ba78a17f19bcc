// `bulwark replica`: runs one replica in the foreground (issue 4 §4) until SIGINT, SIGTERM, SIGHUP
// or SIGQUIT (stop-signals.ts), then stops gracefully (no new input, in-flight blocks finish,
// the verification workers and the metrics server stop, the store closes). Logs are pino JSON
// lines on stdout; the first is "replica starting", the line "replica started" means the port is
// bound and the replica restored from its store, and "metrics served" (with --metrics-port) gives
// the metrics URL, the port included when 0 picked a free one.

import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";

import { type Command, InvalidArgumentError, Option } from "commander";
import { type Logger, pino } from "pino";

import { ClusterConfigError, readClusterFile } from "../ledger/cluster-json.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import type { Ed25519PrivateKey } from "../crypto/ed25519.js";
import { KeyFileError, readKeyFile } from "../node/keys.js";
import { METRICS_HOST_DEFAULT, type MetricsServer, MetricsServerError, startMetricsServer } from "../node/metrics-server.js";
import { ReplicaMetrics } from "../node/replica-metrics.js";
import { ReplicaRuntime, type RuntimeLogger, VERIFY_WORKERS_MAX } from "../node/replica-runtime.js";
import { StorageError } from "../storage/index.js";
import { replicaKeyFileName } from "./init-command.js";
import type { CliOutput } from "./output.js";
import { EXIT_USAGE, integerParser, portParser, usageErrorsExitWith2 } from "./parse.js";
import { EXIT_FORCED, StopSignals } from "./stop-signals.js";

interface ReplicaFlags {
  readonly cluster: string;
  readonly id: number;
  readonly data: string;
  readonly key?: string;
  readonly sync: "durable" | "none";
  readonly listen?: string;
  readonly retainBlocks?: number;
  readonly logLevel: string;
  readonly verifyWorkers?: number;
  readonly metricsPort?: number;
  readonly metricsHost: string;
  readonly sessionAuth?: boolean;
}

const parsePort = portParser(0);

/** More threads than cores only costs memory; beyond VERIFY_WORKERS_MAX it is surely a typo. */
function parseVerifyWorkers(text: string): number {
  const value = integerParser("a number of threads", 0)(text);
  if (value > VERIFY_WORKERS_MAX) throw new InvalidArgumentError(`expected at most ${VERIFY_WORKERS_MAX} threads; more than one per CPU core (${availableParallelism()} here) does not verify faster.`);
  return value;
}

export function registerReplicaCommand(program: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  usageErrorsExitWith2(program.command("replica"))
    .description("Run one replica of a cluster in the foreground (Ctrl-C or SIGTERM stops it cleanly).")
    .requiredOption("--cluster <file>", "the cluster's public config (cluster.json, written by bulwark init)")
    .requiredOption("--id <n>", "this replica's id in the cluster (0 .. n - 1)", integerParser("a replica id", 0))
    .requiredOption("--data <dir>", "this replica's data directory (created if absent; one replica per directory)")
    .option("--key <file>", "this replica's private key file (default: replica-<id>.key beside the cluster file)")
    .addOption(
      new Option("--sync <policy>", 'durability: "durable" fsyncs every record before a vote leaves; "none" risks votes on power loss (see docs)')
        .choices(["durable", "none"])
        .default("durable"),
    )
    .option("--listen <host>", "address to bind (default: the host of this replica's address in the cluster file; 0.0.0.0 for all interfaces)")
    .option("--retain-blocks <n>", "keep block bodies for this many heights below the tip and prune older ones (headers and certificates stay); default: keep all", integerParser("a number of blocks", 0))
    .addOption(new Option("--log-level <level>", "log level").choices(["fatal", "error", "warn", "info", "debug", "trace"]).default("info"))
    .option(
      "--verify-workers <n>",
      `threads verifying client signatures off the event loop, 0 .. ${VERIFY_WORKERS_MAX} (default: the CPU count, ${Math.min(availableParallelism(), VERIFY_WORKERS_MAX)} here); 0 verifies inline, for tests and small machines`,
      parseVerifyWorkers,
    )
    .option("--metrics-port <port>", "serve Prometheus metrics at http://<metrics-host>:<port>/metrics (0 picks a free port; the log line \"metrics served\" names it); default: no metrics server", parsePort)
    .option("--metrics-host <host>", "address the metrics server binds", METRICS_HOST_DEFAULT)
    .option(
      "--session-auth",
      "also take session-authenticated requests (a key attaches to a connection once; its unsigned requests are then authenticated by the connection's MAC): for clients the operator trusts, since one can force view changes (docs/PERFORMANCE.md)",
    )
    .action(async (flags: ReplicaFlags) => {
      setExitCode(await runReplica(flags, output));
    });
}

async function runReplica(flags: ReplicaFlags, output: CliOutput): Promise<number> {
  // Listening from the start of the command, not from after the replica's start: a SIGTERM
  // during the start (a supervisor stopping a replica it has just restarted) would otherwise
  // take the default action and kill the process in the middle of opening its store. One that
  // comes early is acted on once the replica has started. (A signal while node is still loading
  // the modules, before this line, still takes the default action.)
  const signals = new StopSignals();
  // A second stop signal, more than a second after the first, does not wait for the store to
  // close: the store and the record log survive a process that ends anywhere.
  signals.whenForced(() => process.exit(EXIT_FORCED));
  try {
    return await runReplicaListening(flags, output, signals);
  } finally {
    signals.remove();
  }
}

async function runReplicaListening(flags: ReplicaFlags, output: CliOutput, signals: StopSignals): Promise<number> {
  let cluster: ClusterConfig;
  try {
    cluster = readClusterFile(flags.cluster);
  } catch (error) {
    if (!(error instanceof ClusterConfigError)) throw error;
    output.err(`bulwark replica: ${error.message}\n`);
    return EXIT_USAGE;
  }
  if (flags.id >= cluster.n) {
    output.err(`bulwark replica: --id ${flags.id} is not a replica of this cluster (ids 0 .. ${cluster.n - 1})\n`);
    return EXIT_USAGE;
  }
  const keyPath = flags.key ?? join(dirname(flags.cluster), replicaKeyFileName(flags.id));
  const logger = pino({ level: flags.logLevel, base: { replica: flags.id } });
  logger.info({ data: flags.data }, "replica starting");
  let privateKey: Ed25519PrivateKey;
  try {
    const key = await readKeyFile(keyPath, { warn: (message) => logger.warn({ file: keyPath }, message) });
    const expected = cluster.replicas[flags.id]!.publicKey;
    if (!Buffer.from(key.publicKey).equals(expected)) {
      output.err(`bulwark replica: ${keyPath} is not replica ${flags.id}'s key (its public key differs from the one in ${flags.cluster})\n`);
      return EXIT_USAGE;
    }
    privateKey = key.privateKey;
  } catch (error) {
    if (!(error instanceof KeyFileError)) throw error;
    output.err(`bulwark replica: ${error.message}\n`);
    return EXIT_USAGE;
  }
  const runtimeLogger: RuntimeLogger = {
    debug: (fields, message) => logger.debug(fields, message),
    info: (fields, message) => logger.info(fields, message),
    warn: (fields, message) => logger.warn(fields, message),
    error: (fields, message) => logger.error(fields, message),
  };
  return runStarted(flags, output, { cluster, logger, runtimeLogger, privateKey, signals });
}

interface StartContext {
  readonly cluster: ClusterConfig;
  readonly logger: Logger;
  readonly runtimeLogger: RuntimeLogger;
  readonly privateKey: Ed25519PrivateKey;
  readonly signals: StopSignals;
}

async function runStarted(flags: ReplicaFlags, output: CliOutput, context: StartContext): Promise<number> {
  const { cluster, logger, runtimeLogger, privateKey, signals } = context;
  let started = false;
  void signals.stopped.then((signal) => {
    if (!started) logger.info({ signal }, "stop requested during the start; stopping once started");
  });
  let fatal: ((error: unknown) => void) | undefined;
  const failed = new Promise<number>((resolve) => {
    fatal = () => resolve(70);
  });
  // The metrics port is bound before the replica starts, so a port in use fails the command
  // before the replica has touched its store or its peers.
  let exporter: { readonly metrics: ReplicaMetrics; readonly server: MetricsServer } | undefined;
  if (flags.metricsPort !== undefined) {
    const metrics = new ReplicaMetrics({ replica: flags.id });
    try {
      exporter = { metrics, server: await startMetricsServer({ metrics, host: flags.metricsHost, port: flags.metricsPort }) };
    } catch (error) {
      metrics.close();
      if (!(error instanceof MetricsServerError)) throw error;
      output.err(`bulwark replica: ${error.message}\n`);
      return EXIT_USAGE;
    }
  }
  const closeExporter = async (): Promise<void> => {
    await exporter?.server.close();
    exporter?.metrics.close();
  };
  let runtime: ReplicaRuntime;
  try {
    runtime = await ReplicaRuntime.start({
      cluster,
      id: flags.id,
      privateKey,
      dataDirectory: flags.data,
      sync: flags.sync,
      ...(flags.listen === undefined ? {} : { listenHost: flags.listen }),
      ...(flags.retainBlocks === undefined ? {} : { retainBlocks: flags.retainBlocks }),
      logger: runtimeLogger,
      onFatal: (error) => fatal?.(error),
      ...(flags.verifyWorkers === undefined ? {} : { verifyWorkers: flags.verifyWorkers }),
      sessionAuth: flags.sessionAuth === true,
      ...(exporter === undefined ? {} : { observer: exporter.metrics }),
    });
  } catch (error) {
    await closeExporter();
    if (error instanceof StorageError || (error instanceof Error && /could not listen/.test(error.message))) {
      output.err(`bulwark replica: ${error.message}\n`);
      return EXIT_USAGE;
    }
    throw error;
  }
  if (exporter !== undefined) {
    exporter.metrics.attach(() => runtime.metricsSnapshot());
    logger.info({ url: exporter.server.url }, "metrics served");
  }
  started = true;
  const stopped = signals.stopped.then(async (signal) => {
    logger.info({ signal }, "stopping");
    await runtime.stop();
    await closeExporter();
    return 0;
  });
  const code = await Promise.race([stopped, failed]);
  if (code !== 0) {
    // The runtime logged why; its store may hold less than memory did, so do not flush anything more.
    process.exit(code);
  }
  return code;
}
