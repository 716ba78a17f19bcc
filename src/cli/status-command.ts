// `bulwark status`: one line per replica of a running cluster (issue 4 §4): whether it answers,
// whether it leads the view it is in, how far it executed and its stable checkpoint. It asks every
// replica through the client SDK's `status` call. When too few replicas answer for the client to
// connect at all, it still prints the table, with "reachable" from a plain TCP connect, so the
// operator sees which replicas are down.
//
// Exit code 0 when at least 2f + 1 replicas answer (a quorum: the cluster can commit); 1 when
// some answer but fewer than 2f + 1; 2 on a bad flag or file; 3 when fewer than f + 1 answer.

import { connect as tcpConnect } from "node:net";

import type { Command } from "commander";
import { InvalidArgumentError } from "commander";

import type { BulwarkClient, ReplicaStatus } from "../client/index.js";
import { generateEd25519KeyPair } from "../crypto/ed25519.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import { parseAddress } from "../node/address.js";
import {
  EXIT_OK,
  EXIT_REJECTED,
  EXIT_UNAVAILABLE,
  type ConnectionFlags,
  addConnectionOptions,
  connectForCli,
  exitCodeOf,
  readClusterForCli,
  readPrivateKeyForCli,
  usageErrorsExitWith2,
} from "./cluster-client.js";
import type { CliOutput } from "./output.js";

const COMMAND = "bulwark status";
/** Status answers are small and local: a replica that takes longer is as good as down for this table. */
const STATUS_TIMEOUT_MS_DEFAULT = 5_000;
const WATCH_INTERVAL_MS_DEFAULT = 2_000;
/**
 * How long a fresh connection waits for its links to the other replicas before the first report:
 * `connect` returns once f + 1 are open, and a replica whose link is still opening would be
 * reported unreachable. A replica that is really down costs the report this much.
 */
const LINKS_SETTLE_MS_MAX = 1_500;
const LINKS_POLL_MS = 25;
/** Moves the cursor home and clears the terminal, so that --watch redraws in place. */
const CLEAR_SCREEN = "\u001b[H\u001b[2J";

interface StatusFlags extends ConnectionFlags {
  readonly json?: boolean;
  readonly watch?: boolean;
  readonly interval: number;
}

/** What one round of asking found. */
export interface StatusReport {
  readonly clusterId: string;
  readonly n: number;
  readonly f: number;
  /** Whether the client could connect (f + 1 replicas answered its handshake). */
  readonly connected: boolean;
  readonly replicas: readonly ReplicaStatus[];
}

function parseIntervalMs(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 100) throw new InvalidArgumentError("expected milliseconds between refreshes, at least 100.");
  return value;
}

function roleOf(status: ReplicaStatus): string {
  if (!status.reachable) return "-";
  if (status.normal === false) return "view change";
  if (status.primary === undefined) return "?";
  return status.primary === status.replica ? "primary" : "backup";
}

function cell(value: number | undefined): string {
  return value === undefined ? "-" : String(value);
}

export function reachableCount(report: StatusReport): number {
  return report.replicas.filter((status) => status.reachable).length;
}

/** The table and a summary line: what `bulwark status` prints for people. */
export function formatStatusTable(report: StatusReport): string {
  const header = ["replica", "address", "reachable", "role", "view", "executed", "checkpoint"];
  const rows = report.replicas.map((status) => [
    String(status.replica),
    status.address,
    status.reachable ? "yes" : "no",
    roleOf(status),
    cell(status.view),
    cell(status.executedHeight),
    cell(status.stableCheckpoint),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (row: readonly string[]): string => row.map((text, column) => text.padEnd(widths[column]!)).join("  ").trimEnd();
  const reachable = reachableCount(report);
  const quorum = 2 * report.f + 1;
  const verdict =
    reachable >= quorum
      ? `a quorum (2f + 1 = ${quorum}) answers: the cluster can commit`
      : `fewer than 2f + 1 = ${quorum} answer: the cluster cannot commit until more replicas are back`;
  const fallback = report.connected ? "" : "\n(the client could not connect; \"reachable\" only means the replica's port accepts TCP connections)";
  return `${line(header)}\n${rows.map(line).join("\n")}\n\ncluster "${report.clusterId}": ${reachable} of ${report.n} replicas reachable; ${verdict}${fallback}\n`;
}

export function statusExitCode(report: StatusReport): number {
  if (!report.connected) return EXIT_UNAVAILABLE;
  return reachableCount(report) >= 2 * report.f + 1 ? EXIT_OK : EXIT_REJECTED;
}

/** Whether a TCP connection to `address` opens within `timeoutMs`. */
export function tcpReachable(address: string, timeoutMs: number): Promise<boolean> {
  const { host, port } = parseAddress(address);
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port });
    const finish = (reachable: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reachable);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.once("connect", () => finish(true));
    socket.once("error", () => finish(false));
  });
}

async function tcpOnlyReport(cluster: ClusterConfig, timeoutMs: number): Promise<StatusReport> {
  const replicas = await Promise.all(
    cluster.replicas.map(async (replica) => ({ replica: replica.id, address: replica.address, reachable: await tcpReachable(replica.address, timeoutMs) })),
  );
  return { clusterId: cluster.clusterId, n: cluster.n, f: cluster.f, connected: false, replicas };
}

/** Resolves once every replica's link is open, or after `maxMs`. */
async function linksSettled(client: BulwarkClient, n: number, maxMs: number): Promise<void> {
  const deadlineMs = Date.now() + maxMs;
  while (client.connectedReplicas < n && Date.now() < deadlineMs) await new Promise((resolve) => setTimeout(resolve, LINKS_POLL_MS));
}

async function ask(client: BulwarkClient, cluster: ClusterConfig, timeoutMs: number): Promise<StatusReport> {
  const replicas = await client.status({ timeoutMs });
  return { clusterId: cluster.clusterId, n: cluster.n, f: cluster.f, connected: true, replicas };
}

function render(report: StatusReport, flags: StatusFlags, output: CliOutput): void {
  if (flags.json === true) output.out(`${JSON.stringify(report)}\n`);
  else if (flags.watch !== true) output.out(formatStatusTable(report));
  // On a terminal each report replaces the last; in a file or pipe each one says when it was taken.
  else output.out(`${output.interactive ? CLEAR_SCREEN : ""}--- ${new Date().toISOString()} ---\n${formatStatusTable(report)}`);
}

async function runStatus(flags: StatusFlags, output: CliOutput): Promise<number> {
  let client: BulwarkClient | undefined;
  let stopRequested = false;
  let wake: (() => void) | undefined;
  const onSignal = (): void => {
    stopRequested = true;
    wake?.();
  };
  if (flags.watch === true) {
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  }
  try {
    const cluster = readClusterForCli(flags.cluster);
    // Status signs nothing, so any key may ask; a throwaway one keeps the client key's nonces out of it.
    const privateKey = flags.key === undefined ? generateEd25519KeyPair().privateKey : await readPrivateKeyForCli(flags.key, output);
    for (;;) {
      if (client === undefined) {
        try {
          client = await connectForCli({ command: COMMAND, cluster, privateKey, deadlineMs: flags.timeout, firstNonce: 1 }, output);
          await linksSettled(client, cluster.n, Math.min(LINKS_SETTLE_MS_MAX, flags.timeout));
        } catch (error) {
          if (exitCodeOf(error) === undefined) throw error;
          if (flags.watch !== true) output.err(`${COMMAND}: ${(error as Error).message}\n`);
        }
      }
      const report = client === undefined ? await tcpOnlyReport(cluster, flags.timeout) : await ask(client, cluster, flags.timeout);
      render(report, flags, output);
      if (flags.watch !== true || stopRequested) return statusExitCode(report);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, flags.interval);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (stopRequested) return EXIT_OK;
    }
  } catch (error) {
    const exitCode = exitCodeOf(error);
    if (exitCode === undefined) throw error;
    output.err(`${COMMAND}: ${(error as Error).message}\n`);
    return exitCode;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await client?.close();
  }
}

export function registerStatusCommand(program: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  const command = usageErrorsExitWith2(
    program.command("status").description("Show every replica of a running cluster: reachable, primary or backup, view, executed height, stable checkpoint."),
  );
  addConnectionOptions(command, "a private key file to connect with (default: a throwaway key; status signs nothing)", STATUS_TIMEOUT_MS_DEFAULT)
    .option("--json", "print one JSON object per report")
    .option("--watch", "refresh until Ctrl-C")
    .option("--interval <ms>", "milliseconds between refreshes with --watch", parseIntervalMs, WATCH_INTERVAL_MS_DEFAULT)
    .addHelpText(
      "after",
      "\nExamples:\n  bulwark status\n  bulwark status --cluster /etc/bulwark/cluster.json --watch\n\n" +
        "Exit code 0 when at least 2f + 1 replicas answer; 1 when fewer do; 2 on a bad flag or file;\n" +
        "3 when fewer than f + 1 answer (the client cannot connect).",
    )
    .action(async (flags: StatusFlags) => {
      setExitCode(await runStatus(flags, output));
    });
}
