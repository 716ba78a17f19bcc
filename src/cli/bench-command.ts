// `bulwark bench`: the benchmark harness (issue 5 §1). It starts a local cluster of real replica
// processes (bench-cluster.ts), or targets a running one with --cluster, sets the workload up,
// warms up, and drives closed-loop (--clients) or open-loop (--rate) load for --duration seconds
// with a live progress line on stderr; then prints throughput (the median of one-second windows),
// latency percentiles, CPU per 1,000 transactions and peak memory of every process, and the view
// changes, and with --json writes all of it with the settings, the commit and the machine. With
// --baseline it first runs the same workload in one process without replication
// (bench/baseline.ts) and reports the ratio. `bulwark bench compare A.json B.json` prints two
// reports side by side.
//
// Ctrl-C (or SIGTERM, SIGHUP, SIGQUIT) ends the run early: what was measured is reported, the
// replicas are stopped and a temporary cluster directory removed. A second Ctrl-C kills the
// replicas at once.
//
// Exit code 0 after a run that committed transactions; 1 when the run failed or committed
// nothing in the timed window; 2 on a bad option or file.

import { randomBytes } from "node:crypto";
import { setMaxListeners } from "node:events";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

import { type Command, InvalidArgumentError, Option } from "commander";

import { runBaseline } from "../bench/baseline.js";
import { BenchKey, benchSigningBackend } from "../bench/bench-keys.js";
import { ReportFileError, formatComparison, readReport } from "../bench/compare.js";
import { KV_RECORDS_DEFAULT } from "../bench/kv-workload.js";
import type { LoadMode } from "../bench/load-driver.js";
import { commitInfo, machineInfo } from "../bench/machine.js";
import { measureSignatureCeiling } from "../bench/signature-ceiling.js";
import { type ProcessProbe, metricsProbe, procProbe, selfProbe } from "../bench/probes.js";
import { PREPARED_ENVELOPES_MAX } from "../bench/prepared-workload.js";
import { BENCH_REPORT_FORMAT, type BenchReport, type BenchSettings, type RunReport, baselineRunReport, formatReport, round } from "../bench/report.js";
import { type BenchReporter, prepareEnvelopes, runReplicated } from "../bench/run-bench.js";
import { SelfProfile } from "../bench/self-profile.js";
import { TRANSFER_ACCOUNTS_DEFAULT } from "../bench/transfer-workload.js";
import type { AuthMode, WorkloadName } from "../bench/types.js";
import { KEY_SEED_BYTES, WORKLOAD_NAMES, type WorkloadSettings, createWorkload } from "../bench/workload.js";
import { ZIPFIAN_RECORDS_MAX } from "../bench/zipfian.js";
import { CLIENT_KEY_FILE, defaultClientKeyPath } from "../client/index.js";
import type { Ed25519PrivateKey } from "../crypto/ed25519.js";
import { IN_FLIGHT_MAX_LIMIT } from "../client/types.js";
import { BLOCK_TRANSACTIONS_MAX } from "../ledger/block-header.js";
import { type ClusterConfig, DEFAULT_PROTOCOL_PARAMETERS } from "../ledger/cluster.js";
import { BenchCluster, existingBenchCluster } from "./bench-cluster.js";
import { UsageError, readClusterForCli, readPrivateKeyForCli } from "./cluster-client.js";
import { INIT_DEFAULTS, replicasProblem } from "./init-command.js";
import { type CliOutput, processOutput } from "./output.js";
import { EXIT_USAGE, integerParser, parseInteger, secondsParser, usageErrorsExitWith2 } from "./parse.js";
import { stderrProgress } from "./progress.js";
import { describeExit } from "./replica-processes.js";
import { EXIT_FORCED, StopSignals } from "./stop-signals.js";

const COMMAND = "bulwark bench";
const EXIT_OK = 0;
const EXIT_FAILED = 1;

export const BENCH_DEFAULTS = Object.freeze({
  workload: "kv",
  auth: "session",
  clients: 256,
  durationS: 30,
  warmupS: 5,
  seed: 1,
});

/**
 * The rate a closed loop's envelopes are built for before the run (`--prepare-rate`), by
 * authentication: a client that uses up its envelopes builds more during the run, which the
 * report flags. Generous against what 4 replicas on 2 cores commit; at most
 * PREPARED_ENVELOPES_MAX are built ahead of a run, whatever the rate and duration.
 */
const PREPARE_RATE_DEFAULT: Readonly<Record<AuthMode, number>> = { signed: 10_000, session: 25_000 };
/** Spare envelopes per client beyond the estimate: closed-loop clients do not all run at one pace. */
const PREPARE_MARGIN = 1.25;
/** An open loop's default key pool: enough keys for half a second of arrivals in flight. */
const OPEN_LOOP_POOL_SECONDS = 0.5;
/** More loader threads than this only add contention on a machine's cores. */
const LOADERS_MAX = 64;
/** Progress lines when stderr is not a terminal: one per this many seconds of the run. */
const PLAIN_PROGRESS_INTERVAL_MS = 5_000;

interface BenchFlags {
  readonly workload: WorkloadName;
  readonly auth: AuthMode;
  readonly clients?: number;
  readonly rate?: number;
  readonly duration: number;
  readonly warmup: number;
  readonly json?: string;
  readonly cluster?: string;
  readonly key?: string;
  readonly metrics?: string;
  readonly replicas: number;
  readonly batchSize: number;
  readonly dir?: string;
  readonly profile?: string;
  readonly baseline?: boolean;
  readonly seed: number;
  readonly records?: number;
  readonly preload?: boolean;
  readonly accounts?: number;
  readonly prepareRate?: number;
  readonly loaders: number;
  readonly retainBlocks?: number;
}

/** Everything a run needs, checked. */
export interface BenchPlan {
  readonly settings: BenchSettings;
  readonly mode: LoadMode;
  readonly preparePerClient: number;
  readonly workload: WorkloadSettings;
  readonly json: string | undefined;
  readonly clusterPath: string | undefined;
  readonly keyPath: string | undefined;
  readonly metricsUrls: readonly string[] | undefined;
  readonly dir: string | undefined;
  readonly batchSizeGiven: boolean;
}

/**
 * The plan for the flags, or the problems of the flags (each naming its flag). `given` holds the
 * flags given on the command line (as commander names them: "batchSize").
 */
export function benchPlan(flags: BenchFlags, given: ReadonlySet<string>): BenchPlan | string[] {
  const problems: string[] = [];
  const remote = flags.cluster !== undefined;
  const open = flags.rate !== undefined;
  for (const flag of ["replicas", "batchSize", "dir", "retainBlocks"] as const) {
    if (remote && given.has(flag)) problems.push(`--${kebab(flag)} applies to the local cluster the bench starts, not to --cluster`);
  }
  for (const flag of ["key", "metrics"] as const) {
    if (!remote && given.has(flag)) problems.push(`--${flag} applies only with --cluster (a local cluster's processes are measured directly)`);
  }
  const replicas = remote ? undefined : replicasProblem(flags.replicas);
  if (replicas !== undefined) problems.push(replicas);
  if (flags.batchSize < 1 || flags.batchSize > BLOCK_TRANSACTIONS_MAX) problems.push(`--batch-size: must be from 1 to ${BLOCK_TRANSACTIONS_MAX}; got ${flags.batchSize}`);
  if (flags.workload !== "kv" && (given.has("records") || given.has("preload"))) problems.push("--records and --preload apply to --workload kv");
  if (flags.workload !== "transfer" && given.has("accounts")) problems.push("--accounts applies to --workload transfer");
  const records = flags.records ?? KV_RECORDS_DEFAULT;
  if (records < 1 || records > ZIPFIAN_RECORDS_MAX) problems.push(`--records: must be from 1 to ${ZIPFIAN_RECORDS_MAX}; got ${records}`);
  const accounts = flags.accounts ?? TRANSFER_ACCOUNTS_DEFAULT;
  if (accounts < 2) problems.push(`--accounts: at least 2; got ${accounts}`);
  let clients = flags.clients ?? (open ? Math.max(BENCH_DEFAULTS.clients, Math.ceil((flags.rate ?? 0) * OPEN_LOOP_POOL_SECONDS)) : BENCH_DEFAULTS.clients);
  if (flags.workload === "transfer" && clients > accounts) {
    if (flags.clients !== undefined) problems.push(`--clients: the transfer workload gives each client accounts of its own, so at most --accounts (${accounts}); got ${clients}`);
    clients = accounts;
  }
  if (clients > IN_FLIGHT_MAX_LIMIT) problems.push(`--clients: at most ${IN_FLIGHT_MAX_LIMIT}; got ${clients}`);
  if (flags.loaders > Math.min(LOADERS_MAX, clients)) problems.push(`--loaders: at most ${LOADERS_MAX}, and no more than the clients (${clients}); got ${flags.loaders}`);
  const metricsUrls = flags.metrics?.split(",").map((url) => url.trim()).filter((url) => url !== "");
  for (const url of metricsUrls ?? []) {
    if (!URL.canParse(url)) problems.push(`--metrics: ${JSON.stringify(url)} is not a URL (e.g. http://10.0.0.5:9100/metrics)`);
  }
  if (problems.length > 0) return problems;

  const mode: LoadMode = open ? { kind: "open", ratePerSecond: flags.rate } : { kind: "closed" };
  const prepareRate = flags.prepareRate ?? flags.rate ?? PREPARE_RATE_DEFAULT[flags.auth];
  const wantedPerClient = Math.ceil(((prepareRate * (flags.warmup + flags.duration)) / clients) * PREPARE_MARGIN) + 4;
  // At least 30 per client (clients are at most 65,536); clients build past them during the run.
  const preparePerClient = Math.min(wantedPerClient, Math.floor(PREPARED_ENVELOPES_MAX / clients));
  const settings: BenchSettings = {
    workload: flags.workload,
    auth: flags.auth,
    loop: open ? "open" : "closed",
    clients,
    rate: flags.rate ?? null,
    durationS: flags.duration,
    warmupS: flags.warmup,
    seed: flags.seed,
    loaders: flags.loaders,
    cluster: remote ? resolve(flags.cluster) : "local",
    replicas: flags.replicas,
    batchSize: flags.batchSize,
    records: flags.workload === "kv" ? records : null,
    preload: flags.workload === "kv" ? flags.preload === true : null,
    accounts: flags.workload === "transfer" ? accounts : null,
    preparedPerClient: preparePerClient,
    signingBackend: benchSigningBackend(),
    baseline: flags.baseline === true,
    profileDir: flags.profile === undefined ? null : resolve(flags.profile),
    sync: remote ? null : "durable",
    retainBlocks: remote ? null : (flags.retainBlocks ?? null),
  };
  const workload: WorkloadSettings = { name: flags.workload, auth: flags.auth, clients, seed: flags.seed, records, preload: flags.preload === true, accounts };
  return {
    settings,
    mode,
    preparePerClient,
    workload,
    json: flags.json,
    clusterPath: flags.cluster,
    keyPath: flags.key,
    metricsUrls,
    dir: flags.dir,
    batchSizeGiven: given.has("batchSize"),
  };
}

/**
 * The settings of the cluster a run will measure, read before anything runs (the baseline
 * included, which takes the cluster's batch size): a running cluster's (--cluster) or a reused
 * --dir's replicas and batch size replace the flags' values; a cluster the bench creates has the
 * flags' own. `existing` is the cluster read, if any. Throws a UsageError for a cluster file that
 * cannot be read, or a reused one whose batch size is not a --batch-size given.
 */
export function targetSettings(plan: BenchPlan): { readonly settings: BenchSettings; readonly existing: ClusterConfig | undefined } {
  const existing =
    plan.clusterPath !== undefined
      ? readClusterForCli(plan.clusterPath)
      : plan.dir === undefined
        ? undefined
        : existingBenchCluster(plan.dir, { batchSize: plan.settings.batchSize, batchSizeGiven: plan.batchSizeGiven });
  if (existing === undefined) return { settings: plan.settings, existing };
  return { settings: { ...plan.settings, replicas: existing.n, batchSize: existing.protocol.maxBatchSize }, existing };
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

/** The progress line: phases and, on a terminal, a live detail; elsewhere a plain line every few seconds. */
function progressReporter(output: CliOutput): BenchReporter {
  const progress = stderrProgress(output, { prefix: COMMAND });
  // As stderrProgress decides: the process's stderr is a terminal, or a test's output says it is one.
  const interactive = output === processOutput ? process.stderr.isTTY === true : output.interactive;
  let lastPlainMs = 0;
  return {
    phase: (text) => {
      progress.start(text);
      lastPlainMs = Date.now();
    },
    detail: (text) => {
      progress.detail(text);
      if (!interactive && Date.now() - lastPlainMs >= PLAIN_PROGRESS_INTERVAL_MS) {
        lastPlainMs = Date.now();
        output.err(`${COMMAND}: ${text}\n`);
      }
    },
    done: (text) => progress.succeed(text),
  };
}

/** The cluster a run measures, the probes of its replicas, and (transfer) its genesis authority. */
interface BenchTarget {
  readonly config: ClusterConfig;
  readonly probes: readonly ProcessProbe[];
  readonly authority?: { readonly privateKey: Ed25519PrivateKey; readonly firstNonce: number | "discover" };
}

/** Creates (or reuses) and starts the local cluster in `dir`. */
async function startLocalCluster(plan: BenchPlan, settings: BenchSettings, dir: string, temporary: boolean, reporter: BenchReporter, output: CliOutput): Promise<BenchCluster> {
  reporter.phase(`starting ${settings.replicas} replicas in ${dir}`);
  const cluster = await BenchCluster.start({
    dir,
    temporary,
    replicas: settings.replicas,
    batchSize: settings.batchSize,
    batchSizeGiven: plan.batchSizeGiven,
    sessionAuth: settings.auth === "session",
    ...(settings.profileDir === null ? {} : { profileDir: settings.profileDir }),
    ...(settings.retainBlocks === undefined || settings.retainBlocks === null ? {} : { retainBlocks: settings.retainBlocks }),
    output,
    events: {
      exited: (id, exit, _tail, restart) =>
        output.err(`${COMMAND}: replica ${id} exited unexpectedly (${describeExit(exit)}); ${"inMs" in restart ? "restarting it" : `not restarting it: ${restart.reason}`}; see ${join(dir, `replica-${id}.log`)}\n`),
    },
  });
  reporter.done(`${cluster.config.n} replicas started`);
  return cluster;
}

/** The local cluster's replicas, read through /proc, and its authority (client.key, nonce 1 when the cluster is new). */
async function localTarget(cluster: BenchCluster, settings: BenchSettings, output: CliOutput): Promise<BenchTarget> {
  const { config } = cluster;
  const authority =
    settings.workload === "transfer"
      ? { authority: { privateKey: await readPrivateKeyForCli(join(dirname(cluster.clusterPath), CLIENT_KEY_FILE), output), firstNonce: cluster.created ? 1 : ("discover" as const) } }
      : {};
  return { config, probes: config.replicas.map(({ id }) => procProbe(`replica ${id}`, () => cluster.pid(id))), ...authority };
}

/** A running cluster (`config`, read from `clusterPath`): its replicas through --metrics (or not measured), its authority from --key (nonce read from the cluster). */
async function remoteTarget(clusterPath: string, config: ClusterConfig, plan: BenchPlan, settings: BenchSettings, output: CliOutput): Promise<BenchTarget> {
  const urls = plan.metricsUrls;
  if (urls !== undefined && urls.length !== config.n) throw new UsageError(`--metrics lists ${urls.length} URLs; the cluster has ${config.n} replicas, one URL each in id order`);
  const authority =
    settings.workload === "transfer"
      ? { authority: { privateKey: await readPrivateKeyForCli(plan.keyPath ?? defaultClientKeyPath(clusterPath), output), firstNonce: "discover" as const } }
      : {};
  return {
    config,
    probes: config.replicas.map(({ id }) => (urls === undefined ? unavailableProbe(`replica ${id}`) : metricsProbe(`replica ${id}`, urls[id]!))),
    ...authority,
  };
}

/** A probe for a process the bench cannot see (a remote replica without --metrics). */
function unavailableProbe(name: string): ProcessProbe {
  return { name, unmeasured: "not measured (give the replicas' metrics URLs with --metrics)", identity: () => undefined, sample: () => Promise.resolve(undefined) };
}

async function runBench(plan: BenchPlan, output: CliOutput): Promise<number> {
  let { settings } = plan;
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  const commit = await commitInfo();
  const reporter = progressReporter(output);
  const stop = new AbortController();
  // Every call in flight (a setup round's, a connect's) listens to it.
  setMaxListeners(IN_FLIGHT_MAX_LIMIT, stop.signal);
  let cluster: BenchCluster | undefined;
  const signals = new StopSignals((signal) => {
    output.err(`\n${COMMAND}: ${signal}: stopping the run (again to kill the replicas at once)\n`);
    stop.abort();
  });
  signals.whenForced(() => {
    cluster?.killAll();
    process.exit(EXIT_FORCED);
  });
  let profile: SelfProfile | undefined;
  let temporaryDir: string | undefined;
  try {
    if (settings.profileDir !== null) {
      await mkdir(settings.profileDir, { recursive: true });
      profile = await SelfProfile.start();
    }
    // The cluster's own batch size, known before the baseline runs with it.
    const target = targetSettings(plan);
    settings = target.settings;
    const baseline = settings.baseline ? await runBaselineReport(plan, settings, reporter, stop.signal) : null;
    if (stop.signal.aborted) throw new StoppedBeforeMeasuring();

    // On the idle machine, before any replica runs: one core's verification rate (issue 5).
    const signatureCeiling = plan.clusterPath === undefined && settings.auth === "signed" ? measureSignatureCeiling(settings.replicas) : null;
    if (signatureCeiling !== null) reporter.phase(`one core verifies ${signatureCeiling.verifiesPerSecondOneCore} signatures/s (${signatureCeiling.backend}): ceiling ${signatureCeiling.ceilingTps} tx/s`);

    let measured: BenchTarget;
    if (plan.clusterPath === undefined) {
      temporaryDir = plan.dir === undefined ? await mkdtemp(join(tmpdir(), "bulwark-bench-")) : undefined;
      cluster = await startLocalCluster(plan, settings, plan.dir ?? temporaryDir!, temporaryDir !== undefined, reporter, output);
      // The cluster owns the temporary directory now, and removes it when it stops.
      temporaryDir = undefined;
      measured = await localTarget(cluster, settings, output);
    } else {
      measured = await remoteTarget(plan.clusterPath, target.existing!, plan, settings, output);
    }
    // The settings name the cluster actually run (as targetSettings read it, or as it was created).
    settings = { ...settings, replicas: measured.config.n, batchSize: measured.config.protocol.maxBatchSize };

    const run = await runReplicated({
      cluster: measured.config,
      workload: plan.workload,
      ...(measured.authority === undefined ? {} : { authority: measured.authority }),
      mode: plan.mode,
      warmupS: settings.warmupS,
      durationS: settings.durationS,
      preparePerClient: plan.preparePerClient,
      loaders: settings.loaders,
      replicaProbes: measured.probes,
      benchProbe: selfProbe("bench"),
      reporter,
      signal: stop.signal,
    });
    const { outcome: _outcome, workload: _workload, ...result } = run;
    const report: BenchReport = {
      format: BENCH_REPORT_FORMAT,
      startedAt,
      settings,
      commit,
      machine,
      result,
      baseline,
      replicatedToBaselineRatio: baseline === null || baseline.throughputTps === 0 ? null : round(result.throughputTps / baseline.throughputTps, 4),
      signatureCeiling,
      throughputToCeilingRatio: signatureCeiling === null ? null : round(result.throughputTps / signatureCeiling.ceilingTps, 4),
    };
    output.out(formatReport(report));
    if (plan.json !== undefined) {
      await writeFile(plan.json, `${JSON.stringify(report, null, 2)}\n`);
      output.err(`${COMMAND}: wrote ${plan.json}\n`);
    }
    if (result.committed === 0) {
      output.err(`${COMMAND}: nothing committed in the timed window${result.firstFailure === null ? "" : `; ${result.firstFailure}`}\n`);
      return EXIT_FAILED;
    }
    return EXIT_OK;
  } catch (error) {
    if (error instanceof UsageError) {
      output.err(`${COMMAND}: ${error.message}\n`);
      return EXIT_USAGE;
    }
    if (error instanceof StoppedBeforeMeasuring || stop.signal.aborted) {
      output.err(`${COMMAND}: stopped before anything was measured\n`);
      return EXIT_FAILED;
    }
    output.err(`${COMMAND}: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT_FAILED;
  } finally {
    if (cluster !== undefined) {
      reporter.phase("stopping the replicas");
      const killed = await cluster.stop();
      reporter.done("replicas stopped");
      if (killed.length > 0) output.err(`${COMMAND}: replicas ${killed.join(", ")} did not stop in time and were killed${settings.profileDir === null ? "" : " (their CPU profiles are lost)"}\n`);
    }
    if (temporaryDir !== undefined) await rm(temporaryDir, { recursive: true, force: true });
    if (profile !== undefined && settings.profileDir !== null) output.err(`${COMMAND}: CPU profiles in ${settings.profileDir} (the bench's: ${await profile.stop(settings.profileDir)})\n`);
    signals.remove();
  }
}

/** Ctrl-C came before the replicated run started. */
class StoppedBeforeMeasuring extends Error {
  override readonly name = "StoppedBeforeMeasuring";
}

/** The baseline run (one process, no replication) on the same workload settings and the measured cluster's batch size, in a temporary store. */
async function runBaselineReport(plan: BenchPlan, settings: BenchSettings, reporter: BenchReporter, signal: AbortSignal): Promise<RunReport> {
  const dataDir = await mkdtemp(join(tmpdir(), "bulwark-baseline-"));
  try {
    reporter.phase("baseline: building the workload");
    // The baseline's store is new, so its authority (a key of the run's own) starts at nonce 1.
    const authority = BenchKey.derive(new Uint8Array(randomBytes(KEY_SEED_BYTES)), "baseline-authority", 0);
    const workloadSettings = { ...plan.workload, keySeed: new Uint8Array(randomBytes(KEY_SEED_BYTES)), authority: { key: authority, firstNonce: 1 } };
    const workload = createWorkload(workloadSettings);
    await prepareEnvelopes(workload, workloadSettings, plan.preparePerClient, reporter, signal);
    reporter.phase(`baseline: ${settings.warmupS} s warm-up and ${settings.durationS} s measured, in this process`);
    let seconds = 0;
    const result = await runBaseline({
      workload,
      authority: authority.publicKey,
      clients: settings.clients,
      durationS: settings.durationS,
      warmupS: settings.warmupS,
      batchSize: settings.batchSize,
      dataDir: join(dataDir, "store"),
      onSecond: (committed) => {
        seconds += 1;
        reporter.detail(seconds <= settings.warmupS ? `warming up, ${seconds} of ${settings.warmupS} s` : `${seconds - settings.warmupS} of ${settings.durationS} s, ${committed.toLocaleString("en-US")} committed`);
      },
      signal,
    });
    reporter.done(`baseline: ${Math.round(result.throughputTps).toLocaleString("en-US")} tx/s`);
    return baselineRunReport(result, workload.builtOnDemand, signal.aborted);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function runCompare(pathA: string, pathB: string, output: CliOutput): Promise<number> {
  try {
    // One after the other: with both files bad, the first one's problem is the one reported
    // (read together, whichever failed first won, and the message changed from run to run).
    const a = await readReport(pathA);
    const b = await readReport(pathB);
    output.out(formatComparison(a, b, pathA, pathB));
    return EXIT_OK;
  } catch (error) {
    if (!(error instanceof ReportFileError)) throw error;
    output.err(`${COMMAND} compare: ${error.message}\n`);
    return EXIT_USAGE;
  }
}

function positiveRate(text: string): number {
  const value = Number(text);
  if (!/^\s*[0-9]+(\.[0-9]+)?\s*$/.test(text) || !(value > 0)) throw new InvalidArgumentError("expected a rate in transactions per second, a positive number.");
  return value;
}

export function registerBenchCommand(program: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  const bench = usageErrorsExitWith2(program.command("bench"))
    .description("Benchmark a cluster: start local replicas (or target --cluster), drive a workload, and report throughput, latency, CPU and memory.")
    .addOption(new Option("--workload <name>", "noop (empty operations: consensus alone), kv (YCSB-A-like), transfer (signed token transfers)").choices(WORKLOAD_NAMES).default(BENCH_DEFAULTS.workload))
    .addOption(new Option("--auth <mode>", "session: a client authenticates once per connection and MACs each request; signed: every transaction signed").choices(["session", "signed"]).default(BENCH_DEFAULTS.auth))
    .option("--clients <n>", `closed-loop clients, each with one request in flight (default ${BENCH_DEFAULTS.clients}); with --rate, the pool of keys`, integerParser("a number of clients", 1))
    .option("--rate <tx/s>", "open loop: this many arrivals per second, latency measured from each arrival's intended time", positiveRate)
    .option("--duration <seconds>", "the timed window", secondsParser(1), BENCH_DEFAULTS.durationS)
    .option("--warmup <seconds>", "load before the timed window, not measured", secondsParser(0), BENCH_DEFAULTS.warmupS)
    .option("--json <file>", "write the full report (settings, commit, machine, every figure) to this file")
    .option("--cluster <file>", "benchmark the running cluster of this cluster.json instead of starting a local one")
    .option("--key <file>", "with --cluster and --workload transfer: the genesis authority's key (default: client.key beside the cluster file)")
    .option("--metrics <urls>", "with --cluster: the replicas' Prometheus URLs, comma-separated in id order, for CPU and memory (default: not measured)")
    .option("--replicas <n>", "replicas of the local cluster, n = 3f + 1", parseInteger, INIT_DEFAULTS.replicas)
    .option("--batch-size <n>", "the local cluster's maxBatchSize (requests per batch and block)", integerParser("a batch size", 1), DEFAULT_PROTOCOL_PARAMETERS.maxBatchSize)
    .option("--dir <dir>", "keep the local cluster in this directory (reused if it holds one); default a temporary directory, removed afterwards")
    .option("--profile <dir>", "write CPU profiles (.cpuprofile) of every replica and of the bench process to this directory")
    .option("--baseline", "first run the same workload in one process without replication, and report the ratio")
    .option("--seed <n>", "seeds the workload's random choices", integerParser("a seed", 0), BENCH_DEFAULTS.seed)
    .option("--records <n>", `kv: records the keys are drawn from (default ${KV_RECORDS_DEFAULT.toLocaleString("en-US")})`, integerParser("a number of records", 1))
    .option("--preload", "kv: write every record once before the run (YCSB's load phase; not measured)")
    .option("--retain-blocks <n>", "the local cluster's replicas keep block bodies for this many heights below the tip (bulwark replica --retain-blocks), which bounds their data files; default: keep all", integerParser("a number of blocks", 0))
    .option("--accounts <n>", `transfer: accounts (default ${TRANSFER_ACCOUNTS_DEFAULT.toLocaleString("en-US")})`, integerParser("a number of accounts", 2))
    .option("--loaders <k>", "threads generating the load, each with its own connections and a share of the clients", integerParser("a number of threads", 1), 1)
    .option("--prepare-rate <tx/s>", `build envelopes before the run for this rate (default: --rate, else ${PREPARE_RATE_DEFAULT.session.toLocaleString("en-US")} session / ${PREPARE_RATE_DEFAULT.signed.toLocaleString("en-US")} signed)`, positiveRate)
    .addHelpText(
      "after",
      "\nThe local cluster runs in real processes with durable storage; its logs are in DIR/replica-<i>.log.\n" +
        "Reports: throughput (median of 1-second windows after warm-up), latency p50/p90/p99/max, CPU seconds per\n" +
        "1,000 transactions of every process, peak RSS, view changes. See docs/PERFORMANCE.md.\n\n" +
        "Examples:\n  bulwark bench --workload kv --auth session --duration 30 --json out.json\n" +
        "  bulwark bench --workload transfer --auth signed --baseline\n" +
        "  bulwark bench --workload noop --rate 5000 --duration 60\n" +
        "  bulwark bench compare before.json after.json\n\n" +
        "Exit code 0 after a run that committed transactions; 1 when it failed or committed nothing; 2 on a bad option.",
    )
    .action(async (flags: BenchFlags, command: Command) => {
      const given = new Set(Object.keys(flags).filter((name) => command.getOptionValueSource(name) === "cli"));
      const plan = benchPlan(flags, given);
      if (Array.isArray(plan)) {
        for (const problem of plan) output.err(`${COMMAND}: ${problem}\n`);
        setExitCode(EXIT_USAGE);
        return;
      }
      setExitCode(await runBench(plan, output));
    });
  usageErrorsExitWith2(bench.command("compare"))
    .description("Print two bench --json reports side by side, with the ratio of every figure.")
    .argument("<a>", "the first report (the reference)")
    .argument("<b>", "the second report")
    .action(async (pathA: string, pathB: string) => {
      setExitCode(await runCompare(pathA, pathB, output));
    });
}
