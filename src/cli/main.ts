// The `bulwark` command: one commander program, one subcommand per job. bin/bulwark.js calls
// `main` and exits with the code it returns.

import { Command, CommanderError } from "commander";

import { registerBenchCommand } from "./bench-command.js";
import { registerClientCommand } from "./client-command.js";
import { registerGatewayCommand } from "./gateway-command.js";
import { registerInitCommand } from "./init-command.js";
import { registerReplicaCommand } from "./replica-command.js";
import { registerSimCommand } from "./sim-command.js";
import { registerStatusCommand } from "./status-command.js";
import { registerUpCommand } from "./up-command.js";
import { registerVerifyCommand } from "./verify-command.js";
import type { CliOutput } from "./output.js";
import { processOutput } from "./output.js";

export async function main(argv: string[], output: CliOutput = processOutput): Promise<number> {
  let exitCode = 0;
  const program = new Command("bulwark")
    .description("Bulwark: a Byzantine-fault-tolerant permissioned ledger (PBFT consensus, verifiable blocks).")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({ writeOut: (text) => output.out(text), writeErr: (text) => output.err(text) });
  const setExitCode = (code: number): void => {
    exitCode = code;
  };
  // The everyday commands first, as `bulwark --help` lists them in this order.
  registerUpCommand(program, output, setExitCode);
  registerClientCommand(program, output, setExitCode);
  registerStatusCommand(program, output, setExitCode);
  registerInitCommand(program, output, setExitCode);
  registerReplicaCommand(program, output, setExitCode);
  registerGatewayCommand(program, output, setExitCode);
  registerVerifyCommand(program, output, setExitCode);
  registerSimCommand(program, output, setExitCode);
  registerBenchCommand(program, output, setExitCode);
  if (argv.length === 0) {
    program.outputHelp();
    return 0;
  }
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    throw error;
  }
  return exitCode;
}
