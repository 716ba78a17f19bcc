// The client against fake replicas over the real transport: each fake is a Listener with the
// replicas' real handshake, and all of them share one fake ledger that orders whatever any
// non-crashed fake receives, with the exactly-once rule of app/executor.ts (a duplicate of the last
// executed envelope is answered from the cache, an out-of-turn nonce is refused with stale-nonce
// or nonce-gap). What each fake replies (and when) is under the test's control, so the tests can
// play out the PBFT client rules: f + 1 matching replies, Byzantine answers, a silent primary.

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { bytesToHex } from "../../src/app/bytes.js";
import { encodeResult, type TransactionResult } from "../../src/app/result.js";
import { TRANSACTION_VALUE_BYTES_MAX, type Transaction, decodeTransaction, encodeTransaction, sessionTransaction, signTransaction } from "../../src/app/transaction.js";
import { BulwarkClient } from "../../src/client/client.js";
import { ClientClosedError, NonceError, RejectedError, RequestAbortedError, TimeoutError, TooFewReplicasError } from "../../src/client/errors.js";
import { ReplyTally, decodeReplyResult } from "../../src/client/reply-tally.js";
import type { ClientOptions } from "../../src/client/types.js";
import { ViewEstimate } from "../../src/client/view-estimate.js";
import type { Ed25519KeyPair } from "../../src/crypto/ed25519.js";
import type { ClusterConfig } from "../../src/ledger/cluster.js";
import { parseClusterConfig } from "../../src/ledger/cluster-json.js";
import type { Connection } from "../../src/net/connection.js";
import { Listener } from "../../src/net/listener.js";
import { replicaListenerHandshake } from "../../src/node/handshake.js";
import { decodeWireFrame, encodeWireFrame } from "../../src/node/wire.js";
import type { PeerSession, WireFrame } from "../../src/node/wire-types.js";
import { Random } from "../../src/sim/random.js";
import { clusterJson, keyPair } from "../ledger/fixtures.js";

const HOST = "127.0.0.1";
const FAST = { requestTimeoutMs: 5_000, deadlineMs: 5_000 } as const;

type Reply = Extract<WireFrame, { kind: "client-reply" }>;

const ok = (result: TransactionResult): Uint8Array => encodeResult(result);
const DONE = ok({ ok: true, kind: "done" });

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(2);
  }
}

/** Whether `promise` has settled within the current turns of the event loop. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await sleep(5);
  return done;
}

// ---------------------------------------------------------------------------------------------
// The fake ledger: sequential nonces and the exactly-once rule, a key-value store and balances.

interface Account {
  next: number;
  last?: { readonly nonce: number; readonly signature: string; readonly result: Uint8Array };
}

type Ordering = { readonly kind: "ordered"; readonly result: Uint8Array; readonly height: number } | { readonly kind: "cached"; readonly result: Uint8Array } | { readonly kind: "dropped" };

class FakeLedger {
  readonly executed: Transaction[] = [];
  private readonly accounts = new Map<string, Account>();
  private readonly kv = new Map<string, Uint8Array>();
  private readonly balances = new Map<string, bigint>();
  private height = 0;

  /** Moves an account's next nonce as if another process had used it (the client's requests were admitted before). */
  advance(key: Uint8Array, next: number): void {
    this.accounts.set(bytesToHex(key), { next });
  }

  credit(key: Uint8Array, amount: bigint): void {
    this.balances.set(bytesToHex(key), (this.balances.get(bytesToHex(key)) ?? 0n) + amount);
  }

  order(transaction: Transaction): Ordering {
    const key = bytesToHex(transaction.clientKey);
    const account = this.accounts.get(key) ?? { next: 1 };
    const last = account.last;
    if (last !== undefined && transaction.nonce <= last.nonce) {
      // The core answers a retransmission of the last request from its cache and drops anything older.
      return transaction.nonce === last.nonce && last.signature === bytesToHex(transaction.signature) ? { kind: "cached", result: last.result } : { kind: "dropped" };
    }
    this.height += 1;
    if (transaction.nonce !== account.next) {
      const error = transaction.nonce < account.next ? "stale-nonce" : "nonce-gap";
      return { kind: "ordered", result: ok({ ok: false, error, nextNonce: account.next }), height: this.height };
    }
    const result = this.apply(transaction);
    this.accounts.set(key, { next: account.next + 1, last: { nonce: transaction.nonce, signature: bytesToHex(transaction.signature), result } });
    this.executed.push(transaction);
    return { kind: "ordered", result, height: this.height };
  }

  /** The executed operations of `key`, as "type@nonce". */
  history(key: Uint8Array): string[] {
    return this.executed.filter((tx) => bytesToHex(tx.clientKey) === bytesToHex(key)).map((tx) => `${tx.operation.type}@${tx.nonce}`);
  }

  private apply(transaction: Transaction): Uint8Array {
    const operation = transaction.operation;
    const from = bytesToHex(transaction.clientKey);
    switch (operation.type) {
      case "put":
        this.kv.set(bytesToHex(operation.key), operation.value);
        return DONE;
      case "get": {
        const value = this.kv.get(bytesToHex(operation.key));
        return ok(value === undefined ? { ok: true, kind: "absent" } : { ok: true, kind: "value", value });
      }
      case "delete":
        return ok({ ok: true, kind: "flag", flag: this.kv.delete(bytesToHex(operation.key)) });
      case "cas": {
        const current = this.kv.get(bytesToHex(operation.key));
        const matches = operation.expected === null ? current === undefined : current !== undefined && bytesToHex(current) === bytesToHex(operation.expected);
        if (matches) this.kv.set(bytesToHex(operation.key), operation.value);
        return ok({ ok: true, kind: "flag", flag: matches });
      }
      case "mint":
        this.credit(operation.to, operation.amount);
        return DONE;
      case "transfer": {
        const balance = this.balances.get(from) ?? 0n;
        if (balance < operation.amount) return ok({ ok: false, error: "insufficient-balance" });
        this.balances.set(from, balance - operation.amount);
        this.credit(operation.to, operation.amount);
        return DONE;
      }
      case "balance":
        return ok({ ok: true, kind: "amount", amount: this.balances.get(bytesToHex(operation.account)) ?? 0n });
      case "noop":
        return DONE;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Fake replicas

/** What a fake replica sends for one ordering; by default one honest reply. */
type Answer = (honest: Reply, transaction: Transaction) => readonly Reply[];

class FakeReplica {
  /** Requests this replica received, in order. */
  readonly received: Transaction[] = [];
  /** A crashed replica accepts connections but neither orders nor answers anything. */
  crashed = false;
  /** Replies are kept until `release()`. */
  holding = false;
  answer: Answer | undefined;
  view = 0;
  private readonly held: (() => void)[] = [];

  constructor(
    readonly id: number,
    readonly listener: Listener<PeerSession>,
  ) {}

  receivedNonces(): number[] {
    return this.received.map((tx) => tx.nonce);
  }

  /** As the runtime does, replies go to the connection that last sent a request of their client key. */
  readonly routes = new Map<string, Connection<PeerSession>>();

  reply(honest: Reply, transaction: Transaction): void {
    if (this.crashed) return;
    const replies = this.answer?.(honest, transaction) ?? [honest];
    const send = (): void => {
      for (const reply of replies) this.routes.get(bytesToHex(reply.client))?.send(encodeWireFrame(reply));
    };
    if (this.holding) this.held.push(send);
    else send();
  }

  release(): void {
    this.holding = false;
    for (const send of this.held.splice(0)) send();
  }
}

class FakeCluster {
  readonly ledger = new FakeLedger();
  readonly replicas: FakeReplica[] = [];
  /** Return false to make a replica ignore a request (as a primary that dropped it for a later one). */
  accept: (replica: number, transaction: Transaction) => boolean = () => true;
  config!: ClusterConfig;
  keys!: readonly Ed25519KeyPair[];

  static async start(n: number): Promise<FakeCluster> {
    const cluster = new FakeCluster();
    const { json, keys } = clusterJson(n, 11);
    cluster.keys = keys;
    const ports: number[] = [];
    for (let id = 0; id < n; id++) {
      // The handshake needs the config, which needs the ports: build it per connection, lazily.
      const listener = new Listener<PeerSession>(
        { host: HOST, port: 0, handshake: (role) => replicaListenerHandshake({ cluster: cluster.config, id, privateKey: keys[id]!.privateKey })(role) },
        { onFrame: (connection, payload) => cluster.onFrame(id, connection, payload) },
      );
      cluster.replicas.push(new FakeReplica(id, listener));
      ports.push((await listener.listen()).port);
    }
    const replicas = json["replicas"] as { address: string }[];
    replicas.forEach((replica, id) => (replica.address = `${HOST}:${ports[id]}`));
    cluster.config = parseClusterConfig(json);
    return cluster;
  }

  replica(id: number): FakeReplica {
    return this.replicas[id]!;
  }

  /** Closes the listeners, then fails if the client sent anything a replica could not read. */
  async close(): Promise<void> {
    await Promise.all(this.replicas.map((replica) => replica.listener.close()));
    assert.deepEqual(this.violations, [], "every frame the client sent was a decodable client request");
  }

  // A throw here would only close the connection (the transport catches handler errors), and the
  // client would reconnect: so what is wrong is recorded and asserted in `close`.
  private readonly violations: string[] = [];

  private onFrame(id: number, connection: Connection<PeerSession>, payload: Uint8Array): void {
    let transaction: Transaction;
    try {
      const frame = decodeWireFrame(payload);
      if (frame.kind !== "client-request") throw new Error(`a ${frame.kind} frame`);
      transaction = decodeTransaction(frame.transaction);
    } catch (error) {
      this.violations.push(`replica ${id}: ${String(error)}`);
      return;
    }
    const receiver = this.replica(id);
    receiver.received.push(transaction);
    receiver.routes.set(bytesToHex(transaction.clientKey), connection);
    if (receiver.crashed || !this.accept(id, transaction)) return;
    const ordering = this.ledger.order(transaction);
    if (ordering.kind === "dropped") return;
    const replyOf = (replica: FakeReplica, height: number): Reply => ({
      kind: "client-reply",
      replica: replica.id,
      view: replica.view,
      height,
      client: transaction.clientKey,
      nonce: transaction.nonce,
      result: ordering.result,
    });
    // An ordered request executes everywhere and every replica answers; a retransmission of the
    // last one is answered from the receiver's cache only (height 0: it does not know the block).
    if (ordering.kind === "cached") receiver.reply(replyOf(receiver, 0), transaction);
    else for (const replica of this.replicas) replica.reply(replyOf(replica, ordering.height), transaction);
  }
}

const random = new Random(2024);
const clientKeys = Array.from({ length: 40 }, () => keyPair(random));
let nextKey = 0;

/** A client of a fresh key, connected to every replica of `cluster`. */
async function connectClient(cluster: FakeCluster, options: Partial<ClientOptions> = {}): Promise<BulwarkClient> {
  const key = clientKeys[nextKey++]!;
  const client = await BulwarkClient.connect({
    cluster: cluster.config,
    privateKey: key.privateKey,
    ...FAST,
    transport: { backoff: { initialMs: 5, maxMs: 20 }, random: () => random.float() },
    ...options,
  });
  await waitFor(() => client.connectedReplicas === cluster.replicas.length, "every link to open");
  return client;
}

function putOf(key: string): { type: "put"; key: Uint8Array; value: Uint8Array } {
  return { type: "put", key: new TextEncoder().encode(key), value: new TextEncoder().encode(`value of ${key}`) };
}

// ---------------------------------------------------------------------------------------------

describe("the client accepts a result on f + 1 matching replies", () => {
  it("accepts once f + 1 distinct replicas answered the same result, reporting who and the block height", async () => {
    const cluster = await FakeCluster.start(4);
    after(() => cluster.close());
    cluster.replica(2).crashed = true;
    cluster.replica(3).crashed = true;
    const client = await connectClient(cluster);
    // Replies wait until both replicas hold the request, so each has a route for its executed reply.
    for (const replica of cluster.replicas) replica.holding = true;
    const submitted = client.submit(putOf("a"));
    await waitFor(() => cluster.replica(0).received.length > 0 && cluster.replica(1).received.length > 0, "both replicas to receive the request");
    for (const replica of cluster.replicas) replica.release();
    assert.deepEqual(await submitted, { result: { ok: true, kind: "done" }, height: 1, nonce: 1, replicas: [0, 1] });
    await client.close();
  });

  it("reports the block height only when f + 1 of the agreeing replies name it: one faulty replica cannot set it", () => {
    const tally = new ReplyTally(4, 2);
    const done = encodeResult({ ok: true, kind: "done" });
    assert.equal(tally.record(3, done, { ok: true, kind: "done" }, Number.MAX_SAFE_INTEGER), undefined);
    assert.equal(tally.record(0, done, { ok: true, kind: "done" }, 7)?.height, 0, "a liar's height and a correct one disagree: unknown");
    const agreeing = new ReplyTally(4, 2);
    agreeing.record(3, done, { ok: true, kind: "done" }, 7);
    assert.equal(agreeing.record(0, done, { ok: true, kind: "done" }, 7)?.height, 7);
  });

  it("drops a reply whose value is longer than any transaction can store", () => {
    const huge = encodeResult({ ok: true, kind: "value", value: new Uint8Array(TRANSACTION_VALUE_BYTES_MAX + 1) });
    assert.equal(decodeReplyResult(huge), undefined);
    assert.deepEqual(decodeReplyResult(encodeResult({ ok: true, kind: "value", value: new Uint8Array(3) })), { ok: true, kind: "value", value: new Uint8Array(3) });
  });

  it("does not accept f matching results beside disagreeing ones, until the (f + 1)th matching one arrives", async () => {
    const cluster = await FakeCluster.start(7); // f = 2: three matching replies are needed
    after(() => cluster.close());
    const wrong = ok({ ok: true, kind: "amount", amount: 999n });
    for (const id of [2, 3]) cluster.replica(id).answer = (honest) => [{ ...honest, result: wrong }];
    cluster.replica(4).holding = true;
    cluster.replica(5).crashed = true;
    cluster.replica(6).crashed = true;
    const client = await connectClient(cluster);
    const submitted = client.submit(putOf("b"));
    await waitFor(() => client.counters.repliesReceived >= 4, "two matching and two disagreeing replies");
    assert.equal(await settled(submitted), false, "two matching replies are not f + 1 = 3");
    cluster.replica(4).release();
    const committed = await submitted;
    assert.deepEqual(committed.result, { ok: true, kind: "done" });
    assert.deepEqual(committed.replicas, [0, 1, 4]);
    await client.close();
  });

  it("a Byzantine replica cannot make the client accept its wrong result, even by replying in another replica's name", async () => {
    const cluster = await FakeCluster.start(4);
    after(() => cluster.close());
    const wrong = ok({ ok: true, kind: "value", value: new TextEncoder().encode("forged") });
    // Replica 3 lies, twice as itself and once claiming to be replica 2.
    cluster.replica(3).answer = (honest) => [{ ...honest, result: wrong }, { ...honest, result: wrong }, { ...honest, replica: 2, result: wrong }];
    for (const id of [0, 1, 2]) cluster.replica(id).holding = true;
    const client = await connectClient(cluster);
    const submitted = client.submit({ type: "get", key: new TextEncoder().encode("k") });
    await waitFor(() => client.counters.repliesMisattributed >= 1, "the forged reply");
    assert.equal(await settled(submitted), false, "one liar is not f + 1");
    cluster.replica(0).release();
    cluster.replica(1).release();
    const committed = await submitted;
    assert.deepEqual(committed.result, { ok: true, kind: "absent" });
    assert.deepEqual(committed.replicas, [0, 1]);
    await client.close();
  });

  it("a replica's real result is not replaced by a later stale-nonce for the same request", () => {
    const tally = new ReplyTally(4, 2);
    const stale = ok({ ok: false, error: "stale-nonce", nextNonce: 9 });
    const gap = ok({ ok: false, error: "nonce-gap", nextNonce: 2 });
    assert.equal(tally.record(0, gap, { ok: false, error: "nonce-gap", nextNonce: 2 }, 3), undefined);
    assert.equal(tally.record(0, DONE, { ok: true, kind: "done" }, 5), undefined, "a nonce error is replaced by the later reply");
    assert.equal(tally.record(0, stale, { ok: false, error: "stale-nonce", nextNonce: 9 }, 8), undefined);
    assert.equal(tally.record(1, stale, { ok: false, error: "stale-nonce", nextNonce: 9 }, 8), undefined, "replica 0 still counts as done");
    assert.deepEqual(tally.record(2, DONE, { ok: true, kind: "done" }, 0)?.replicas, [0, 2]);
  });
});

describe("the client sends to the primary and re-broadcasts on a timeout", () => {
  it("when the primary is silent, the request times out, goes to every replica and commits through the others", async () => {
    const cluster = await FakeCluster.start(4);
    after(() => cluster.close());
    cluster.replica(0).crashed = true;
    const client = await connectClient(cluster, { requestTimeoutMs: 40 });
    // The first request also goes to every replica whose connection has not carried one (they
    // route replies by connection); from then on requests go to the primary alone.
    await client.submit(putOf("first"));
    const startedMs = Date.now();
    const committed = await client.submit(putOf("second"));
    assert.ok(Date.now() - startedMs >= 35, `committed after ${Date.now() - startedMs} ms, before the attempt timeout`);
    assert.equal(committed.nonce, 2);
    assert.deepEqual(committed.replicas.includes(0), false);
    assert.ok(client.counters.rebroadcasts >= 1);
    assert.deepEqual(cluster.replica(0).receivedNonces().filter((nonce) => nonce === 2).length >= 1, true);
    for (const id of [1, 2, 3]) assert.ok(cluster.replica(id).receivedNonces().includes(2), `replica ${id} got the re-broadcast`);
    await client.close();
  });

  it("follows the view the replicas report, but not a view only f replicas claim", () => {
    const view = new ViewEstimate(4, 1);
    view.record(3, 7); // one replica, possibly faulty
    assert.equal(view.primary, 0);
    view.record(1, 5);
    assert.equal(view.view, 5);
    assert.equal(view.primary, 1);
  });

  it("sends a session envelope of its own key to every replica at once: each replica authenticates only its own copy", async () => {
    const cluster = await FakeCluster.start(4);
    after(() => cluster.close());
    const client = await connectClient(cluster, { requestTimeoutMs: 5_000 });
    await client.submit(putOf("first")); // routes every connection; later signed requests go to the primary alone
    const envelope = encodeTransaction(sessionTransaction({ clientKey: client.publicKey, nonce: 2, operation: putOf("session") }));
    const committed = await client.submitEnvelope(envelope);
    assert.equal(committed.nonce, 2);
    assert.equal(client.counters.rebroadcasts, 0, "no attempt timed out");
    for (const id of [0, 1, 2, 3]) assert.ok(cluster.replica(id).receivedNonces().includes(2), `replica ${id} got the session envelope on the first attempt`);
    await client.close();
  });

  it("sends later requests to the primary of the view learned from replies", async () => {
    const cluster = await FakeCluster.start(4);
    after(() => cluster.close());
    for (const replica of cluster.replicas) replica.view = 1;
    const client = await connectClient(cluster);
    await client.submit(putOf("learn"));
    await client.submit(putOf("to primary 1"));
    assert.ok(cluster.replica(1).receivedNonces().includes(2));
    assert.equal(cluster.replica(0).receivedNonces().includes(2), false, "replica 0 is no longer the primary");
    await client.close();
  });
});

describe("nonces", () => {
  it("sends a key's requests one at a time, in nonce order, each only after the previous one settled", async () => {
    const cluster = await FakeCluster.start(4);
    after(() => cluster.close());
    const client = await connectClient(cluster);
    for (const replica of cluster.replicas) replica.holding = true;
    const calls = [client.submit(putOf("p1")), client.submit(putOf("p2")), client.submit(putOf("p3"))];
    await waitFor(() => cluster.ledger.executed.length === 1, "the first request");
    await sleep(20);
    assert.equal(client.inFlight, 1, "one request of the key in flight");
    assert.deepEqual([...new Set(cluster.replicas.flatMap((replica) => replica.receivedNonces()))], [1], "nonce 2 waits until nonce 1 settled");
    for (const replica of cluster.replicas) replica.release();
    const committed = await Promise.all(calls);
    assert.deepEqual(committed.map((c) => c.nonce), [1, 2, 3]);
    assert.deepEqual(cluster.ledger.history(client.publicKey), ["put@1", "put@2", "put@3"], "each executed once, in turn");
    assert.equal(client.nonce, 4);
    await client.close();
  });

  it("a nonce-gap result fails the call with a NonceError naming the account's next nonce, and re-signs nothing", async () => {
    const cluster = await FakeCluster.start(4);
    after(() => cluster.close());
    const key = clientKeys[nextKey]!;
    const client = await connectClient(cluster, { firstNonce: 3 }); // the account's next nonce is 1
    await assert.rejects(client.submit(putOf("gap")), (error: unknown) => error instanceof NonceError && error.code === "nonce-gap" && error.nonce === 3 && error.nextNonce === 1 && /firstNonce 1/.test(error.message));
    assert.deepEqual(cluster.ledger.history(client.publicKey), [], "nothing executed");
    assert.equal(client.counters.resigned, 0);
    await client.close();
    const fixed = await connectClient(cluster, { privateKey: key.privateKey, firstNonce: 1 });
    assert.equal((await fixed.submit(putOf("in turn"))).nonce, 1);
    await fixed.close();
  });

  it("a stale-nonce result makes the client sign the operation again with the account's next nonce", async () => {
    const cluster = await FakeCluster.start(4);
    after(() => cluster.close());
    const client = await connectClient(cluster);
    cluster.ledger.advance(client.publicKey, 5); // another process used nonces 1 to 4
    const committed = await client.submit(putOf("stale"));
    assert.equal(committed.nonce, 5);
    assert.deepEqual(cluster.ledger.history(client.publicKey), ["put@5"]);
    assert.equal(client.counters.resigned, 1);
    assert.equal((await client.submit(putOf("next"))).nonce, 6);
    await client.close();
  });

  it("gives up with a NonceError when every new nonce turns out to be used already", async () => {
    const cluster = await FakeCluster.start(4);
    after(() => cluster.close());
    const client = await connectClient(cluster);
    // Another process always gets there first.
    cluster.accept = (_replica, tx) => {
      cluster.ledger.advance(tx.clientKey, tx.nonce + 1);
      return true;
    };
    await assert.rejects(client.submit(putOf("contended")), (error: unknown) => error instanceof NonceError && error.code === "stale-nonce");
    assert.deepEqual(cluster.ledger.history(client.publicKey), [], "nothing executed");
    await client.close();
  });

  it("runs requests of different keys side by side, and waits for a free slot beyond inFlightMax", async () => {
    const cluster = await FakeCluster.start(4);
    after(() => cluster.close());
    const client = await connectClient(cluster, { inFlightMax: 2 });
    const signers = [clientKeys[nextKey++]!, clientKeys[nextKey++]!, clientKeys[nextKey++]!];
    const envelopes = signers.map((signer) => encodeTransaction(signTransaction(signer.privateKey, { clientKey: signer.publicKey, nonce: 1, operation: putOf("slot") })));
    for (const replica of cluster.replicas) replica.holding = true;
    const calls = envelopes.map((envelope) => client.submitEnvelope(envelope));
    await waitFor(() => cluster.ledger.executed.length === 2, "the first two requests");
    await sleep(20);
    assert.equal(client.inFlight, 2);
    assert.equal(cluster.ledger.history(signers[2]!.publicKey).length, 0, "the third waits for a slot");
    for (const replica of cluster.replicas) replica.release();
    assert.deepEqual((await Promise.all(calls)).map((c) => c.nonce), [1, 1, 1]);
    assert.deepEqual(signers.map((signer) => cluster.ledger.history(signer.publicKey)), [["put@1"], ["put@1"], ["put@1"]]);
    await client.close();
  });
});

describe("failures", () => {
  it("rejects with a TimeoutError saying who answered what once the deadline passes", async () => {
    const cluster = await FakeCluster.start(4);
    after(() => cluster.close());
    for (const id of [0, 2, 3]) cluster.replica(id).crashed = true;
    const client = await connectClient(cluster, { requestTimeoutMs: 20, deadlineMs: 150 });
    await assert.rejects(client.submit(putOf("late")), (error: unknown) => {
      assert.ok(error instanceof TimeoutError);
      assert.equal(error.nonce, 1);
      assert.equal(error.matchesNeeded, 2);
      assert.deepEqual(error.replies, [{ result: "ok done", replicas: [1] }]);
      assert.match(error.message, /replica 1 answered "ok done"/);
      return true;
    });
    assert.equal(client.inFlight, 1, "the envelope stays in flight, so its nonce does not become a gap");
    await client.close();
  });

  it("rejects every pending call when the client is closed, and refuses new ones", async () => {
    const cluster = await FakeCluster.start(4);
    after(() => cluster.close());
    for (const replica of cluster.replicas) replica.crashed = true;
    const client = await connectClient(cluster);
    const calls = [client.submit(putOf("c1")), client.put("c2", "v")];
    await client.close();
    for (const call of calls) await assert.rejects(call, ClientClosedError);
    await assert.rejects(client.submit(putOf("c3")), ClientClosedError);
    assert.equal(client.inFlight, 0);
  });

  it("an AbortSignal stops the wait with RequestAbortedError", async () => {
    const cluster = await FakeCluster.start(4);
    after(() => cluster.close());
    for (const replica of cluster.replicas) replica.crashed = true;
    const client = await connectClient(cluster);
    const controller = new AbortController();
    const call = client.submit(putOf("aborted"), { signal: controller.signal });
    controller.abort(new Error("user pressed ^C"));
    await assert.rejects(call, (error: unknown) => error instanceof RequestAbortedError && (error.cause as Error).message === "user pressed ^C");
    await assert.rejects(client.submit(putOf("pre-aborted"), { signal: AbortSignal.abort() }), RequestAbortedError);
    await client.close();
  });

  it("connect fails with ClusterUnavailableError when fewer than f + 1 replicas can be reached", async () => {
    const cluster = await FakeCluster.start(4);
    for (const id of [1, 2, 3]) await cluster.replica(id).listener.close();
    after(() => cluster.close());
    await assert.rejects(
      BulwarkClient.connect({ cluster: cluster.config, privateKey: clientKeys[nextKey++]!.privateKey, deadlineMs: 150, transport: { backoff: { initialMs: 5, maxMs: 20 } } }),
      (error: unknown) => error instanceof TooFewReplicasError && error.connected === 1 && error.needed === 2,
    );
  });
});

describe("wrappers and pre-signed envelopes", () => {
  it("return the operation's value, and throw RejectedError for a failed transaction", async () => {
    const cluster = await FakeCluster.start(4);
    after(() => cluster.close());
    const client = await connectClient(cluster);
    await client.put("k", "v1");
    assert.equal(new TextDecoder().decode(await client.get("k")), "v1");
    assert.equal(await client.cas("k", "wrong", "v2"), false);
    assert.equal(await client.cas("k", "v1", "v2"), true);
    assert.equal(await client.delete("k"), true);
    assert.equal(await client.get("k"), undefined);
    cluster.ledger.credit(client.publicKey, 10n);
    const other = clientKeys[nextKey++]!.publicKey;
    await client.transfer(other, 4n);
    assert.equal(await client.balance(), 6n);
    assert.equal(await client.balance(other), 4n);
    await assert.rejects(client.transfer(other, 7n), (error: unknown) => error instanceof RejectedError && error.code === "insufficient-balance" && error.committed.nonce === 10);
    await client.close();
  });

  it("sends a pre-signed envelope of another key as it is, and returns its nonce errors as results", async () => {
    const cluster = await FakeCluster.start(4);
    after(() => cluster.close());
    const client = await connectClient(cluster);
    const signer = clientKeys[nextKey++]!;
    const envelope = (nonce: number): Uint8Array => encodeTransaction(signTransaction(signer.privateKey, { clientKey: signer.publicKey, nonce, operation: putOf("pre-signed") }));
    const gapped = await client.submitEnvelope(envelope(2));
    assert.deepEqual(gapped.result, { ok: false, error: "nonce-gap", nextNonce: 1 });
    const committed = await client.submitEnvelope(envelope(1));
    assert.equal(committed.nonce, 1);
    assert.deepEqual(cluster.ledger.history(signer.publicKey), ["put@1"]);
    await client.close();
  });
});
