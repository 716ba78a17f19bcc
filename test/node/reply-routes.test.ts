// Where a replica routes a client's replies (src/node/reply-routes.ts): only a verified request
// moves a client's route, and only a newer one, or the same one once the connection holding the
// route is gone. Anyone can read a client's envelopes in the blocks and send them again, or sign
// anything with a key of their own; neither may take another client's replies.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { requestFromTransaction } from "../../src/app/request.js";
import { signTransaction } from "../../src/app/transaction.js";
import type { ClientRequest } from "../../src/consensus/pbft/types.js";
import { ed25519KeyPairFromSeed } from "../../src/crypto/ed25519.js";
import { ReplicaCrypto } from "../../src/node/replica-crypto.js";
import { ReplyRoutes } from "../../src/node/reply-routes.js";
import { testCluster } from "../ledger/fixtures.js";

const cluster = testCluster(4);
const crypto = new ReplicaCrypto(cluster.config, cluster.keys[0]!.privateKey);
const alice = ed25519KeyPairFromSeed(new Uint8Array(32).fill(7));
const mallory = ed25519KeyPairFromSeed(new Uint8Array(32).fill(9));

function signed(nonce: number): ClientRequest {
  return requestFromTransaction(signTransaction(alice.privateKey, { clientKey: alice.publicKey, nonce, operation: { type: "put", key: new Uint8Array([1]), value: new Uint8Array([nonce]) } }));
}

/** A request in Alice's name with a signature that is not hers over it: Mallory's, over the same body. */
function forged(nonce: number): ClientRequest {
  const body = { clientKey: mallory.publicKey, nonce, operation: { type: "put" as const, key: new Uint8Array([1]), value: new Uint8Array([nonce]) } };
  return requestFromTransaction({ ...signTransaction(mallory.privateKey, body), clientKey: alice.publicKey });
}

class FakeConnection {
  open = true;
  constructor(readonly name: string) {}
}

function routes(perConnectionMax = 16) {
  const counts = new Map<string, number>();
  const table = new ReplyRoutes<FakeConnection>({
    verify: (request) => crypto.verifyRequest(request),
    isOpen: (connection) => connection.open,
    perConnectionMax,
    count: (name) => counts.set(name, (counts.get(name) ?? 0) + 1),
  });
  return { table, counts };
}

describe("reply routes", () => {
  it("a verified request routes its client's replies to the connection it came from", () => {
    const { table } = routes();
    const own = new FakeConnection("alice");
    assert.equal(table.offer(signed(1), own), true);
    assert.equal(table.connectionOf(signed(1).client), own);
  });

  it("a forged request neither sets a route nor moves one", () => {
    const { table } = routes();
    const own = new FakeConnection("alice");
    const attacker = new FakeConnection("mallory");
    assert.equal(table.offer(forged(1), attacker), false);
    assert.equal(table.size, 0);
    table.offer(signed(1), own);
    assert.equal(table.offer(forged(2), attacker), false, "a newer nonce does not help a forgery");
    assert.equal(table.connectionOf(signed(1).client), own);
  });

  it("a replayed older envelope does not move the route", () => {
    const { table, counts } = routes();
    const own = new FakeConnection("alice");
    const attacker = new FakeConnection("mallory");
    table.offer(signed(1), own);
    table.offer(signed(2), own);
    assert.equal(table.offer(signed(1), attacker), false);
    assert.equal(table.connectionOf(signed(1).client), own);
    assert.equal(counts.get("routes-stale"), 1);
  });

  it("the same request offered on another connection moves the route, even while the first is open: a client that reconnected or retried through another gateway gets its reply", () => {
    const { table } = routes();
    const before = new FakeConnection("alice, first connection (the replica has not seen it die)");
    const after = new FakeConnection("alice, after reconnecting");
    table.offer(signed(5), before);
    assert.equal(table.offer(signed(5), after), true);
    assert.equal(table.connectionOf(signed(5).client), after);
    assert.equal(table.offer(signed(5), before), true, "and back again");
    assert.equal(table.connectionOf(signed(5).client), before);
  });

  it("a newer verified request moves the route to its connection", () => {
    const { table } = routes();
    const first = new FakeConnection("alice, gateway 1");
    const second = new FakeConnection("alice, gateway 2");
    table.offer(signed(1), first);
    assert.equal(table.offer(signed(2), second), true);
    assert.equal(table.connectionOf(signed(2).client), second);
    table.forget(first);
    assert.equal(table.connectionOf(signed(2).client), second, "closing the old connection leaves the moved route alone");
    table.forget(second);
    assert.equal(table.size, 0);
  });

  it("a connection holds routes for at most perConnectionMax clients", () => {
    const { table, counts } = routes(1);
    const gateway = new FakeConnection("gateway");
    table.offer(signed(1), gateway);
    const bob = ed25519KeyPairFromSeed(new Uint8Array(32).fill(11));
    const bobs = requestFromTransaction(signTransaction(bob.privateKey, { clientKey: bob.publicKey, nonce: 1, operation: { type: "get", key: new Uint8Array([1]) } }));
    assert.equal(table.offer(bobs, gateway), false);
    assert.equal(counts.get("routes-full"), 1);
  });
});
