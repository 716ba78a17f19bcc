// Which client serves a call, and the bound on calls waiting for the cluster.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { GatewayError } from "../../src/gateway/errors.js";
import { LedgerPool } from "../../src/gateway/ledger-pool.js";
import type { GatewayLedger } from "../../src/gateway/types.js";
import { FakeCluster, FakeLedger } from "./fake-ledger.js";

function pool(writers: number, callsPendingMax = 100): { pool: LedgerPool; writers: FakeLedger[]; reader: FakeLedger } {
  const cluster = new FakeCluster();
  const fakes = Array.from({ length: writers }, (_, index) => new FakeLedger(cluster, `writer-${index}`));
  const reader = new FakeLedger(cluster, "reader");
  return { pool: new LedgerPool(reader, fakes, callsPendingMax), writers: fakes, reader };
}

/** A call that waits until `release` is called, and records which writer served it. */
function heldCall(served: string[]): { call: (ledger: GatewayLedger) => Promise<void>; release: () => void } {
  let release = (): void => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  return {
    call: async (ledger) => {
      served.push((ledger as FakeLedger).name);
      await held;
    },
    release,
  };
}

describe("LedgerPool", () => {
  it("gives each call to the writer with the fewest outstanding, rotating over ties", async () => {
    const { pool: ledgers } = pool(3);
    const served: string[] = [];
    const calls = Array.from({ length: 7 }, () => heldCall(served));
    const running = calls.map(({ call }) => ledgers.withWriter(call));
    assert.deepEqual(served, ["writer-0", "writer-1", "writer-2", "writer-0", "writer-1", "writer-2", "writer-0"]);
    calls[1]!.release();
    calls[4]!.release();
    await Promise.all([running[1], running[4]]);
    // writer-1 now has none outstanding, writer-0 three and writer-2 two.
    const next = heldCall(served);
    const nextRunning = ledgers.withWriter(next.call);
    assert.equal(served.at(-1), "writer-1");
    for (const { release } of [...calls, next]) release();
    await Promise.all([...running, nextRunning]);
  });

  it("avoids a writer whose client still has a request in flight that nobody waits for", async () => {
    const { pool: ledgers, writers } = pool(2);
    writers[0]!.inFlight = 1;
    const served: string[] = [];
    const record = (ledger: GatewayLedger): Promise<void> => {
      served.push((ledger as FakeLedger).name);
      return Promise.resolve();
    };
    await ledgers.withWriter(record);
    await ledgers.withWriter(record);
    assert.deepEqual(served, ["writer-1", "writer-1"]);
  });

  it("refuses calls beyond callsPendingMax with a 503, counting them, and frees a slot whether a call succeeds or fails", async () => {
    const { pool: ledgers } = pool(2, 2);
    const served: string[] = [];
    const first = heldCall(served);
    const second = heldCall(served);
    const running = [ledgers.withWriter(first.call), ledgers.withReader(second.call)];
    assert.equal(ledgers.pending, 2);
    await assert.rejects(
      ledgers.withReader(() => Promise.resolve()),
      (error: unknown) => error instanceof GatewayError && error.statusCode === 503 && error.code === "overloaded",
    );
    assert.equal(ledgers.overloaded, 1);
    first.release();
    second.release();
    await Promise.all(running);
    await assert.rejects(ledgers.withWriter(() => Promise.reject(new Error("cluster said no"))), /cluster said no/);
    assert.equal(ledgers.pending, 0);
    await ledgers.withWriter(() => Promise.resolve());
  });
});
