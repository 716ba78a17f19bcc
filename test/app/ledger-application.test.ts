import { test } from "node:test";
import assert from "node:assert/strict";

import {
  createKvApplication,
  createLedgerApplication,
  createTokenApplication,
} from "../../src/app/ledger-application.js";
import { accountStateKey, decodeAccount, decodeReplyRecord, replyStateKey } from "../../src/app/ledger-state.js";
import { NEXT_NONCE_MAX, TRANSACTION_ERROR_CODES, type TransactionErrorCode, decodeResult, resultErrorCode } from "../../src/app/result.js";
import { TRANSACTION_AMOUNT_MAX, TRANSACTION_BYTES_MAX, TRANSACTION_NONCE_MAX } from "../../src/app/transaction.js";
import { verifyStateProof } from "../../src/ledger/state-tree.js";
import type { ClientRequest } from "../../src/consensus/pbft/types.js";
import { AUTHORITY, Driver, bytes, describe, describeAll, keyOf, ledger, signed } from "./ledger-fixtures.js";

const ALICE = keyOf("alice");
const BOB = keyOf("bob");

test("the key-value store: put, get, delete and compare-and-set, with their results", () => {
  const driver = ledger();
  const results = [
    signed(ALICE, 1, { type: "get", key: bytes("color") }),
    signed(ALICE, 2, { type: "put", key: bytes("color"), value: bytes("blue") }),
    signed(ALICE, 3, { type: "get", key: bytes("color") }),
    signed(ALICE, 4, { type: "cas", key: bytes("color"), expected: bytes("red"), value: bytes("green") }),
    signed(ALICE, 5, { type: "cas", key: bytes("color"), expected: bytes("blue"), value: bytes("green") }),
    signed(ALICE, 6, { type: "cas", key: bytes("color"), expected: null, value: bytes("black") }),
    signed(ALICE, 7, { type: "get", key: bytes("color") }),
    signed(ALICE, 8, { type: "delete", key: bytes("color") }),
    signed(ALICE, 9, { type: "delete", key: bytes("color") }),
    signed(ALICE, 10, { type: "cas", key: bytes("color"), expected: null, value: bytes("") }),
    signed(ALICE, 11, { type: "get", key: bytes("color") }),
  ].map((request) => describe(driver.one(request)));
  assert.deepEqual(results, [
    "absent",
    "ok",
    "value:blue",
    "flag:false",
    "flag:true",
    "flag:false",
    "value:green",
    "flag:true",
    "flag:false",
    "flag:true",
    "value:",
  ]);
});

test("the token ledger: only the authority mints, transfers move what the sender holds, balance reads", () => {
  const driver = ledger();
  const results = [
    signed(ALICE, 1, { type: "mint", to: ALICE.publicKey, amount: 100n }),
    signed(AUTHORITY, 1, { type: "mint", to: ALICE.publicKey, amount: 100n }),
    signed(ALICE, 2, { type: "transfer", to: BOB.publicKey, amount: 30n }),
    signed(ALICE, 3, { type: "transfer", to: BOB.publicKey, amount: 71n }),
    signed(ALICE, 4, { type: "transfer", to: ALICE.publicKey, amount: 70n }),
    signed(BOB, 1, { type: "balance", account: ALICE.publicKey }),
    signed(BOB, 2, { type: "balance", account: BOB.publicKey }),
    signed(BOB, 3, { type: "balance", account: keyOf("nobody").publicKey }),
    signed(AUTHORITY, 2, { type: "mint", to: BOB.publicKey, amount: TRANSACTION_AMOUNT_MAX - 99n }),
    signed(AUTHORITY, 3, { type: "mint", to: BOB.publicKey, amount: TRANSACTION_AMOUNT_MAX - 100n }),
    signed(BOB, 4, { type: "balance", account: BOB.publicKey }),
  ].map((request) => describe(driver.one(request)));
  assert.deepEqual(results, [
    "error:not-authority",
    "ok",
    "ok",
    "error:insufficient-balance",
    "ok",
    "amount:70",
    "amount:30",
    "amount:0",
    "error:amount-overflow",
    "ok",
    `amount:${TRANSACTION_AMOUNT_MAX - 100n + 30n}`,
  ]);
  // The supply may reach 2^64 - 1 exactly; then every balance and every sum of two still fits.
  assert.equal(driver.app.ledgerState.supply(), TRANSACTION_AMOUNT_MAX);
  assert.equal(describe(driver.one(signed(ALICE, 5, { type: "transfer", to: BOB.publicKey, amount: 70n }))), "ok");
  assert.equal(driver.app.ledgerState.account(BOB.publicKey).balance, TRANSACTION_AMOUNT_MAX);
});

test("every error code is produced, and exactly the authentic, in-turn ones consume the nonce", () => {
  const app = createLedgerApplication({ authority: AUTHORITY.publicKey });
  const driver = new Driver(app);
  // A supply to overflow later; this mint takes the authority's nonce 1.
  driver.run([signed(AUTHORITY, 1, { type: "mint", to: BOB.publicKey, amount: 1n })]);
  const valid = signed(ALICE, 1, { type: "put", key: bytes("k"), value: bytes("v") });
  const tampered = valid.operation.slice();
  tampered[tampered.length - 1]! ^= 1;
  const unknownTag = valid.operation.slice();
  unknownTag[41] = 99;
  const cases: Array<{ code: TransactionErrorCode; signer: typeof ALICE; request: ClientRequest; consumes: boolean }> = [
    { code: "bad-signature", signer: ALICE, request: { ...valid, operation: tampered, signature: Buffer.from(tampered.subarray(-64)).toString("hex") }, consumes: false },
    { code: "malformed", signer: ALICE, request: { ...valid, timestamp: 2 }, consumes: false },
    { code: "unknown-op", signer: ALICE, request: { ...valid, operation: unknownTag }, consumes: false },
    { code: "oversized", signer: ALICE, request: { ...valid, operation: new Uint8Array(TRANSACTION_BYTES_MAX + 1) }, consumes: false },
    { code: "nonce-gap", signer: ALICE, request: signed(ALICE, 2, { type: "get", key: bytes("k") }), consumes: false },
    { code: "stale-nonce", signer: ALICE, request: signed(ALICE, 0, { type: "get", key: bytes("k") }), consumes: false },
    { code: "insufficient-balance", signer: ALICE, request: signed(ALICE, 1, { type: "transfer", to: BOB.publicKey, amount: 1n }), consumes: true },
    { code: "not-authority", signer: ALICE, request: signed(ALICE, 2, { type: "mint", to: ALICE.publicKey, amount: 1n }), consumes: true },
    { code: "amount-overflow", signer: AUTHORITY, request: signed(AUTHORITY, 2, { type: "mint", to: BOB.publicKey, amount: TRANSACTION_AMOUNT_MAX }), consumes: true },
  ];
  for (const { code, signer, request, consumes } of cases) {
    const nonceBefore = app.ledgerState.account(signer.publicKey).nextNonce;
    const [executed] = driver.run([request]);
    assert.equal(resultErrorCode(executed!.result), code, code);
    assert.equal(executed!.outcome, consumes ? "executed" : "rejected", code);
    assert.equal(app.ledgerState.account(signer.publicKey).nextNonce, nonceBefore + (consumes ? 1 : 0), `${code} consumes the nonce: ${consumes}`);
  }
  // An operation the cluster does not serve: authentic and in turn, so it consumes the nonce.
  const kvOnly = new Driver(createKvApplication());
  const [unserved] = kvOnly.run([signed(ALICE, 1, { type: "balance", account: ALICE.publicKey })]);
  assert.equal(resultErrorCode(unserved!.result), "unknown-op");
  assert.equal(unserved!.outcome, "executed");
  assert.equal(kvOnly.app.ledgerState.account(ALICE.publicKey).nextNonce, 2);
  assert.deepEqual(cases.map((entry) => entry.code).sort(), [...TRANSACTION_ERROR_CODES].sort());
  // Nothing refused moved any state but the consumed nonces and their replies.
  assert.equal(app.ledgerState.getValue(bytes("k")), undefined);
  assert.equal(app.ledgerState.supply(), 1n);
});

test("the nonce errors carry the account's next nonce", () => {
  const driver = ledger();
  driver.run([signed(ALICE, 1, { type: "get", key: bytes("k") }), signed(ALICE, 2, { type: "get", key: bytes("k") })]);
  assert.equal(describe(driver.one(signed(ALICE, 9, { type: "get", key: bytes("k") }))), "error:nonce-gap(next 3)");
  assert.equal(describe(driver.one(signed(ALICE, 1, { type: "get", key: bytes("other") }))), "error:stale-nonce(next 3)");
});

test("a gapped nonce does not lock the client: the right nonce works after it, and then the gapped one", () => {
  const driver = ledger();
  const put = (nonce: number): ReturnType<typeof signed> => signed(ALICE, nonce, { type: "put", key: bytes(`k${nonce}`), value: bytes("v") });
  assert.deepEqual(describeAll(driver.run([put(3), put(2)])), ["rejected error:nonce-gap(next 1)", "rejected error:nonce-gap(next 1)"]);
  assert.equal(driver.executor.lastReply(put(1).client), undefined);
  assert.deepEqual(describeAll(driver.run([put(1), put(3), put(2), put(3)])), [
    "executed ok",
    "rejected error:nonce-gap(next 2)",
    "executed ok",
    "executed ok",
  ]);
  assert.equal(driver.app.ledgerState.account(ALICE.publicKey).nextNonce, 4);
});

test("a retransmission gets the cached result; a different transaction on a used nonce is stale", () => {
  const driver = ledger();
  const get = signed(ALICE, 1, { type: "get", key: bytes("k") });
  driver.run([signed(ALICE, 1, { type: "put", key: bytes("k"), value: bytes("first") })]);
  const first = signed(ALICE, 2, { type: "get", key: bytes("k") });
  driver.run([first]);
  driver.run([signed(BOB, 1, { type: "put", key: bytes("k"), value: bytes("second") })]);
  assert.deepEqual(describeAll(driver.run([first, get])), ["duplicate value:first", "rejected error:stale-nonce(next 3)"]);
  assert.equal(driver.executor.lastReply(first.client)?.timestamp, 2);
});

test("the client's last result and its account are provable against the state root", () => {
  const app = createLedgerApplication({ authority: AUTHORITY.publicKey });
  const driver = new Driver(app);
  const request = signed(AUTHORITY, 1, { type: "mint", to: ALICE.publicKey, amount: 5n });
  const [executed] = driver.run([request]);
  const root = app.stateRoot();
  const tree = app.ledgerState.tree;
  const replyKey = replyStateKey(AUTHORITY.publicKey);
  const replyValue = tree.get(replyKey)!;
  assert.equal(verifyStateProof(root, replyKey, replyValue, tree.prove(replyKey)), true);
  const reply = decodeReplyRecord(replyValue);
  assert.equal(reply.nonce, 1);
  assert.equal(Buffer.from(reply.signature).toString("hex"), request.signature);
  assert.deepEqual(reply.result, executed!.result);
  const accountKey = accountStateKey(ALICE.publicKey);
  const accountValue = tree.get(accountKey)!;
  assert.equal(verifyStateProof(root, accountKey, accountValue, tree.prove(accountKey)), true);
  assert.deepEqual(decodeAccount(accountValue), { balance: 5n, nextNonce: 1 });
  assert.equal(app.stateDigest(), Buffer.from(root).toString("hex"));
});

test("the largest nonce can be used once, and closes the account rather than crashing the replica", () => {
  const app = createKvApplication();
  const driver = new Driver(app);
  const publicKey = ALICE.publicKey;
  // Bring the account to its last nonce directly, as if it had sent 2^53 - 2 transactions.
  app.ledgerState.setAccount(publicKey, { balance: 0n, nextNonce: TRANSACTION_NONCE_MAX - 1 });
  app.ledgerState.recordTurn(publicKey, { nonce: TRANSACTION_NONCE_MAX - 1, signature: new Uint8Array(64), result: Uint8Array.of(0) });
  assert.equal(describe(driver.one(signed(ALICE, TRANSACTION_NONCE_MAX, { type: "get", key: bytes("k") }))), "absent");
  assert.equal(app.ledgerState.account(publicKey).nextNonce, NEXT_NONCE_MAX);
  assert.equal(describe(driver.one(signed(ALICE, 1, { type: "get", key: bytes("k") }))), `error:stale-nonce(next ${NEXT_NONCE_MAX})`);
});

test("the token and key-value applications each refuse the other's operations", () => {
  const token = new Driver(createTokenApplication({ authority: AUTHORITY.publicKey }));
  assert.equal(describe(token.one(signed(ALICE, 1, { type: "put", key: bytes("k"), value: bytes("v") }))), "error:unknown-op");
  assert.equal(describe(token.one(signed(ALICE, 2, { type: "balance", account: ALICE.publicKey }))), "amount:0");
  const kv = new Driver(createKvApplication());
  assert.equal(describe(kv.one(signed(AUTHORITY, 1, { type: "mint", to: ALICE.publicKey, amount: 1n }))), "error:unknown-op");
  assert.equal(describe(kv.one(signed(AUTHORITY, 2, { type: "get", key: bytes("k") }))), "absent");
});

test("every application answers a noop with ok, and it changes nothing but the nonce", () => {
  const applications = { kv: createKvApplication(), token: createTokenApplication({ authority: AUTHORITY.publicKey }), both: createLedgerApplication({ authority: AUTHORITY.publicKey }) };
  for (const [name, app] of Object.entries(applications)) {
    const driver = new Driver(app);
    const rootBefore = app.stateRoot();
    const [executed] = driver.run([signed(ALICE, 1, { type: "noop" })]);
    assert.equal(executed!.outcome, "executed", name);
    assert.equal(describe(decodeResult(executed!.result)), "ok", name);
    assert.equal(app.ledgerState.account(ALICE.publicKey).nextNonce, 2, name);
    assert.equal(app.ledgerState.tree.size, 2, `${name}: the account and its reply record, nothing else`);
    assert.notDeepEqual(app.stateRoot(), rootBefore, name);
  }
});

test("results decode, and the ledger never throws on hostile requests", () => {
  const driver = ledger();
  const hostile = [
    { client: "not hex", timestamp: 1, operation: new Uint8Array(0), signature: "" },
    { client: "", timestamp: -1, operation: Uint8Array.of(1), signature: "x" },
    { client: "a".repeat(64), timestamp: 1.5, operation: new Uint8Array(200), signature: "b".repeat(128) },
  ];
  for (const executed of driver.run(hostile)) {
    assert.equal(executed.outcome, "rejected");
    assert.equal(decodeResult(executed.result).ok, false);
  }
});

test("the token authority must be a usable public key", () => {
  assert.throws(() => createTokenApplication({ authority: new Uint8Array(31) }), TypeError);
  assert.throws(() => createTokenApplication({ authority: new Uint8Array(32) }), /small order/);
});
