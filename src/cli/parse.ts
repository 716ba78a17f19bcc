// Reading the command line, shared by every command: numbers, ports and durations as commander
// option parsers (each refusal says what was expected), and the one exit code for usage errors.
// A number is decimal digits only: "", "1e3", "0x10" and "1.5" are refused rather than read the way
// JavaScript's Number() would read them.

import { type Command, CommanderError, InvalidArgumentError } from "commander";

/** Exit code of every command for a bad flag or argument. */
export const EXIT_USAGE = 2;

/** The largest TCP port. */
export const PORT_MAX = 65_535;
const WHOLE_NUMBER = /^-?[0-9]+$/;

/** The whole number `text` spells in decimal digits, or undefined. */
function wholeNumber(text: string): number | undefined {
  const trimmed = text.trim();
  if (!WHOLE_NUMBER.test(trimmed)) return undefined;
  const value = Number(trimmed);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Any whole number; the command checks the range itself (so that its message can explain it, as init's --replicas does). */
export function parseInteger(text: string): number {
  const value = wholeNumber(text);
  if (value === undefined) throw new InvalidArgumentError("expected a whole number.");
  return value;
}

/** A parser of whole numbers from `minimum`: "expected `what`, a whole number from `minimum`". */
export function integerParser(what: string, minimum: number): (text: string) => number {
  return (text) => {
    const value = wholeNumber(text);
    if (value === undefined || value < minimum) throw new InvalidArgumentError(`expected ${what}, a whole number from ${minimum}.`);
    return value;
  };
}

/** A TCP port parser; `minimum` 0 accepts 0 ("pick a free port") for listeners that report the port they got. */
export function portParser(minimum: 0 | 1): (text: string) => number {
  const range = minimum === 0 ? `0 to ${PORT_MAX} (0 picks a free one)` : `1 to ${PORT_MAX}`;
  return (text) => {
    const value = wholeNumber(text);
    if (value === undefined || value < minimum || value > PORT_MAX) throw new InvalidArgumentError(`expected a TCP port from ${range}.`);
    return value;
  };
}

/** A duration in milliseconds, at least `minimum`. */
export function millisecondsParser(minimum: number): (text: string) => number {
  return integerParser("a time in milliseconds", minimum);
}

/** A duration in seconds, at least `minimum`. */
export function secondsParser(minimum: number): (text: string) => number {
  return integerParser("a time in seconds", minimum);
}

/** Commander reports a malformed argument with exit code 1; for Bulwark's commands every usage error is 2. */
export function usageErrorsExitWith2(command: Command): Command {
  return command.exitOverride((error) => {
    if (error.exitCode === 0) throw error;
    throw new CommanderError(EXIT_USAGE, error.code, error.message);
  });
}
