// One process per data directory. LMDB lets several processes write one environment, so two
// copies of the same replica started against one directory would both run, each voting from its
// own memory, and together could vote for two batches at one (view, seq). A lock file holding
// the owner's process id refuses the second copy. A lock left behind by a killed process (the
// crash tests do this on purpose) names a process that no longer exists and is taken over.
//
// The check guards against operator mistakes, not against two processes racing to start within
// the same few microseconds: both could see a stale lock and both take it.

import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { StorageRefusedError } from "./errors.js";

export const LOCK_FILE_NAME = "replica.lock";

export interface DirectoryLock {
  release(): void;
}

function errorCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
}

function lockHolder(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, "utf8").trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return errorCode(error) === "EPERM";
  }
}

export function lockDirectory(directory: string): DirectoryLock {
  mkdirSync(directory, { recursive: true });
  const path = join(directory, LOCK_FILE_NAME);
  // Two attempts: the second follows the removal of a stale lock.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: "wx" });
      return {
        release(): void {
          if (lockHolder(path) === process.pid) rmSync(path, { force: true });
        },
      };
    } catch (error) {
      if (errorCode(error) !== "EEXIST") {
        const detail = error instanceof Error ? error.message : String(error);
        throw new StorageRefusedError("unreadable", directory, `cannot create ${path}: ${detail}`, { cause: error });
      }
    }
    const holder = lockHolder(path);
    if (holder === process.pid) {
      throw new StorageRefusedError("in-use", directory, `${directory} is already open in this process; close the other store first`);
    }
    if (holder !== undefined && isRunning(holder)) {
      throw new StorageRefusedError(
        "in-use",
        directory,
        `${directory} is in use by process ${holder}; stop that replica first (each replica needs its own data directory)`,
      );
    }
    rmSync(path, { force: true });
  }
  throw new StorageRefusedError("in-use", directory, `${directory}: another process took its lock while this one was starting`);
}
