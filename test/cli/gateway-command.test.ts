// `bulwark gateway` as a process, against a cluster none of whose replicas runs: a stop while it
// is still connecting ends it at once with exit code 0: the stop aborts the connect, rather than
// leaving the command hanging until the connect's 30 s deadline after the user asked it to stop.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { main } from "../../src/cli/main.js";
import { captureOutput } from "../support/cli-output.js";
import { temporaryDirectory } from "../storage/helpers.js";

/** dist/test/cli/ → the repository root. */
const BULWARK_BIN = fileURLToPath(new URL("../../../bin/bulwark.js", import.meta.url));
/** Far below the client's 30 s connect deadline, far above a process's start and stop. */
const STOP_WITHIN_MS = 5_000;

describe("bulwark gateway", () => {
  for (const signal of ["SIGINT", "SIGHUP"] as const) {
    it(`stops at once on ${signal} while it is still connecting to an unreachable cluster`, async (t) => {
      const directory = temporaryDirectory(t, "bulwark-gateway-");
      // Replicas on ports nobody listens on (in the range below Linux's ephemeral ports).
      const base = 20_000 + Math.floor(Math.random() * 12_000);
      const init = captureOutput();
      assert.equal(await main(["init", directory, "--base-port", String(base)], init), 0, init.stderr);
      const child = spawn(process.execPath, [BULWARK_BIN, "gateway", "--cluster", join(directory, "cluster.json"), "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
      t.after(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      });
      let stderr = "";
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("close", (code, killedBy) => resolve({ code, signal: killedBy })));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the gateway did not say it was connecting:\n${stderr}`)), STOP_WITHIN_MS);
        child.stderr.on("data", (chunk: Buffer) => {
          stderr += chunk.toString("utf8");
          if (/connecting to the cluster's 4 replicas/.test(stderr)) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      const signalledMs = Date.now();
      child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const exit = await Promise.race([exited, new Promise<"hung">((resolve) => (timer = setTimeout(() => resolve("hung"), STOP_WITHIN_MS)))]);
      clearTimeout(timer);
      assert.deepEqual(exit, { code: 0, signal: null }, `exit after ${Date.now() - signalledMs} ms; stderr:\n${stderr}`);
      assert.match(stderr, /stopped before the gateway started/);
    });
  }
});
