import { test } from "node:test";
import assert from "node:assert/strict";

import { admitRequest, requestFromEnvelope, requestFromTransaction, verifyRequest } from "../../src/app/request.js";
import { TRANSACTION_BYTES_MAX, decodeTransaction, signTransaction } from "../../src/app/transaction.js";
import type { ClientRequest } from "../../src/consensus/pbft/types.js";
import { bytes, keyOf, signed } from "./ledger-fixtures.js";

const ALICE = keyOf("alice");
const BOB = keyOf("bob");

function sample(): ClientRequest {
  return signed(ALICE, 7, { type: "put", key: bytes("color"), value: bytes("blue") });
}

test("a request carries the envelope and repeats its key, nonce and signature in hex", () => {
  const transaction = signTransaction(ALICE.privateKey, { clientKey: ALICE.publicKey, nonce: 7, operation: { type: "get", key: bytes("k") } });
  const request = requestFromTransaction(transaction);
  assert.equal(request.client, Buffer.from(ALICE.publicKey).toString("hex"));
  assert.equal(request.timestamp, 7);
  assert.equal(request.signature, Buffer.from(transaction.signature).toString("hex"));
  assert.deepEqual(decodeTransaction(request.operation), transaction);
  assert.equal(verifyRequest(request), true);
});

test("verifyRequest refuses a request whose fields do not match its envelope", () => {
  const request = sample();
  const other = signed(BOB, 7, { type: "put", key: bytes("color"), value: bytes("blue") });
  const mismatched: ClientRequest[] = [
    { ...request, client: other.client },
    { ...request, client: request.client.toUpperCase() },
    { ...request, timestamp: 8 },
    { ...request, signature: other.signature },
    { ...request, signature: request.signature.toUpperCase() },
  ];
  for (const candidate of mismatched) {
    assert.equal(verifyRequest(candidate), false);
    assert.deepEqual(admitRequest(candidate), { ok: false, error: "malformed" });
  }
});

test("verifyRequest refuses a forged signature and anything that is not an envelope, without throwing", () => {
  const request = sample();
  const tampered = request.operation.slice();
  tampered[tampered.length - 1]! ^= 1;
  const tamperedSignature = Buffer.from(tampered.subarray(tampered.length - 64)).toString("hex");
  assert.equal(verifyRequest({ ...request, operation: tampered, signature: tamperedSignature }), false);
  assert.deepEqual(admitRequest({ ...request, operation: tampered, signature: tamperedSignature }), { ok: false, error: "bad-signature" });
  assert.equal(verifyRequest({ ...request, operation: new Uint8Array(10) }), false);
  assert.equal(verifyRequest(null as unknown as ClientRequest), false);
  assert.equal(verifyRequest({ ...request, operation: "bytes" as unknown as Uint8Array }), false);
});

test("admission names what is wrong: oversized, unknown-op, malformed", () => {
  const request = sample();
  assert.deepEqual(admitRequest({ ...request, operation: new Uint8Array(TRANSACTION_BYTES_MAX + 1) }), { ok: false, error: "oversized" });
  const unknownTag = request.operation.slice();
  unknownTag[41] = 99;
  assert.deepEqual(admitRequest({ ...request, operation: unknownTag }), { ok: false, error: "unknown-op" });
  assert.deepEqual(admitRequest({ ...request, operation: request.operation.subarray(0, 50) }), { ok: false, error: "malformed" });
  assert.equal(admitRequest(request).ok, true);
});

test("skipping signature verification still checks form and binding", () => {
  const request = sample();
  const tampered = request.operation.slice();
  tampered[tampered.length - 1]! ^= 1;
  const signature = Buffer.from(tampered.subarray(tampered.length - 64)).toString("hex");
  assert.equal(admitRequest({ ...request, operation: tampered, signature }, { verifySignature: false }).ok, true);
  assert.deepEqual(admitRequest({ ...request, timestamp: 1 }, { verifySignature: false }), { ok: false, error: "malformed" });
});

test("a block's transaction bytes give back their request, and undecodable bytes a placeholder", () => {
  const request = sample();
  assert.deepEqual(requestFromEnvelope(request.operation), request);
  const junk = Uint8Array.of(1, 2, 3);
  assert.deepEqual(requestFromEnvelope(junk), { client: "", timestamp: 0, operation: junk, signature: "" });
  assert.deepEqual(admitRequest(requestFromEnvelope(junk)), { ok: false, error: "malformed" });
});
