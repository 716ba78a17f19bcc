// One replicated benchmark run against a cluster (a local one the command started, or a running
// one): connect, wait until the cluster commits, fund the workload (setup rounds, untimed),
// build the timed window's envelopes, then warm up and measure while probes read every process,
// and the views at the window's start and end give the view changes.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";

import { BulwarkClient, TimeoutError, connect } from "../client/index.js";
import { type Ed25519PrivateKey, generateEd25519KeyPair } from "../crypto/ed25519.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import { BenchKey, envelopeKeyAndNonce } from "./bench-keys.js";
import { IN_FLIGHT_FLOOR } from "./load-connections.js";
import { type LoadMode, type LoadOutcome, type LoadProgress, delay, epochNowMs } from "./load-driver.js";
import { type Loaders, startLoaders } from "./loaders.js";
import { prepareInParallel } from "./parallel-prepare.js";
import type { PreparedWorkload } from "./prepared-workload.js";
import { type ProcessProbe, ResourceMonitor } from "./probes.js";
import { type RunReport, type ViewFigures, processReport, viewFigures } from "./report.js";
import { KEY_SEED_BYTES, type WorkloadSettings, createWorkload } from "./workload.js";

const READY_TIMEOUT_MS = 60_000;
const READY_PROBE_KEY = "_bulwark/bench-ready";
const STATUS_TIMEOUT_MS = 2_000;
/** The load starts this long after it is scheduled, so every loader and probe is ready for it. */
const START_DELAY_MS = 200;

/** Where the run is, for the command's progress line. */
export interface BenchReporter {
  /** A new phase ("funding 10,000 accounts"). */
  phase(text: string): void;
  /** What the phase is at ("round 12 of 200"). */
  detail(text: string): void;
  /** The phase ended. */
  done(text?: string): void;
}

export interface ReplicatedRunOptions {
  readonly cluster: ClusterConfig;
  /** The workload to build once the authority's nonce is known (`authority` is filled in for transfer). */
  readonly workload: WorkloadSettings;
  /** transfer: the genesis authority, and its next nonce (1 on a fresh cluster) or "discover". */
  readonly authority?: { readonly privateKey: Ed25519PrivateKey; readonly firstNonce: number | "discover" };
  readonly mode: LoadMode;
  readonly warmupS: number;
  readonly durationS: number;
  /** Envelopes to build per client before the warm-up. */
  readonly preparePerClient: number;
  /** Threads generating the load: 1 is this thread; more are loader threads (loaders.ts). */
  readonly loaders: number;
  readonly replicaProbes: readonly ProcessProbe[];
  readonly benchProbe: ProcessProbe;
  readonly reporter: BenchReporter;
  readonly signal?: AbortSignal;
}

/** Reads a key through consensus until it answers: the cluster can commit. */
async function waitUntilReady(client: BulwarkClient, signal: AbortSignal | undefined): Promise<void> {
  const deadlineMs = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    try {
      await client.read(READY_PROBE_KEY, { signal });
      return;
    } catch (error) {
      if (!(error instanceof TimeoutError) || Date.now() > deadlineMs) throw error;
    }
  }
}

/** Commits the workload's setup rounds, each after the one before; every transaction must succeed. */
async function runSetup(client: BulwarkClient, workload: PreparedWorkload, reporter: BenchReporter, signal: AbortSignal | undefined): Promise<RunReport["setup"]> {
  const startedMs = Date.now();
  let rounds = 0;
  let transactions = 0;
  for (const round of workload.setupRounds()) {
    if (signal?.aborted === true) throw new Error("stopped during setup");
    rounds += 1;
    reporter.detail(`round ${rounds}, ${transactions.toLocaleString("en-US")} transactions so far`);
    const results = await Promise.all(round.map((envelope) => client.submitEnvelope(envelope, { decoded: envelopeKeyAndNonce(envelope), signal })));
    for (const committed of results) {
      if (!committed.result.ok) throw new Error(`a setup transaction of the ${workload.name} workload was refused (${committed.result.error}) in round ${rounds}`);
    }
    transactions += round.length;
  }
  return { rounds, transactions, seconds: (Date.now() - startedMs) / 1000 };
}

/**
 * Builds every client's envelopes before the run, on every core (parallel-prepare.ts), showing
 * progress; Ctrl-C stops it. `settings` are the workload's own, its key seed included.
 */
export async function prepareEnvelopes(workload: PreparedWorkload, settings: WorkloadSettings, perClient: number, reporter: BenchReporter, signal: AbortSignal | undefined): Promise<void> {
  await prepareInParallel(workload, { settings, perClient, onProgress: (fraction) => reporter.detail(`${Math.round(fraction * 100)} %`), signal });
}

/** Each replica's view, or undefined for one that did not answer. */
async function replicaViews(client: BulwarkClient): Promise<Array<number | undefined>> {
  try {
    const statuses = await client.status({ timeoutMs: STATUS_TIMEOUT_MS });
    return statuses.map((status) => (status.reachable ? status.view : undefined));
  } catch {
    return [];
  }
}

/** The authority's next nonce, read by proof from the cluster. */
async function discoverNonce(cluster: ClusterConfig, privateKey: Ed25519PrivateKey, signal: AbortSignal | undefined): Promise<number> {
  const client = await connect({ cluster, key: privateKey, firstNonce: "discover", signal });
  try {
    return client.nonce;
  } finally {
    await client.close();
  }
}

export async function runReplicated(options: ReplicatedRunOptions): Promise<RunReport & { readonly outcome: LoadOutcome; readonly workload: PreparedWorkload }> {
  const { reporter, signal } = options;
  reporter.phase(`connecting to the cluster's ${options.cluster.n} replicas`);
  // This connection's own key signs only the readiness read; it carries the setup rounds and asks
  // for the views, and the load goes over connections of its own (`connectLoad`).
  const client = await BulwarkClient.connect({ cluster: options.cluster, privateKey: generateEd25519KeyPair().privateKey, inFlightMax: IN_FLIGHT_FLOOR }, { signal });
  try {
    reporter.phase("waiting for the cluster to commit (a read through consensus)");
    await waitUntilReady(client, signal);
    // Every preparation thread derives the same keys from the key seed.
    let settings: WorkloadSettings = { ...options.workload, keySeed: options.workload.keySeed ?? new Uint8Array(randomBytes(KEY_SEED_BYTES)) };
    if (settings.name === "transfer") {
      assert.ok(options.authority !== undefined, "the transfer workload needs the authority");
      const { privateKey, firstNonce } = options.authority;
      reporter.phase("reading the genesis authority's nonce");
      const nonce = firstNonce === "discover" ? await discoverNonce(options.cluster, privateKey, signal) : firstNonce;
      settings = { ...settings, authority: { key: BenchKey.fromPrivateKey(privateKey), firstNonce: nonce } };
    }
    reporter.phase(`making the workload's keys`);
    const workload = createWorkload(settings);
    reporter.phase(`setting up the ${workload.name} workload (not measured)`);
    const setup = await runSetup(client, workload, reporter, signal);
    reporter.done(setup.transactions === 0 ? "no setup needed" : `set up: ${setup.transactions.toLocaleString("en-US")} transactions in ${setup.rounds} rounds`);
    const prepared = workload.clients * options.preparePerClient;
    const threads = options.loaders === 1 ? "" : ` on ${options.loaders} loader threads`;
    reporter.phase(`building ${prepared.toLocaleString("en-US")} ${workload.auth === "signed" ? "signed " : ""}envelopes ahead of the run${threads}, then connecting`);
    const loaders = await startLoaders(options.loaders, workload, {
      cluster: options.cluster,
      settings,
      perClient: options.preparePerClient,
      mode: options.mode,
      warmupMs: options.warmupS * 1000,
      durationMs: options.durationS * 1000,
      onPrepared: (fraction) => reporter.detail(`${Math.round(fraction * 100)} % built`),
      signal,
    });
    reporter.done(`built ${prepared.toLocaleString("en-US")} envelopes`);
    try {
      const measured = await measure(client, loaders, options);
      return { ...measured, setup, workload };
    } finally {
      await loaders.close();
    }
  } finally {
    await client.close();
  }
}

/** Runs the loaders; `client` (the setup's) asks for the views. */
async function measure(client: BulwarkClient, loaders: Loaders, options: ReplicatedRunOptions): Promise<Omit<RunReport, "setup"> & { readonly outcome: LoadOutcome }> {
  const { reporter } = options;
  const monitor = new ResourceMonitor([...options.replicaProbes, options.benchProbe]);
  const startAtMs = epochNowMs() + START_DELAY_MS;
  const warmupMs = options.warmupS * 1000;
  const durationMs = options.durationS * 1000;
  let startViews: Array<number | undefined> = [];
  let endViews: Array<number | undefined> = [];
  // The probes run beside the load: CPU and views at the window's start and end.
  // Ends the probes' waits early: on Ctrl-C, or when the load fails.
  const windowStop = new AbortController();
  const signal = windowStop.signal;
  const stopWindow = (): void => windowStop.abort();
  options.signal?.addEventListener("abort", stopWindow, { once: true });
  if (options.signal?.aborted === true) stopWindow();
  const windowEnds = delay(startAtMs + warmupMs - epochNowMs(), signal)
    .then(async () => {
      [startViews] = await Promise.all([replicaViews(client), monitor.start()]);
    })
    .then(() => delay(startAtMs + warmupMs + durationMs - epochNowMs(), signal))
    .then(async () => {
      [endViews] = await Promise.all([replicaViews(client), monitor.stop()]);
    });
  let measuringShown = false;
  reporter.phase(`warming up for ${options.warmupS} s`);
  let outcome: Awaited<ReturnType<Loaders["run"]>>;
  try {
    outcome = await loaders.run(startAtMs, (progress) => {
      if (progress.phase === "measuring" && !measuringShown) {
        measuringShown = true;
        reporter.phase(`measuring for ${options.durationS} s`);
      }
      reportProgress(reporter, progress, options);
    });
  } finally {
    // A run stopped early, or failed, ends the window at once (and the memory sampling with it).
    if (epochNowMs() < startAtMs + warmupMs + durationMs) stopWindow();
    await windowEnds;
    options.signal?.removeEventListener("abort", stopWindow);
  }
  reporter.done(`measured ${outcome.windows.length} s`);
  const views: ViewFigures = viewFigures(startViews, endViews);
  return {
    committed: outcome.committed,
    windows: outcome.windows,
    throughputTps: outcome.throughputTps,
    latency: outcome.latency,
    errors: outcome.errors,
    errorsByKind: outcome.errorsByKind,
    retries: outcome.retries,
    warmupCommitted: outcome.warmupCommitted,
    offered: options.mode.kind === "open" ? outcome.offered : null,
    noFreeKey: options.mode.kind === "open" ? outcome.noFreeKey : null,
    dropped: options.mode.kind === "open" ? outcome.dropped : null,
    inFlightAtEnd: outcome.inFlightAtEnd,
    stoppedEarly: outcome.stoppedEarly,
    builtOnDemand: outcome.builtOnDemand,
    histogram: outcome.histogram.encode(),
    processes: monitor.figures().map((figures) => processReport(figures, outcome.committed)),
    views,
    firstFailure: outcome.firstFailure ?? null,
    outcome,
  };
}

function reportProgress(reporter: BenchReporter, progress: LoadProgress, options: ReplicatedRunOptions): void {
  if (progress.phase === "warm-up") {
    reporter.detail(`${progress.elapsedS + 1} of ${options.warmupS} s, ${progress.lastSecond.toLocaleString("en-US")} tx/s`);
    return;
  }
  const errors = progress.errors > 0 ? `, ${progress.errors.toLocaleString("en-US")} errors` : "";
  reporter.detail(`${Math.min(progress.elapsedS + 1, options.durationS)} of ${options.durationS} s: ${progress.lastSecond.toLocaleString("en-US")} tx/s, ${progress.committed.toLocaleString("en-US")} committed, ${progress.inFlight} in flight${errors}`);
}
