// `bulwark gateway`: the HTTP gateway alone (issue 4 §4), for a deployment where the replicas run
// on their own machines; `bulwark up` starts the same gateway in its own process. The gateway is a
// client of the cluster: it signs KV writes and linearizable reads with fresh writer keys of its
// own, and uses --key only to identify itself for the calls that sign nothing (proof reads,
// status, blocks, pre-signed transactions). It runs until SIGINT, SIGTERM, SIGHUP or SIGQUIT, then
// stops accepting requests, lets the ones in progress finish and exits 0. A stop while it is still
// connecting aborts the connect (startGateway's signal) and exits 0 at once, rather than waiting
// for the connect's own deadline (30 s) when the cluster is unreachable.

import { existsSync } from "node:fs";

import type { Command } from "commander";

import { defaultClientKeyPath } from "../client/index.js";
import type { Ed25519PrivateKey } from "../crypto/ed25519.js";
import { generateEd25519KeyPair } from "../crypto/ed25519.js";
import { startGateway } from "../gateway/index.js";
import { GATEWAY_HOST_DEFAULT, GATEWAY_PORT_DEFAULT, type Gateway, WRITER_KEYS_DEFAULT } from "../gateway/types.js";
import { DEFAULT_CLUSTER_PATH, EXIT_OK, EXIT_USAGE, UsageError, readClusterForCli, readPrivateKeyForCli, reportFailure } from "./cluster-client.js";
import type { CliOutput } from "./output.js";
import { portParser, usageErrorsExitWith2 } from "./parse.js";
import { stderrProgress } from "./progress.js";
import { EXIT_FORCED, StopSignals, startupController } from "./stop-signals.js";

const COMMAND = "bulwark gateway";
/**
 * The most waits on a start-up's AbortSignal at once: startGateway's connects (the reader and one
 * per writer key; the CLI keeps the default number) and the command's own wait on them.
 */
export const GATEWAY_START_LISTENERS_MAX = WRITER_KEYS_DEFAULT + 2;

interface GatewayFlags {
  readonly cluster: string;
  readonly key?: string;
  readonly host: string;
  readonly port: number;
}

/**
 * A sentence for a listen that failed because of the port or the address (in use, not permitted,
 * not this machine's): `what` says whose port it is, `remedy` how to choose another. Undefined for
 * any other error.
 */
export function listenProblem(error: unknown, host: string, port: number, what: string, remedy: string): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "EADDRINUSE") return `port ${port} on ${host} (${what}) is in use; stop what listens there (another bulwark up?) or ${remedy}`;
  if (code === "EACCES") return `not permitted to listen on port ${port} on ${host} (${what}); ports below 1024 need privileges: ${remedy}`;
  if (code === "EADDRNOTAVAIL") return `${host} is not an address of this machine, so port ${port} (${what}) cannot be bound there`;
  return undefined;
}

/** The key the gateway identifies itself with: --key, else client.key beside the cluster file, else a throwaway key. */
async function gatewayKey(flags: GatewayFlags, output: CliOutput): Promise<{ privateKey: Ed25519PrivateKey; source: string }> {
  if (flags.key !== undefined) return { privateKey: await readPrivateKeyForCli(flags.key, output), source: flags.key };
  const clientKeyPath = defaultClientKeyPath(flags.cluster);
  if (existsSync(clientKeyPath)) return { privateKey: await readPrivateKeyForCli(clientKeyPath, output), source: clientKeyPath };
  return { privateKey: generateEd25519KeyPair().privateKey, source: "a throwaway key (no --key, and no client.key beside the cluster file)" };
}

async function runGateway(flags: GatewayFlags, output: CliOutput): Promise<number> {
  const progress = stderrProgress(output, { prefix: COMMAND });
  // Installed before the start-up, so that Ctrl-C while connecting stops too: it aborts the start.
  const signals = new StopSignals();
  const startup = startupController(signals, GATEWAY_START_LISTENERS_MAX);
  // A second Ctrl-C does not wait for the requests in progress.
  signals.whenForced(() => process.exit(EXIT_FORCED));
  try {
    const cluster = readClusterForCli(flags.cluster);
    const { privateKey, source } = await gatewayKey(flags, output);
    progress.start(`connecting to the cluster's ${cluster.n} replicas and listening on ${flags.host}:${flags.port}`);
    let gateway: Gateway;
    try {
      gateway = await startGateway({ cluster, clusterPath: flags.cluster, privateKey, host: flags.host, port: flags.port, signal: startup.signal });
    } catch (error) {
      progress.fail();
      // A stop aborts the connect (RequestAbortedError); whatever the start failed with once a stop
      // was asked for, the command did what was asked.
      if (signals.requested) return stoppedBeforeStart(output);
      const problem = listenProblem(error, flags.host, flags.port, "--port", "choose another with --port");
      if (problem !== undefined) throw new UsageError(problem);
      throw error;
    }
    if (signals.requested) {
      // The stop came after the last abortable step (connecting), while it was starting to listen.
      progress.fail();
      await gateway.close();
      return stoppedBeforeStart(output);
    }
    progress.succeed();
    output.out(
      `Gateway for cluster "${cluster.clusterId}" (${cluster.n} replicas) at ${gateway.url}\n` +
        `  API description  ${gateway.url}/docs/json\n  metrics          ${gateway.url}/metrics\n  identity key     ${source}\n` +
        "Press Ctrl-C to stop.\n",
    );
    await signals.stopped;
    progress.start("stopping: finishing the requests in progress");
    await gateway.close();
    progress.succeed("stopped");
    return EXIT_OK;
  } catch (error) {
    progress.fail();
    return reportFailure(COMMAND, error, output);
  } finally {
    signals.remove();
  }
}

function stoppedBeforeStart(output: CliOutput): number {
  output.err(`${COMMAND}: stopped before the gateway started\n`);
  return EXIT_OK;
}

export function registerGatewayCommand(program: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  usageErrorsExitWith2(
    program
      .command("gateway")
      .description("Run the HTTP gateway alone, in the foreground, as a client of a cluster whose replicas run elsewhere (Ctrl-C stops it).")
      .option("--cluster <file>", "the cluster's public config", DEFAULT_CLUSTER_PATH)
      .option("--key <file>", "a private key file the gateway identifies itself with; it signs nothing with it (default: client.key beside the cluster file if present)")
      .option("--host <host>", "address to listen on (0.0.0.0 for every interface)", GATEWAY_HOST_DEFAULT)
      .option("--port <port>", "port to listen on (0 picks a free one; the printed URL names it)", portParser(0), GATEWAY_PORT_DEFAULT)
      .addHelpText(
        "after",
        "\nThe gateway signs writes with fresh keys of its own; pre-signed transactions go to POST /v1/transactions.\n\n" +
          "Examples:\n  bulwark gateway --cluster /etc/bulwark/cluster.json --host 0.0.0.0 --port 8080\n\n" +
          `Exit code 0 after Ctrl-C, SIGTERM, SIGHUP or SIGQUIT; ${EXIT_USAGE} on a bad flag, an unusable file or a port in use;\n` +
          "3 when the cluster cannot be reached.",
      )
      .action(async (flags: GatewayFlags) => {
        setExitCode(await runGateway(flags, output));
      }),
  );
}
