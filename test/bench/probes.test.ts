import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { type ProcessProbe, ResourceMonitor, parseProcStatCpuSeconds, parsePrometheusText, procProbe, selfProbe } from "../../src/bench/probes.js";

describe("process probes", () => {
  it("reads utime + stime from /proc/<pid>/stat even when the command name holds spaces and parentheses", () => {
    const stat = "1234 (node (bench) x) S 1 1234 1234 0 -1 4194560 5000 0 0 0 250 50 0 0 20 0 11 0 100 1000000 5000 18446744073709551615";
    assert.equal(parseProcStatCpuSeconds(stat), 3);
    assert.equal(parseProcStatCpuSeconds("garbage"), undefined);
  });

  it("reads Prometheus text, labelled or not, skipping comments", () => {
    const text = [
      "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
      "# TYPE process_cpu_seconds_total counter",
      "process_cpu_seconds_total 12.5",
      "process_resident_memory_bytes 104857600",
      'bulwark_view{replica="2"} 3',
      "bulwark_bad NaNish",
    ].join("\n");
    const metrics = parsePrometheusText(text);
    assert.equal(metrics.get("process_cpu_seconds_total"), 12.5);
    assert.equal(metrics.get("process_resident_memory_bytes"), 104_857_600);
    assert.equal(metrics.get("bulwark_view"), 3);
    assert.equal(metrics.has("bulwark_bad"), false);
  });

  it("reads this process through /proc as the bench reads a replica, and answers nothing for a process that is gone", async () => {
    const sample = await procProbe("me", () => process.pid).sample();
    if (process.platform === "linux") {
      assert.ok(sample !== undefined && sample.cpuSeconds! > 0 && sample.rssBytes! > 1_000_000 && sample.peakRssBytes! >= sample.rssBytes!, JSON.stringify(sample));
    }
    assert.equal(await procProbe("gone", () => undefined).sample(), undefined);
    assert.equal(await procProbe("gone", () => 2 ** 30).sample(), undefined);
  });

  it("measures CPU over the window, samples memory each interval, and refuses a CPU figure across a restart", async () => {
    let cpu = 10;
    let pid = 1;
    const fake: ProcessProbe = { name: "fake", identity: () => `pid ${pid}`, sample: () => Promise.resolve({ cpuSeconds: (cpu += 1), rssBytes: 1000 * cpu, peakRssBytes: undefined }) };
    const monitor = new ResourceMonitor([fake, selfProbe("bench")]);
    await monitor.start(20);
    await new Promise((resolve) => setTimeout(resolve, 110));
    await monitor.stop();
    const [figures, self] = monitor.figures();
    assert.ok(figures!.rssSamplesBytes.length >= 3, `${figures!.rssSamplesBytes.length} samples`);
    assert.equal(figures!.cpuSeconds, cpu - 11);
    assert.equal(figures!.peakRssBytes, 1000 * cpu);
    assert.ok(self!.cpuSeconds !== undefined && self!.cpuSeconds >= 0);

    const restarting = new ResourceMonitor([fake]);
    await restarting.start(1000);
    pid = 2;
    await restarting.stop();
    assert.equal(restarting.figures()[0]!.cpuSeconds, undefined);
    assert.match(restarting.figures()[0]!.note ?? "", /restarted/);
  });
});
