// The replica child processes of `bulwark up`: each replica is `bulwark replica` in a process of
// its own, as in a real deployment, with its stdout and stderr piped to its log file. The parent
// also reads the output on its way, for two things: the line "replica started" (the port is bound
// and the store restored), looked for until it comes, and the last lines, kept in a small bounded
// tail (LOG_TAIL_LINES lines of at most LOG_LINE_CHARS_MAX characters) to show when a replica dies.
// A log file that cannot be written (a full disk, no permission) is reported once and its output
// dropped; the replicas keep running and being supervised.
//
// Each child gets a process group of its own (`detached`), so that Ctrl-C in the terminal reaches
// only `bulwark up`, which then stops the replicas one signal each. (A replica that got the
// terminal's SIGINT and then `up`'s SIGTERM would take the second signal's default action and die
// in the middle of closing its store.) The cost is that the replicas outlive `up` whenever it dies
// without running JavaScript: SIGKILL, or a fatal signal it does not handle. `up` handles SIGINT,
// SIGTERM, SIGHUP and SIGQUIT as stop requests (stop-signals.ts), and every other way it ends (an
// exception included) kills the replicas in the process's exit hook.
//
// Restarts. The cluster tolerates f replicas down, so a replica that exits unexpectedly is
// reported with its last log lines and restarted after a back-off (1 s, doubling to 30 s), which
// resets once a start has run for a minute. It is not restarted when it exited with code 2 (a
// configuration problem: a port in use, a bad key, which a restart would only repeat), nor after
// RESTARTS_MAX quick failures in a row.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { type WriteStream, createWriteStream } from "node:fs";
import { StringDecoder } from "node:string_decoder";

import { EXIT_USAGE } from "./parse.js";

/** Log lines kept per replica for the report of an unexpected exit. */
const LOG_TAIL_LINES = 15;
/** Longest log line kept for such a report; pino lines with large fields are cut. */
const LOG_LINE_CHARS_MAX = 300;
/**
 * Longest line read from a replica's output (the rest of a longer one is skipped): "replica
 * started" is recognized as a whole pino line, a few hundred characters.
 */
const LINE_CHARS_READ_MAX = 4_096;
const RESTART_DELAY_MS_FIRST = 1_000;
const RESTART_DELAY_MS_MAX = 30_000;
/** A start that ran this long was healthy: the back-off starts over. */
const HEALTHY_RUN_MS = 60_000;
/** Quick failures in a row after which a replica is left down. */
const RESTARTS_MAX = 5;

export interface ReplicaProcessSpec {
  readonly id: number;
  /** The command line after the node executable: the bin script, "replica", its flags. */
  readonly args: readonly string[];
  readonly logPath: string;
}

/** How a replica's process ended: its exit code, or the signal that killed it. */
export interface ExitDescription {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ReplicaProcessEvents {
  /** A replica logged "replica started" (the first time, or after a restart). */
  started?(id: number, pid: number, restarts: number): void;
  /**
   * A running replica exited on its own. `restartInMs` is when it will be started again, or
   * undefined when it will not be (with `reason`).
   */
  exited?(id: number, exit: ExitDescription, tail: readonly string[], restart: { readonly inMs: number } | { readonly reason: string }): void;
  /** Replica `id`'s log file could not be written; its output is dropped from now on (reported once). */
  logFailed?(id: number, logPath: string, error: Error): void;
}

/** A replica exited during the first start, before it logged "replica started". */
export class ReplicaStartError extends Error {
  override readonly name = "ReplicaStartError";

  constructor(
    readonly replica: number,
    readonly exit: ExitDescription,
    readonly tail: readonly string[],
    readonly logPath: string,
  ) {
    super(`replica ${replica} exited (${describeExit(exit)}) before it started; its last log lines (all in ${logPath}):\n${tail.map((line) => `  ${line}`).join("\n")}`);
  }
}

export function describeExit(exit: ExitDescription): string {
  return exit.signal !== null ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}

/** The last LOG_TAIL_LINES non-blank lines of a replica's output, each cut to LOG_LINE_CHARS_MAX. */
class OutputTail {
  private readonly lines: string[] = [];

  add(line: string): void {
    if (line.trim() === "") return;
    this.lines.push(line.length > LOG_LINE_CHARS_MAX ? `${line.slice(0, LOG_LINE_CHARS_MAX)}...` : line);
    if (this.lines.length > LOG_TAIL_LINES) this.lines.shift();
  }

  snapshot(): string[] {
    return [...this.lines];
  }
}

/**
 * Splits one output stream into lines. Of each line only the first LINE_CHARS_READ_MAX characters
 * are kept (the rest is skipped as it comes), so a child that writes without newlines costs a
 * bounded buffer, not memory without limit.
 */
export class LineSplitter {
  private readonly decoder = new StringDecoder("utf8");
  private pending = "";

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    const text = this.decoder.write(chunk);
    let from = 0;
    for (let end = text.indexOf("\n"); end !== -1; end = text.indexOf("\n", from)) {
      this.hold(text, from, end);
      const line = this.pending;
      this.pending = "";
      from = end + 1;
      this.onLine(line);
    }
    this.hold(text, from, text.length);
  }

  /** The stream ended: its unfinished line, if any, is a line too. */
  end(): void {
    const rest = this.decoder.end();
    this.hold(rest, 0, rest.length);
    const line = this.pending;
    this.pending = "";
    if (line !== "") this.onLine(line);
  }

  private hold(text: string, from: number, to: number): void {
    const room = LINE_CHARS_READ_MAX - this.pending.length;
    if (room > 0 && from < to) this.pending += text.slice(from, Math.min(to, from + room));
  }
}

interface Slot {
  readonly spec: ReplicaProcessSpec;
  readonly log: WriteStream;
  /** Set once the log file failed: nothing more is written to it. */
  logFailed: boolean;
  readonly tail: OutputTail;
  child: ChildProcess | undefined;
  exited: Promise<ExitDescription> | undefined;
  startedAtMs: number;
  /** Starts so far (1 after the first). */
  starts: number;
  quickFailures: number;
  restartTimer: NodeJS.Timeout | undefined;
  /** Settles the first start: "replica started", or the process's exit before it. */
  onFirstStart: ((error?: ReplicaStartError) => void) | undefined;
}

export class ReplicaProcesses {
  private readonly slots: readonly Slot[];
  private readonly events: ReplicaProcessEvents;
  private stopping = false;
  private readonly killOnExit = (): void => {
    for (const slot of this.slots) slot.child?.kill("SIGKILL");
  };

  constructor(specs: readonly ReplicaProcessSpec[], events: ReplicaProcessEvents = {}) {
    this.events = events;
    this.slots = specs.map((spec) => {
      const slot: Slot = {
        spec,
        log: createWriteStream(spec.logPath, { flags: "a" }),
        logFailed: false,
        tail: new OutputTail(),
        child: undefined,
        exited: undefined,
        startedAtMs: 0,
        starts: 0,
        quickFailures: 0,
        restartTimer: undefined,
        onFirstStart: undefined,
      };
      // Without a listener a write error (ENOSPC, EACCES at open) would be thrown out of the event
      // loop and take the whole cluster down with it.
      slot.log.on("error", (error) => {
        // The failed log unpiped the streams, and an unpiped stream pauses: resume it for the tail.
        slot.child?.stdout?.resume();
        slot.child?.stderr?.resume();
        if (slot.logFailed) return;
        slot.logFailed = true;
        this.events.logFailed?.(spec.id, spec.logPath, error);
      });
      return slot;
    });
    process.on("exit", this.killOnExit);
  }

  /**
   * Spawns every replica and resolves once each logged "replica started"; rejects with a
   * ReplicaStartError as soon as one exits first (the caller stops the others).
   */
  async start(): Promise<void> {
    await Promise.all(
      this.slots.map(
        (slot) =>
          new Promise<void>((resolve, reject) => {
            slot.onFirstStart = (error) => {
              slot.onFirstStart = undefined;
              if (error === undefined) resolve();
              else reject(error);
            };
            this.spawn(slot);
          }),
      ),
    );
  }

  /** The process id of replica `id`'s current start, if it runs. */
  pid(id: number): number | undefined {
    return this.slot(id).child?.pid;
  }

  /**
   * Stops every replica: no more restarts, SIGTERM to each, and SIGKILL to those still running
   * after `graceMs`. Resolves with the ids that had to be killed.
   */
  async stop(graceMs: number): Promise<number[]> {
    this.stopping = true;
    const killed: number[] = [];
    await Promise.all(
      this.slots.map(async (slot) => {
        clearTimeout(slot.restartTimer);
        const { child, exited } = slot;
        if (child === undefined || exited === undefined) return;
        child.kill("SIGTERM");
        let timer: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([exited, new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), graceMs)))]);
        clearTimeout(timer);
        if (outcome === "timeout") {
          killed.push(slot.spec.id);
          child.kill("SIGKILL");
          await exited;
        }
      }),
    );
    await Promise.all(this.slots.map((slot) => new Promise<void>((resolve) => (slot.logFailed ? resolve() : slot.log.end(() => resolve())))));
    process.off("exit", this.killOnExit);
    return killed.sort((a, b) => a - b);
  }

  /** SIGKILLs every replica at once (a second Ctrl-C); `stop` then finds them gone quickly. */
  killAll(): void {
    this.stopping = true;
    for (const slot of this.slots) {
      clearTimeout(slot.restartTimer);
      slot.child?.kill("SIGKILL");
    }
  }

  private slot(id: number): Slot {
    const slot = this.slots[id];
    assert.ok(slot !== undefined && slot.spec.id === id, `no replica ${id}`);
    return slot;
  }

  private spawn(slot: Slot): void {
    slot.starts += 1;
    slot.startedAtMs = Date.now();
    const child = spawn(process.execPath, [...slot.spec.args], { stdio: ["ignore", "pipe", "pipe"], detached: true });
    slot.child = child;
    this.writeLog(slot, `--- bulwark up: start ${slot.starts} of replica ${slot.spec.id} (pid ${child.pid ?? "-"}) at ${new Date().toISOString()} ---\n`);
    let announced = false;
    const stdoutLines = new LineSplitter((line) => {
      slot.tail.add(line);
      if (!announced && isStartedLine(line)) {
        announced = true;
        this.events.started?.(slot.spec.id, child.pid ?? 0, slot.starts - 1);
        slot.onFirstStart?.();
      }
    });
    const stderrLines = new LineSplitter((line) => slot.tail.add(line));
    for (const [stream, lines] of [
      [child.stdout, stdoutLines],
      [child.stderr, stderrLines],
    ] as const) {
      // The pipe writes at the disk's pace (the child waits when the file falls behind); a log
      // that fails unpipes itself, and its error handler resumes the streams for the tail.
      if (!slot.logFailed) stream.pipe(slot.log, { end: false });
      stream.on("data", (chunk: Buffer) => lines.push(chunk));
    }
    slot.exited = new Promise<ExitDescription>((resolve) => {
      // A spawn that fails (no such executable) emits "error" and then "close".
      child.once("error", (error) => slot.tail.add(`could not start: ${error.message}`));
      child.once("close", (code, signal) => {
        stdoutLines.end();
        stderrLines.end();
        const exit = { code, signal };
        if (slot.child === child) slot.child = undefined;
        this.writeLog(slot, `--- bulwark up: replica ${slot.spec.id} (start ${slot.starts}) ended: ${describeExit(exit)} ---\n`);
        resolve(exit);
        this.onExit(slot, exit);
      });
    });
  }

  private writeLog(slot: Slot, text: string): void {
    if (!slot.logFailed) slot.log.write(text);
  }

  private onExit(slot: Slot, exit: ExitDescription): void {
    if (slot.onFirstStart !== undefined) {
      slot.onFirstStart(new ReplicaStartError(slot.spec.id, exit, slot.tail.snapshot(), slot.spec.logPath));
      return;
    }
    if (this.stopping) return;
    const ranMs = Date.now() - slot.startedAtMs;
    slot.quickFailures = ranMs >= HEALTHY_RUN_MS ? 1 : slot.quickFailures + 1;
    const tail = slot.tail.snapshot();
    if (exit.code === EXIT_USAGE) {
      this.events.exited?.(slot.spec.id, exit, tail, { reason: "exit code 2 is a problem of its flags or files, which a restart would repeat" });
      return;
    }
    if (slot.quickFailures > RESTARTS_MAX) {
      this.events.exited?.(slot.spec.id, exit, tail, { reason: `it failed ${RESTARTS_MAX} times in a row within a minute of starting` });
      return;
    }
    const inMs = Math.min(RESTART_DELAY_MS_MAX, RESTART_DELAY_MS_FIRST * 2 ** (slot.quickFailures - 1));
    this.events.exited?.(slot.spec.id, exit, tail, { inMs });
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (!this.stopping) this.spawn(slot);
    }, inMs);
  }
}

/** Whether a pino line of `bulwark replica` is its "replica started". */
function isStartedLine(line: string): boolean {
  if (!line.includes("replica started")) return false;
  try {
    return (JSON.parse(line) as { msg?: unknown }).msg === "replica started";
  } catch {
    return false;
  }
}
