// The simulator's application: a running hash chain over every operation applied, plus a count.
// Any divergence in which operations ran, or in their order, changes every later digest and
// result, so the checkers see it at the next checkpoint and in the clients' results.

import type { Admission, Application, ClientEntry, OutOfTurn, TimestampRule } from "../app/application.js";
import { MemoryClientTable } from "../app/memory-client-table.js";
import type { ClientId, ClientRequest, Digest } from "../consensus/pbft/types.js";
import { bytesToHexFast } from "./crypto.js";
import { hashText } from "./hash.js";

interface HashChainState {
  readonly head: string;
  readonly count: number;
  readonly clients: readonly ClientEntry[];
}

function isHashChainState(value: unknown): value is HashChainState {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as Partial<HashChainState>;
  return typeof candidate.head === "string" && typeof candidate.count === "number";
}

const encoder = new TextEncoder();
/** The core verified every committed request's signature; nothing is left to check. */
const ADMITTED: Admission<undefined> = Object.freeze({ admitted: true, value: undefined });

export class HashChainApplication implements Application<undefined> {
  /** PBFT's own rule: the simulated clients number their requests 1, 2, 3, ... anyway. */
  readonly timestampRule: TimestampRule = "increasing";
  private head = "genesis";
  private count = 0;
  private readonly clients = new MemoryClientTable();

  admit(requests: readonly ClientRequest[]): Admission<undefined>[] {
    return requests.map(() => ADMITTED);
  }

  lastReply(client: ClientId): ClientEntry | undefined {
    return this.clients.get(client);
  }

  execute(request: ClientRequest): Uint8Array {
    this.head = hashText(`${this.head}/${bytesToHexFast(request.operation)}`);
    this.count += 1;
    return encoder.encode(this.head);
  }

  record(entry: ClientEntry): void {
    this.clients.set(entry);
  }

  outOfTurnResult(reason: OutOfTurn, nextTimestamp: number): Uint8Array {
    return encoder.encode(`${reason}, next ${nextTimestamp}`);
  }

  stateDigest(): Digest {
    return hashText([`${this.head}#${this.count}`, ...this.clients.digestLines()].join("\n"));
  }

  snapshot(): unknown {
    const state: HashChainState = { head: this.head, count: this.count, clients: this.clients.sorted() };
    return state;
  }

  restore(snapshot: unknown): void {
    if (!isHashChainState(snapshot)) throw new Error("hash-chain app: not a snapshot of this application");
    this.clients.replace(snapshot.clients);
    this.head = snapshot.head;
    this.count = snapshot.count;
  }
}
