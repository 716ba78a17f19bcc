// The simulator's application: a running hash chain over every operation applied, plus a count.
// Any divergence in which operations ran, or in their order, changes every later digest and
// result, so the checkers see it at the next checkpoint and in the clients' results.

import type { Application } from "../app/application.js";
import { bytesToHexFast } from "./crypto.js";
import { hashText } from "./hash.js";

interface HashChainState {
  readonly head: string;
  readonly count: number;
}

function isHashChainState(value: unknown): value is HashChainState {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as Partial<HashChainState>;
  return typeof candidate.head === "string" && typeof candidate.count === "number";
}

const encoder = new TextEncoder();

export class HashChainApplication implements Application {
  private head = "genesis";
  private count = 0;

  execute(operation: Uint8Array): Uint8Array {
    this.head = hashText(`${this.head}/${bytesToHexFast(operation)}`);
    this.count += 1;
    return encoder.encode(this.head);
  }

  digest(): string {
    return `${this.head}#${this.count}`;
  }

  snapshot(): unknown {
    const state: HashChainState = { head: this.head, count: this.count };
    return state;
  }

  restore(snapshot: unknown): void {
    if (!isHashChainState(snapshot)) throw new Error("hash-chain app: not a snapshot of this application");
    this.head = snapshot.head;
    this.count = snapshot.count;
  }
}
