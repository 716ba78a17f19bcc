// The signals that ask a long-running command (`bulwark up`, `gateway`, `status --watch`) to stop,
// and what a command does with them. SIGINT (Ctrl-C) and SIGTERM are the usual ones; SIGHUP comes
// when the terminal closes (an SSH session drops) and SIGQUIT from Ctrl-\. Left at their default
// action, the last two kill the process on the spot: `up` would leave every replica running (they
// are detached, replica-processes.ts), and the gateway would drop the requests in progress. So all
// four mean "stop cleanly"; a later one, "stop at once" (for the commands that offer it).

export const STOP_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"];

/**
 * A signal this soon after the first is the same Ctrl-C delivered twice, not a second press:
 * under `npm start` the terminal sends SIGINT to the whole foreground group, and npm forwards its
 * own copy to its child, which is this process when the shell execs the command (bash does).
 */
const SIGNAL_REPEAT_IGNORED_MS = 1_000;

export class StopSignals {
  /** Resolves with the first stop signal. */
  readonly stopped: Promise<NodeJS.Signals>;
  private requestedAtMs: number | undefined;
  private resolveStopped!: (signal: NodeJS.Signals) => void;
  private onForce: (() => void) | undefined;
  private readonly handler = (signal: NodeJS.Signals): void => {
    if (this.requestedAtMs === undefined) {
      this.requestedAtMs = Date.now();
      // After SIGHUP the terminal is gone: writing to it may fail, and that must not end the clean stop.
      if (signal === "SIGHUP") ignoreOutputErrors();
      this.onFirst?.(signal);
      this.resolveStopped(signal);
      return;
    }
    if (Date.now() - this.requestedAtMs >= SIGNAL_REPEAT_IGNORED_MS) this.onForce?.();
  };

  /** `onFirst` is told of the first signal (to say what stopping does). */
  constructor(private readonly onFirst?: (signal: NodeJS.Signals) => void) {
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
    for (const signal of STOP_SIGNALS) process.on(signal, this.handler);
  }

  /** Whether a stop was asked for. */
  get requested(): boolean {
    return this.requestedAtMs !== undefined;
  }

  /** What a later signal (a second Ctrl-C) does; without it, later signals are ignored. */
  whenForced(action: () => void): void {
    this.onForce = action;
  }

  remove(): void {
    for (const signal of STOP_SIGNALS) process.off(signal, this.handler);
  }
}

function ignoreOutputErrors(): void {
  for (const stream of [process.stdout, process.stderr]) stream.on("error", () => undefined);
}

/**
 * Start-up calls that a stop cannot cancel: `connect` and `startGateway` take no AbortSignal, and a
 * connect waiting for an unreachable cluster holds its timers, and so the process, until its own
 * deadline (30 s by default), long after the command said "stopped". A command tracks them, and if
 * any is still running once it has stopped everything else, it exits at once (`exitIfAbandoned`):
 * nothing of theirs needs closing, as no request was ever served through them.
 */
export class StartupCalls {
  private running = 0;

  track<T>(call: Promise<T>): Promise<T> {
    this.running += 1;
    const done = (): void => {
      this.running -= 1;
    };
    call.then(done, done);
    return call;
  }

  /** Ends the process with `exitCode` when a tracked call is still running; returns otherwise. */
  exitIfAbandoned(exitCode: number): void {
    if (this.running > 0) process.exit(exitCode);
  }
}
