// The ledger application behind the real PBFT core: four replicas, real Ed25519 transactions,
// `verifyRequest` as the core's request check and the executor's table as its reply cache. The
// point is the interplay the unit tests cannot show: the core drops a request whose timestamp is
// not above `lastReply`, so if a refused nonce ever entered the table, the client's right nonce
// would be dropped forever.

import { test } from "node:test";
import assert from "node:assert/strict";

import { Executor } from "../../src/app/executor.js";
import { createLedgerApplication } from "../../src/app/ledger-application.js";
import { verifyRequest } from "../../src/app/request.js";
import { decodeResult } from "../../src/app/result.js";
import type { Transaction } from "../../src/app/transaction.js";
import { PbftReplica, type ClientRequest, type ReplicaMessage, type Reply } from "../../src/consensus/pbft/index.js";
import { config, testCrypto } from "../consensus/harness.js";
import { AUTHORITY, bytes, describe, keyOf, signed } from "./ledger-fixtures.js";

const ALICE = keyOf("alice");
const BOB = keyOf("bob");
const N = 4;
const F = 1;

class LedgerCluster {
  readonly replicas: PbftReplica[] = [];
  readonly executors: Executor<Transaction>[] = [];
  private inFlight: Array<{ from: number; to: number; message: ReplicaMessage }> = [];
  readonly replies: Reply[] = [];

  constructor() {
    for (let id = 0; id < N; id++) {
      const executor = new Executor(createLedgerApplication({ authority: AUTHORITY.publicKey }));
      const crypto = { ...testCrypto(id), verifyRequest: (request: ClientRequest) => verifyRequest(request) };
      this.replicas.push(new PbftReplica({ id, config: config(N), crypto, replies: executor }));
      this.executors.push(executor);
    }
  }

  /**
   * Sends `request` to the primary (or, as a client retransmits, to every replica) and runs the
   * cluster until nothing is in flight.
   */
  submit(request: ClientRequest, toAll = false): void {
    const primary = this.replicas[0]!.status().primary;
    for (let id = 0; id < N; id++) if (toAll || id === primary) this.step(id, { type: "request", request });
    while (this.inFlight.length > 0) {
      const { from, to, message } = this.inFlight.shift()!;
      this.step(to, { type: "message", from, message });
    }
  }

  /** The result f + 1 replicas agree on for (request's client, timestamp), decoded, or undefined. */
  accepted(request: ClientRequest): string | undefined {
    const byResult = new Map<string, Set<number>>();
    for (const reply of this.replies) {
      if (reply.client !== request.client || reply.timestamp !== request.timestamp) continue;
      const key = describe(decodeResult(reply.result));
      const replicas = byResult.get(key) ?? new Set<number>();
      replicas.add(reply.replica);
      byResult.set(key, replicas);
    }
    for (const [result, replicas] of byResult) if (replicas.size >= F + 1) return result;
    return undefined;
  }

  private step(id: number, input: Parameters<PbftReplica["step"]>[0]): void {
    const replica = this.replicas[id]!;
    const executor = this.executors[id]!;
    replica.step(input);
    for (;;) {
      const ready = replica.drain();
      if (ready.send.length + ready.execute.length + ready.replies.length + ready.persist.length + ready.fetchState.length === 0) return;
      for (const { to, message } of ready.send) {
        for (let target = 0; target < N; target++) if (target !== id && (to === "all" || to === target)) this.inFlight.push({ from: id, to: target, message });
      }
      this.replies.push(...ready.replies);
      for (const batch of ready.execute) {
        const view = replica.status().view;
        // Every request of the batch gets its deterministic result as a reply.
        for (const entry of executor.executeBatch(batch)) {
          this.replies.push({ client: entry.client, timestamp: entry.timestamp, view, replica: id, result: entry.result });
        }
        replica.step({ type: "executed", seq: batch.seq, stateDigest: executor.stateDigest() });
      }
    }
  }

  clearReplies(): void {
    this.replies.length = 0;
  }
}

test("through the PBFT core, a gapped nonce gets nonce-gap and the client's right nonces still execute", () => {
  const cluster = new LedgerCluster();
  const put = (nonce: number): ClientRequest => signed(ALICE, nonce, { type: "put", key: bytes(`k${nonce}`), value: bytes("v") });

  cluster.submit(put(3));
  assert.equal(cluster.accepted(put(3)), "error:nonce-gap(next 1)");
  cluster.submit(put(1));
  assert.equal(cluster.accepted(put(1)), "ok");
  cluster.submit(put(2));
  assert.equal(cluster.accepted(put(2)), "ok");
  // The very request that was refused as a gap is now the next one, and takes effect.
  cluster.clearReplies();
  cluster.submit(put(3));
  assert.equal(cluster.accepted(put(3)), "ok");
  // A retransmission of the last one is answered from the cache; an older one is dropped.
  cluster.clearReplies();
  cluster.submit(put(3), true);
  assert.equal(cluster.accepted(put(3)), "ok");
  cluster.submit(put(1), true);
  assert.equal(cluster.accepted(put(1)), undefined);
  const digests = new Set(cluster.executors.map((executor) => executor.stateDigest()));
  assert.equal(digests.size, 1);
  assert.equal(cluster.executors[0]!.lastReply(put(1).client)?.timestamp, 3);
});

test("through the PBFT core, a double spend on one nonce takes effect once and a replay not at all", () => {
  const cluster = new LedgerCluster();
  cluster.submit(signed(AUTHORITY, 1, { type: "mint", to: ALICE.publicKey, amount: 10n }));
  const toBob = signed(ALICE, 1, { type: "transfer", to: BOB.publicKey, amount: 10n });
  const toAuthority = signed(ALICE, 1, { type: "transfer", to: AUTHORITY.publicKey, amount: 10n });
  cluster.submit(toBob);
  cluster.submit(toAuthority);
  cluster.submit(toBob);
  assert.equal(cluster.accepted(toBob), "ok");
  for (const executor of cluster.executors) {
    const state = (executor.app as ReturnType<typeof createLedgerApplication>).ledgerState;
    assert.equal(state.account(BOB.publicKey).balance, 10n);
    assert.equal(state.account(ALICE.publicKey).balance, 0n);
    assert.equal(state.account(AUTHORITY.publicKey).balance, 0n);
    assert.equal(state.account(ALICE.publicKey).nextNonce, 2);
  }
  // A second transfer with the next nonce finds the balance spent.
  const again = signed(ALICE, 2, { type: "transfer", to: AUTHORITY.publicKey, amount: 10n });
  cluster.submit(again);
  assert.equal(cluster.accepted(again), "error:insufficient-balance");
});
