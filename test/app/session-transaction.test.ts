// Session-authenticated transactions (issue 5, `--auth session`): format version 2 is version 1's
// layout without the signature, and nothing else. What must hold: every operation (the new noop
// included) round-trips in both versions; the decoder refuses a v2 envelope carrying a signature
// and a v1 envelope missing one, so no envelope has two readings; a session transaction never
// passes as signed; admission takes one only when told to (execution does, the core's check does
// not); the request's fields stay bound to the envelope's version; and the reply record keeps
// telling a session turn (signature "") from a signed one (its hex) after a round trip through the
// state tree's SESSION_MARK.

import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { createLedgerApplication } from "../../src/app/ledger-application.js";
import { SESSION_MARK, decodeReplyRecord, replyStateKey } from "../../src/app/ledger-state.js";
import { admitRequest, requestFromEnvelope, requestFromTransaction, verifyRequest } from "../../src/app/request.js";
import { decodeResult } from "../../src/app/result.js";
import {
  type Operation,
  SESSION_SIGNATURE,
  SESSION_TRANSACTION_FORMAT_VERSION,
  TRANSACTION_FORMAT_VERSION,
  type Transaction,
  type TransactionBody,
  TransactionDecodeError,
  decodeTransaction,
  encodeTransaction,
  isSessionTransaction,
  sessionTransaction,
  signTransaction,
  transactionId,
  verifyTransaction,
} from "../../src/app/transaction.js";
import type { ClientRequest } from "../../src/consensus/pbft/types.js";
import { ED25519_SIGNATURE_BYTES } from "../../src/crypto/ed25519.js";
import { AUTHORITY, Driver, bytes, describe as describeResult, everyOperation, keyOf, ledger, signed } from "./ledger-fixtures.js";

const ALICE = keyOf("alice");
const BOB = keyOf("bob");

function body(operation: Operation, nonce = 7): TransactionBody {
  return { clientKey: ALICE.publicKey, nonce, operation };
}

function signedTransaction(operation: Operation, nonce = 7): Transaction {
  return signTransaction(ALICE.privateKey, body(operation, nonce));
}

function sessionRequest(operation: Operation, nonce: number, key = ALICE): ClientRequest {
  return requestFromTransaction(sessionTransaction({ clientKey: key.publicKey, nonce, operation }));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

function decodeError(bytes: Uint8Array): TransactionDecodeError {
  try {
    decodeTransaction(bytes);
  } catch (error) {
    assert.ok(error instanceof TransactionDecodeError, `decoding threw ${String(error)}`);
    return error;
  }
  assert.fail("the bytes decoded");
}

describe("session transactions: the envelope", () => {
  it("a version 2 envelope of every operation, noop included, decodes to the same transaction with no signature", () => {
    for (const operation of everyOperation()) {
      const transaction = sessionTransaction(body(operation));
      assert.equal(transaction.signature, SESSION_SIGNATURE);
      assert.ok(isSessionTransaction(transaction));
      const encoded = encodeTransaction(transaction);
      assert.equal(encoded[0], SESSION_TRANSACTION_FORMAT_VERSION, operation.type);
      const decoded = decodeTransaction(encoded);
      assert.deepEqual(decoded, { ...body(operation), signature: new Uint8Array(0) }, operation.type);
      assert.ok(isSessionTransaction(decoded), operation.type);
      assert.deepEqual(encodeTransaction(decoded), encoded, `${operation.type}: one encoding`);
    }
  });

  it("a signed envelope of every operation still round-trips as version 1, noop included", () => {
    for (const operation of everyOperation()) {
      const transaction = signedTransaction(operation);
      const encoded = encodeTransaction(transaction);
      assert.equal(encoded[0], TRANSACTION_FORMAT_VERSION, operation.type);
      const decoded = decodeTransaction(encoded);
      assert.deepEqual(decoded, transaction, operation.type);
      assert.equal(isSessionTransaction(decoded), false);
      assert.ok(verifyTransaction(decoded), `${operation.type}: the signature still verifies`);
    }
  });

  it("the two versions of one body differ only in the version byte and the signature, and have different ids", () => {
    for (const operation of everyOperation()) {
      const signedEnvelope = encodeTransaction(signedTransaction(operation));
      const session = encodeTransaction(sessionTransaction(body(operation)));
      assert.equal(session.length, signedEnvelope.length - ED25519_SIGNATURE_BYTES, operation.type);
      assert.deepEqual(session.subarray(1), signedEnvelope.subarray(1, signedEnvelope.length - ED25519_SIGNATURE_BYTES), operation.type);
      assert.notDeepEqual(transactionId(session), transactionId(signedEnvelope), operation.type);
    }
  });

  it("a version 2 envelope followed by 64 more bytes is refused as trailing bytes", () => {
    for (const operation of everyOperation()) {
      const session = encodeTransaction(sessionTransaction(body(operation)));
      const withSignature = concat(session, signedTransaction(operation).signature);
      assert.equal(decodeError(withSignature).code, "trailing-bytes", operation.type);
    }
  });

  it("a version 1 envelope without its signature is refused as truncated, as is a signed one relabelled version 2", () => {
    for (const operation of everyOperation()) {
      const signedEnvelope = encodeTransaction(signedTransaction(operation));
      const unsigned = signedEnvelope.slice(0, signedEnvelope.length - ED25519_SIGNATURE_BYTES);
      assert.equal(decodeError(unsigned).code, "truncated", operation.type);
      const relabelled = signedEnvelope.slice();
      relabelled[0] = SESSION_TRANSACTION_FORMAT_VERSION;
      assert.equal(decodeError(relabelled).code, "trailing-bytes", operation.type);
    }
  });

  it("a session transaction never verifies as signed, decoded or not", () => {
    const session = sessionTransaction(body({ type: "noop" }));
    assert.equal(verifyTransaction(session), false);
    assert.equal(verifyTransaction(decodeTransaction(encodeTransaction(session))), false);
  });

  it("a version 2 envelope is not admitted on the strength of a signature that is valid for its body, wherever that signature is put", () => {
    for (const operation of everyOperation()) {
      const validSignature = signedTransaction(operation, 1).signature;
      const signedRequest = requestFromTransaction(signedTransaction(operation, 1));
      assert.equal(admitRequest(signedRequest).ok, true, `${operation.type}: the signature is valid for the body, in a version 1 envelope`);
      const session = encodeTransaction(sessionTransaction(body(operation, 1)));
      const signatureHex = Buffer.from(validSignature).toString("hex");
      const attempts: ClientRequest[] = [
        // Appended to the envelope, as a version 1 envelope carries it.
        { ...signedRequest, operation: concat(session, validSignature) },
        // In the request's signature field, beside the bare envelope.
        { ...signedRequest, operation: session, signature: signatureHex },
      ];
      for (const attempt of attempts) {
        for (const options of [{}, { verifySignature: true }, { acceptSessions: true }, { verifySignature: false }]) {
          assert.deepEqual(admitRequest(attempt, options), { ok: false, error: "malformed" }, `${operation.type}, ${JSON.stringify(options)}`);
        }
        assert.equal(verifyRequest(attempt), false, operation.type);
      }
    }
  });
});

describe("session transactions: the request and admission", () => {
  it("the request of a session transaction has the signature \"\" and the bare envelope", () => {
    const transaction = sessionTransaction(body({ type: "put", key: bytes("k"), value: bytes("v") }));
    const request = requestFromTransaction(transaction);
    assert.equal(request.signature, "");
    assert.equal(request.client, Buffer.from(ALICE.publicKey).toString("hex"));
    assert.equal(request.timestamp, 7);
    assert.deepEqual(request.operation, encodeTransaction(transaction));
    assert.deepEqual(requestFromEnvelope(request.operation), request, "a block's bytes give back the same request");
  });

  it("admission refuses a session request as bad-signature by default, and the core's verifyRequest refuses it", () => {
    const request = sessionRequest({ type: "noop" }, 1);
    assert.deepEqual(admitRequest(request), { ok: false, error: "bad-signature" });
    assert.deepEqual(admitRequest(request, { verifySignature: true }), { ok: false, error: "bad-signature" });
    assert.equal(verifyRequest(request), false);
  });

  it("admission takes a session request when told to accept sessions, or when signatures are not checked", () => {
    const request = sessionRequest({ type: "noop" }, 1);
    for (const options of [{ acceptSessions: true }, { verifySignature: false }, { verifySignature: true, acceptSessions: true }]) {
      const admission = admitRequest(request, options);
      assert.equal(admission.ok, true, JSON.stringify(options));
      if (admission.ok) assert.ok(isSessionTransaction(admission.transaction));
    }
  });

  it("accepting sessions changes nothing for signed requests: a forged one is still bad-signature", () => {
    const genuine = signed(ALICE, 1, { type: "noop" });
    assert.equal(admitRequest(genuine, { acceptSessions: true }).ok, true);
    const forgedSignature = signed(ALICE, 2, { type: "noop" }).signature;
    const envelope = encodeTransaction({ ...decodeTransaction(genuine.operation), signature: Buffer.from(forgedSignature, "hex") });
    const forged: ClientRequest = { ...genuine, operation: envelope, signature: forgedSignature };
    assert.deepEqual(admitRequest(forged, { acceptSessions: true }), { ok: false, error: "bad-signature" });
  });

  it("a version 1 envelope whose request says signature \"\" is malformed, whatever the options", () => {
    const signedRequest = signed(ALICE, 1, { type: "noop" });
    const stripped: ClientRequest = { ...signedRequest, signature: "" };
    for (const options of [{}, { acceptSessions: true }, { verifySignature: false }]) {
      assert.deepEqual(admitRequest(stripped, options), { ok: false, error: "malformed" }, JSON.stringify(options));
    }
  });
});

describe("session transactions: execution and the reply record", () => {
  function storedSignature(driver: Driver, key = ALICE): Uint8Array {
    const bytes = driver.app.ledgerState.tree.get(replyStateKey(key.publicKey));
    assert.ok(bytes !== undefined, "a reply record is stored");
    return decodeReplyRecord(bytes).signature;
  }

  it("a session put executes (signatures checked) and its reply record reads back with signature \"\"", () => {
    const driver = ledger();
    assert.equal(describeResult(driver.one(sessionRequest({ type: "put", key: bytes("color"), value: bytes("blue") }, 1))), "ok");
    assert.equal(describeResult(driver.one(sessionRequest({ type: "get", key: bytes("color") }, 2))), "value:blue");
    assert.equal(describeResult(driver.one(sessionRequest({ type: "noop" }, 3))), "ok");
    const last = driver.app.lastReply(Buffer.from(ALICE.publicKey).toString("hex"));
    assert.ok(last !== undefined);
    assert.equal(last.timestamp, 3);
    assert.equal(last.signature, "");
    assert.deepEqual(storedSignature(driver), SESSION_MARK, "the tree holds the session mark in the signature's place");
  });

  it("a signed request keeps its signature's hex in the reply record", () => {
    const driver = ledger();
    const request = signed(ALICE, 1, { type: "put", key: bytes("color"), value: bytes("blue") });
    assert.equal(describeResult(driver.one(request)), "ok");
    assert.equal(driver.app.lastReply(request.client)?.signature, request.signature);
    assert.equal(Buffer.from(storedSignature(driver)).toString("hex"), request.signature);
  });

  it("after a snapshot and restore, a session turn still reads as \"\" and a signed one as its hex, and retransmissions are duplicates", () => {
    const driver = ledger();
    const session = sessionRequest({ type: "put", key: bytes("a"), value: bytes("1") }, 1, ALICE);
    const signedRequest = signed(BOB, 1, { type: "put", key: bytes("b"), value: bytes("2") });
    driver.run([session, signedRequest]);
    const restored = createLedgerApplication({ authority: AUTHORITY.publicKey });
    restored.restore(driver.app.snapshot());
    assert.equal(restored.lastReply(session.client)?.signature, "", "read from the tree, through SESSION_MARK");
    assert.equal(restored.lastReply(signedRequest.client)?.signature, signedRequest.signature);
    const again = new Driver(restored);
    const executed = again.run([session, signedRequest]);
    assert.deepEqual(
      executed.map((entry) => entry.outcome),
      ["duplicate", "duplicate"],
      "the same requests again are answered from the record, not refused as stale",
    );
    assert.equal(describeResult(decodeResult(executed[0]!.result)), "ok");
  });

  it("record stores the session mark for an admitted session transaction, and the row reads back with signature \"\"", () => {
    const app = createLedgerApplication({ authority: AUTHORITY.publicKey });
    const client = Buffer.from(ALICE.publicKey).toString("hex");
    const result = Uint8Array.of(1, 2, 3);
    app.record({ client, timestamp: 1, signature: "", result }, sessionTransaction(body({ type: "noop" }, 1)));
    assert.deepEqual(app.lastReply(client), { client, timestamp: 1, signature: "", result });
    const bytes = app.ledgerState.tree.get(replyStateKey(ALICE.publicKey));
    assert.ok(bytes !== undefined);
    assert.deepEqual(decodeReplyRecord(bytes).signature, SESSION_MARK);
  });
});
