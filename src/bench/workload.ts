// Makes the workload a benchmark names (`--workload noop|kv|transfer`) from the run's settings.

import { randomBytes } from "node:crypto";

import { KvWorkload } from "./kv-workload.js";
import { NoopWorkload } from "./noop-workload.js";
import type { PreparedWorkload } from "./prepared-workload.js";
import { type TransferAuthority, TransferWorkload } from "./transfer-workload.js";
import type { AuthMode, WorkloadName } from "./types.js";

export const WORKLOAD_NAMES: readonly WorkloadName[] = ["noop", "kv", "transfer"];
export const KEY_SEED_BYTES = 32;

export interface WorkloadSettings {
  readonly name: WorkloadName;
  readonly auth: AuthMode;
  /** Clients (keys in flight at once): the closed loop's clients, or the open loop's pool. */
  readonly clients: number;
  /** Seeds every random choice (keys of records, recipients, values). */
  readonly seed: number;
  /** Seeds the keys; default fresh random bytes, so that no two runs share a key (and its used nonces). */
  readonly keySeed?: Uint8Array;
  /** kv: the records keys are drawn from (default 100,000). */
  readonly records?: number;
  /** kv: write every record once before the run. */
  readonly preload?: boolean;
  /** transfer: the accounts (default 10,000). */
  readonly accounts?: number;
  /** transfer: the genesis authority that funds the accounts (needed for the setup rounds). */
  readonly authority?: TransferAuthority;
}

export function createWorkload(settings: WorkloadSettings): PreparedWorkload {
  const keySeed = settings.keySeed ?? new Uint8Array(randomBytes(KEY_SEED_BYTES));
  const { auth, clients, seed } = settings;
  switch (settings.name) {
    case "noop":
      return new NoopWorkload({ auth, clients, keySeed });
    case "kv":
      return new KvWorkload({ auth, clients, seed, keySeed, records: settings.records, preload: settings.preload });
    case "transfer":
      return new TransferWorkload({ auth, clients, seed, keySeed, authority: settings.authority, accounts: settings.accounts });
  }
}
