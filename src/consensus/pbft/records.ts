// Compaction of persisted consensus records. A store appends records as the core emits them;
// compaction keeps only what `PbftReplica`'s restore needs, so the log on disk stays bounded by
// the watermark window rather than growing with history.

import type { PersistRecord } from "./types.js";

/**
 * What compaction reads of a record: its kind, view and sequence number. `view` is 0 for the
 * kinds without one (checkpoint, stable-checkpoint: its proof's seq), `seq` 0 for those without
 * one (view, view-change, new-view). A store can keep these beside the records' bytes and
 * compact without decoding them again (storage/record-file.ts).
 */
export interface RecordKey {
  readonly kind: PersistRecord["kind"];
  readonly view: number;
  readonly seq: number;
}

/** The key compaction decides `record` by. */
export function recordKeyOf(record: PersistRecord): RecordKey {
  switch (record.kind) {
    case "view":
      return { kind: record.kind, view: record.view, seq: 0 };
    case "view-change":
    case "new-view":
      return { kind: record.kind, view: record.message.view, seq: 0 };
    case "pre-prepare":
    case "prepare":
    case "commit":
      return { kind: record.kind, view: record.message.view, seq: record.message.seq };
    case "prepared":
      return { kind: record.kind, view: record.certificate.prePrepare.view, seq: record.certificate.prePrepare.seq };
    case "checkpoint":
      return { kind: record.kind, view: 0, seq: record.message.seq };
    case "stable-checkpoint":
      return { kind: record.kind, view: 0, seq: record.proof.seq };
  }
}

/**
 * The records still needed after the newest stable checkpoint and the newest view: that
 * checkpoint, the current view, our VIEW-CHANGE and the accepted NEW-VIEW of that view, the
 * current view's pre-prepares and votes above the checkpoint, the highest-view prepared
 * certificate of each seq above it (they must survive view changes: PBFT §4.4), and our
 * checkpoints above it. Order matters for restore: checkpoint, view, then the rest as emitted.
 */
export function compactRecords(records: readonly PersistRecord[]): PersistRecord[] {
  return compactRecordsBy(records, recordKeyOf);
}

/** `compactRecords` of any items that stand for records, each judged by `keyOf(item)`. */
export function compactRecordsBy<T>(items: readonly T[], keyOf: (item: T) => RecordKey): T[] {
  const keys = items.map(keyOf);
  let stable = -1;
  let view = -1;
  keys.forEach((key, index) => {
    if (key.kind === "stable-checkpoint" && (stable < 0 || key.seq > keys[stable]!.seq)) stable = index;
    if (key.kind === "view" && (view < 0 || key.view >= keys[view]!.view)) view = index;
  });
  const low = stable < 0 ? 0 : keys[stable]!.seq;
  const currentView = view < 0 ? 0 : keys[view]!.view;
  /** seq → index of its prepared certificate of the highest view (the later of equal views). */
  const prepared = new Map<number, number>();
  const rest: T[] = [];
  keys.forEach((key, index) => {
    switch (key.kind) {
      case "stable-checkpoint":
      case "view":
        break;
      case "view-change":
      case "new-view":
        if (key.view === currentView) rest.push(items[index]!);
        break;
      case "pre-prepare":
      case "prepare":
      case "commit":
        if (key.view === currentView && key.seq > low) rest.push(items[index]!);
        break;
      case "prepared": {
        const known = prepared.get(key.seq);
        if (key.seq > low && (known === undefined || keys[known]!.view <= key.view)) prepared.set(key.seq, index);
        break;
      }
      case "checkpoint":
        if (key.seq > low) rest.push(items[index]!);
        break;
    }
  });
  const head: T[] = [];
  if (stable >= 0) head.push(items[stable]!);
  if (view >= 0) head.push(items[view]!);
  return [...head, ...[...prepared.values()].map((index) => items[index]!), ...rest];
}
