// The replica side of status, proof reads and blocks (node/client-services.ts), against an
// in-memory certified ledger standing in for the runtime: what a read is answered with, when, and
// how the services stay bounded whatever clients send.

import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { kvStateKey } from "../../src/app/ledger-state.js";
import { CertifiedHeaders } from "../../src/client/certified-headers.js";
import { checkReadProof } from "../../src/client/proof-check.js";
import { encodeCertificate } from "../../src/ledger/certificate.js";
import { ANSWER_BACKLOG_BYTES_MAX, ClientServices, type ClientServicesHost, type ClientServicesOptions, QUERY_BURST } from "../../src/node/client-services.js";
import type { WireBlock, WireFrame } from "../../src/node/wire-types.js";
import { CertifiedLedger } from "../support/certified-ledger.js";
import { testCluster } from "../ledger/fixtures.js";

type Sent = Extract<WireFrame, { kind: "status" | "read-proof" | "read-unavailable" | "blocks" }>;

const utf8 = new TextEncoder();
const cluster = testCluster(4, 3);

class FakeConnection {
  readonly sent: Sent[] = [];
  protocolErrors: string[] = [];
  /** What the transport holds for this client; a client that does not read lets it grow. */
  sendQueueBytes = 0;

  protocolError(detail: string): void {
    this.protocolErrors.push(detail);
  }

  take(): Sent[] {
    return this.sent.splice(0);
  }
}

/** A replica's services over `ledger`: executed height = the ledger's height, certificates stored for `storedHeights`. */
function services(
  ledger: CertifiedLedger,
  options: ClientServicesOptions & { storedHeights?: readonly number[]; blocks?: (from: number, to: number) => WireBlock[] } = {},
): { services: ClientServices<FakeConnection>; counts: Map<string, number> } {
  const counts = new Map<string, number>();
  const stored = new Set(options.storedHeights ?? []);
  const host: ClientServicesHost<FakeConnection> = {
    replica: 2,
    executed: () => ({ height: ledger.height, tree: ledger.tree }),
    storedCertified: (height) => {
      if (!stored.has(height)) return undefined;
      const wire = ledger.wireBlock(height);
      return { header: wire.header, certificate: wire.certificate! };
    },
    consensus: () => ({ view: 7, primary: 3, normal: false, stableCheckpoint: 16 }),
    blocks: (from, to) => {
      counts.set("store-reads", (counts.get("store-reads") ?? 0) + 1);
      return options.blocks?.(from, to) ?? ledger.wireBlocks(from, to);
    },
    send: (connection, frame) => connection.sent.push(frame),
    count: (name) => counts.set(name, (counts.get(name) ?? 0) + 1),
  };
  return { services: new ClientServices(host, options), counts };
}

function certify(target: ClientServices<FakeConnection>, ledger: CertifiedLedger, height: number): void {
  target.onCertified(ledger.header(height), encodeCertificate(ledger.chain[height - 1]!.certificate));
}

function kv(key: string): Uint8Array {
  return kvStateKey(utf8.encode(key));
}

function readProof(frame: Sent | undefined): Extract<Sent, { kind: "read-proof" }> {
  if (frame?.kind !== "read-proof") assert.fail(`expected a read-proof, got ${JSON.stringify(frame)}`);
  return frame;
}

function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

describe("client services: proof reads", () => {
  it("answer at once when the executed block's certificate is stored, with a proof that verifies against that block", () => {
    const ledger = new CertifiedLedger(cluster);
    ledger.put("colour", "green");
    ledger.put("size", "large");
    const { services: served } = services(ledger, { storedHeights: [2] });
    const connection = new FakeConnection();
    served.onFrame(connection, { kind: "read-request", requestId: 9, key: kv("colour") });
    const answer = readProof(connection.take()[0]);
    assert.equal(answer.requestId, 9);
    assert.equal(answer.height, 2);
    assert.equal(Buffer.from(answer.value!).toString(), "green");
    const checked = checkReadProof(cluster.config, kv("colour"), answer, 0, new CertifiedHeaders());
    assert.deepEqual(checked, { ok: true, value: { value: answer.value, height: 2 } });
  });

  it("hold a read until its block is certified and answer with the state proven when it arrived, though the tree moved on", () => {
    const ledger = new CertifiedLedger(cluster);
    ledger.put("colour", "green");
    const { services: served } = services(ledger);
    const connection = new FakeConnection();
    served.onFrame(connection, { kind: "read-request", requestId: 1, key: kv("colour") });
    assert.deepEqual(connection.take(), [], "nothing is certified yet: the read waits");
    assert.equal(served.heldReads, 1);

    ledger.put("colour", "red");
    certify(served, ledger, 2);
    assert.deepEqual(connection.take(), [], "a certificate for another height does not answer it");
    certify(served, ledger, 1);
    const answer = readProof(connection.take()[0]);
    assert.equal(answer.height, 1);
    assert.equal(Buffer.from(answer.value!).toString(), "green");
    assert.equal(checkReadProof(cluster.config, kv("colour"), answer, 0, new CertifiedHeaders()).ok, true);
    assert.equal(served.heldReads, 0);

    // Block 2 is certified now: a read there is answered at once.
    served.onFrame(connection, { kind: "read-request", requestId: 2, key: kv("colour") });
    const next = readProof(connection.take()[0]);
    assert.equal(next.height, 2);
    assert.equal(Buffer.from(next.value!).toString(), "red");
  });

  it("arm one timer for the reads held, not one per read, and re-arm it when the oldest read is pushed out", (t) => {
    const timers = t.mock.method(globalThis, "setTimeout");
    const ledger = new CertifiedLedger(cluster);
    ledger.put("k", "v");
    const { services: served } = services(ledger, { readsHeldMax: 3 });
    t.after(() => served.close());
    const connection = new FakeConnection();
    for (let requestId = 1; requestId <= 3; requestId++) served.onFrame(connection, { kind: "read-request", requestId, key: kv("k") });
    assert.equal(served.heldReads, 3);
    assert.equal(timers.mock.callCount(), 1, "later reads expire after the oldest: its timer serves");
    served.onFrame(connection, { kind: "read-request", requestId: 4, key: kv("k") });
    assert.equal(timers.mock.callCount(), 2, "the oldest read left, so the timer moved to the next one");
  });

  it("answer a held read 'uncertified' once the hold time passes without the certificate", async () => {
    const ledger = new CertifiedLedger(cluster);
    ledger.put("k", "v");
    const { services: served, counts } = services(ledger, { readHoldMs: 20 });
    const connection = new FakeConnection();
    served.onFrame(connection, { kind: "read-request", requestId: 5, key: kv("k") });
    await sleep(60);
    assert.deepEqual(connection.take(), [{ kind: "read-unavailable", requestId: 5, reason: "uncertified" }]);
    assert.equal(counts.get("client-reads-uncertified"), 1);
    assert.equal(served.heldReads, 0);
  });

  it("bound the reads that wait: the oldest is answered 'overloaded' when the hold is full, and one connection gets only its share", () => {
    const ledger = new CertifiedLedger(cluster);
    ledger.put("k", "v");
    const { services: served } = services(ledger, { readsHeldMax: 3, readsHeldPerConnectionMax: 2 });
    const first = new FakeConnection();
    const second = new FakeConnection();
    served.onFrame(first, { kind: "read-request", requestId: 1, key: kv("k") });
    served.onFrame(first, { kind: "read-request", requestId: 2, key: kv("k") });
    served.onFrame(first, { kind: "read-request", requestId: 3, key: kv("k") });
    assert.deepEqual(first.take(), [{ kind: "read-unavailable", requestId: 3, reason: "overloaded" }], "a third read of one connection is beyond its share");
    served.onFrame(second, { kind: "read-request", requestId: 4, key: kv("k") });
    served.onFrame(second, { kind: "read-request", requestId: 5, key: kv("k") });
    assert.deepEqual(first.take(), [{ kind: "read-unavailable", requestId: 1, reason: "overloaded" }], "the oldest read made room");
    assert.equal(served.heldReads, 3);
    certify(served, ledger, 1);
    assert.deepEqual(first.take().map((frame) => frame.requestId), [2]);
    assert.deepEqual(second.take().map((frame) => frame.requestId), [4, 5]);
  });

  it("answer at height 0 with the proof of absence in the empty genesis state, and no header or certificate", () => {
    const ledger = new CertifiedLedger(cluster);
    const { services: served } = services(ledger);
    const connection = new FakeConnection();
    served.onFrame(connection, { kind: "read-request", requestId: 3, key: kv("anything") });
    const answer = readProof(connection.take()[0]);
    assert.equal(answer.height, 0);
    assert.equal(answer.header.length, 0);
    assert.equal(answer.certificate.length, 0);
    assert.equal(answer.value, undefined);
    assert.deepEqual(checkReadProof(cluster.config, kv("anything"), answer, 0, new CertifiedHeaders()), { ok: true, value: { value: undefined, height: 0 } });
  });

  it("answer every held read 'stopping' on close, and later reads too", () => {
    const ledger = new CertifiedLedger(cluster);
    ledger.put("k", "v");
    const { services: served } = services(ledger);
    const connection = new FakeConnection();
    served.onFrame(connection, { kind: "read-request", requestId: 1, key: kv("k") });
    served.close();
    served.onFrame(connection, { kind: "read-request", requestId: 2, key: kv("k") });
    assert.deepEqual(connection.take(), [
      { kind: "read-unavailable", requestId: 1, reason: "stopping" },
      { kind: "read-unavailable", requestId: 2, reason: "stopping" },
    ]);
  });
});

describe("client services: status, blocks and bounds", () => {
  it("report the consensus view, heights and the highest certificate, found in the store at start", () => {
    const ledger = new CertifiedLedger(cluster);
    for (let height = 1; height <= 5; height++) ledger.put(`k${height}`, "v");
    const { services: served } = services(ledger, { storedHeights: [1, 2, 3] });
    assert.equal(served.certifiedHeight, 3);
    const connection = new FakeConnection();
    served.onFrame(connection, { kind: "status-request", requestId: 11 });
    assert.deepEqual(connection.take(), [
      { kind: "status", requestId: 11, replica: 2, view: 7, primary: 3, normal: false, executedHeight: 5, stableCheckpoint: 16, certifiedHeight: 3 },
    ]);
    certify(served, ledger, 5);
    certify(served, ledger, 4);
    assert.equal(served.certifiedHeight, 5, "a lower certificate arriving later does not lower it");
  });

  it("answer a blocks request with the stored blocks", () => {
    const ledger = new CertifiedLedger(cluster);
    for (let height = 1; height <= 3; height++) ledger.put(`k${height}`, "v");
    const { services: served } = services(ledger);
    const connection = new FakeConnection();
    served.onFrame(connection, { kind: "blocks-request", requestId: 4, from: 2, to: 9 });
    assert.deepEqual(connection.take(), [{ kind: "blocks", requestId: 4, blocks: ledger.wireBlocks(2, 3) }]);
  });

  it("refuse, as a protocol error, every frame a client may not send", () => {
    const ledger = new CertifiedLedger(cluster);
    const { services: served } = services(ledger);
    const frames: WireFrame[] = [
      { kind: "block-signature", height: 1, signature: new Uint8Array(64) },
      { kind: "signatures-request", from: 1, to: 2 },
      { kind: "status", requestId: 1, replica: 0, view: 0, primary: 0, normal: true, executedHeight: 0, stableCheckpoint: 0, certifiedHeight: 0 },
      { kind: "read-unavailable", requestId: 1, reason: "stopping" },
      { kind: "blocks", requestId: 1, blocks: [] },
      { kind: "state-request", requestId: 1, seq: 8 },
    ];
    for (const frame of frames) {
      const connection = new FakeConnection();
      served.onFrame(connection, frame);
      assert.equal(connection.protocolErrors.length, 1, frame.kind);
      assert.match(connection.protocolErrors[0]!, new RegExp(`got ${frame.kind}$`));
      assert.deepEqual(connection.sent, [], frame.kind);
    }
  });

  it("build nothing for a connection whose send queue is over the backlog bound, and drop a held read's answer to it", () => {
    const ledger = new CertifiedLedger(cluster);
    for (let height = 1; height <= 2; height++) ledger.put(`k${height}`, "v");
    const { services: served, counts } = services(ledger);
    const reader = new FakeConnection();
    served.onFrame(reader, { kind: "read-request", requestId: 1, key: kv("k1") });
    assert.equal(served.heldReads, 1);
    reader.sendQueueBytes = ANSWER_BACKLOG_BYTES_MAX + 1;
    served.onFrame(reader, { kind: "status-request", requestId: 2 });
    served.onFrame(reader, { kind: "read-request", requestId: 3, key: kv("k1") });
    served.onFrame(reader, { kind: "blocks-request", requestId: 4, from: 1, to: 2 });
    assert.equal(counts.get("client-queries-backlogged"), 3);
    assert.equal(counts.get("store-reads"), undefined, "no blocks were read from the store");
    assert.equal(served.heldReads, 1, "no read was proven or held");
    certify(served, ledger, 2);
    assert.deepEqual(reader.take(), [], "the held read's answer is dropped too");
    assert.equal(counts.get("client-answers-backlogged"), 1);
    assert.equal(served.heldReads, 0);

    reader.sendQueueBytes = 0;
    served.onFrame(reader, { kind: "status-request", requestId: 5 });
    assert.deepEqual(reader.take().map((frame) => frame.requestId), [5], "once the client reads, it is served again");
  });

  it("charge a blocks request by the bytes of its answer, leaving the bucket in debt until time refills it", () => {
    const ledger = new CertifiedLedger(cluster);
    ledger.put("k", "v");
    let nowMs = 1_000;
    // 11 tokens of answer (40 KiB of body and a few hundred bytes more, at 4 KiB a token): more than the whole burst of 8.
    const large: WireBlock = { ...ledger.wireBlock(1), body: new Uint8Array(40 * 1024) };
    const { services: served, counts } = services(ledger, { nowMs: () => nowMs, queryBurst: 8, queryRatePerSecond: 10, blocks: () => [large] });
    const connection = new FakeConnection();
    served.onFrame(connection, { kind: "blocks-request", requestId: 1, from: 1, to: 1 });
    assert.deepEqual(connection.take().map((frame) => frame.kind), ["blocks"], "one token starts it, whatever its answer costs");
    served.onFrame(connection, { kind: "status-request", requestId: 2 });
    served.onFrame(connection, { kind: "blocks-request", requestId: 3, from: 1, to: 1 });
    assert.deepEqual(connection.take(), [], "the bucket is in debt");
    assert.equal(counts.get("client-queries-rate-limited"), 2);
    nowMs += 300; // 3 tokens at 10 per second: 8 - 11 + 3 = 0, still none to spend
    served.onFrame(connection, { kind: "status-request", requestId: 4 });
    nowMs += 100;
    served.onFrame(connection, { kind: "status-request", requestId: 5 });
    served.onFrame(connection, { kind: "status-request", requestId: 6 });
    assert.deepEqual(connection.take().map((frame) => frame.requestId), [5], "one token earned back, one status served");
  });

  it("limit each connection's rate: beyond its tokens a read is answered 'overloaded' and a status is dropped, until time refills them", () => {
    const ledger = new CertifiedLedger(cluster);
    let nowMs = 1_000;
    const { services: served, counts } = services(ledger, { nowMs: () => nowMs, queryBurst: 3, queryRatePerSecond: 10 });
    const busy = new FakeConnection();
    const other = new FakeConnection();
    for (let requestId = 1; requestId <= 3; requestId++) served.onFrame(busy, { kind: "status-request", requestId });
    served.onFrame(busy, { kind: "status-request", requestId: 4 });
    served.onFrame(busy, { kind: "read-request", requestId: 5, key: kv("k") });
    served.onFrame(other, { kind: "status-request", requestId: 6 });
    assert.deepEqual(busy.take().map((frame) => `${frame.kind} ${frame.requestId}`), ["status 1", "status 2", "status 3", "read-unavailable 5"]);
    assert.deepEqual(other.take().map((frame) => frame.requestId), [6], "another connection has its own tokens");
    assert.equal(counts.get("client-queries-rate-limited"), 2);
    nowMs += 100; // one token at 10 per second
    served.onFrame(busy, { kind: "status-request", requestId: 7 });
    served.onFrame(busy, { kind: "status-request", requestId: 8 });
    assert.deepEqual(busy.take().map((frame) => frame.requestId), [7]);
    assert.ok(QUERY_BURST >= 1_000, "the default burst lets a busy client (a gateway) through");
  });
});
