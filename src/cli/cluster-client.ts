// What the commands that talk to a running cluster share (`bulwark client`, `status`, `gateway`,
// `up`): the --cluster and --key flags and their defaults, reading both files with messages that
// say what to fix, connecting with progress on stderr, and one mapping from the client's errors
// to exit codes, so that every command means the same thing by 1, 2 and 3.

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

import { type Command, CommanderError, InvalidArgumentError } from "commander";

import { bytesToHex, canonicalHexToBytes } from "../app/bytes.js";
import {
  type BulwarkClient,
  ClusterUnavailableError,
  NonceError,
  RejectedError,
  RequestAbortedError,
  TimeoutError,
  connect,
} from "../client/index.js";
import { type Ed25519PrivateKey, ED25519_PUBLIC_KEY_BYTES } from "../crypto/ed25519.js";
import { ClusterConfigError } from "../ledger/cluster-json.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import { KeyFileError, readKeyFile } from "../node/keys.js";
import { readClusterFile } from "./cluster-file.js";
import { CLIENT_KEY_FILE_NAME, CLUSTER_FILE_NAME } from "./init-command.js";
import type { CliOutput } from "./output.js";
import { stderrProgress } from "./progress.js";

export const EXIT_OK = 0;
/** The cluster answered, and the answer is "no": a rejected transaction, a key not found, a failed cas. */
export const EXIT_REJECTED = 1;
/** A bad flag or argument, or a cluster or key file that cannot be used. */
export const EXIT_USAGE = 2;
/** Too few replicas could be reached, or they did not agree in time. */
export const EXIT_UNAVAILABLE = 3;

/** Where `bulwark up` keeps its cluster, and so where the other commands look by default. */
export const DEFAULT_CLUSTER_DIRECTORY = ".bulwark";
export const DEFAULT_CLUSTER_PATH = join(DEFAULT_CLUSTER_DIRECTORY, CLUSTER_FILE_NAME);
/** A command's whole wait for the cluster, connecting included. */
export const CALL_TIMEOUT_MS_DEFAULT = 15_000;
/** A wait shorter than this prints no progress (issue 4 §4: progress on anything over a second). */
export const PROGRESS_DELAY_MS = 1_000;

export interface ConnectionFlags {
  readonly cluster: string;
  readonly key?: string;
  readonly timeout: number;
}

/** A problem with the command line or the files it names: printed as it is, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Commander reports a malformed argument with exit code 1; for these commands every usage error is 2. */
export function usageErrorsExitWith2(command: Command): Command {
  return command.exitOverride((error) => {
    if (error.exitCode === 0) throw error;
    throw new CommanderError(EXIT_USAGE, error.code, error.message);
  });
}

function parseTimeoutMs(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new InvalidArgumentError("expected a time in milliseconds, a whole number from 1.");
  return value;
}

/** Adds --cluster, --key and --timeout to a command (each subcommand lists them in its own --help). */
export function addConnectionOptions(command: Command, keyDescription: string, timeoutMsDefault = CALL_TIMEOUT_MS_DEFAULT): Command {
  return command
    .option("--cluster <file>", "the cluster's public config", DEFAULT_CLUSTER_PATH)
    .option("--key <file>", keyDescription)
    .option("--timeout <ms>", "give up when the cluster has not answered within this many milliseconds", parseTimeoutMs, timeoutMsDefault);
}

/** The default client key: client.key beside the cluster file (where `bulwark init` writes it). */
export function defaultClientKeyPath(clusterPath: string): string {
  return join(dirname(clusterPath), CLIENT_KEY_FILE_NAME);
}

/** The validated cluster config; a missing or bad file is a UsageError saying what to do. */
export function readClusterForCli(clusterPath: string): ClusterConfig {
  if (!existsSync(clusterPath)) {
    const hint =
      clusterPath === DEFAULT_CLUSTER_PATH
        ? "start a local cluster with `bulwark up` (or `npm start`), or pass --cluster with the path of your cluster.json"
        : "check the path, or create a cluster with `bulwark init DIR`";
    throw new UsageError(`${clusterPath} does not exist; ${hint}`);
  }
  try {
    return readClusterFile(clusterPath);
  } catch (error) {
    if (error instanceof ClusterConfigError) throw new UsageError(error.message);
    throw error;
  }
}

/** The private key in `path`; a permissions warning goes to stderr, an unusable file is a UsageError. */
export async function readPrivateKeyForCli(path: string, output: CliOutput): Promise<Ed25519PrivateKey> {
  try {
    const key = await readKeyFile(path, { warn: (message) => output.err(`warning: ${message}\n`) });
    return key.privateKey;
  } catch (error) {
    if (error instanceof KeyFileError) throw new UsageError(error.message);
    throw error;
  }
}

/**
 * An account id from the command line: a public key as 64 lowercase hex digits, or the path of a
 * key file whose public key it is (so `bulwark client mint .bulwark/alice.key 10` works).
 */
export async function parseAccount(text: string, what: string): Promise<Uint8Array> {
  const hex = canonicalHexToBytes(text.toLowerCase(), ED25519_PUBLIC_KEY_BYTES);
  if (hex !== undefined) return hex;
  if (!existsSync(text)) {
    throw new UsageError(`${what} must be an account: a public key of ${2 * ED25519_PUBLIC_KEY_BYTES} hex digits, or the path of a key file; got ${JSON.stringify(text)}`);
  }
  try {
    return (await readKeyFile(text)).publicKey;
  } catch (error) {
    if (error instanceof KeyFileError) throw new UsageError(`${what}: ${error.message}`);
    throw error;
  }
}

export function accountText(account: Uint8Array): string {
  return bytesToHex(account);
}

export interface CliConnectOptions {
  /** The command's name in messages ("bulwark client"). */
  readonly command: string;
  readonly cluster: ClusterConfig;
  readonly privateKey: Ed25519PrivateKey;
  /** How long connecting may take (the command's whole timeout). */
  readonly deadlineMs: number;
  /** Default "discover": the account's next nonce is read from the cluster. */
  readonly firstNonce?: number | "discover";
}

/**
 * Connects to the cluster, showing "connecting to n replicas" on stderr when it takes more than
 * a second. Rejects with the client's ClusterUnavailableError when f + 1 replicas cannot be
 * reached within the deadline.
 */
export async function connectForCli(options: CliConnectOptions, output: CliOutput): Promise<BulwarkClient> {
  const progress = stderrProgress(output, { prefix: options.command, delayMs: PROGRESS_DELAY_MS });
  progress.start(`connecting to the cluster's ${options.cluster.n} replicas (f + 1 = ${options.cluster.f + 1} needed)`);
  try {
    const client = await connect({
      cluster: options.cluster,
      key: options.privateKey,
      deadlineMs: options.deadlineMs,
      firstNonce: options.firstNonce ?? "discover",
    });
    progress.succeed("connected");
    return client;
  } catch (error) {
    progress.fail();
    throw error;
  }
}

/**
 * The exit code for an error a command can end with, after printing its message; errors that
 * are not the user's or the cluster's (bugs) are thrown on.
 */
export function reportFailure(command: string, error: unknown, output: CliOutput): number {
  const code = exitCodeOf(error);
  if (code === undefined) throw error;
  output.err(`${command}: ${(error as Error).message}\n`);
  return code;
}

export function exitCodeOf(error: unknown): number | undefined {
  if (error instanceof UsageError) return EXIT_USAGE;
  if (error instanceof RejectedError || error instanceof NonceError) return EXIT_REJECTED;
  if (error instanceof ClusterUnavailableError || error instanceof TimeoutError || error instanceof RequestAbortedError) return EXIT_UNAVAILABLE;
  return undefined;
}

/** A short name of the error's kind for --json output. */
export function errorCodeOf(error: unknown): string {
  if (error instanceof UsageError) return "usage";
  if (error instanceof RejectedError) return error.code;
  if (error instanceof NonceError) return error.code;
  if (error instanceof ClusterUnavailableError) return "cluster-unavailable";
  if (error instanceof TimeoutError || error instanceof RequestAbortedError) return "timeout";
  return "error";
}
