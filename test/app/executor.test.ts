import { test } from "node:test";
import assert from "node:assert/strict";

import type { Admission, Application, ClientEntry, OutOfTurn, TimestampRule } from "../../src/app/application.js";
import { Executor, turnOf } from "../../src/app/executor.js";
import { MemoryClientTable } from "../../src/app/memory-client-table.js";
import type { ClientRequest, CommittedBatch } from "../../src/consensus/pbft/types.js";

/**
 * A counter application: each operation adds its first byte; the result is the new total.
 * Requests signed "forged" fail admission. Out-of-turn results are [255, reason, next].
 */
class Counter implements Application<number> {
  total = 0;
  executed = 0;
  digests = 0;
  /** What `record` was given with each entry: the admitted value. */
  readonly recordedValues: number[] = [];
  private readonly clients = new MemoryClientTable();

  constructor(readonly timestampRule: TimestampRule = "increasing") {}

  admit(requests: readonly ClientRequest[]): Admission<number>[] {
    return requests.map((request) =>
      request.signature === "forged" ? { admitted: false, result: Uint8Array.of(254) } : { admitted: true, value: request.operation[0] ?? 0 },
    );
  }
  lastReply(client: string): ClientEntry | undefined {
    return this.clients.get(client);
  }
  execute(_request: ClientRequest, amount: number): Uint8Array {
    this.total += amount;
    this.executed += 1;
    return Uint8Array.of(this.total);
  }
  record(entry: ClientEntry, amount: number): void {
    this.recordedValues.push(amount);
    this.clients.set(entry);
  }
  outOfTurnResult(reason: OutOfTurn, nextTimestamp: number): Uint8Array {
    return Uint8Array.of(255, reason === "stale" ? 0 : 1, nextTimestamp);
  }
  stateDigest(): string {
    this.digests += 1;
    return [`total=${this.total}`, ...this.clients.digestLines()].join("\n");
  }
  snapshot(): unknown {
    return { total: this.total, clients: this.clients.sorted() };
  }
  restore(snapshot: unknown): void {
    const state = snapshot as { total: number; clients: unknown };
    this.clients.replace(state.clients);
    this.total = state.total;
  }
}

function request(client: string, timestamp: number, amount: number, signature = `${client}@${timestamp}`): ClientRequest {
  return { client, timestamp, operation: Uint8Array.of(amount), signature };
}

function batch(seq: number, requests: ClientRequest[]): CommittedBatch {
  return { seq, view: 0, digest: `d${seq}`, requests };
}

function summary(executed: ReturnType<Executor["executeBatch"]>): string[] {
  return executed.map((entry) => `${entry.client}@${entry.timestamp} ${entry.outcome} [${[...entry.result].join(",")}]`);
}

test("a request executes once and its result is cached as the client's last reply", () => {
  const app = new Counter();
  const executor = new Executor(app);
  const executed = executor.executeBatch(batch(1, [request("a", 1, 5)]));
  assert.deepEqual(summary(executed), ["a@1 executed [5]"]);
  assert.deepEqual([...(executor.lastReply("a")?.result ?? [])], [5]);
  assert.equal(executor.lastReply("a")?.timestamp, 1);
  assert.equal(executor.lastReply("b"), undefined);
});

test("every request of a batch gets a result: a retransmission the cached one, an old or rival timestamp stale", () => {
  const app = new Counter();
  const executor = new Executor(app);
  executor.executeBatch(batch(1, [request("a", 2, 5)]));
  const executed = executor.executeBatch(
    batch(2, [request("a", 2, 5), request("a", 2, 7, "another request on a@2"), request("a", 1, 9), request("b", 1, 1)]),
  );
  assert.deepEqual(summary(executed), ["a@2 duplicate [5]", "a@2 rejected [255,0,3]", "a@1 rejected [255,0,3]", "b@1 executed [6]"]);
  assert.equal(app.executed, 2);
  assert.equal(app.total, 6);
  assert.equal(executor.lastReply("a")?.timestamp, 2);
});

test("the same request twice in one batch takes effect once", () => {
  const app = new Counter();
  const executor = new Executor(app);
  const executed = executor.executeBatch(batch(1, [request("a", 1, 5), request("a", 1, 5)]));
  assert.deepEqual(summary(executed), ["a@1 executed [5]", "a@1 duplicate [5]"]);
  assert.equal(app.total, 5);
});

test("each executed request is recorded with the value its admission derived, and only executed ones are", () => {
  const app = new Counter();
  const executor = new Executor(app);
  executor.executeBatch(batch(1, [request("a", 1, 5), request("b", 1, 7, "forged"), request("a", 1, 5), request("b", 1, 9), request("a", 0, 4)]));
  assert.deepEqual(app.recordedValues, [5, 9]);
});

test("a request refused at admission leaves the client's table entry alone, so the genuine one still runs", () => {
  const app = new Counter();
  const executor = new Executor(app);
  const executed = executor.executeBatch(batch(1, [request("a", 1, 5, "forged"), request("a", 1, 3)]));
  assert.deepEqual(summary(executed), ["a@1 rejected [254]", "a@1 executed [3]"]);
});

test("sequential timestamps: a gap is refused without moving the table, and the right timestamp then runs", () => {
  const app = new Counter("sequential");
  const executor = new Executor(app);
  const first = executor.executeBatch(batch(1, [request("a", 0, 1), request("a", 3, 1), request("a", 1, 1)]));
  assert.deepEqual(summary(first), ["a@0 rejected [255,0,1]", "a@3 rejected [255,1,1]", "a@1 executed [1]"]);
  const second = executor.executeBatch(batch(2, [request("a", 3, 1), request("a", 2, 1), request("a", 3, 1)]));
  assert.deepEqual(summary(second), ["a@3 rejected [255,1,2]", "a@2 executed [2]", "a@3 executed [3]"]);
  assert.equal(executor.lastReply("a")?.timestamp, 3);
});

test("turnOf: the exactly-once rule in both timestamp disciplines", () => {
  const last: ClientEntry = { client: "a", timestamp: 4, signature: "s4", result: new Uint8Array(0) };
  const at = (timestamp: number, signature = "other"): ClientRequest => ({ client: "a", timestamp, operation: new Uint8Array(0), signature });
  assert.equal(turnOf("increasing", undefined, at(9)), "next");
  assert.equal(turnOf("increasing", last, at(9)), "next");
  assert.equal(turnOf("increasing", last, at(4, "s4")), "duplicate");
  assert.equal(turnOf("increasing", last, at(4)), "stale");
  assert.equal(turnOf("increasing", last, at(3)), "stale");
  assert.equal(turnOf("sequential", undefined, at(1)), "next");
  assert.equal(turnOf("sequential", undefined, at(0)), "stale");
  assert.equal(turnOf("sequential", undefined, at(2)), "gap");
  assert.equal(turnOf("sequential", last, at(5)), "next");
  assert.equal(turnOf("sequential", last, at(6)), "gap");
  assert.equal(turnOf("sequential", last, at(4, "s4")), "duplicate");
  assert.equal(turnOf("sequential", last, at(4)), "stale");
});

test("batches must arrive in sequence order", () => {
  const executor = new Executor(new Counter());
  assert.throws(() => executor.executeBatch(batch(2, [])), /not the next/);
  executor.executeBatch(batch(1, []));
  assert.equal(executor.lastExecuted, 1);
});

test("the state digest is computed at most once per batch", () => {
  const app = new Counter();
  const executor = new Executor(app);
  executor.executeBatch(batch(1, [request("a", 1, 5), request("b", 1, 5)]));
  executor.stateDigest();
  executor.stateDigest();
  assert.equal(app.digests, 1);
  executor.executeBatch(batch(2, [request("a", 2, 5)]));
  executor.stateDigest();
  assert.equal(app.digests, 2);
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
  const entryA = { client: "a", timestamp: 1, signature: "a@1", result: Uint8Array.of(1) };
  const entryB = { client: "b", timestamp: 4, signature: "b@4", result: Uint8Array.of(2) };
  const one = new Executor(new Counter());
  const other = new Executor(new Counter());
  one.restore({ seq: 3, app: { total: 3, clients: [entryA, entryB] } });
  other.restore({ seq: 3, app: { total: 3, clients: [entryB, entryA] } });
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
  // A retransmission of an executed request is still not executed again after the transfer.
  assert.deepEqual(summary(target.executeBatch(batch(3, [request("a", 2, 1)]))), ["a@2 duplicate [8]"]);
  // Later execution does not change the snapshot that was taken.
  source.executeBatch(batch(3, [request("c", 1, 1)]));
  assert.equal((snapshot.app as { clients: unknown[] }).clients.length, 2);
});
