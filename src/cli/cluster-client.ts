// What the commands that talk to a running cluster share (`bulwark client`, `status`, `gateway`,
// `up`): the --cluster, --key and --timeout flags and their defaults, reading both files with
// messages that say what to fix, one deadline for a whole command (--timeout), connecting with
// progress on stderr, and one mapping from the client's errors (client/errors.ts,
// `classifyClientError`) to exit codes, so that every command means the same thing by 1, 2 and 3.

import { existsSync } from "node:fs";
import { join } from "node:path";

import type { Command } from "commander";

import { canonicalHexToBytes } from "../app/bytes.js";
import { type BulwarkClient, NonceError, RejectedError, classifyClientError, connect } from "../client/index.js";
import { type Ed25519PrivateKey, ED25519_PUBLIC_KEY_BYTES } from "../crypto/ed25519.js";
import { ClusterConfigError, readClusterFile } from "../ledger/cluster-json.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import { KeyFileError, readKeyFile } from "../node/keys.js";
import { CLUSTER_FILE_NAME } from "./init-command.js";
import type { CliOutput } from "./output.js";
import { EXIT_USAGE, millisecondsParser } from "./parse.js";
import { stderrProgress } from "./progress.js";

export const EXIT_OK = 0;
/** The cluster answered, and the answer is "no": a rejected transaction, a key not found, a failed cas. */
export const EXIT_REJECTED = 1;
/** A bad flag or argument, or a cluster or key file that cannot be used. */
export { EXIT_USAGE };
/**
 * Too few replicas could be reached, they did not agree within --timeout, or the key's nonce could
 * not be used (another process signing with the same key): nothing final was said, try again.
 */
export const EXIT_UNAVAILABLE = 3;

/** Where `bulwark up` keeps its cluster, and so where the other commands look by default. */
export const DEFAULT_CLUSTER_DIRECTORY = ".bulwark";
export const DEFAULT_CLUSTER_PATH = join(DEFAULT_CLUSTER_DIRECTORY, CLUSTER_FILE_NAME);
/** A command's whole wait for the cluster, connecting included. */
const CALL_TIMEOUT_MS_DEFAULT = 15_000;
/** A wait shorter than this prints no progress (issue 4 §4: progress on anything over a second). */
const PROGRESS_DELAY_MS = 1_000;

export interface ConnectionFlags {
  readonly cluster: string;
  readonly key?: string;
  readonly timeout: number;
}

/** A problem with the command line or the files it names: printed as it is, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Adds --cluster, --key and --timeout to a command (each subcommand lists them in its own --help). */
export function addConnectionOptions(command: Command, keyDescription: string, timeoutMsDefault = CALL_TIMEOUT_MS_DEFAULT): Command {
  return command
    .option("--cluster <file>", "the cluster's public config", DEFAULT_CLUSTER_PATH)
    .option("--key <file>", keyDescription)
    .option("--timeout <ms>", "give up when the cluster has not answered within this many milliseconds, connecting included", millisecondsParser(1), timeoutMsDefault);
}

/**
 * A command's one deadline, --timeout after it started: connecting, the nonce discovery and the
 * call itself each get what is left of it, not a --timeout each.
 */
export class CommandDeadline {
  /** Fires when the deadline passes; every call of the command takes it. */
  readonly signal: AbortSignal;
  private readonly atMs: number;

  constructor(readonly timeoutMs: number) {
    this.atMs = Date.now() + timeoutMs;
    this.signal = AbortSignal.timeout(timeoutMs);
  }

  /** What is left, at least 1 ms (the client takes only positive times). */
  remainingMs(): number {
    return Math.max(1, this.atMs - Date.now());
  }
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

export interface CliConnectOptions {
  /** The command's name in messages ("bulwark client"). */
  readonly command: string;
  readonly cluster: ClusterConfig;
  readonly privateKey: Ed25519PrivateKey;
  /** The command's deadline: connecting and the nonce discovery take what is left of it. */
  readonly deadline: CommandDeadline;
  /** Default "discover": the account's next nonce is read from the cluster. */
  readonly firstNonce?: number | "discover";
}

/**
 * Connects to the cluster, showing "connecting to n replicas" on stderr when it takes more than
 * a second, and discovers the key's next nonce unless `firstNonce` is a number. Rejects with the
 * client's ClusterUnavailableError when f + 1 replicas cannot be reached before the deadline.
 */
export async function connectForCli(options: CliConnectOptions, output: CliOutput): Promise<BulwarkClient> {
  const { deadline, firstNonce = "discover" } = options;
  const progress = stderrProgress(output, { prefix: options.command, delayMs: PROGRESS_DELAY_MS });
  progress.start(`connecting to the cluster's ${options.cluster.n} replicas (f + 1 = ${options.cluster.f + 1} needed)`);
  try {
    // The client's per-call deadline is what is left now; the deadline's signal bounds every call
    // after this one, so that the command as a whole ends within --timeout.
    const client = await connect({
      cluster: options.cluster,
      key: options.privateKey,
      deadlineMs: deadline.remainingMs(),
      firstNonce: firstNonce === "discover" ? 1 : firstNonce,
    });
    if (firstNonce === "discover") {
      try {
        await client.discoverNonce({ signal: deadline.signal });
      } catch (error) {
        await client.close();
        throw error;
      }
    }
    progress.succeed("connected");
    return client;
  } catch (error) {
    progress.fail();
    throw error;
  }
}

/**
 * The message for an error a command ends with: the error's own, except for a call cut short by
 * the command's deadline, which says so (the client only knows that a signal fired).
 */
export function failureMessage(error: unknown, deadline?: CommandDeadline): string {
  if (deadline?.signal.aborted === true && classifyClientError(error)?.code === "aborted") {
    return `the cluster did not answer within --timeout ${deadline.timeoutMs} ms; a transaction that was sent may still commit`;
  }
  return (error as Error).message;
}

/**
 * The exit code for an error a command can end with, after printing its message; errors that
 * are not the user's or the cluster's (bugs) are thrown on.
 */
export function reportFailure(command: string, error: unknown, output: CliOutput, deadline?: CommandDeadline): number {
  const code = exitCodeOf(error);
  if (code === undefined) throw error;
  output.err(`${command}: ${failureMessage(error, deadline)}\n`);
  return code;
}

/**
 * The exit code of an error: the client's classification (client/errors.ts) mapped to the CLI's
 * codes. A rejected transaction is the cluster's final "no" (1); input the client refused to
 * encode is a usage error (2); everything else means no final answer came: unavailable, a
 * timeout, a nonce the key could not use (another process signing with it), an answer that
 * cannot be right (3). Undefined for an error that is nobody's but a bug's.
 */
export function exitCodeOf(error: unknown): number | undefined {
  if (error instanceof UsageError) return EXIT_USAGE;
  const kind = classifyClientError(error);
  if (kind === undefined) return undefined;
  if (kind.code === "rejected") return EXIT_REJECTED;
  if (kind.code === "invalid-request") return EXIT_USAGE;
  return EXIT_UNAVAILABLE;
}

/** A short name of the error's kind for --json output (the gateway's `error` codes where they overlap). */
export function errorCodeOf(error: unknown): string {
  if (error instanceof UsageError) return "usage";
  // What the cluster said: the transaction's error code, or "stale-nonce" / "nonce-gap".
  if (error instanceof RejectedError || error instanceof NonceError) return error.code;
  const kind = classifyClientError(error);
  if (kind === undefined) return "error";
  switch (kind.code) {
    case "unavailable":
      return "cluster-unavailable";
    case "aborted":
      // The only signal a command passes is its deadline's.
      return "timeout";
    case "invalid-answer":
      return "cluster-error";
    default:
      return kind.code;
  }
}
