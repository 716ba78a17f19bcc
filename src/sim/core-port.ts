// What the simulator needs from a consensus core, as an interface. The simulator is written
// against this port and handed the real PBFT module (`pbft-module.ts`) by the runner, so tests
// can also drive it with a deliberately broken or scripted core.

import type { Signed } from "../consensus/pbft/messages.js";
import type { ReplicaStatus, RestoredState } from "../consensus/pbft/replica.js";
import type { Input, PbftOptions, PersistRecord, Ready, ReplicaId } from "../consensus/pbft/types.js";

export type { RestoredState };

/** Messages whose `signature` covers `signingPayload(message)`. */
export type SignedMessage = Signed;

/** What the simulator reads of a core's progress. */
export type CoreStatus = Pick<ReplicaStatus, "id" | "view" | "normal" | "primary" | "lastExecuted" | "stableSeq">;

/** One replica's protocol state machine: inputs in through `step`, outputs out through `drain`. */
export interface ReplicaCore {
  step(input: Input): void;
  drain(): Ready;
  status(): CoreStatus;
  counters(): Readonly<Record<string, number>>;
}

export interface CoreModule {
  createReplica(options: PbftOptions, restored?: RestoredState): ReplicaCore;
  compactRecords(records: readonly PersistRecord[]): PersistRecord[];
  signingPayload(message: SignedMessage): string;
  primaryOf(view: number, n: number): ReplicaId;
  faultsTolerated(n: number): number;
}

/** True when a drained Ready holds nothing: the core has settled. */
export function isEmptyReady(ready: Ready): boolean {
  return (
    ready.persist.length === 0 &&
    ready.send.length === 0 &&
    ready.execute.length === 0 &&
    ready.replies.length === 0 &&
    ready.fetchState.length === 0
  );
}

/** Adds a core's counters into a running total, by name. */
export function addCounters(into: Record<string, number>, counters: Readonly<Record<string, number>>): void {
  for (const name of Object.keys(counters)) into[name] = (into[name] ?? 0) + (counters[name] ?? 0);
}
