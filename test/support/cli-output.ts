// Captures what a `bulwark` command prints, for CLI tests.
import type { CliOutput } from "../../src/cli/output.js";

export function captureOutput(): CliOutput & { stdout: string; stderr: string } {
  const output = {
    stdout: "",
    stderr: "",
    interactive: false,
    out(text: string): void {
      output.stdout += text;
    },
    err(text: string): void {
      output.stderr += text;
    },
  };
  return output;
}
