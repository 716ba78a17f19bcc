// `bulwark client put|get|del|cas|mint|transfer|balance`: one operation against a running cluster
// through the client SDK (issue 4 §4). Each command connects, does its one call, prints the result
// with the height (= PBFT sequence number) of the block that holds or answered it, and exits:
//
//   0  done (the value was found, the cas swapped, ...)
//   1  the cluster answered "no": a rejected transaction, a key not found, a cas that did not swap
//   2  a bad argument, or a cluster or key file that cannot be used (nothing was sent)
//   3  no final answer: too few replicas reachable, no agreement within --timeout (which bounds
//      the whole command, connecting included), or the key's nonce could not be used
//
// The client's key (--key, default client.key beside the cluster file, which `bulwark init` made
// the genesis authority) signs every transaction; its next nonce is read from the cluster first,
// so the same key can be used by one invocation after another.

import { type Command, InvalidArgumentError } from "commander";

import { bytesToHex } from "../app/bytes.js";
import { TRANSACTION_AMOUNT_MAX, TRANSACTION_KEY_BYTES_MAX } from "../app/transaction.js";
import { type BulwarkClient, type Committed, RejectedError, defaultClientKeyPath } from "../client/index.js";
import { bytesOf, okResult } from "../client/operations.js";
import { encodeValue } from "../gateway/encoding.js";
import {
  CommandDeadline,
  EXIT_OK,
  EXIT_REJECTED,
  type ConnectionFlags,
  UsageError,
  addConnectionOptions,
  connectForCli,
  errorCodeOf,
  exitCodeOf,
  failureMessage,
  parseAccount,
  readClusterForCli,
  readPrivateKeyForCli,
} from "./cluster-client.js";
import type { CliOutput } from "./output.js";
import { usageErrorsExitWith2 } from "./parse.js";

const COMMAND = "bulwark client";

interface ClientFlags extends ConnectionFlags {
  readonly json?: boolean;
}

/** What one operation found: its exit code, a line for people and an object for --json. */
interface Outcome {
  readonly exitCode: number;
  readonly text: string;
  readonly json: Readonly<Record<string, unknown>>;
}

/** One call; `signal` is the command's deadline (--timeout), which bounds every phase together. */
type Operation = (client: BulwarkClient, signal: AbortSignal) => Promise<Outcome>;

function parseAmount(text: string): bigint {
  if (!/^[0-9]+$/.test(text)) throw new InvalidArgumentError("expected a whole number of tokens, in decimal digits.");
  const amount = BigInt(text);
  if (amount > TRANSACTION_AMOUNT_MAX) throw new InvalidArgumentError(`expected at most ${TRANSACTION_AMOUNT_MAX} (2^64 - 1) tokens.`);
  return amount;
}

/** A key as the ledger takes it: 1 to 1,024 bytes of UTF-8 (checked here, so that nothing is sent). */
function parseKey(text: string): string {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes < 1 || bytes > TRANSACTION_KEY_BYTES_MAX) throw new InvalidArgumentError(`expected a key of 1 to ${TRANSACTION_KEY_BYTES_MAX} bytes of UTF-8; got ${bytes} bytes.`);
  return text;
}

/** A value as people read it: quoted text when it is UTF-8, otherwise 0x and its hex. */
function displayValue(value: Uint8Array): string {
  const encoded = encodeValue(value);
  return encoded.encoding === "utf8" ? JSON.stringify(encoded.value) : `0x${bytesToHex(value)}`;
}

/** "height 12, seq 12": a block's height is its PBFT sequence number, one block per committed batch. */
function heightText(height: number): string {
  return height > 0 ? `height ${height}, seq ${height}` : "height unknown: the agreeing replies came from reply caches";
}

function heightFields(height: number): Record<string, unknown> {
  return height > 0 ? { height, seq: height } : { height: null, seq: null };
}

function committedFields(committed: Committed): Record<string, unknown> {
  return { ...heightFields(committed.height), nonce: committed.nonce };
}

async function runOperation(operationName: string, flags: ClientFlags, output: CliOutput, prepare: () => Promise<Operation>): Promise<number> {
  let client: BulwarkClient | undefined;
  const deadline = new CommandDeadline(flags.timeout);
  try {
    const operation = await prepare();
    const cluster = readClusterForCli(flags.cluster);
    const privateKey = await readPrivateKeyForCli(flags.key ?? defaultClientKeyPath(flags.cluster), output);
    client = await connectForCli({ command: COMMAND, cluster, privateKey, deadline }, output);
    const outcome = await operation(client, deadline.signal);
    if (flags.json === true) output.out(`${JSON.stringify({ op: operationName, ...outcome.json })}\n`);
    else output.out(`${outcome.text}\n`);
    return outcome.exitCode;
  } catch (error) {
    const exitCode = exitCodeOf(error);
    if (exitCode === undefined) throw error;
    const message = failureMessage(error, deadline);
    // A rejected transaction committed all the same: where is part of the answer.
    const committed = error instanceof RejectedError ? committedFields(error.committed) : {};
    if (flags.json === true) output.out(`${JSON.stringify({ op: operationName, error: errorCodeOf(error), message, ...committed })}\n`);
    else output.err(`${COMMAND} ${operationName}: ${message}${error instanceof RejectedError ? ` (recorded at ${heightText(error.committed.height)})` : ""}\n`);
    return exitCode;
  } finally {
    await client?.close();
  }
}

function put(key: string, value: string): Operation {
  return async (client, signal) => {
    const committed = await client.put(key, value, { signal });
    return {
      exitCode: EXIT_OK,
      text: `put ${JSON.stringify(key)} = ${JSON.stringify(value)}: committed at ${heightText(committed.height)}`,
      json: { key, ...committedFields(committed) },
    };
  };
}

function get(key: string, proof: boolean): Operation {
  return async (client, signal) => {
    const consistency = proof ? "proof" : "linearizable";
    const { value, height } = await client.read(key, { consistency, signal });
    const how = proof ? "proof-checked read from one replica" : "read through consensus";
    const where = `${heightText(height)}, ${how}`;
    if (value === undefined) {
      return { exitCode: EXIT_REJECTED, text: `${JSON.stringify(key)} is absent (${where})`, json: { key, found: false, ...heightFields(height), consistency } };
    }
    return {
      exitCode: EXIT_OK,
      text: `${JSON.stringify(key)} = ${displayValue(value)} (${where})`,
      // The value as the gateway's GET /v1/kv answers it: text when UTF-8, else base64 (`encoding`).
      json: { key, found: true, ...encodeValue(value), ...heightFields(height), consistency },
    };
  };
}

function del(key: string): Operation {
  return async (client, signal) => {
    const committed = await client.submit({ type: "delete", key: bytesOf(key) }, { signal });
    const { flag: deleted } = okResult(committed, "delete", ["flag"]);
    return {
      exitCode: deleted ? EXIT_OK : EXIT_REJECTED,
      text: deleted ? `deleted ${JSON.stringify(key)} at ${heightText(committed.height)}` : `${JSON.stringify(key)} was absent; nothing deleted (${heightText(committed.height)})`,
      json: { key, deleted, ...committedFields(committed) },
    };
  };
}

function cas(key: string, expected: string | null, next: string): Operation {
  return async (client, signal) => {
    const committed = await client.submit({ type: "cas", key: bytesOf(key), expected: expected === null ? null : bytesOf(expected), value: bytesOf(next) }, { signal });
    const { flag: swapped } = okResult(committed, "cas", ["flag"]);
    const condition = expected === null ? "absent" : `equal to ${JSON.stringify(expected)}`;
    return {
      exitCode: swapped ? EXIT_OK : EXIT_REJECTED,
      text: swapped
        ? `cas ${JSON.stringify(key)}: was ${condition}, now ${JSON.stringify(next)} (committed at ${heightText(committed.height)})`
        : `cas ${JSON.stringify(key)}: not swapped, the key was not ${condition} (${heightText(committed.height)})`,
      json: { key, swapped, ...committedFields(committed) },
    };
  };
}

function mint(to: Uint8Array, amount: bigint): Operation {
  return async (client, signal) => {
    const committed = await client.mint(to, amount, { signal });
    return {
      exitCode: EXIT_OK,
      text: `minted ${amount} to ${bytesToHex(to)}: committed at ${heightText(committed.height)}`,
      json: { to: bytesToHex(to), amount: amount.toString(), ...committedFields(committed) },
    };
  };
}

function transfer(to: Uint8Array, amount: bigint): Operation {
  return async (client, signal) => {
    const committed = await client.transfer(to, amount, { signal });
    return {
      exitCode: EXIT_OK,
      text: `transferred ${amount} from ${bytesToHex(client.publicKey)} to ${bytesToHex(to)}: committed at ${heightText(committed.height)}`,
      json: { from: bytesToHex(client.publicKey), to: bytesToHex(to), amount: amount.toString(), ...committedFields(committed) },
    };
  };
}

function balance(account: Uint8Array | undefined): Operation {
  return async (client, signal) => {
    const id = account ?? client.publicKey;
    const state = await client.account(id, { signal });
    return {
      exitCode: EXIT_OK,
      text: `account ${bytesToHex(id)}: balance ${state.balance}, next nonce ${state.nextNonce} (${heightText(state.height)})`,
      json: { account: bytesToHex(id), balance: state.balance.toString(), nextNonce: state.nextNonce, ...heightFields(state.height) },
    };
  };
}

const EXIT_CODES_HELP =
  "\nExit code 0 when done; 1 when the cluster answered no (rejected, not found, not swapped);\n" +
  "2 on a bad argument or an unusable --cluster/--key file; 3 when no final answer came: the cluster is unavailable,\n" +
  "did not answer within --timeout (connecting included), or refused the key's nonce (another process signing with the key).";

function subcommand(parent: Command, name: string, description: string): Command {
  const command = parent.command(name).description(description);
  addConnectionOptions(command, "the client's private key file (default: client.key beside the cluster file)");
  return command.option("--json", "print one JSON object instead of a sentence").addHelpText("after", EXIT_CODES_HELP);
}

export function registerClientCommand(program: Command, output: CliOutput, setExitCode: (code: number) => void): void {
  const client = usageErrorsExitWith2(
    program
      .command("client")
      .description("Run one operation against a running cluster: put, get, del, cas, mint, transfer, balance.")
      .addHelpText(
        "after",
        "\nExamples:\n  bulwark client put greeting hello\n  bulwark client get greeting --proof\n  bulwark client cas greeting hello hi\n" +
          "  bulwark client mint <64-hex account or key file> 100\n  bulwark client balance\n\n" +
          "Every command reads .bulwark/cluster.json and .bulwark/client.key unless --cluster and --key say otherwise." +
          EXIT_CODES_HELP,
      ),
  );
  const run = (name: string, flags: ClientFlags, prepare: () => Promise<Operation>): Promise<void> =>
    runOperation(name, flags, output, prepare).then(setExitCode);

  subcommand(client, "put", "Set KEY to VALUE (UTF-8 text).")
    .argument("<key>", "the key (1 to 1024 bytes of UTF-8)", parseKey)
    .argument("<value>")
    .action((key: string, value: string, flags: ClientFlags) => run("put", flags, () => Promise.resolve(put(key, value))));

  subcommand(client, "get", "Read KEY: through consensus (linearizable), or with --proof from one replica, checked against a certified block.")
    .argument("<key>", "the key (1 to 1024 bytes of UTF-8)", parseKey)
    .option("--proof", "read from one replica and verify its answer against a block certified by 2f + 1 replicas (no consensus round)")
    .action((key: string, flags: ClientFlags & { proof?: boolean }) => run("get", flags, () => Promise.resolve(get(key, flags.proof === true))));

  subcommand(client, "del", "Delete KEY; exit code 1 when it was absent.")
    .argument("<key>", "the key (1 to 1024 bytes of UTF-8)", parseKey)
    .action((key: string, flags: ClientFlags) => run("del", flags, () => Promise.resolve(del(key))));

  subcommand(client, "cas", "Compare and swap: set KEY to NEW if its value is EXPECTED (with --absent: if KEY is absent, and give only NEW).")
    .argument("<key>", "the key (1 to 1024 bytes of UTF-8)", parseKey)
    .argument("<values...>", "EXPECTED NEW, or only NEW with --absent")
    .option("--absent", "swap only if KEY is absent")
    .action((key: string, values: string[], flags: ClientFlags & { absent?: boolean }) =>
      run("cas", flags, () => {
        const absent = flags.absent === true;
        if (absent && values.length === 1) return Promise.resolve(cas(key, null, values[0]!));
        if (!absent && values.length === 2) return Promise.resolve(cas(key, values[0]!, values[1]!));
        return Promise.reject(
          new UsageError(absent ? `with --absent give KEY and NEW only; got ${values.length} values after KEY` : `give KEY EXPECTED NEW (or KEY NEW --absent); got ${values.length} values after KEY`),
        );
      }),
    );

  subcommand(client, "mint", "Create AMOUNT tokens in account TO (only the genesis authority's key, client.key of `bulwark init`, may).")
    .argument("<to>", "the account: a 64-hex-digit public key, or a key file")
    .argument("<amount>", "whole tokens", parseAmount)
    .action((to: string, amount: bigint, flags: ClientFlags) => run("mint", flags, async () => mint(await parseAccount(to, "TO"), amount)));

  subcommand(client, "transfer", "Move AMOUNT tokens from the client's account to TO.")
    .argument("<to>", "the account: a 64-hex-digit public key, or a key file")
    .argument("<amount>", "whole tokens", parseAmount)
    .action((to: string, amount: bigint, flags: ClientFlags) => run("transfer", flags, async () => transfer(await parseAccount(to, "TO"), amount)));

  subcommand(client, "balance", "Read an account's balance and next nonce through consensus (default: the client's own account).")
    .argument("[account]", "the account: a 64-hex-digit public key, or a key file")
    .action((account: string | undefined, flags: ClientFlags) =>
      run("balance", flags, async () => balance(account === undefined ? undefined : await parseAccount(account, "ACCOUNT"))),
    );
}
