// Where the CLI writes: the process's streams, or a buffer in tests.

export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
  /** True when `out` is an interactive terminal (progress may redraw one line). */
  readonly interactive: boolean;
}

export const processOutput: CliOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  interactive: process.stdout.isTTY === true,
};
