// `bulwark bench --profile DIR` profiles the bench process itself as `node --cpu-prof` would,
// through the inspector, since the flag cannot be turned on in a process already running. The
// profile goes to DIR/bench-<pid>.cpuprofile, beside the replicas' own, and opens in Chrome
// DevTools or speedscope like theirs.

import { writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import { join } from "node:path";

export class SelfProfile {
  private constructor(private readonly session: Session) {}

  static async start(): Promise<SelfProfile> {
    const session = new Session();
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.start");
    return new SelfProfile(session);
  }

  /** Stops profiling and writes the profile to `dir`; the file's path. */
  async stop(dir: string): Promise<string> {
    try {
      const { profile } = await this.session.post("Profiler.stop");
      const path = join(dir, `bench-${process.pid}.cpuprofile`);
      await writeFile(path, JSON.stringify(profile));
      return path;
    } finally {
      this.session.disconnect();
    }
  }
}
