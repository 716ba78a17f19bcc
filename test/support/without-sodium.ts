// Runs a script in a child process whose require("sodium-native") throws, as on a platform
// without a prebuild, and returns what it printed: for the tests of the node:crypto fallbacks.

import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const NO_SODIUM_PRELOAD = `
const Module = require("node:module");
const load = Module._load;
Module._load = function (request, ...rest) {
  if (request === "sodium-native") throw new Error("simulated: no prebuild for this platform");
  return load.call(this, request, ...rest);
};
`;

/** `relative` (to `base`, a test module's import.meta.url) as a JSON string literal for an import in the child's script. */
export function modulePath(relative: string, base: string): string {
  return JSON.stringify(fileURLToPath(new URL(relative, base)));
}

/** Runs `script` (an ES module's source) without sodium-native; resolves with its stdout, rejects when it fails. */
export async function runWithoutSodium(script: string): Promise<string> {
  const directory = mkdtempSync(join(tmpdir(), "bulwark-no-sodium-"));
  const preloadPath = join(directory, "no-sodium.cjs");
  const scriptPath = join(directory, "script.mjs");
  writeFileSync(preloadPath, NO_SODIUM_PRELOAD);
  writeFileSync(scriptPath, script);
  return new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ["--require", preloadPath, scriptPath], { timeout: 10_000 }, (error, stdout, stderr) => {
      rmSync(directory, { recursive: true, force: true });
      if (error !== null) reject(new Error(`the child process failed: ${error.message}\n${stderr}`, { cause: error }));
      else resolve(stdout);
    });
  });
}
