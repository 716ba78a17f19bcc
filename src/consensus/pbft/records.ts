// Compaction of persisted consensus records. A store appends records as the core emits them;
// compaction keeps only what `PbftReplica`'s restore needs, so the log on disk stays bounded by
// the watermark window rather than growing with history.

import type { PersistRecord } from "./types.js";

/**
 * The records still needed after the newest stable checkpoint and the newest view: that
 * checkpoint, the current view, our VIEW-CHANGE and the accepted NEW-VIEW of that view, the
 * current view's pre-prepares and votes above the checkpoint, the highest-view prepared
 * certificate of each seq above it (they must survive view changes: PBFT §4.4), and our
 * checkpoints above it. Order matters for restore: checkpoint, view, then the rest as emitted.
 */
export function compactRecords(records: readonly PersistRecord[]): PersistRecord[] {
  let stable: Extract<PersistRecord, { kind: "stable-checkpoint" }> | undefined;
  let view: Extract<PersistRecord, { kind: "view" }> | undefined;
  for (const record of records) {
    if (record.kind === "stable-checkpoint" && (stable === undefined || record.proof.seq > stable.proof.seq)) stable = record;
    if (record.kind === "view" && (view === undefined || record.view >= view.view)) view = record;
  }
  const low = stable?.proof.seq ?? 0;
  const currentView = view?.view ?? 0;
  const prepared = new Map<number, Extract<PersistRecord, { kind: "prepared" }>>();
  const rest: PersistRecord[] = [];
  for (const record of records) {
    switch (record.kind) {
      case "stable-checkpoint":
      case "view":
        break;
      case "view-change":
      case "new-view":
        if (record.message.view === currentView) rest.push(record);
        break;
      case "pre-prepare":
      case "prepare":
      case "commit":
        if (record.message.view === currentView && record.message.seq > low) rest.push(record);
        break;
      case "prepared": {
        const pp = record.certificate.prePrepare;
        const known = prepared.get(pp.seq);
        if (pp.seq > low && (known === undefined || known.certificate.prePrepare.view <= pp.view)) prepared.set(pp.seq, record);
        break;
      }
      case "checkpoint":
        if (record.message.seq > low) rest.push(record);
        break;
    }
  }
  const head: PersistRecord[] = [];
  if (stable !== undefined) head.push(stable);
  if (view !== undefined) head.push(view);
  return [...head, ...prepared.values(), ...rest];
}
