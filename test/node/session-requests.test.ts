// The session requests a replica has received (src/node/session-requests.ts). A replica accepts a
// session request in a pre-prepare only when its own copy arrived over an attached session, so
// what must hold: a request counts as recorded only byte for byte (same client and nonce with
// other envelope bytes is not it); executed requests are forgotten; the table is bounded and
// evicts in arrival order; its figures count what happened; and the replica's crypto accepts a
// session request exactly when this table recorded it or 2f + 1 replicas vouched for its batch.

import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { requestFromTransaction } from "../../src/app/request.js";
import { sessionTransaction, signTransaction } from "../../src/app/transaction.js";
import type { ClientRequest } from "../../src/consensus/pbft/types.js";
import { type Ed25519KeyPair, ed25519KeyPairFromSeed } from "../../src/crypto/ed25519.js";
import { ReplicaCrypto } from "../../src/node/replica-crypto.js";
import { SESSION_REQUESTS_MAX_DEFAULT, SESSION_REQUESTS_PER_CLIENT_MAX, SessionRequests, isSessionRequest, sessionRequestKey } from "../../src/node/session-requests.js";
import { testCluster } from "../ledger/fixtures.js";

const keys: Ed25519KeyPair[] = Array.from({ length: 4 }, (_, index) => ed25519KeyPairFromSeed(new Uint8Array(32).fill(index + 61)));
const encoder = new TextEncoder();

function sessionPut(client: number, nonce: number, value = `v${nonce}`): ClientRequest {
  const key = keys[client]!;
  return requestFromTransaction(sessionTransaction({ clientKey: key.publicKey, nonce, operation: { type: "put", key: encoder.encode("k"), value: encoder.encode(value) } }));
}

function signedPut(client: number, nonce: number): ClientRequest {
  const key = keys[client]!;
  return requestFromTransaction(signTransaction(key.privateKey, { clientKey: key.publicKey, nonce, operation: { type: "put", key: encoder.encode("k"), value: encoder.encode(`v${nonce}`) } }));
}

/** The stats without the byte count, which depends on the envelopes' sizes. */
function counts(sessions: SessionRequests): { entries: number; recorded: number; evicted: number } {
  const { entries, recorded, evicted } = sessions.stats();
  return { entries, recorded, evicted };
}

describe("session requests: identity", () => {
  it("a recorded request is known, by an equal copy too; one never recorded is not", () => {
    const sessions = new SessionRequests();
    const request = sessionPut(0, 1);
    assert.equal(sessions.has(request), false);
    sessions.record(request);
    assert.equal(sessions.has(request), true);
    assert.equal(sessions.has({ ...request, operation: Uint8Array.from(request.operation) }), true, "a copy with equal bytes (as decoded from a pre-prepare)");
    assert.equal(sessions.has(sessionPut(0, 2)), false, "another nonce");
    assert.equal(sessions.has(sessionPut(1, 1)), false, "another client");
  });

  it("the same client and nonce with other envelope bytes is not the recorded request", () => {
    const sessions = new SessionRequests();
    sessions.record(sessionPut(0, 1, "blue"));
    const other = sessionPut(0, 1, "red");
    assert.equal(sessionRequestKey(other), sessionRequestKey(sessionPut(0, 1, "blue")), "the same key");
    assert.equal(sessions.has(other), false);
    const flipped = sessionPut(0, 1, "blue");
    const bytes = flipped.operation.slice();
    bytes[bytes.length - 1]! ^= 1;
    assert.equal(sessions.has({ ...flipped, operation: bytes }), false, "one bit of the value flipped");
    assert.equal(sessions.has({ ...flipped, operation: flipped.operation.subarray(0, flipped.operation.length - 1) }), false, "one byte short");
  });

  it("recording another envelope under the same client and nonce replaces the first", () => {
    const sessions = new SessionRequests();
    sessions.record(sessionPut(0, 1, "blue"));
    sessions.record(sessionPut(0, 1, "red"));
    assert.equal(sessions.has(sessionPut(0, 1, "red")), true);
    assert.equal(sessions.has(sessionPut(0, 1, "blue")), false);
    assert.equal(sessions.stats().entries, 1);
  });

  it("has() answers false for a request whose fields are not of the right types, without throwing", () => {
    const sessions = new SessionRequests();
    const request = sessionPut(0, 1);
    sessions.record(request);
    assert.equal(sessions.has({ ...request, operation: "bytes" as unknown as Uint8Array }), false);
    assert.equal(sessions.has({ ...request, timestamp: "1" as unknown as number }), false);
    assert.equal(sessions.has({ ...request, client: 7 as unknown as string }), false);
  });

  it("a request is a session request exactly when its signature field is empty", () => {
    assert.equal(isSessionRequest(sessionPut(0, 1)), true);
    assert.equal(isSessionRequest(signedPut(0, 1)), false);
  });
});

describe("session requests: memory", () => {
  it("executed session requests are forgotten; a signed request of the same client and nonce forgets nothing", () => {
    const sessions = new SessionRequests();
    const first = sessionPut(0, 1);
    const second = sessionPut(1, 1);
    sessions.record(first);
    sessions.record(second);
    sessions.forget([signedPut(0, 1)]);
    assert.equal(sessions.has(first), true, "a signed request is not this table's");
    sessions.forget([first]);
    assert.equal(sessions.has(first), false);
    assert.equal(sessions.has(second), true);
    assert.equal(sessions.stats().entries, 1);
    sessions.forget([first, sessionPut(3, 9)]);
    assert.equal(sessions.stats().entries, 1, "forgetting what is not there changes nothing");
  });

  it("past entriesMax the oldest entries leave first, in arrival order", () => {
    const sessions = new SessionRequests(3);
    const requests = [sessionPut(0, 1), sessionPut(1, 1), sessionPut(2, 1), sessionPut(3, 1), sessionPut(0, 2)];
    for (const request of requests) sessions.record(request);
    assert.deepEqual(
      requests.map((request) => sessions.has(request)),
      [false, false, true, true, true],
    );
    assert.deepEqual(counts(sessions), { entries: 3, recorded: 5, evicted: 2 });
  });

  it("the oldest entry still kept leaves first after thousands of others came and were forgotten", () => {
    const sessions = new SessionRequests(3);
    const oldest = sessionPut(1, 1);
    sessions.record(oldest);
    // Each of these is executed (forgotten) at once: the queue that finds the oldest sweeps them.
    for (let nonce = 1; nonce <= 3_000; nonce++) {
      const request = sessionPut(0, nonce);
      sessions.record(request);
      sessions.forget([request]);
    }
    const later = [sessionPut(2, 1), sessionPut(3, 1), sessionPut(1, 2)];
    for (const request of later) sessions.record(request);
    assert.equal(sessions.has(oldest), false);
    assert.deepEqual(later.map((request) => sessions.has(request)), [true, true, true]);
    assert.deepEqual(counts(sessions), { entries: 3, recorded: 3_004, evicted: 1 });
  });

  it("the arrival queue stays within twice the entries kept plus 1,024, however entries leave", () => {
    // Only the table's own fields are read, so distinct clients need no keys of their own.
    const request = (client: number, nonce: number, bytes = 100): ClientRequest => ({ client: client.toString(16).padStart(64, "0"), timestamp: nonce, operation: new Uint8Array(bytes).fill(client & 0xff), signature: "" });
    const bound = (sessions: SessionRequests): number => 2 * sessions.stats().entries + 1024;
    const byEntries = new SessionRequests(1_000);
    const byBytes = new SessionRequests(SESSION_REQUESTS_MAX_DEFAULT, 10_000);
    const byClient = new SessionRequests();
    const forgotten = new SessionRequests();
    for (let index = 0; index < 50_000; index++) {
      byEntries.record(request(index, 1));
      byBytes.record(request(index, 1));
      byClient.record(request(index % 10, index));
      forgotten.record(request(index, 1));
      forgotten.forget([request(index, 1)]);
    }
    for (const [name, sessions, entries] of [["entriesMax", byEntries, 1_000], ["bytesMax", byBytes, 100], ["per client", byClient, 10 * SESSION_REQUESTS_PER_CLIENT_MAX], ["forgotten", forgotten, 0]] as const) {
      assert.equal(sessions.stats().entries, entries, name);
      assert.ok(sessions.stats().queued <= bound(sessions), `${name}: ${sessions.stats().queued} queued for ${entries} entries`);
    }
  });

  it("recording a request again makes it the newest, so it outlives entries recorded after it the first time", () => {
    const sessions = new SessionRequests(2);
    const a = sessionPut(0, 1);
    const b = sessionPut(1, 1);
    sessions.record(a);
    sessions.record(b);
    sessions.record(a); // the client's retransmission
    sessions.record(sessionPut(2, 1));
    assert.equal(sessions.has(a), true);
    assert.equal(sessions.has(b), false, "b is now the oldest and leaves");
  });

  it("stats count every record, the entries held and the evictions", () => {
    const sessions = new SessionRequests(2);
    assert.deepEqual(counts(sessions), { entries: 0, recorded: 0, evicted: 0 });
    sessions.record(sessionPut(0, 1));
    sessions.record(sessionPut(0, 1));
    assert.deepEqual(counts(sessions), { entries: 1, recorded: 2, evicted: 0 });
    sessions.record(sessionPut(1, 1));
    sessions.record(sessionPut(2, 1));
    assert.deepEqual(counts(sessions), { entries: 2, recorded: 4, evicted: 1 });
    sessions.forget([sessionPut(2, 1)]);
    assert.deepEqual(counts(sessions), { entries: 1, recorded: 4, evicted: 1 }, "forgetting is not evicting");
  });

  it("one client key holds at most SESSION_REQUESTS_PER_CLIENT_MAX entries: its oldest leaves, never another key's", () => {
    const sessions = new SessionRequests(100);
    const other = sessionPut(1, 1);
    sessions.record(other);
    const own = Array.from({ length: SESSION_REQUESTS_PER_CLIENT_MAX + 2 }, (_, index) => sessionPut(0, index + 1));
    for (const request of own) sessions.record(request);
    assert.deepEqual(
      own.map((request) => sessions.has(request)),
      own.map((_, index) => index >= 2),
    );
    assert.equal(sessions.has(other), true);
    assert.equal(counts(sessions).evicted, 2);
  });

  it("past bytesMax the oldest entries leave, and the byte count follows records, evictions and forgets", () => {
    const first = sessionPut(0, 1);
    const size = first.operation.length;
    const sessions = new SessionRequests(100, 2 * size);
    sessions.record(first);
    sessions.record(sessionPut(1, 1));
    assert.equal(sessions.stats().bytes, 2 * size);
    sessions.record(sessionPut(2, 1));
    assert.equal(sessions.has(first), false);
    assert.equal(sessions.stats().bytes, 2 * size);
    sessions.forget([sessionPut(1, 1)]);
    assert.equal(sessions.stats().bytes, size);
  });

  it("entriesMax must be a positive integer", () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => new SessionRequests(bad), RangeError, String(bad));
    }
    assert.ok(SESSION_REQUESTS_MAX_DEFAULT > 0);
  });
});

describe("session requests: the replica's crypto", () => {
  const cluster = testCluster(4);

  function crypto(sessions?: SessionRequests): ReplicaCrypto {
    return new ReplicaCrypto(cluster.config, cluster.keys[1]!.privateKey, sessions === undefined ? {} : { sessions });
  }

  it("a session request is accepted once recorded, and a refusal before that is not remembered", () => {
    const sessions = new SessionRequests();
    const replica = crypto(sessions);
    const request = sessionPut(0, 1);
    assert.equal(replica.verifyRequest(request), false, "not received over an attached session yet");
    sessions.record(request);
    assert.equal(replica.verifyRequest(request), true, "the same object, asked again once its copy arrived");
    assert.equal(replica.verifyRequest({ ...request }), true, "an equal copy, as carried in a pre-prepare");
    assert.equal(replica.verifyRequest(sessionPut(0, 1, "other value")), false, "other bytes under the same client and nonce");
  });

  it("a vouched session request is accepted without a record when it is well formed, and refused when its fields do not match its envelope", () => {
    const replica = crypto(new SessionRequests());
    const request = sessionPut(0, 1);
    assert.equal(replica.verifyRequest(request, true), true);
    assert.equal(replica.verifyRequest({ ...sessionPut(0, 2), timestamp: 3 }, true), false, "a timestamp that is not the envelope's nonce");
    assert.equal(replica.verifyRequest({ ...sessionPut(0, 2), client: sessionPut(1, 2).client }, true), false, "a client that is not the envelope's key");
    assert.equal(replica.verifyRequest({ ...sessionPut(0, 2), operation: new Uint8Array(10) }, true), false, "bytes that are no envelope");
  });

  it("a crypto without a session table accepts session requests only when vouched", () => {
    const replica = crypto();
    assert.equal(replica.verifyRequest(sessionPut(0, 1)), false);
    assert.equal(replica.verifyRequest(sessionPut(0, 1), true), true);
  });

  it("vouched changes nothing for signed requests: a forged signature is refused either way", () => {
    const replica = crypto(new SessionRequests());
    const genuine = signedPut(0, 1);
    const forged: ClientRequest = { ...genuine, operation: signedPut(0, 1).operation.slice(), signature: signedPut(0, 2).signature };
    const envelope = forged.operation;
    envelope.set(Buffer.from(forged.signature, "hex"), envelope.length - 64);
    assert.equal(replica.verifyRequest(genuine), true);
    assert.equal(replica.verifyRequest(forged), false);
    assert.equal(replica.verifyRequest({ ...forged }, true), false);
  });
});
