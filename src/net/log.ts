// Logging for the transport. The interface is the subset of pino the transport uses (a fields
// object, then a message), so the runtime can pass a pino logger when issue 4's observability
// lands, and tests can pass a recorder.
//
// A peer controls how often its connections fail, so every failure log goes through a rate
// limiter shared by all connections of a process: at most one line per reason per interval, the
// next line saying how many were suppressed. Keys are the closed set of close reasons, never
// peer-chosen strings, so the limiter's memory is bounded too.

export type LogFields = Record<string, unknown>;

export interface TransportLogger {
  debug(fields: LogFields, message: string): void;
  info(fields: LogFields, message: string): void;
  warn(fields: LogFields, message: string): void;
}

export const silentLogger: TransportLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
};

export type LogLevel = keyof TransportLogger;

export interface RateLimitedLogOptions {
  readonly logger: TransportLogger;
  /** One line per key per this many milliseconds. */
  readonly intervalMs: number;
  /** The clock, in milliseconds; injected so tests need not wait. */
  readonly nowMs: () => number;
}

export const LOG_INTERVAL_MS_DEFAULT = 10_000;

interface KeyState {
  lastLoggedMs: number;
  suppressed: number;
}

export class RateLimitedLog {
  private readonly options: RateLimitedLogOptions;
  private readonly keys = new Map<string, KeyState>();

  constructor(options: Partial<RateLimitedLogOptions> = {}) {
    this.options = {
      logger: options.logger ?? silentLogger,
      intervalMs: options.intervalMs ?? LOG_INTERVAL_MS_DEFAULT,
      nowMs: options.nowMs ?? Date.now,
    };
  }

  /** Logs unless `key` was logged less than an interval ago; returns whether it logged. */
  log(level: LogLevel, key: string, fields: LogFields, message: string): boolean {
    const nowMs = this.options.nowMs();
    const state = this.keys.get(key);
    if (state !== undefined && nowMs - state.lastLoggedMs < this.options.intervalMs) {
      state.suppressed += 1;
      return false;
    }
    const suppressed = state?.suppressed ?? 0;
    this.keys.set(key, { lastLoggedMs: nowMs, suppressed: 0 });
    this.options.logger[level](suppressed > 0 ? { ...fields, suppressed } : fields, message);
    return true;
  }
}
