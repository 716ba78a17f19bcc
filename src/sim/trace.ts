// A bounded trace of the last events of a run, printed when a checker fails, plus a running
// fingerprint of every event (the determinism test compares fingerprints of whole runs).
//
// Recording must be cheap because every delivery is recorded: slots are preallocated and mutated
// in place, and text is produced only when someone asks for the lines.

import type { ClientRequest, ReplicaMessage, Reply } from "../consensus/pbft/types.js";

export type TraceKind =
  | "deliver"
  | "drop"
  | "request"
  | "reply"
  | "accept"
  | "retry"
  | "crash"
  | "restart"
  | "partition"
  | "heal"
  | "gst"
  | "view"
  | "execute"
  | "install"
  | "fetch-failed"
  | "byzantine"
  | "violation";

const KIND_CODES: Readonly<Record<TraceKind, number>> = {
  deliver: 1,
  drop: 2,
  request: 3,
  reply: 4,
  accept: 5,
  retry: 6,
  crash: 7,
  restart: 8,
  partition: 9,
  heal: 10,
  gst: 11,
  view: 12,
  execute: 13,
  install: 14,
  "fetch-failed": 15,
  byzantine: 16,
  violation: 17,
};

type Detail = ReplicaMessage | ClientRequest | Reply | string | undefined;

interface Slot {
  timeTicks: number;
  kind: TraceKind;
  /** Sender (replica id, or -1 for a client / the simulator). */
  from: number;
  /** Receiver (replica id, or -1). */
  to: number;
  detail: Detail;
}

export function describeMessage(message: ReplicaMessage): string {
  switch (message.type) {
    case "pre-prepare":
      return `pre-prepare v${message.view} s${message.seq} ${message.digest} by r${message.replica} [${message.requests.length} req]`;
    case "prepare":
    case "commit":
      return `${message.type} v${message.view} s${message.seq} ${message.digest} by r${message.replica}`;
    case "checkpoint":
      return `checkpoint s${message.seq} ${message.stateDigest} by r${message.replica}`;
    case "checkpoint-proof":
      return `checkpoint-proof s${message.seq} ${message.stateDigest} (${message.checkpoints.length} sigs)`;
    case "commit-certificate":
      return `commit-certificate v${message.prePrepare.view} s${message.prePrepare.seq} ${message.prePrepare.digest}`;
    case "view-change":
      return `view-change v${message.view} stable s${message.stable.seq} prepared [${message.prepared
        .map((certificate) => `s${certificate.prePrepare.seq}@v${certificate.prePrepare.view}`)
        .join(",")}] by r${message.replica}`;
    case "new-view":
      return `new-view v${message.view} (${message.viewChanges.length} vcs) pre-prepares [${message.prePrepares
        .map((prePrepare) => `s${prePrepare.seq}:${prePrepare.digest}`)
        .join(",")}] by r${message.replica}`;
    case "status":
      return `status v${message.view}${message.normal ? "" : "(vc)"} stable s${message.stableSeq} exec s${message.lastExecuted} by r${message.replica}`;
    case "request":
      return `forwarded request ${message.request.client}@${message.request.timestamp}`;
    case "batch-request":
      return `batch-request s${message.seq} ${message.digest} by r${message.replica}`;
    case "batch":
      return `batch s${message.seq} ${message.digest} [${message.requests.length} req] by r${message.replica}`;
  }
}

function describeDetail(detail: Detail): string {
  if (detail === undefined) return "";
  if (typeof detail === "string") return detail;
  if ("type" in detail) return describeMessage(detail);
  if ("signature" in detail) return `request ${detail.client}@${detail.timestamp}`;
  return `reply ${detail.client}@${detail.timestamp} v${detail.view} from r${detail.replica}`;
}

function party(id: number): string {
  return id < 0 ? "--" : `r${id}`;
}

export class TraceRing {
  private readonly slots: Slot[] = [];
  private readonly capacity: number;
  private next = 0;
  private recorded = 0;
  private fingerprintValue = 0x811c9dc5;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error("trace: capacity must be a positive integer");
    this.capacity = capacity;
  }

  record(timeTicks: number, kind: TraceKind, from: number, to: number, detail?: Detail): void {
    let slot = this.slots[this.next];
    if (slot === undefined) {
      slot = { timeTicks, kind, from, to, detail };
      this.slots.push(slot);
    } else {
      slot.timeTicks = timeTicks;
      slot.kind = kind;
      slot.from = from;
      slot.to = to;
      slot.detail = detail;
    }
    this.next = (this.next + 1) % this.capacity;
    this.recorded += 1;
    // FNV-1a over the numeric fields: cheap, and any change of order, timing or routing shows.
    let h = this.fingerprintValue;
    h = Math.imul(h ^ timeTicks, 16777619);
    h = Math.imul(h ^ KIND_CODES[kind], 16777619);
    h = Math.imul(h ^ (from + 2), 16777619);
    h = Math.imul(h ^ (to + 2), 16777619);
    this.fingerprintValue = h >>> 0;
  }

  /** Events recorded over the whole run (the ring keeps only the last `capacity`). */
  get count(): number {
    return this.recorded;
  }

  get fingerprint(): number {
    return this.fingerprintValue;
  }

  /** The retained events, oldest first, one readable line each. */
  lines(): string[] {
    const lines: string[] = [];
    const retained = this.slots.length;
    const start = retained < this.capacity ? 0 : this.next;
    for (let i = 0; i < retained; i++) {
      const slot = this.slots[(start + i) % retained] as Slot;
      const time = String(slot.timeTicks).padStart(6, " ");
      lines.push(`t=${time} ${slot.kind.padEnd(12, " ")} ${party(slot.from)} -> ${party(slot.to)}  ${describeDetail(slot.detail)}`);
    }
    return lines;
  }
}
