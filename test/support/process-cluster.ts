// A cluster of real `bulwark replica` processes for crash tests (issue 3 §5): each replica is a
// child process on a free localhost port with its own data directory in one temporary directory,
// so a test can SIGKILL one at any instant, wipe its store, restart it, and afterwards open every
// store to compare the ledgers. The processes' stdout and stderr go to log files beside the data
// (appended across restarts), and `logTail` gives what an assertion message should include.
//
// Cleanup is unconditional: the test's `after` hook kills every process still running and removes
// the directory, and a process-exit hook kills leftovers if the runner itself dies first, so a
// failing test never leaves replicas holding ports.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { type WriteStream, createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";

import { kvStateKey } from "../../src/app/ledger-state.js";
import { BulwarkClient } from "../../src/client/index.js";
import { type Ed25519KeyPair, generateEd25519KeyPair } from "../../src/crypto/ed25519.js";
import { blockHeaderHash, decodeBlockHeader } from "../../src/ledger/block-header.js";
import { clusterConfigToJson } from "../../src/ledger/cluster-json.js";
import { CLUSTER_CONFIG_VERSION, type ClusterConfig, DEFAULT_PROTOCOL_PARAMETERS, type ProtocolParameters } from "../../src/ledger/cluster.js";
import { writeKeyFile } from "../../src/node/keys.js";
import { HEADERS_PER_READ_MAX, ReplicaStore } from "../../src/storage/index.js";

/** dist/test/support/ → the repository root, where bin/bulwark.js loads dist/src/cli/main.js. */
const BULWARK_BIN = fileURLToPath(new URL("../../../bin/bulwark.js", import.meta.url));

/** How long a replica may take from spawn to "replica started" (a cold node start plus LMDB open). */
export const START_TIMEOUT_MS = 20_000;
/** How long a SIGTERM'd replica may take to finish in-flight blocks and close its store. */
export const STOP_TIMEOUT_MS = 15_000;
/** How long `bulwark verify` may run before it is killed (and reported with exit code null). */
const VERIFY_TIMEOUT_MS = 120_000;
/** Log lines `logTail` includes by default in an assertion message. */
const LOG_TAIL_LINES_DEFAULT = 30;
/** Most log lines kept in memory per replica; older ones are only in the log file. */
const LOG_LINES_KEPT_MAX = 20_000;

export interface ProcessClusterOptions {
  /** Replicas, n = 3f + 1; default 4. */
  readonly replicas?: number;
  /** Overrides of DEFAULT_PROTOCOL_PARAMETERS (small checkpoint intervals, quick view changes). */
  readonly protocol?: Partial<ProtocolParameters>;
  /** Extra `bulwark replica` flags for every replica (e.g. ["--sync", "none"]). */
  readonly replicaFlags?: readonly string[];
}

/** One pino line of a replica's stdout, with the fields the tests look at. */
export interface LogLine {
  readonly msg: string;
  readonly fields: Readonly<Record<string, unknown>>;
  /** Which start of the replica printed it (1 for the first). */
  readonly incarnation: number;
}

/** What one replica's store holds, read after the replica stopped. */
export interface LedgerSnapshot {
  /** Height of the block the stored state reflects (0: no block). */
  readonly appliedHeight: number;
  /** The applied state digest (the stateRoot of that block), hex; "" with no block. */
  readonly stateDigestHex: string;
  /** Every stored header's hash, by height. A state-transferred store lacks the heights below its checkpoint. */
  readonly headerHashes: ReadonlyMap<number, string>;
  /** The value stored under each key asked for (undefined: absent). */
  readonly kvValues: ReadonlyMap<string, Uint8Array | undefined>;
}

/** The outcome of `bulwark verify --json` on one replica's store. */
export interface VerifyOutcome {
  readonly exitCode: number | null;
  /** The parsed summary (the last stdout line), or undefined when there was none. */
  readonly summary: Readonly<Record<string, unknown>> | undefined;
  readonly stdout: string;
  readonly stderr: string;
}

interface Running {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly incarnation: number;
}

interface ReplicaSlot {
  readonly id: number;
  readonly dataDirectory: string;
  readonly logPath: string;
  readonly log: WriteStream;
  running: Running | undefined;
  incarnations: number;
  readonly lines: LogLine[];
  /** Waiters of `waitForLog`, checked on every new line. */
  readonly watchers: Set<(line: LogLine) => void>;
}

/** Per-attempt timeout of the load's clients: short, so a request stuck at a killed primary is re-broadcast (and a view change starts) quickly. */
const LOAD_REQUEST_TIMEOUT_MS = 500;
/** A put that no f + 1 replicas answered within this long is a liveness failure of the test. */
const LOAD_DEADLINE_MS = 20_000;

/** Every child any cluster started and has not seen exit, killed if the runner exits first. */
const liveChildren = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of liveChildren) child.kill("SIGKILL");
});

/** Free localhost ports, each found by listening on port 0; all held open until every one is chosen, so they differ. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once("error", reject);
          server.listen(0, "127.0.0.1", () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  return ports;
}

function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

export class ProcessCluster {
  readonly directory: string;
  readonly clusterFile: string;
  readonly config: ClusterConfig;
  /** The genesis authority's key pair (may mint); any other key may put. */
  readonly authority: Ed25519KeyPair;
  private readonly slots: ReplicaSlot[];
  private readonly replicaFlags: readonly string[];
  private disposed = false;

  private constructor(directory: string, config: ClusterConfig, authority: Ed25519KeyPair, replicaFlags: readonly string[]) {
    this.directory = directory;
    this.clusterFile = join(directory, "cluster.json");
    this.config = config;
    this.authority = authority;
    this.replicaFlags = replicaFlags;
    this.slots = config.replicas.map((replica) => {
      const logPath = join(directory, `replica-${replica.id}.log`);
      return {
        id: replica.id,
        dataDirectory: join(directory, "data", `replica-${replica.id}`),
        logPath,
        log: createWriteStream(logPath, { flags: "a" }),
        running: undefined,
        incarnations: 0,
        lines: [],
        watchers: new Set(),
      };
    });
  }

  /**
   * Writes cluster.json and the replicas' key files into a fresh temporary directory. Nothing is
   * started. The processes and the directory are removed when the test `t` ends.
   */
  static async create(t: TestContext, options: ProcessClusterOptions = {}): Promise<ProcessCluster> {
    const n = options.replicas ?? 4;
    assert.ok(n >= 4 && (n - 1) % 3 === 0, `a cluster needs n = 3f + 1 replicas; got ${n}`);
    const directory = mkdtempSync(join(tmpdir(), "bulwark-process-cluster-"));
    // Filled in once the cluster exists; the hook must be registered first, so that a failure
    // while writing the files still removes the directory.
    const created: { cluster?: ProcessCluster } = {};
    t.after(async () => {
      if (created.cluster !== undefined) await created.cluster.dispose();
      else rmSync(directory, { recursive: true, force: true });
    });
    const ports = await freePorts(n);
    const keys = ports.map(() => generateEd25519KeyPair());
    const authority = generateEd25519KeyPair();
    const config: ClusterConfig = {
      version: CLUSTER_CONFIG_VERSION,
      clusterId: `test-${randomBytes(6).toString("hex")}`,
      n,
      f: (n - 1) / 3,
      replicas: keys.map((key, id) => ({ id, address: `127.0.0.1:${ports[id]}`, publicKey: key.publicKey })),
      genesisAuthority: authority.publicKey,
      protocol: { ...DEFAULT_PROTOCOL_PARAMETERS, ...options.protocol },
    };
    for (const [replica, key] of keys.entries()) {
      await writeKeyFile(join(directory, `replica-${replica}.key`), { role: "replica", replica, ...key });
    }
    await writeFile(join(directory, "cluster.json"), clusterConfigToJson(config));
    const cluster = new ProcessCluster(directory, config, authority, options.replicaFlags ?? []);
    created.cluster = cluster;
    return cluster;
  }

  get n(): number {
    return this.config.n;
  }

  get f(): number {
    return this.config.f;
  }

  isRunning(id: number): boolean {
    return this.slot(id).running !== undefined;
  }

  /** How many times replica `id` was started. */
  incarnations(id: number): number {
    return this.slot(id).incarnations;
  }

  dataDirectory(id: number): string {
    return this.slot(id).dataDirectory;
  }

  /**
   * Starts replica `id` and resolves once it logged `until` (default: "replica started", its port
   * bound and its store restored; "replica starting" to act during its start).
   */
  async start(id: number, until: RegExp = /^replica started$/): Promise<void> {
    const slot = this.slot(id);
    assert.equal(slot.running, undefined, `replica ${id} is already running`);
    slot.incarnations += 1;
    const incarnation = slot.incarnations;
    slot.log.write(`--- start ${incarnation} of replica ${id} at ${new Date().toISOString()} ---\n`);
    const child = spawn(
      process.execPath,
      [BULWARK_BIN, "replica", "--cluster", this.clusterFile, "--id", String(id), "--data", slot.dataDirectory, ...this.replicaFlags],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    liveChildren.add(child);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once("close", (code, signal) => {
        liveChildren.delete(child);
        if (slot.running?.child === child) slot.running = undefined;
        slot.log.write(`--- replica ${id} (start ${incarnation}) exited: code ${code}, signal ${signal} ---\n`);
        resolve({ code, signal });
      });
    });
    slot.running = { child, exited, incarnation };
    this.captureLines(slot, child, incarnation);
    const started = this.waitForLog(id, until, START_TIMEOUT_MS, { incarnation });
    const died = exited.then(({ code, signal }) => {
      throw new Error(`replica ${id} exited (code ${code}, signal ${signal}) before it started\n${this.logTail(id)}`);
    });
    await Promise.race([started, died]);
    died.catch(() => undefined);
  }

  /** Sends `signal` to replica `id` (SIGSTOP and SIGCONT included) and returns at once. */
  signal(id: number, signal: NodeJS.Signals): void {
    const running = this.slot(id).running;
    assert.ok(running !== undefined, `replica ${id} is not running`);
    running.child.kill(signal);
  }

  /** Waits until replica `id` exits; fails after `timeoutMs` (and kills it), naming what it waited `after`. */
  async exited(id: number, timeoutMs = STOP_TIMEOUT_MS, after = "of waiting"): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const running = this.slot(id).running;
    assert.ok(running !== undefined, `replica ${id} is not running`);
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([running.exited, new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)))]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      running.child.kill("SIGKILL");
      await running.exited;
      assert.fail(`replica ${id} did not exit within ${timeoutMs} ms ${after}\n${this.logTail(id)}`);
    }
    return outcome;
  }

  /** Sends `signal` to replica `id` and waits until the process is gone. */
  async kill(id: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const running = this.slot(id).running;
    assert.ok(running !== undefined, `replica ${id} is not running`);
    running.child.kill(signal);
    await running.exited;
  }

  /** Stops replica `id` gracefully (SIGTERM) and asserts that it exited cleanly in time. */
  async stop(id: number): Promise<void> {
    this.signal(id, "SIGTERM");
    const outcome = await this.exited(id, STOP_TIMEOUT_MS, "of SIGTERM");
    assert.equal(outcome.code, 0, `replica ${id} exited with code ${outcome.code} (signal ${outcome.signal}) after SIGTERM\n${this.logTail(id)}`);
  }

  /** Stops every running replica (SIGTERM), all at once. */
  async stopAll(): Promise<void> {
    const running = this.slots.filter((slot) => slot.running !== undefined).map((slot) => slot.id);
    const results = await Promise.allSettled(running.map((id) => this.stop(id)));
    const failures = results.flatMap((result) => (result.status === "rejected" ? [result.reason instanceof Error ? result.reason.message : String(result.reason)] : []));
    assert.equal(failures.length, 0, failures.join("\n\n"));
  }

  /** Removes replica `id`'s data directory (it must be stopped): the replica restarts with an empty store. */
  async wipe(id: number): Promise<void> {
    const slot = this.slot(id);
    assert.equal(slot.running, undefined, `replica ${id} must be stopped before its data directory is wiped`);
    await rm(slot.dataDirectory, { recursive: true, force: true });
    slot.log.write(`--- data directory of replica ${id} wiped ---\n`);
  }

  /**
   * Resolves with the first line of replica `id`'s log (its current start, or the start given)
   * whose "msg" matches `msgPattern`, looking at lines already printed first; rejects after
   * `timeoutMs` with the log's tail.
   */
  waitForLog(id: number, msgPattern: RegExp | string, timeoutMs: number, options: { readonly incarnation?: number } = {}): Promise<LogLine> {
    const slot = this.slot(id);
    const incarnation = options.incarnation ?? slot.incarnations;
    const matches = (line: LogLine): boolean =>
      line.incarnation === incarnation && (typeof msgPattern === "string" ? line.msg === msgPattern : msgPattern.test(line.msg));
    const seen = slot.lines.find(matches);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise<LogLine>((resolve, reject) => {
      const watcher = (line: LogLine): void => {
        if (!matches(line)) return;
        clearTimeout(timer);
        slot.watchers.delete(watcher);
        resolve(line);
      };
      const timer = setTimeout(() => {
        slot.watchers.delete(watcher);
        reject(new Error(`replica ${id} logged no line matching ${String(msgPattern)} within ${timeoutMs} ms (start ${incarnation})\n${this.logTail(id)}`));
      }, timeoutMs);
      slot.watchers.add(watcher);
    });
  }

  /**
   * Resolves once replica `id`'s current start has finished every job it began: the last line
   * equal to `begun` (if any) is followed by a line equal to `finished`. A replica may begin the
   * same job several times per start, so an earlier `finished` line does not count.
   */
  async waitForJobs(id: number, begun: string, finished: string, timeoutMs: number): Promise<void> {
    const slot = this.slot(id);
    const deadlineMs = Date.now() + timeoutMs;
    for (;;) {
      let lastBegun = -1;
      let lastFinished = -1;
      slot.lines.forEach((line, index) => {
        if (line.incarnation !== slot.incarnations) return;
        if (line.msg === begun) lastBegun = index;
        if (line.msg === finished) lastFinished = index;
      });
      if (lastBegun < 0 || lastFinished > lastBegun) return;
      if (Date.now() > deadlineMs) assert.fail(`replica ${id} began "${begun}" and did not log "${finished}" within ${timeoutMs} ms\n${this.logTail(id)}`);
      await sleep(50);
    }
  }

  /** Every log line of replica `id` (all its starts) whose "msg" matches. */
  logLines(id: number, msgPattern: RegExp | string): LogLine[] {
    return this.slot(id).lines.filter((line) => (typeof msgPattern === "string" ? line.msg === msgPattern : msgPattern.test(line.msg)));
  }

  /** The last lines of replica `id`'s log file, for an assertion message. */
  logTail(id: number, lines = LOG_TAIL_LINES_DEFAULT): string {
    const slot = this.slot(id);
    const recent = slot.lines.slice(-lines).map((line) => `  [${line.incarnation}] ${JSON.stringify({ msg: line.msg, ...line.fields })}`);
    return `--- last ${recent.length} log lines of replica ${id} (full log: ${slot.logPath}) ---\n${recent.join("\n")}`;
  }

  /** The tails of every replica's log. */
  logTails(lines = LOG_TAIL_LINES_DEFAULT): string {
    return this.slots.map((slot) => this.logTail(slot.id, lines)).join("\n");
  }

  /**
   * Reads replica `id`'s store (the replica must be stopped): the applied height and state
   * digest, every stored header's hash, and the values of `kvKeys` (UTF-8 key-value-store keys).
   */
  async readLedger(id: number, kvKeys: readonly string[] = []): Promise<LedgerSnapshot> {
    const slot = this.slot(id);
    assert.equal(slot.running, undefined, `replica ${id} must be stopped before its store is read`);
    const store = await ReplicaStore.openExisting({ directory: slot.dataDirectory, clusterId: this.config.clusterId });
    try {
      const applied = store.appliedState();
      const latest = store.latestHeight() ?? 0;
      const headerHashes = new Map<number, string>();
      for (let from = 1; from <= latest; from += HEADERS_PER_READ_MAX) {
        for (const stored of store.getHeaders(from, Math.min(latest, from + HEADERS_PER_READ_MAX - 1))) {
          headerHashes.set(stored.height, Buffer.from(blockHeaderHash(decodeBlockHeader(stored.header))).toString("hex"));
        }
      }
      const encoder = new TextEncoder();
      const kvValues = new Map<string, Uint8Array | undefined>();
      for (const key of kvKeys) kvValues.set(key, store.getState(kvStateKey(encoder.encode(key))));
      return {
        appliedHeight: applied?.height ?? 0,
        stateDigestHex: applied === undefined ? "" : Buffer.from(applied.stateDigest).toString("hex"),
        headerHashes,
        kvValues,
      };
    } finally {
      await store.close();
    }
  }

  /** Runs `bulwark verify --json` on replica `id`'s store (the replica must be stopped). */
  async verify(id: number): Promise<VerifyOutcome> {
    const slot = this.slot(id);
    assert.equal(slot.running, undefined, `replica ${id} must be stopped before its store is verified`);
    const child = spawn(process.execPath, [BULWARK_BIN, "verify", "--data", slot.dataDirectory, "--cluster", this.clusterFile, "--json"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    liveChildren.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    // A hung audit must fail the test, not hang the run.
    const timer = setTimeout(() => child.kill("SIGKILL"), VERIFY_TIMEOUT_MS);
    const exitCode = await new Promise<number | null>((resolve) =>
      child.once("close", (code) => {
        clearTimeout(timer);
        liveChildren.delete(child);
        resolve(code);
      }),
    );
    const last = stdout.trim().split("\n").pop() ?? "";
    let summary: Record<string, unknown> | undefined;
    try {
      summary = JSON.parse(last) as Record<string, unknown>;
    } catch {
      summary = undefined;
    }
    return { exitCode, summary, stdout, stderr };
  }

  /** Kills every process still running and removes the directory. Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all(
      this.slots.map(async (slot) => {
        const running = slot.running;
        if (running === undefined) return;
        running.child.kill("SIGKILL");
        await running.exited;
      }),
    );
    await Promise.all(this.slots.map((slot) => new Promise<void>((resolve) => slot.log.end(() => resolve()))));
    // For debugging a failure: keep the stores and logs.
    if (process.env.BULWARK_KEEP_TEST_DIRS === "1") {
      process.stderr.write(`kept ${this.directory}\n`);
      return;
    }
    // LMDB may still be closing its files for a moment after a SIGKILL on some systems; retry once.
    await rm(this.directory, { recursive: true, force: true }).catch(async () => {
      await sleep(200);
      await rm(this.directory, { recursive: true, force: true });
    });
  }

  private slot(id: number): ReplicaSlot {
    const slot = this.slots[id];
    assert.ok(slot !== undefined, `no replica ${id} in a cluster of ${this.slots.length}`);
    return slot;
  }

  /** Copies the child's output to the log file and parses stdout's pino lines. */
  private captureLines(slot: ReplicaSlot, child: ChildProcess, incarnation: number): void {
    let pending = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      slot.log.write(chunk);
      pending += chunk.toString("utf8");
      const complete = pending.split("\n");
      pending = complete.pop() ?? "";
      for (const text of complete) this.addLine(slot, text, incarnation);
    });
    child.stdout!.on("end", () => {
      if (pending !== "") this.addLine(slot, pending, incarnation);
      pending = "";
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      slot.log.write(chunk);
      for (const text of chunk.toString("utf8").split("\n")) if (text !== "") this.addLine(slot, JSON.stringify({ msg: `stderr: ${text}` }), incarnation);
    });
  }

  private addLine(slot: ReplicaSlot, text: string, incarnation: number): void {
    if (text.trim() === "") return;
    let line: LogLine;
    try {
      const parsed = JSON.parse(text) as Record<string, unknown>;
      const { msg, time: _time, pid: _pid, hostname: _hostname, ...fields } = parsed;
      line = { msg: typeof msg === "string" ? msg : "", fields, incarnation };
    } catch {
      line = { msg: text, fields: {}, incarnation };
    }
    slot.lines.push(line);
    if (slot.lines.length > LOG_LINES_KEPT_MAX) slot.lines.splice(0, slot.lines.length - LOG_LINES_KEPT_MAX);
    for (const watcher of [...slot.watchers]) watcher(line);
  }
}

/** One put that f + 1 replicas acknowledged. */
export interface AckedPut {
  readonly client: number;
  readonly key: string;
  readonly value: string;
  /** The height of the block that holds it, as the replies said; 0 when every agreeing reply came from a reply cache. */
  readonly height: number;
  /** Order numbers: when the put was sent, and when it was acknowledged, on one counter shared by all puts of the load. */
  readonly sentAt: number;
  readonly ackedAt: number;
}

/**
 * Closed-loop put load (PBFT §4.1: a client has one request in flight and waits for its reply
 * before sending the next), from several client keys at once. Keys are unique, so a value never
 * changes once acknowledged and every acknowledgement can be checked against every store later.
 */
export class PutLoad {
  readonly acked: AckedPut[] = [];
  /** Puts that ended without an acknowledgement, with why. */
  readonly failures: string[] = [];
  private readonly clients: readonly BulwarkClient[];
  private readonly prefix: string;
  private readonly nextIndex: number[];
  private order = 0;
  private running: Promise<void> | undefined;
  private stopping = false;

  private constructor(clients: readonly BulwarkClient[], prefix: string) {
    this.clients = clients;
    this.prefix = prefix;
    this.nextIndex = clients.map(() => 0);
  }

  /** Connects `clientCount` fresh client keys to the cluster. */
  static async connect(cluster: ProcessCluster, clientCount: number, prefix = "key"): Promise<PutLoad> {
    const clients = await Promise.all(
      Array.from({ length: clientCount }, () =>
        BulwarkClient.connect({
          cluster: cluster.config,
          privateKey: generateEd25519KeyPair().privateKey,
          requestTimeoutMs: LOAD_REQUEST_TIMEOUT_MS,
          deadlineMs: LOAD_DEADLINE_MS,
        }),
      ),
    );
    return new PutLoad(clients, prefix);
  }

  /** The highest height an acknowledgement named (0 before any). */
  get maxHeight(): number {
    return this.acked.reduce((highest, put) => Math.max(highest, put.height), 0);
  }

  /** One put by client `client`; throws when it is not acknowledged. */
  async put(client: number): Promise<AckedPut> {
    const index = this.nextIndex[client]!;
    this.nextIndex[client] = index + 1;
    const key = `${this.prefix}/c${client}/${index}`;
    const value = `value/${key}/${randomBytes(4).toString("hex")}`;
    const sentAt = this.order++;
    try {
      const committed = await this.clients[client]!.put(key, value);
      const put = { client, key, value, height: committed.height, sentAt, ackedAt: this.order++ };
      this.acked.push(put);
      return put;
    } catch (error) {
      const message = `put ${key} failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`;
      this.failures.push(message);
      throw new Error(message, { cause: error });
    }
  }

  /** One put per client, concurrently; throws unless every one is acknowledged. */
  async putEach(): Promise<AckedPut[]> {
    return Promise.all(this.clients.map((_, client) => this.put(client)));
  }

  /** `count` puts spread over the clients, each client closed-loop; throws at the first one not acknowledged. */
  async putCount(count: number): Promise<void> {
    let left = count;
    await Promise.all(
      this.clients.map(async (_, client) => {
        while (left > 0) {
          left -= 1;
          await this.put(client);
        }
      }),
    );
  }

  /** Puts (closed-loop per client) until `done()` holds, at most `countMax`; throws when a put fails or the bound is reached first. */
  async putUntil(done: () => boolean, countMax: number): Promise<void> {
    let sent = 0;
    await Promise.all(
      this.clients.map(async (_, client) => {
        while (!done()) {
          assert.ok(sent < countMax, `${countMax} puts did not bring the cluster where the test needs it (highest acknowledged height ${this.maxHeight})`);
          sent += 1;
          await this.put(client);
        }
      }),
    );
  }

  /** Starts every client putting in a loop until `stop()`; failures are recorded, not thrown. */
  start(): void {
    assert.equal(this.running, undefined, "the load is already running");
    this.stopping = false;
    this.running = Promise.all(
      this.clients.map(async (_, client) => {
        while (!this.stopping) await this.put(client).catch(() => undefined);
      }),
    ).then(() => undefined);
  }

  /** Stops the loop started by `start()` and waits for the puts in flight to end. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    this.running = undefined;
  }

  async close(): Promise<void> {
    await this.stop();
    await Promise.all(this.clients.map((client) => client.close()));
  }
}
