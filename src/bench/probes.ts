// What the benchmark measures of the processes besides the load (issue 5 §1): CPU seconds over
// the timed window for every process (the report divides them by the transactions committed),
// resident memory sampled once a second per replica, and each one's peak.
//
// A probe reads one process: a local replica through /proc (utime + stime of every thread, which
// includes the signature workers; VmRSS now and VmHWM, the peak since it started), a replica
// elsewhere through its Prometheus metrics (prom-client's default process_cpu_seconds_total and
// process_resident_memory_bytes), and the bench process itself through process.cpuUsage and
// memoryUsage. A probe that cannot answer (no /proc, the metrics URL unreachable) answers
// undefined and the report says "n/a" rather than guessing.

import { readFile } from "node:fs/promises";

/** Clock ticks per second of /proc's times: USER_HZ, 100 on every Linux architecture Node runs on. */
const PROC_TICKS_PER_SECOND = 100;
const KIB = 1024;
const METRICS_FETCH_TIMEOUT_MS = 2_000;

export interface ProcessSample {
  /** CPU seconds since the process started (user + system, all threads). */
  readonly cpuSeconds: number | undefined;
  readonly rssBytes: number | undefined;
  /**
   * The anonymous part of the resident set (RssAnon: heap, stacks, native allocations), where
   * the probe knows it. VmRSS also counts the pages of files the process maps, and a replica
   * maps its LMDB file: those pages are the page cache, grow with the ledger file and are given
   * back under memory pressure, so RssAnon is what shows whether the process's own memory is flat.
   */
  readonly anonRssBytes?: number | undefined;
  /** The peak resident set since the process started, where the probe knows it. */
  readonly peakRssBytes: number | undefined;
}

export interface ProcessProbe {
  /** "replica 0", "bench". */
  readonly name: string;
  /** Why the probe can measure nothing, when it cannot by design (a remote replica without a metrics URL). */
  readonly unmeasured?: string;
  /** Which process the probe reads now (a pid, a URL), so a restart between samples is noticed. */
  identity(): string | undefined;
  sample(): Promise<ProcessSample | undefined>;
}

/** A local process by pid, through /proc; `pid` is asked each time (a supervised replica may restart). */
export function procProbe(name: string, pid: () => number | undefined): ProcessProbe {
  return {
    name,
    identity: () => (pid() === undefined ? undefined : `pid ${pid()}`),
    async sample() {
      const id = pid();
      if (id === undefined) return undefined;
      try {
        const [stat, status] = await Promise.all([readFile(`/proc/${id}/stat`, "utf8"), readFile(`/proc/${id}/status`, "utf8")]);
        return { cpuSeconds: parseProcStatCpuSeconds(stat), rssBytes: statusKib(status, "VmRSS"), anonRssBytes: statusKib(status, "RssAnon"), peakRssBytes: statusKib(status, "VmHWM") };
      } catch {
        return undefined;
      }
    },
  };
}

/** utime + stime from /proc/<pid>/stat, in seconds. */
export function parseProcStatCpuSeconds(stat: string): number | undefined {
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its end.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return (utime + stime) / PROC_TICKS_PER_SECOND;
}

/** A "Name:   123 kB" line of /proc/<pid>/status, in bytes. */
function statusKib(status: string, field: string): number | undefined {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status);
  return match === null ? undefined : Number(match[1]) * KIB;
}

/** A process that serves Prometheus metrics at `url` (a replica's --metrics-port). */
export function metricsProbe(name: string, url: string): ProcessProbe {
  return {
    name,
    identity: () => url,
    async sample() {
      const text = await fetchMetrics(url);
      if (text === undefined) return undefined;
      const metrics = parsePrometheusText(text);
      return { cpuSeconds: metrics.get("process_cpu_seconds_total"), rssBytes: metrics.get("process_resident_memory_bytes"), peakRssBytes: undefined };
    },
  };
}

/** This process: the bench's own load generator (and its loader threads). */
export function selfProbe(name: string): ProcessProbe {
  return {
    name,
    identity: () => `pid ${process.pid}`,
    sample() {
      const { user, system } = process.cpuUsage();
      // resourceUsage's maxRSS is in kibibytes.
      return Promise.resolve({ cpuSeconds: (user + system) / 1e6, rssBytes: process.memoryUsage.rss(), peakRssBytes: process.resourceUsage().maxRSS * KIB });
    },
  };
}

async function fetchMetrics(url: string): Promise<string | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(METRICS_FETCH_TIMEOUT_MS) });
    if (!response.ok) return undefined;
    return await response.text();
  } catch {
    return undefined;
  }
}

/**
 * The unlabelled (or first-labelled) sample of each metric in Prometheus text: enough for the
 * per-process gauges and counters the bench reads, each of which a replica exports once.
 */
export function parsePrometheusText(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match === null) continue;
    const value = Number(match[3]);
    if (!values.has(match[1]!) && Number.isFinite(value)) values.set(match[1]!, value);
  }
  return values;
}

/** What the report shows of one process over the timed window. */
export interface ProcessFigures {
  readonly name: string;
  /** CPU seconds in the timed window; undefined when not measurable (no probe, or the process restarted). */
  readonly cpuSeconds: number | undefined;
  readonly peakRssBytes: number | undefined;
  /** Resident memory once a second through the timed window (undefined where a sample failed). */
  readonly rssSamplesBytes: ReadonlyArray<number | null>;
  /** Its anonymous part (RssAnon) at the same moments, for local processes; empty where unknown. */
  readonly anonRssSamplesBytes?: ReadonlyArray<number | null>;
  /** Why a figure is missing, when one is. */
  readonly note?: string;
}

interface Tracked {
  readonly probe: ProcessProbe;
  start: ProcessSample | undefined;
  startIdentity: string | undefined;
  end: ProcessSample | undefined;
  endIdentity: string | undefined;
  readonly rss: Array<number | null>;
  readonly anonRss: Array<number | null>;
  peakSampledBytes: number | undefined;
}

/**
 * Samples a set of processes over the timed window: CPU at its start and end, resident memory
 * once a second in between.
 */
export class ResourceMonitor {
  private readonly tracked: Tracked[];
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> = Promise.resolve();

  constructor(probes: readonly ProcessProbe[]) {
    this.tracked = probes.map((probe) => ({ probe, start: undefined, startIdentity: undefined, end: undefined, endIdentity: undefined, rss: [], anonRss: [], peakSampledBytes: undefined }));
  }

  /** The window starts: CPU counters read, and resident memory sampled every `intervalMs` from now. */
  async start(intervalMs = 1_000): Promise<void> {
    await Promise.all(
      this.tracked.map(async (entry) => {
        entry.startIdentity = entry.probe.identity();
        entry.start = await entry.probe.sample();
      }),
    );
    this.timer = setInterval(() => {
      this.sampling = this.sampling.then(() => this.sampleRss());
    }, intervalMs);
  }

  /** The window ends: sampling stops and the CPU counters are read again. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.sampling;
    await Promise.all(
      this.tracked.map(async (entry) => {
        entry.endIdentity = entry.probe.identity();
        entry.end = await entry.probe.sample();
        this.notePeak(entry, entry.end?.rssBytes);
      }),
    );
  }

  figures(): ProcessFigures[] {
    return this.tracked.map((entry) => {
      const { start, end } = entry;
      const restarted = entry.startIdentity !== entry.endIdentity;
      const cpuSeconds = !restarted && start?.cpuSeconds !== undefined && end?.cpuSeconds !== undefined ? Math.max(0, end.cpuSeconds - start.cpuSeconds) : undefined;
      const peaks = [end?.peakRssBytes, entry.peakSampledBytes].filter((value): value is number => value !== undefined);
      const note = restarted ? `restarted during the run (${entry.startIdentity ?? "not running"} → ${entry.endIdentity ?? "not running"})` : end === undefined ? (entry.probe.unmeasured ?? "no samples") : undefined;
      const anonRssSamplesBytes = entry.anonRss.some((bytes) => bytes !== null) ? [...entry.anonRss] : [];
      return { name: entry.probe.name, cpuSeconds, peakRssBytes: peaks.length === 0 ? undefined : Math.max(...peaks), rssSamplesBytes: [...entry.rss], anonRssSamplesBytes, ...(note === undefined ? {} : { note }) };
    });
  }

  private async sampleRss(): Promise<void> {
    await Promise.all(
      this.tracked.map(async (entry) => {
        const sample = await entry.probe.sample();
        entry.rss.push(sample?.rssBytes ?? null);
        entry.anonRss.push(sample?.anonRssBytes ?? null);
        this.notePeak(entry, sample?.rssBytes);
      }),
    );
  }

  private notePeak(entry: Tracked, rssBytes: number | undefined): void {
    if (rssBytes !== undefined) entry.peakSampledBytes = Math.max(entry.peakSampledBytes ?? 0, rssBytes);
  }
}
