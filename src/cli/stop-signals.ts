// The signals that ask a long-running command (`bulwark up`, `gateway`, `status --watch`) to stop,
// and what a command does with them. SIGINT (Ctrl-C) and SIGTERM are the usual ones; SIGHUP comes
// when the terminal closes (an SSH session drops) and SIGQUIT from Ctrl-\. Left at their default
// action, the last two kill the process on the spot: `up` would leave every replica running (they
// are detached, replica-processes.ts), and the gateway would drop the requests in progress. So all
// four mean "stop cleanly"; a later one, "stop at once" (for the commands that offer it).

import { setMaxListeners } from "node:events";

/** Exit code after a second Ctrl-C, which kills instead of stopping (128 + SIGINT, as a shell reports it). */
export const EXIT_FORCED = 130;

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
 * Cancels a command's start-up (connecting, starting the gateway): aborted by the first stop
 * signal, so Ctrl-C ends a connect to an unreachable cluster at once instead of after its own
 * deadline; the command aborts it too when it gives up on the start-up for another reason.
 * `listenersMax` is how many calls may wait on its signal at once without Node warning of a leak
 * (its default is 10; startGateway alone hands the signal to one client per writer key).
 */
export function startupController(signals: StopSignals, listenersMax: number): AbortController {
  const controller = new AbortController();
  setMaxListeners(listenersMax, controller.signal);
  void signals.stopped.then(() => controller.abort());
  return controller;
}
