// `bulwark status`: one line per replica of a running cluster (issue 4 §4): whether it answers,
// its role in the view it is in, how far it executed and its stable checkpoint, and below the
// table what f + 1 replicas vouch for (client/status-summary.ts, the same summary as the gateway's
// GET /v1/status). It asks every replica through the client SDK's `status` call. When too few
// replicas answer for the client to connect at all, it still prints the table, with "reachable"
// from a plain TCP connect, so the operator sees which replicas are down.
//
// Exit code 0 when at least 2f + 1 replicas answer (a quorum: the cluster can commit); 1 when
// f + 1 to 2f answer; 2 on a bad flag or file; 3 when fewer than f + 1 answer (or the client
// could not connect at all).

import { connect as tcpConnect } from "node:net";

import type { Command } from "commander";

import { type BulwarkClient, type ReplicaRole, type ReplicaStatus, type StatusSummary, summarizeStatus } from "../client/index.js";
import { generateEd25519KeyPair } from "../crypto/ed25519.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import { parseAddress } from "../node/address.js";
import {
  CommandDeadline,
  EXIT_OK,
  EXIT_REJECTED,
  EXIT_UNAVAILABLE,
  type ConnectionFlags,
  addConnectionOptions,
  connectForCli,
  exitCodeOf,
  failureMessage,
  readClusterForCli,
  readPrivateKeyForCli,
  reportFailure,
} from "./cluster-client.js";
import type { CliOutput } from "./output.js";
import { millisecondsParser, usageErrorsExitWith2 } from "./parse.js";
import { StopSignals } from "./stop-signals.js";

const COMMAND = "bulwark status";
/**
 * The command's --timeout default, longer than the SDK's 2 s for a status call: it covers
 * connecting too. A replica that takes longer is as good as down for this table.
 */
const STATUS_COMMAND_TIMEOUT_MS_DEFAULT = 5_000;
const WATCH_INTERVAL_MS_DEFAULT = 2_000;
/**
 * The least time the plain TCP probes get when the client could not connect. Connecting waits
 * for f + 1 replicas until the deadline, so the probes would otherwise get what is left of it,
 * nothing, and a replica that is up would be shown as down on any machine slow to connect
 * (the CLI test saw it). The command can then run this much past --timeout.
 */
const TCP_FALLBACK_MS_MIN = 1_000;

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

/**
 * What one round of asking found: the summary, and whether the client could connect (f + 1
 * replicas answered its handshake). Without a connection nothing is known of roles: `role` is absent.
 */
export interface StatusReport extends Omit<StatusSummary, "replicas"> {
  readonly clusterId: string;
  readonly connected: boolean;
  readonly replicas: readonly (ReplicaStatus & { readonly role?: ReplicaRole })[];
}

const ROLE_TEXT = { primary: "primary", backup: "backup", "view-change": "view change", unreachable: "-" } as const;

function cell(value: number | null | undefined): string {
  return value === undefined || value === null ? "-" : String(value);
}

/** The report of one round: what the replicas said (`connected`), or only which ports accept TCP connections. */
export function statusReport(cluster: ClusterConfig, replicas: readonly ReplicaStatus[], connected: boolean): StatusReport {
  const summary = summarizeStatus(cluster, replicas);
  return { clusterId: cluster.clusterId, connected, ...summary, replicas: connected ? summary.replicas : replicas };
}

/** The table and a summary line: what `bulwark status` prints for people. */
function formatStatusTable(report: StatusReport): string {
  const header = ["replica", "address", "reachable", "role", "view", "executed", "checkpoint"];
  const rows = report.replicas.map((status) => [
    String(status.replica),
    status.address,
    status.reachable ? "yes" : "no",
    status.role === undefined ? "-" : ROLE_TEXT[status.role],
    cell(status.view),
    cell(status.executedHeight),
    cell(status.stableCheckpoint),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (row: readonly string[]): string => row.map((text, column) => text.padEnd(widths[column]!)).join("  ").trimEnd();
  const verdict = report.quorumReachable
    ? `a quorum (2f + 1 = ${report.quorum}) answers: the cluster can commit`
    : `fewer than 2f + 1 = ${report.quorum} answer: the cluster cannot commit until more replicas are back`;
  // Each replica's figures are its own claim; these are the ones f + 1 replicas (one of them correct) reached.
  const vouched =
    report.connected && report.view !== null
      ? `\nf + 1 replicas vouch for: view ${report.view} (primary ${report.primary}), executed height ${cell(report.executedHeight)}, ` +
        `stable checkpoint ${cell(report.stableCheckpoint)}, certified height ${cell(report.certifiedHeight)}`
      : "";
  const fallback = report.connected ? "" : "\n(the client could not connect; \"reachable\" only means the replica's port accepts TCP connections)";
  return `${line(header)}\n${rows.map(line).join("\n")}\n\ncluster "${report.clusterId}": ${report.reachable} of ${report.n} replicas reachable; ${verdict}${vouched}${fallback}\n`;
}

/** 0 with a quorum answering, 1 with f + 1 to 2f, 3 with fewer than f + 1 or no connection at all. */
export function statusExitCode(report: StatusReport): number {
  if (!report.connected || report.reachable < report.f + 1) return EXIT_UNAVAILABLE;
  return report.quorumReachable ? EXIT_OK : EXIT_REJECTED;
}

/** Whether a TCP connection to `address` opens within `timeoutMs`. */
function tcpReachable(address: string, timeoutMs: number): Promise<boolean> {
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
  return statusReport(cluster, replicas, false);
}

/** Resolves once every replica's link is open, or after `maxMs`. */
async function linksSettled(client: BulwarkClient, n: number, maxMs: number): Promise<void> {
  const deadlineMs = Date.now() + maxMs;
  while (client.connectedReplicas < n && Date.now() < deadlineMs) await new Promise((resolve) => setTimeout(resolve, LINKS_POLL_MS));
}

function render(report: StatusReport, flags: StatusFlags, output: CliOutput): void {
  if (flags.json === true) output.out(`${JSON.stringify(report)}\n`);
  else if (flags.watch !== true) output.out(formatStatusTable(report));
  // On a terminal each report replaces the last; in a file or pipe each one says when it was taken.
  else output.out(`${output.interactive ? CLEAR_SCREEN : ""}--- ${new Date().toISOString()} ---\n${formatStatusTable(report)}`);
}

/** Resolves after `ms`, or at once when `stopped` resolves first. */
function pause(ms: number, stopped: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))), stopped.then(() => undefined)]).finally(() => clearTimeout(timer));
}

async function runStatus(flags: StatusFlags, output: CliOutput): Promise<number> {
  let client: BulwarkClient | undefined;
  // Only --watch runs until stopped; a single report ends by itself, and Ctrl-C keeps its default.
  const signals = flags.watch === true ? new StopSignals() : undefined;
  try {
    const cluster = readClusterForCli(flags.cluster);
    // Status signs nothing, so any key may ask; a throwaway one keeps the client key's nonces out of it.
    const privateKey = flags.key === undefined ? generateEd25519KeyPair().privateKey : await readPrivateKeyForCli(flags.key, output);
    for (;;) {
      // --timeout bounds each report as a whole: connecting, the links settling and the answers
      // (when connecting fails, the TCP probes after it get at least TCP_FALLBACK_MS_MIN more).
      const deadline = new CommandDeadline(flags.timeout);
      if (client === undefined) {
        try {
          client = await connectForCli({ command: COMMAND, cluster, privateKey, deadline, firstNonce: 1 }, output);
          await linksSettled(client, cluster.n, Math.min(LINKS_SETTLE_MS_MAX, deadline.remainingMs()));
        } catch (error) {
          if (exitCodeOf(error) === undefined) throw error;
          if (flags.watch !== true) output.err(`${COMMAND}: ${failureMessage(error, deadline)}\n`);
        }
      }
      const round =
        client === undefined
          ? await tcpOnlyReport(cluster, Math.max(deadline.remainingMs(), TCP_FALLBACK_MS_MIN))
          : statusReport(cluster, await client.status({ timeoutMs: deadline.remainingMs() }), true);
      render(round, flags, output);
      if (signals === undefined || signals.requested) return statusExitCode(round);
      await pause(flags.interval, signals.stopped);
      if (signals.requested) return EXIT_OK;
    }
  } catch (error) {
    return reportFailure(COMMAND, error, output);
  } finally {
    signals?.remove();
    await client?.close();
  }
}

export function registerStatusCommand(program: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  const command = usageErrorsExitWith2(
    program.command("status").description("Show every replica of a running cluster: reachable, primary or backup, view, executed height, stable checkpoint."),
  );
  addConnectionOptions(command, "a private key file to connect with (default: a throwaway key; status signs nothing)", STATUS_COMMAND_TIMEOUT_MS_DEFAULT)
    .option("--json", "print one JSON object per report")
    .option("--watch", "refresh until Ctrl-C")
    .option("--interval <ms>", "milliseconds between refreshes with --watch", millisecondsParser(100), WATCH_INTERVAL_MS_DEFAULT)
    .addHelpText(
      "after",
      "\nExamples:\n  bulwark status\n  bulwark status --cluster /etc/bulwark/cluster.json --watch\n\n" +
        "Exit code 0 when at least 2f + 1 replicas answer; 1 when f + 1 to 2f do; 2 on a bad flag or file;\n" +
        "3 when fewer than f + 1 answer (or the client cannot connect at all).",
    )
    .action(async (flags: StatusFlags) => {
      setExitCode(await runStatus(flags, output));
    });
}
