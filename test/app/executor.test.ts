import { test } from "node:test";
import assert from "node:assert/strict";

import type { Application } from "../../src/app/application.js";
import { Executor } from "../../src/app/executor.js";
import type { ClientRequest, CommittedBatch } from "../../src/consensus/pbft/types.js";

/** A counter application: each operation adds its first byte; the result is the new total. */
class Counter implements Application {
  total = 0;
  executed = 0;
  execute(operation: Uint8Array): Uint8Array {
    this.total += operation[0] ?? 0;
    this.executed += 1;
    return Uint8Array.of(this.total);
  }
  digest(): string {
    return `total=${this.total}`;
  }
  snapshot(): unknown {
    return { total: this.total };
  }
  restore(snapshot: unknown): void {
    this.total = (snapshot as { total: number }).total;
  }
}

function request(client: string, timestamp: number, amount: number): ClientRequest {
  return { client, timestamp, operation: Uint8Array.of(amount), signature: "" };
}

function batch(seq: number, requests: ClientRequest[]): CommittedBatch {
  return { seq, view: 0, digest: `d${seq}`, requests };
}

test("a request executes once and its result is cached as the client's last reply", () => {
  const app = new Counter();
  const executor = new Executor(app);
  const applied = executor.executeBatch(batch(1, [request("a", 1, 5)]));
  assert.deepEqual(applied.map((entry) => [entry.client, entry.timestamp, [...entry.result]]), [["a", 1, [5]]]);
  assert.deepEqual([...(executor.lastReply("a")?.result ?? [])], [5]);
  assert.equal(executor.lastReply("a")?.timestamp, 1);
  assert.equal(executor.lastReply("b"), undefined);
});

test("a request whose timestamp is not above the client's last executed one is skipped without effect or reply", () => {
  const app = new Counter();
  const executor = new Executor(app);
  executor.executeBatch(batch(1, [request("a", 2, 5)]));
  const applied = executor.executeBatch(batch(2, [request("a", 2, 7), request("a", 1, 9), request("b", 1, 1)]));
  assert.deepEqual(applied.map((entry) => entry.client), ["b"]);
  assert.equal(app.executed, 2);
  assert.equal(app.total, 6);
  assert.equal(executor.lastReply("a")?.timestamp, 2);
});

test("the same request twice in one batch takes effect once", () => {
  const app = new Counter();
  const executor = new Executor(app);
  const applied = executor.executeBatch(batch(1, [request("a", 1, 5), request("a", 1, 5)]));
  assert.equal(applied.length, 1);
  assert.equal(app.total, 5);
});

test("batches must arrive in sequence order", () => {
  const executor = new Executor(new Counter());
  assert.throws(() => executor.executeBatch(batch(2, [])), /not the next/);
  executor.executeBatch(batch(1, []));
  assert.equal(executor.lastExecuted, 1);
});

test("the state digest covers the client table, not only the application", () => {
  const one = new Executor(new Counter());
  const other = new Executor(new Counter());
  // Same application state (total 5), different client tables.
  one.executeBatch(batch(1, [request("a", 1, 5)]));
  other.executeBatch(batch(1, [request("b", 1, 5)]));
  assert.notEqual(one.stateDigest(), other.stateDigest());
});

test("the state digest does not depend on the order clients were first seen", () => {
  const entryA = { client: "a", timestamp: 1, result: Uint8Array.of(1) };
  const entryB = { client: "b", timestamp: 4, result: Uint8Array.of(2) };
  const one = new Executor(new Counter());
  const other = new Executor(new Counter());
  one.restore({ seq: 3, app: { total: 3 }, clients: [entryA, entryB] });
  other.restore({ seq: 3, app: { total: 3 }, clients: [entryB, entryA] });
  assert.equal(one.stateDigest(), other.stateDigest());
});

test("a snapshot restored elsewhere reproduces state, position and exactly-once behaviour", () => {
  const source = new Executor(new Counter());
  source.executeBatch(batch(1, [request("a", 1, 5), request("b", 1, 2)]));
  source.executeBatch(batch(2, [request("a", 2, 1)]));
  const snapshot = source.snapshot();
  const target = new Executor(new Counter());
  target.restore(snapshot);
  assert.equal(target.lastExecuted, 2);
  assert.equal(target.stateDigest(), source.stateDigest());
  assert.deepEqual([...(target.lastReply("a")?.result ?? [])], [8]);
  // A retransmission of an executed request is still refused after the transfer.
  assert.equal(target.executeBatch(batch(3, [request("a", 2, 1)])).length, 0);
  // Later execution does not change the snapshot that was taken.
  source.executeBatch(batch(3, [request("c", 1, 1)]));
  assert.equal(snapshot.clients.length, 2);
});
