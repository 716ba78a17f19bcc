import { test } from "node:test";
import assert from "node:assert/strict";

import { SimKeyring } from "../../src/sim/crypto.js";
import { Random } from "../../src/sim/random.js";

function keyring(): SimKeyring {
  const ring = new SimKeyring(new Random(1), 4);
  ring.addClient("c0");
  return ring;
}

test("a replica's signature verifies as that replica and no other", () => {
  const ring = keyring();
  const signature = ring.cryptoFor(2).sign("prepare|0|1|d|2");
  const verifier = ring.cryptoFor(0);
  assert.ok(verifier.verify(2, "prepare|0|1|d|2", signature));
  assert.ok(!verifier.verify(1, "prepare|0|1|d|2", signature));
  assert.ok(!verifier.verify(2, "prepare|0|1|e|2", signature));
  assert.ok(!verifier.verify(9, "prepare|0|1|d|2", signature));
});

test("client requests verify only unchanged and under the client's key", () => {
  const ring = keyring();
  const request = ring.signRequest("c0", 1, Uint8Array.of(1, 2, 3));
  const crypto = ring.cryptoFor(0);
  assert.ok(crypto.verifyRequest(request));
  assert.ok(!crypto.verifyRequest({ ...request, timestamp: 2 }));
  assert.ok(!crypto.verifyRequest({ ...request, operation: Uint8Array.of(1, 2, 4) }));
  assert.ok(!crypto.verifyRequest({ ...request, client: "c1" }));
  // A Byzantine replica signing a request with its own key does not produce a client signature.
  assert.ok(!crypto.verifyRequest({ ...request, operation: Uint8Array.of(9), signature: crypto.sign("c0|1|09") }));
});

test("batch digests depend on content and order, and the null batch has its own digest", () => {
  const ring = keyring();
  const crypto = ring.cryptoFor(0);
  const first = ring.signRequest("c0", 1, Uint8Array.of(1));
  const second = ring.signRequest("c0", 2, Uint8Array.of(2));
  assert.equal(crypto.batchDigest([first, second]), crypto.batchDigest([first, second]));
  assert.notEqual(crypto.batchDigest([first, second]), crypto.batchDigest([second, first]));
  assert.notEqual(crypto.batchDigest([first]), crypto.batchDigest([]));
});
