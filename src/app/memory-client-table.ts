// The exactly-once table of an application that keeps its state in memory (the simulator's
// hash-chain application): a map from client to its last recorded request, with a canonical
// text form for the application's digest and a plain copy for its snapshots. The ledger keeps
// its table in the state tree instead (ledger-state.ts).

import type { ClientId } from "../consensus/pbft/types.js";
import type { ClientEntry } from "./application.js";
import { bytesToHex } from "./bytes.js";

export class MemoryClientTable {
  private readonly entries = new Map<ClientId, ClientEntry>();

  get(client: ClientId): ClientEntry | undefined {
    return this.entries.get(client);
  }

  set(entry: ClientEntry): void {
    this.entries.set(entry.client, entry);
  }

  /** Every entry, sorted by client id, so equal tables give equal snapshots and digests. */
  sorted(): ClientEntry[] {
    const entries = [...this.entries.values()];
    // Plain code-unit order: locale-independent, so every replica sorts identically.
    entries.sort((a, b) => (a.client < b.client ? -1 : a.client > b.client ? 1 : 0));
    return entries;
  }

  /** One line per entry, in client order: the table's part of a digest's canonical text. */
  digestLines(): string[] {
    return this.sorted().map((entry) => `${entry.client} ${entry.timestamp} ${entry.signature} ${bytesToHex(entry.result)}`);
  }

  /** Replaces the contents with `entries` (from `sorted()`), after checking every one. */
  replace(entries: unknown): void {
    if (!Array.isArray(entries) || !entries.every(isClientEntry)) throw new Error("client table: not a snapshot of a client table");
    this.entries.clear();
    for (const entry of entries) this.entries.set(entry.client, entry);
  }
}

function isClientEntry(value: unknown): value is ClientEntry {
  if (typeof value !== "object" || value === null) return false;
  const entry = value as Partial<ClientEntry>;
  return (
    typeof entry.client === "string" &&
    Number.isSafeInteger(entry.timestamp) &&
    typeof entry.signature === "string" &&
    entry.result instanceof Uint8Array
  );
}
