// `bulwark init DIR`: makes a new cluster's files in one directory: the public `cluster.json`
// (every replica's address and key, the genesis authority, the protocol parameters), one private
// key file per replica and one for the default client, whose key is the genesis authority so
// that it can mint the first tokens. Every flag is checked, and every key generated, before
// anything is written: a usage error (exit 2) leaves the disk untouched.

import assert from "node:assert/strict";
import { lstat, mkdir, readdir, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";

import type { Command } from "commander";

import { CLIENT_KEY_FILE } from "../client/index.js";
import { generateEd25519KeyPair } from "../crypto/ed25519.js";
import { clusterConfigToJson, parseClusterConfigJson } from "../ledger/cluster-json.js";
import {
  CLUSTER_CONFIG_VERSION,
  CLUSTER_ID_PATTERN,
  CLUSTER_REPLICAS_MAX,
  type ClusterConfig,
  DEFAULT_PROTOCOL_PARAMETERS,
  type ProtocolParameters,
} from "../ledger/cluster.js";
import { type KeyFile, KeyFileError, writeKeyFile } from "../node/keys.js";
import type { CliOutput } from "./output.js";
import { EXIT_USAGE, PORT_MAX, parseInteger, usageErrorsExitWith2 } from "./parse.js";

export const INIT_EXIT_OK = 0;
/** The files could not be written (permissions, a full disk); the message names the file. */
export const INIT_EXIT_FAILED = 1;
/** A bad flag, or files already there without --force; nothing was written. */
export const INIT_EXIT_USAGE = EXIT_USAGE;

export const INIT_DEFAULTS = Object.freeze({
  replicas: 4,
  host: "127.0.0.1",
  basePort: 7000,
  clusterId: "bulwark-local",
});

/** Existing files a refusal names before it says "and N more". */
const EXISTING_NAMED_MAX = 3;
/** The largest n = 3f + 1 that a cluster config may list. */
const REPLICAS_MAX = 3 * Math.floor((CLUSTER_REPLICAS_MAX - 1) / 3) + 1;
/** A DNS name or IPv4 address, as cluster.json's reader accepts them in an address. */
const HOST_NAME_PATTERN = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;

export interface InitFlags {
  readonly replicas: number;
  readonly host: string;
  readonly basePort: number;
  readonly clusterId: string;
  readonly force?: boolean;
  /** Protocol parameters other than the defaults (`bulwark bench --batch-size` sets maxBatchSize); not a flag of init. */
  readonly protocol?: Partial<ProtocolParameters>;
}

export const CLUSTER_FILE_NAME = "cluster.json";

export function replicaKeyFileName(replica: number): string {
  return `replica-${replica}.key`;
}

/** Everything init writes, made (and checked) before the first file is touched. */
interface InitPlan {
  readonly config: ClusterConfig;
  readonly clusterPath: string;
  readonly clusterText: string;
  readonly replicaKeys: ReadonlyArray<{ readonly path: string; readonly key: KeyFile }>;
  readonly clientKey: { readonly path: string; readonly key: KeyFile };
}

/** The problem of --replicas n (a cluster of n = 3f + 1, at most REPLICAS_MAX), or undefined when usable; also for the commands that create a cluster as init does. */
export function replicasProblem(n: number): string | undefined {
  if (n > REPLICAS_MAX) return `--replicas: at most ${REPLICAS_MAX} replicas (f = ${(REPLICAS_MAX - 1) / 3}) are supported; got ${n}`;
  if (n < 4 || (n - 1) % 3 !== 0) {
    // Name the largest valid cluster below n (or the smallest, 4), which is what n replicas could safely run as.
    const f = Math.max(1, Math.floor((n - 1) / 3));
    return `--replicas: ${3 * f + 1} replicas tolerate f = ${f}; got ${n} replicas (n must be 3f + 1: 4, 7, 10, ...)`;
  }
  return undefined;
}

/** The problems of the flags, each naming its flag and saying what to fix (empty when usable). */
export function initFlagProblems(flags: InitFlags): string[] {
  const problems: string[] = [];
  const n = flags.replicas;
  const replicas = replicasProblem(n);
  if (replicas !== undefined) problems.push(replicas);
  if (hostForAddress(flags.host) === undefined) {
    problems.push(
      `--host: must be a DNS name, an IPv4 address or an IPv6 address, without a port (ports come from --base-port); got ${JSON.stringify(flags.host)}`,
    );
  }
  if (flags.basePort < 1 || flags.basePort > PORT_MAX) {
    problems.push(`--base-port: must be a port from 1 to ${PORT_MAX}; got ${flags.basePort}`);
  } else if (n >= 1 && flags.basePort + n - 1 > PORT_MAX) {
    problems.push(
      `--base-port: replica ${n - 1} would listen on port ${flags.basePort + n - 1}, above ${PORT_MAX}; with ${n} replicas use a base port of at most ${PORT_MAX - n + 1}`,
    );
  }
  if (!CLUSTER_ID_PATTERN.test(flags.clusterId)) {
    problems.push(`--cluster-id: must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit; got ${JSON.stringify(flags.clusterId)}`);
  }
  return problems;
}

/** The host as it goes before ":port" (an IPv6 address in brackets), or undefined if unusable. */
function hostForAddress(host: string): string | undefined {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  // isIP accepts a zone ("fe80::1%eth0"), which a cluster.json address has no room for.
  if (isIP(bare) === 6 && /^[0-9A-Fa-f:.]+$/.test(bare)) return `[${bare}]`;
  if (bare === host && HOST_NAME_PATTERN.test(host)) return host;
  return undefined;
}

/** Generates the keys and the config for checked flags. */
function planInit(directory: string, flags: InitFlags): InitPlan {
  const n = flags.replicas;
  const host = hostForAddress(flags.host);
  assert.ok(host !== undefined, "flags are checked before planning");
  const replicaKeys = Array.from({ length: n }, (_, replica) => {
    const pair = generateEd25519KeyPair();
    return { path: join(directory, replicaKeyFileName(replica)), key: { role: "replica", replica, ...pair } satisfies KeyFile };
  });
  const client = generateEd25519KeyPair();
  const clientKey = { path: join(directory, CLIENT_KEY_FILE), key: { role: "client", ...client } satisfies KeyFile };
  const config: ClusterConfig = {
    version: CLUSTER_CONFIG_VERSION,
    clusterId: flags.clusterId,
    n,
    f: (n - 1) / 3,
    replicas: replicaKeys.map(({ key }, id) => ({ id, address: `${host}:${flags.basePort + id}`, publicKey: key.publicKey })),
    genesisAuthority: client.publicKey,
    protocol: { ...DEFAULT_PROTOCOL_PARAMETERS, ...flags.protocol },
  };
  const clusterPath = join(directory, CLUSTER_FILE_NAME);
  const clusterText = clusterConfigToJson(config);
  // Every flag was checked above, so a file that does not read back as this config is a bug.
  assert.deepEqual(parseClusterConfigJson(clusterText, clusterPath), config, "cluster.json must read back as the config init built");
  return { config, clusterPath, clusterText, replicaKeys, clientKey };
}

async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Replica key files in `directory` left from an earlier, larger init: not part of the new cluster. */
async function staleReplicaKeys(directory: string, n: number): Promise<string[]> {
  const names = await readdir(directory).catch(() => [] as string[]);
  return names
    .map((name) => ({ name, match: /^replica-(\d+)\.key$/.exec(name) }))
    .filter(({ match }) => match !== null && Number(match[1]) >= n)
    .map(({ name }) => join(directory, name));
}

function describeInit(directory: string, plan: InitPlan, stale: readonly string[]): string {
  const { config } = plan;
  const paths = [plan.clusterPath, ...plan.replicaKeys.map(({ path }) => path), plan.clientKey.path];
  const width = Math.max(...paths.map((path) => path.length));
  const lines = [
    `Initialized cluster "${config.clusterId}" in ${directory}: n = ${config.n} replicas, tolerating f = ${config.f} faulty ${config.f === 1 ? "replica" : "replicas"}`,
    `  ${plan.clusterPath.padEnd(width)}  public config: addresses, replica keys, genesis authority`,
    ...plan.replicaKeys.map(({ path }, id) => `  ${path.padEnd(width)}  replica ${id} at ${config.replicas[id]?.address}`),
    `  ${plan.clientKey.path.padEnd(width)}  default client; its key is the genesis authority, so it can mint tokens`,
    "Key files are private (mode 0600): give each replica cluster.json and its own key file, and nothing else.",
    ...stale.map((path) => `note: ${path} is left from an earlier init and is not part of this cluster; delete it`),
    // `bulwark replica` finds replica-<i>.key beside the cluster file unless --key says otherwise.
    `Next: start each replica i, e.g. bulwark replica --cluster ${plan.clusterPath} --id 0 --data ./data/replica-0 ` +
      "(on another machine, put cluster.json and replica-<i>.key side by side there).",
  ];
  return `${lines.join("\n")}\n`;
}

export async function runInit(directory: string, flags: InitFlags, output: CliOutput): Promise<number> {
  const problems = initFlagProblems(flags);
  if (problems.length > 0) {
    for (const problem of problems) output.err(`bulwark init: ${problem}\n`);
    return INIT_EXIT_USAGE;
  }
  const plan = planInit(directory, flags);
  const targets = [plan.clusterPath, ...plan.replicaKeys.map(({ path }) => path), plan.clientKey.path];
  const force = flags.force === true;
  if (!force) {
    const existing: string[] = [];
    for (const path of targets) if (await pathExists(path)) existing.push(path);
    if (existing.length > 0) {
      const named = existing.slice(0, EXISTING_NAMED_MAX).join(", ");
      const more = existing.length > EXISTING_NAMED_MAX ? ` and ${existing.length - EXISTING_NAMED_MAX} more` : "";
      output.err(
        `bulwark init: ${named}${more} ${existing.length === 1 ? "exists" : "exist"}; delete ${existing.length === 1 ? "it" : "them"} or use --force ` +
          `(which replaces ${CLUSTER_FILE_NAME} and the key files: the old keys are lost)\n`,
      );
      return INIT_EXIT_USAGE;
    }
  }
  let filesWritten = 0;
  try {
    await mkdir(directory, { recursive: true });
    // Keys first and cluster.json last: a cluster.json on disk means every file it needs is there.
    for (const { path, key } of [...plan.replicaKeys, plan.clientKey]) {
      await writeKeyFile(path, key, { overwrite: force });
      filesWritten += 1;
    }
    await writeFile(plan.clusterPath, plan.clusterText, { flag: force ? "w" : "wx" });
  } catch (error) {
    if (error instanceof KeyFileError && error.exists) {
      // Another process made the file after the check above.
      output.err(`bulwark init: ${error.path} exists; delete it or use --force\n`);
      return INIT_EXIT_USAGE;
    }
    const message = error instanceof Error ? error.message : String(error);
    const incomplete = filesWritten > 0 ? `The cluster in ${directory} is incomplete; fix the problem and run bulwark init again with --force.\n` : "";
    output.err(`bulwark init: ${message}\n${incomplete}`);
    return INIT_EXIT_FAILED;
  }
  output.out(describeInit(directory, plan, await staleReplicaKeys(directory, flags.replicas)));
  return INIT_EXIT_OK;
}

export function registerInitCommand(program: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  usageErrorsExitWith2(program.command("init"))
    .description("Create a new cluster: cluster.json (addresses, public keys, protocol parameters) and a private key file for every replica and for the default client.")
    .argument("<dir>", "directory to write the files to (created if missing)")
    .option("--replicas <n>", "number of replicas, n = 3f + 1 (4, 7, 10, ...) to tolerate f faulty ones", parseInteger, INIT_DEFAULTS.replicas)
    .option("--host <host>", "host of every replica: a DNS name, IPv4 or IPv6 address (edit cluster.json to spread replicas over machines)", INIT_DEFAULTS.host)
    .option("--base-port <port>", "port of replica 0; replica i listens on base port + i", parseInteger, INIT_DEFAULTS.basePort)
    .option("--cluster-id <id>", "the cluster's name (letters, digits, '.', '_', '-'), signed into every block", INIT_DEFAULTS.clusterId)
    .option("--force", "replace cluster.json and the key files if they exist (the old keys are lost)")
    .addHelpText(
      "after",
      "\nWrites DIR/cluster.json, DIR/replica-<i>.key for i = 0 .. n - 1, and DIR/client.key (the genesis authority,\n" +
        "which may mint tokens). Key files are written with mode 0600.\n\n" +
        "Examples:\n  bulwark init ./cluster\n  bulwark init ./cluster --replicas 7 --host 10.0.0.5 --base-port 9000 --cluster-id staging\n\n" +
        "Exit code 0 when the files are written; 1 when they cannot be written;\n" +
        "2 on a bad option, or when the files exist and --force is not given (nothing is written).",
    )
    .action(async (directory: string, flags: InitFlags) => {
      setExitCode(await runInit(directory, flags, output));
    });
}
