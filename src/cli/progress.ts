// Progress and readiness on stderr for commands that wait (issue 4 §4: "progress and readiness
// shown on anything that takes more than a second"). A command moves through phases ("starting 4
// replicas", "waiting for the cluster to commit"). On a terminal the current phase is one line that
// redraws with a spinner, its elapsed time and a detail ("3 of 4 started"); a finished phase is
// replaced by a check mark and how long it took. Anywhere else (a log file, a pipe, CI) a spinner
// would be noise, so each phase prints exactly one plain line when it is shown and nothing else.
//
// A phase may be shown only once it has lasted `delayMs`: `bulwark client get` answers in a few
// milliseconds and should print nothing but its result, yet say what it waits for when the cluster
// is slow to answer.

import { type CliOutput, processOutput } from "./output.js";

/** Where progress goes: stderr, so that stdout stays the command's result. */
export interface ProgressSink {
  write(text: string): void;
  /** True when the sink is a terminal, which may redraw a line. */
  readonly interactive: boolean;
}

export interface ProgressOptions {
  /** Starts every plain (non-terminal) line, e.g. "bulwark up". */
  readonly prefix: string;
  /** A phase is shown once it lasted this long; 0 shows it at once. */
  readonly delayMs?: number;
  /** How often the terminal line redraws. */
  readonly redrawIntervalMs?: number;
  /** The clock; tests pass their own. */
  readonly nowMs?: () => number;
}

const SPINNER_FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"] as const;
const REDRAW_INTERVAL_MS_DEFAULT = 100;
/** Erases the terminal line the cursor is on and returns to its start. */
const CLEAR_LINE = "\r\u001b[2K";

interface Phase {
  readonly text: string;
  readonly startedMs: number;
  detail: string;
  shown: boolean;
}

export class Progress {
  private readonly sink: ProgressSink;
  private readonly prefix: string;
  private readonly delayMs: number;
  private readonly redrawIntervalMs: number;
  private readonly nowMs: () => number;
  private phase: Phase | undefined;
  private timer: NodeJS.Timeout | undefined;
  private frame = 0;

  constructor(sink: ProgressSink, options: ProgressOptions) {
    this.sink = sink;
    this.prefix = options.prefix;
    this.delayMs = options.delayMs ?? 0;
    this.redrawIntervalMs = options.redrawIntervalMs ?? REDRAW_INTERVAL_MS_DEFAULT;
    this.nowMs = options.nowMs ?? Date.now;
  }

  /** Starts a phase; a phase still running ends silently. */
  start(text: string): void {
    this.clear();
    this.phase = { text, startedMs: this.nowMs(), detail: "", shown: false };
    if (this.delayMs === 0) this.show();
    // A terminal redraws the spinner; a plain sink only needs waking once, to show a delayed phase.
    if (this.sink.interactive) this.timer = setInterval(() => this.tick(), this.redrawIntervalMs);
    else if (this.delayMs > 0) this.timer = setTimeout(() => this.show(), this.delayMs);
    // The timer must never keep a finished command's process alive.
    this.timer?.unref();
  }

  /** What the phase is at ("3 of 4 replicas started"); shown on a terminal only. */
  detail(text: string): void {
    if (this.phase === undefined) return;
    this.phase.detail = text;
    if (this.phase.shown && this.sink.interactive) this.redraw();
  }

  /**
   * Ends the phase. On a terminal a shown phase is replaced by "✓ `text`" and its duration; a
   * plain sink already has the phase's one line and gets nothing more.
   */
  succeed(text?: string): void {
    const phase = this.phase;
    this.clear();
    if (phase === undefined || !phase.shown || !this.sink.interactive) return;
    this.sink.write(`✓ ${text ?? phase.text} (${formatSeconds(this.nowMs() - phase.startedMs)})\n`);
  }

  /** Ends the phase without a line of its own: the caller prints the error. */
  fail(): void {
    this.clear();
  }

  /** A terminal's redraw: shows the phase once it lasted the delay, then keeps its line fresh. */
  private tick(): void {
    const phase = this.phase;
    if (phase === undefined) return;
    if (phase.shown) this.redraw();
    else if (this.nowMs() - phase.startedMs >= this.delayMs) this.show();
  }

  private show(): void {
    const phase = this.phase;
    if (phase === undefined) return;
    phase.shown = true;
    if (this.sink.interactive) this.redraw();
    else this.sink.write(`${this.prefix}: ${phase.text}...\n`);
  }

  private redraw(): void {
    const phase = this.phase;
    if (phase === undefined) return;
    this.frame = (this.frame + 1) % SPINNER_FRAMES.length;
    const detail = phase.detail === "" ? "" : `: ${phase.detail}`;
    this.sink.write(`${CLEAR_LINE}${SPINNER_FRAMES[this.frame]} ${phase.text}${detail} (${formatSeconds(this.nowMs() - phase.startedMs)})`);
  }

  /** Stops the timer and, on a terminal, erases the phase's line. */
  private clear(): void {
    // clearTimeout clears an interval as well.
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.phase?.shown === true && this.sink.interactive) this.sink.write(CLEAR_LINE);
    this.phase = undefined;
  }
}

function formatSeconds(elapsedMs: number): string {
  return `${(Math.max(0, elapsedMs) / 1000).toFixed(1)} s`;
}

/**
 * A Progress on the command's stderr. For the process's own streams it redraws when stderr is a
 * terminal (`processOutput.interactive` describes stdout, which may be redirected while stderr is
 * not); another output (a test's capture) says itself.
 */
export function stderrProgress(output: CliOutput, options: ProgressOptions): Progress {
  const interactive = output === processOutput ? process.stderr.isTTY === true : output.interactive;
  return new Progress({ write: (text) => output.err(text), interactive }, options);
}
