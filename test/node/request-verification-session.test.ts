// The verification stage's session waits (src/node/request-verification.ts, "Session requests"):
// a backup may accept a session request in a pre-prepare only once its own copy arrived from the
// client, and the primary's pre-prepare can overtake that copy. What must hold: a pre-prepare
// carrying a session request not yet recorded waits, and goes on when the copy arrives
// (`sessionArrived`) or when `sessionWaitMs` passed (`expire`, counted); inputs of the same
// connection behind it keep their order while other connections' inputs pass; a client's own
// request never waits for sessions; certificates, view changes and new views never do (2f + 1
// replicas vouch for their batches); and a pre-prepare that also carries signed requests needs
// their verdicts as well.

import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { requestFromTransaction } from "../../src/app/request.js";
import { sessionTransaction, signTransaction } from "../../src/app/transaction.js";
import { GENESIS_CHECKPOINT } from "../../src/consensus/pbft/index.js";
import type { ClientRequest, PrePrepare, ReplicaMessage, ViewChange } from "../../src/consensus/pbft/types.js";
import { type Ed25519KeyPair, ed25519KeyPairFromSeed } from "../../src/crypto/ed25519.js";
import { type SignedItem, createEd25519VerifyBackend } from "../../src/crypto/verify-pool.js";
import { RequestVerification, SESSION_WAIT_MS_DEFAULT, type StagedInput, type VerdictSource } from "../../src/node/request-verification.js";
import { SessionRequests } from "../../src/node/session-requests.js";

const clients: Ed25519KeyPair[] = Array.from({ length: 6 }, (_, index) => ed25519KeyPairFromSeed(new Uint8Array(32).fill(index + 81)));
const encoder = new TextEncoder();
const WAIT_MS = 1_000;

function sessionRequest(client: number, nonce = 1): ClientRequest {
  const key = clients[client]!;
  return requestFromTransaction(sessionTransaction({ clientKey: key.publicKey, nonce, operation: { type: "put", key: encoder.encode("k"), value: encoder.encode(`v${nonce}`) } }));
}

function signedRequest(client: number, nonce = 1): ClientRequest {
  const key = clients[client]!;
  return requestFromTransaction(signTransaction(key.privateKey, { clientKey: key.publicKey, nonce, operation: { type: "put", key: encoder.encode("k"), value: encoder.encode(`v${nonce}`) } }));
}

function prePrepare(seq: number, requests: readonly ClientRequest[], view = 0): PrePrepare {
  return { type: "pre-prepare", view, seq, digest: `digest-${seq}`, requests, replica: view % 4, signature: `pp-${seq}` };
}

function message(from: number, body: ReplicaMessage): StagedInput {
  return { type: "message", from, message: body };
}

/** A pool whose batches the test answers, with real verdicts, when it chooses. */
class ManualPool implements VerdictSource {
  readonly batches: { items: readonly SignedItem[]; resolve: (verdicts: Uint8Array) => void }[] = [];
  private readonly backend = createEd25519VerifyBackend("node:crypto");

  verifyBatch(items: readonly SignedItem[]): Promise<Uint8Array> {
    return new Promise((resolve) => this.batches.push({ items, resolve }));
  }

  async answer(index: number): Promise<void> {
    const batch = this.batches[index];
    assert.ok(batch !== undefined, `no batch ${index}`);
    batch.resolve(Uint8Array.from(batch.items, (item) => (this.backend.verify(item.publicKey, item.message, item.signature) ? 1 : 0)));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** The stage over a session table, with a clock and a record of what reached the core. */
class Harness {
  readonly sessions = new SessionRequests();
  readonly delivered: StagedInput[] = [];
  readonly sources: object[] = [];
  readonly stage: RequestVerification<object>;
  clockMs = 10_000;

  /** Requests the harness's "replica" has executed: (client, timestamp) keys. */
  readonly executedKeys = new Set<string>();

  constructor(pool: VerdictSource | undefined, options: { readonly sessions?: boolean } = {}) {
    this.stage = new RequestVerification<object>({
      pool,
      deliver: (input, source) => {
        this.delivered.push(input);
        this.sources.push(source);
      },
      // Batches go to the pool once the current synchronous step is over: these tests are about
      // waiting for sessions, not about turns.
      schedule: (flush) => queueMicrotask(flush),
      nowMs: () => this.clockMs,
      sessionWaitMs: WAIT_MS,
      replicaCount: 4,
      hasExecuted: (request) => this.executedKeys.has(`${request.client}:${request.timestamp}`),
      ...(options.sessions === false ? {} : { sessions: this.sessions }),
    });
  }

  /** What the runtime does when a client's session request arrives over an attached session. */
  arrive(request: ClientRequest): void {
    this.sessions.record(request);
    this.stage.sessionArrived(request);
  }
}

function harness(pool: VerdictSource | undefined, options: { readonly sessions?: boolean } = {}): Harness {
  return new Harness(pool, options);
}

function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

for (const withPool of [true, false]) {
  const poolOf = (): ManualPool | undefined => (withPool ? new ManualPool() : undefined);
  const label = withPool ? "with a pool" : "without a pool";

  describe(`verification stage, session waits (${label})`, () => {
    it("a pre-prepare carrying a session request not yet received waits, and goes on when the client's copy arrives", () => {
      const h = harness(poolOf());
      const primary = {};
      const request = sessionRequest(0);
      const input = message(0, prePrepare(1, [request]));
      assert.equal(h.stage.submit(primary, input, 500), true);
      assert.deepEqual(h.delivered, [], "held for the client's copy");
      assert.equal(h.stage.stats().sessionWaits, 1);
      assert.equal(h.stage.stats().waiting.replica.inputs, 1);
      h.arrive(request);
      assert.deepEqual(h.delivered, [input]);
      assert.equal(h.sources[0], primary);
      assert.equal(h.sessions.has(request), true, "recorded before the pre-prepare reaches the core, so the core accepts it");
      assert.deepEqual({ waits: h.stage.stats().sessionWaits, expired: h.stage.stats().sessionWaitsExpired, inputs: h.stage.stats().waiting.replica.inputs }, { waits: 0, expired: 0, inputs: 0 });
    });

    it("only the view's primary's own pre-prepare waits: one relayed by another replica, or naming a replica that is not the primary, goes on at once", () => {
      const h = harness(poolOf());
      const request = sessionRequest(0, 1);
      h.stage.submit(h.sources[0] ?? {}, message(1, prePrepare(1, [request])), 100);
      h.stage.submit({}, message(1, { ...prePrepare(2, [request]), replica: 1 }), 100);
      assert.equal(h.delivered.length, 2);
      assert.equal(h.stage.stats().sessionWaits, 0);
    });

    it("a retransmitted pre-prepare carrying a session request this replica executed (its copy forgotten) goes on at once, and the primary's next pre-prepare is not held behind it", () => {
      const h = harness(poolOf());
      const primary = {};
      const executed = sessionRequest(0, 1);
      h.executedKeys.add(`${executed.client}:${executed.timestamp}`);
      const retransmitted = message(0, prePrepare(1, [executed]));
      const next = sessionRequest(0, 2);
      h.arrive(next);
      const following = message(0, prePrepare(2, [next]));
      h.stage.submit(primary, retransmitted, 100);
      h.stage.submit(primary, following, 100);
      assert.deepEqual(h.delivered, [retransmitted, following], "neither waits for a copy that never comes again");
      assert.equal(h.stage.stats().sessionWaits, 0);
    });

    it("a pre-prepare whose session requests were all received goes on at once", () => {
      const h = harness(poolOf());
      const request = sessionRequest(0);
      h.arrive(request);
      const input = message(0, prePrepare(1, [request, sessionRequest(0, 1)]));
      h.stage.submit({}, input, 500);
      assert.deepEqual(h.delivered, [input]);
      assert.equal(h.stage.stats().sessionWaits, 0);
    });

    it("a copy with other bytes under the same client and nonce does not count as received", () => {
      const h = harness(poolOf());
      const proposed = sessionRequest(0, 1);
      const other = requestFromTransaction(sessionTransaction({ clientKey: clients[0]!.publicKey, nonce: 1, operation: { type: "noop" } }));
      h.sessions.record(other);
      h.stage.submit({}, message(0, prePrepare(1, [proposed])), 500);
      assert.deepEqual(h.delivered, [], "the pre-prepare's request is not the one recorded");
    });

    it("a waiting pre-prepare goes on once sessionWaitMs passed, not before, and the expiry is counted", () => {
      const h = harness(poolOf());
      const startMs = h.clockMs;
      const input = message(0, prePrepare(1, [sessionRequest(1)]));
      h.stage.submit({}, input, 500);
      h.stage.expire(startMs + WAIT_MS - 1);
      assert.deepEqual(h.delivered, [], "still within sessionWaitMs");
      assert.equal(h.stage.stats().sessionWaitsExpired, 0);
      h.stage.expire(startMs + WAIT_MS);
      assert.deepEqual(h.delivered, [input], "released for the core to judge (and refuse)");
      assert.equal(h.stage.stats().sessionWaitsExpired, 1);
      assert.equal(h.stage.stats().sessionWaits, 0);
      assert.equal(h.stage.stats().waiting.replica.inputs, 0);
    });

    it("expire() without an argument reads the stage's clock", () => {
      const h = harness(poolOf());
      const input = message(0, prePrepare(1, [sessionRequest(1)]));
      h.stage.submit({}, input, 500);
      h.clockMs += WAIT_MS - 1;
      h.stage.expire();
      assert.deepEqual(h.delivered, []);
      h.clockMs += 1;
      h.stage.expire();
      assert.deepEqual(h.delivered, [input]);
    });

    it("expiry ends only the waits old enough: a later one keeps waiting", () => {
      const h = harness(poolOf());
      const old = message(0, prePrepare(1, [sessionRequest(1)]));
      h.stage.submit({ name: "primary" }, old, 500);
      h.clockMs += 600;
      const recent = message(0, prePrepare(1, [sessionRequest(2)]));
      h.stage.submit({ name: "another connection" }, recent, 500);
      h.stage.expire(h.clockMs + 400);
      assert.deepEqual(h.delivered, [old]);
      assert.equal(h.stage.stats().sessionWaits, 1);
      h.stage.expire(h.clockMs + WAIT_MS);
      assert.deepEqual(h.delivered, [old, recent]);
      assert.equal(h.stage.stats().sessionWaitsExpired, 2);
    });

    it("a pre-prepare waiting for two session requests goes on only when both arrived", () => {
      const h = harness(poolOf());
      const first = sessionRequest(1);
      const second = sessionRequest(2);
      const input = message(0, prePrepare(1, [first, second]));
      h.stage.submit({}, input, 500);
      assert.equal(h.stage.stats().sessionWaits, 2);
      h.arrive(second);
      assert.deepEqual(h.delivered, []);
      h.arrive(first);
      assert.deepEqual(h.delivered, [input]);
    });

    it("two pre-prepares waiting for the same request both go on when it arrives", () => {
      const h = harness(poolOf());
      const request = sessionRequest(1);
      const original = message(0, prePrepare(1, [request]));
      const retransmitted = message(0, prePrepare(1, [request]));
      h.stage.submit({}, original, 500);
      h.stage.submit({}, retransmitted, 500);
      assert.equal(h.stage.stats().sessionWaits, 1, "one wait per request");
      h.arrive(request);
      assert.deepEqual(h.delivered, [original, retransmitted]);
    });

    it("inputs of the same connection behind a waiting pre-prepare keep their order; other connections' inputs pass", () => {
      const h = harness(poolOf());
      const primary = { name: "primary" };
      const backup = { name: "backup 2" };
      const request = sessionRequest(1);
      const waiting = message(0, prePrepare(1, [request]));
      const behind: StagedInput = message(0, { type: "commit", view: 0, seq: 1, digest: "digest-1", replica: 0, signature: "c" });
      const nextPrePrepare = message(0, prePrepare(2, []));
      const fromBackup: StagedInput = message(2, { type: "prepare", view: 0, seq: 1, digest: "digest-1", replica: 2, signature: "p" });
      h.stage.submit(primary, waiting, 500);
      h.stage.submit(primary, behind, 100);
      h.stage.submit(primary, nextPrePrepare, 100);
      h.stage.submit(backup, fromBackup, 100);
      assert.deepEqual(h.delivered, [fromBackup], "only the other connection's input went on");
      assert.equal(h.stage.stats().waiting.replica.inputs, 3);
      h.arrive(request);
      assert.deepEqual(h.delivered, [fromBackup, waiting, behind, nextPrePrepare]);
      assert.deepEqual(h.sources.slice(1), [primary, primary, primary]);
      assert.equal(h.stage.stats().waiting.replica.inputs, 0);
    });

    it("inputs behind an expired wait go on with it, in order", () => {
      const h = harness(poolOf());
      const primary = {};
      const waiting = message(0, prePrepare(1, [sessionRequest(1)]));
      const behind = message(0, prePrepare(2, []));
      h.stage.submit(primary, waiting, 500);
      h.stage.submit(primary, behind, 100);
      h.stage.expire(h.clockMs + WAIT_MS);
      assert.deepEqual(h.delivered, [waiting, behind]);
    });

    it("a client's own session request never waits for sessions, recorded or not", () => {
      const h = harness(poolOf());
      const unrecorded = sessionRequest(3);
      const input: StagedInput = { type: "request", request: unrecorded };
      assert.equal(h.stage.submit({}, input, 200), true);
      assert.deepEqual(h.delivered, [input]);
      assert.equal(h.stage.stats().sessionWaits, 0);
    });

    it("a request relayed by a replica does not wait either", () => {
      const h = harness(poolOf());
      const input = message(1, { type: "request", request: sessionRequest(3) });
      h.stage.submit({}, input, 200);
      assert.deepEqual(h.delivered, [input]);
    });

    it("a commit certificate, a view change and a new view carrying unreceived session requests do not wait", () => {
      const h = harness(poolOf());
      const pp = prePrepare(1, [sessionRequest(4)]);
      const certificate = message(1, { type: "commit-certificate", prePrepare: pp, commits: [] });
      const vc: ViewChange = { type: "view-change", view: 1, stable: GENESIS_CHECKPOINT, prepared: [{ prePrepare: pp, prepares: [] }], replica: 2, signature: "vc" };
      const viewChange = message(2, vc);
      const newView = message(1, { type: "new-view", view: 1, viewChanges: [vc], prePrepares: [prePrepare(1, [sessionRequest(5)], 1)], replica: 1, signature: "nv" });
      const source = {};
      for (const input of [certificate, viewChange, newView]) h.stage.submit(source, input, 500);
      assert.deepEqual(h.delivered, [certificate, viewChange, newView]);
      assert.equal(h.stage.stats().sessionWaits, 0);
    });

    it("without a session table the stage never waits for session requests", () => {
      const h = harness(poolOf(), { sessions: false });
      const input = message(0, prePrepare(1, [sessionRequest(1)]));
      h.stage.submit({}, input, 500);
      assert.deepEqual(h.delivered, [input]);
    });

    it("a closed stage ignores arrivals and expiries", async () => {
      const h = harness(poolOf());
      const request = sessionRequest(1);
      h.stage.submit({}, message(0, prePrepare(1, [request])), 500);
      await h.stage.close();
      h.arrive(request);
      h.stage.expire(h.clockMs + WAIT_MS);
      assert.deepEqual(h.delivered, []);
      assert.equal(h.stage.stats().sessionWaits, 0);
    });
  });
}

describe("verification stage, session waits with signed requests in the same pre-prepare", () => {
  it("the pre-prepare goes on only once the signed requests' verdicts are in and its session request arrived, in either order", async () => {
    for (const order of ["session first", "verdicts first"] as const) {
      const pool = new ManualPool();
      const h = harness(pool);
      const session = sessionRequest(1);
      const input = message(0, prePrepare(1, [signedRequest(0), session]));
      h.stage.submit({}, input, 500);
      await settled();
      assert.equal(pool.batches.length, 1, `${order}: the signed request's signature went to the pool`);
      assert.equal(pool.batches[0]!.items.length, 1, `${order}: only the signed request has a signature to check`);
      if (order === "session first") {
        h.arrive(session);
        assert.deepEqual(h.delivered, [], `${order}: still waiting for the verdict`);
        await pool.answer(0);
      } else {
        await pool.answer(0);
        assert.deepEqual(h.delivered, [], `${order}: still waiting for the session request`);
        h.arrive(session);
      }
      assert.deepEqual(h.delivered, [input], order);
      assert.equal(h.stage.stats().waiting.replica.inputs, 0, order);
    }
  });

  it("the default wait is a second", () => {
    assert.equal(SESSION_WAIT_MS_DEFAULT, 1_000);
  });
});
