// The consensus core must stay a pure state machine (DESIGN.md, "The consensus core contract"):
// no I/O modules, timers, clocks or randomness. This test fails the moment one creeps in.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const coreDirectory = join(import.meta.dirname, "../../../src/consensus");

function sources(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(directory, entry.name)) : entry.name.endsWith(".ts") ? [join(directory, entry.name)] : [],
  );
}

const forbidden: [RegExp, string][] = [
  [/from\s+["'](node:)?(net|fs|fs\/promises|dgram|http|https|tls|child_process|worker_threads|timers|timers\/promises|os|process|crypto)["']/, "an I/O or platform module"],
  [/require\s*\(/, "require()"],
  [/import\s*\(/, "a dynamic import"],
  [/\bDate\.now\b|\bnew Date\b|\bperformance\.now\b|\bprocess\.hrtime\b/, "a clock"],
  [/\bMath\.random\b|\bcrypto\.getRandomValues\b|\brandomBytes\b/, "randomness"],
  [/\bset(Timeout|Interval|Immediate)\b|\bqueueMicrotask\b/, "a timer"],
  [/\bprocess\./, "the process object"],
];

test("the consensus core imports no I/O and calls no clock, timer or random source", () => {
  const files = sources(coreDirectory);
  assert.ok(files.length >= 5, `found the core's sources in ${coreDirectory}`);
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    for (const [pattern, what] of forbidden) assert.ok(!pattern.test(text), `${file} uses ${what}`);
  }
});

test("the purity check itself catches a forbidden use", () => {
  const bad = 'import { connect } from "node:net";\nconst t = Date.now();';
  assert.ok(forbidden.some(([pattern]) => pattern.test(bad)));
});
