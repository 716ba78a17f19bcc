import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CertificateValidator,
  GENESIS_CHECKPOINT,
  planNewView,
  quorumsFor,
  sign,
  type NewView,
  type PrePrepare,
  type Prepare,
  type PreparedCertificate,
  type ViewChange,
} from "../../src/consensus/pbft/index.js";
import { TestCluster, config, request, testCrypto } from "./harness.js";

function prePrepare(view: number, seq: number, requests = [request("x", seq)]): PrePrepare {
  const crypto = testCrypto(view % 4);
  return sign<PrePrepare>(crypto, { type: "pre-prepare", view, seq, digest: crypto.batchDigest(requests), requests, replica: view % 4 });
}

function certificate(pp: PrePrepare, backups: number[]): PreparedCertificate {
  const prepares = backups.map((r) => sign<Prepare>(testCrypto(r), { type: "prepare", view: pp.view, seq: pp.seq, digest: pp.digest, replica: r }));
  return { prePrepare: pp, prepares };
}

/** A VIEW-CHANGE; its certificates go by digest only (no requests), as replicas send them. */
function viewChange(replica: number, view: number, prepared: PreparedCertificate[] = []): ViewChange {
  return sign<ViewChange>(testCrypto(replica), { type: "view-change", view, stable: GENESIS_CHECKPOINT, prepared: prepared.map(digestOnly), replica });
}

function digestOnly(cert: PreparedCertificate): PreparedCertificate {
  return { prePrepare: { ...cert.prePrepare, requests: [] }, prepares: cert.prepares };
}

const nullDigest = testCrypto(0).batchDigest([]);

test("NEW-VIEW computation: each seq takes the prepared certificate from the highest view, and gaps get null requests", () => {
  const old = prePrepare(0, 2, [request("old", 1)]);
  const newer = prePrepare(1, 2, [request("new", 1)]);
  const three = prePrepare(0, 4, [request("c", 1)]);
  const plan = planNewView(
    [viewChange(1, 2, [certificate(old, [1, 2])]), viewChange(2, 2, [certificate(newer, [2, 3]), certificate(three, [1, 2])]), viewChange(3, 2)],
    nullDigest,
  );
  assert.equal(plan.stable.seq, 0);
  assert.deepEqual(
    plan.reproposals.map((r) => [r.seq, r.digest]),
    [
      [1, nullDigest],
      [2, newer.digest],
      [3, nullDigest],
      [4, three.digest],
    ],
  );
});

test("certificate validation: a prepared certificate needs 2f prepares from distinct backups, not the primary", () => {
  const v = new CertificateValidator(testCrypto(0), 4, quorumsFor(4), 4, 8);
  const pp = prePrepare(0, 1);
  assert.ok(v.validPreparedCertificate(certificate(pp, [1, 2])));
  assert.ok(!v.validPreparedCertificate(certificate(pp, [1])), "too few");
  assert.ok(!v.validPreparedCertificate(certificate(pp, [0, 1])), "the primary's prepare");
  assert.ok(!v.validPreparedCertificate(certificate(pp, [1, 1])), "the same backup twice");
  const forged = certificate(pp, [1, 2]);
  assert.ok(!v.validPreparedCertificate({ ...forged, prepares: [forged.prepares[0]!, { ...forged.prepares[1]!, signature: "2:x" }] }), "a forged prepare");
  assert.ok(!v.validPreparedCertificate({ ...forged, prePrepare: { ...pp, digest: "other" } }), "a pre-prepare whose digest is not its batch's");
});

test("certificate validation: a VIEW-CHANGE with a certificate from its own or a later view is invalid", () => {
  const v = new CertificateValidator(testCrypto(0), 4, quorumsFor(4), 4, 8);
  assert.ok(v.validViewChange(viewChange(1, 1, [certificate(prePrepare(0, 1), [1, 2])])));
  assert.ok(!v.validViewChange(viewChange(1, 1, [certificate(prePrepare(1, 1), [2, 3])])));
  assert.ok(!v.validViewChange(viewChange(1, 1, [certificate(prePrepare(0, 9), [1, 2])])), "outside the window above its checkpoint");
  const withBatch = sign<ViewChange>(testCrypto(1), { type: "view-change", view: 1, stable: GENESIS_CHECKPOINT, prepared: [certificate(prePrepare(0, 1), [1, 2])], replica: 1 });
  assert.ok(!v.validViewChange(withBatch), "a certificate that carries its batch: VIEW-CHANGEs go by digest");
});

test("a backup whose request does not execute in time starts a view change", () => {
  const c = new TestCluster(4, config(4, { viewChangeTimeoutTicks: 10 }));
  c.nodes[0]!.up = false; // a silent primary
  c.step(1, { type: "request", request: request("a", 1) });
  for (let t = 1; t < 10; t++) c.nodes[1]!.replica.step({ type: "tick" });
  assert.equal(c.nodes[1]!.replica.status().view, 0, "not before the timeout");
  c.nodes[1]!.replica.step({ type: "tick" });
  assert.equal(c.nodes[1]!.replica.status().view, 1);
  assert.equal(c.nodes[1]!.replica.status().normal, false);
});

test("a replica alone in a view change waits for the others instead of racing through views", () => {
  const c = new TestCluster(4, config(4, { viewChangeTimeoutTicks: 10 }));
  c.nodes[0]!.up = false;
  c.step(1, { type: "request", request: request("a", 1) });
  for (let t = 0; t < 500; t++) c.nodes[1]!.replica.step({ type: "tick" });
  c.nodes[1]!.replica.drain();
  assert.equal(c.nodes[1]!.replica.status().view, 1);
});

test("the NEW-VIEW timer starts once 2f + 1 replicas ask for the view, and doubles for each further view", () => {
  // n = 10, f = 3: the primaries of views 0, 1 and 2 are down; 7 = 2f + 1 replicas remain.
  const c = new TestCluster(10, config(10, { viewChangeTimeoutTicks: 10, viewChangeTimeoutMaxTicks: 1000 }));
  for (const id of [0, 1, 2]) c.nodes[id]!.up = false;
  for (let id = 3; id < 10; id++) c.step(id, { type: "request", request: request("a", 1) });
  c.inFlight = [];
  const entered: number[] = [];
  for (let t = 1; t <= 200 && entered.length < 3; t++) {
    c.tick();
    const status = c.nodes[5]!.replica.status();
    const reached = entered.length + 1;
    if (status.view >= reached) entered.push(t);
  }
  // Request timer 10, then view 1 waits 10 and view 2 waits 20 before view 3 (a live primary).
  assert.deepEqual(entered, [10, 20, 40]);
  c.tick(10);
  assert.equal(c.nodes[5]!.replica.status().normal, true);
  assert.deepEqual(c.nodes[5]!.service.applied, ["a/1"]);
});

test("a replica joins a view change on f + 1 VIEW-CHANGEs for higher views, not on f", () => {
  const c = new TestCluster(4);
  const replica = c.nodes[3]!.replica;
  replica.step({ type: "message", from: 1, message: viewChange(1, 1) });
  assert.equal(replica.status().view, 0);
  replica.step({ type: "message", from: 2, message: viewChange(2, 2) });
  assert.equal(replica.status().view, 1, "joins the smallest view of the f + 1 highest");
  assert.ok(replica.drain().send.some((s) => s.message.type === "view-change"));
});

test("view change end to end: a silent primary is replaced, prepared requests survive, clients' requests complete", () => {
  const c = new TestCluster(4, config(4, { viewChangeTimeoutTicks: 10 }));
  c.submit(request("a", 1));
  c.nodes[0]!.up = false;
  for (const id of [1, 2, 3]) c.step(id, { type: "request", request: request("b", 1) });
  c.tick(40);
  for (const id of [1, 2, 3]) {
    assert.equal(c.nodes[id]!.replica.status().view, 1);
    assert.deepEqual(c.nodes[id]!.service.applied, ["a/1", "b/1"]);
  }
});

test("a backup rejects a NEW-VIEW whose pre-prepares differ from the ones recomputed from its VIEW-CHANGEs", () => {
  const c = new TestCluster(4);
  const pp = prePrepare(0, 1, [request("a", 1)]);
  const vcs = [viewChange(1, 1, [certificate(pp, [1, 2])]), viewChange(2, 1, [certificate(pp, [1, 2])]), viewChange(3, 1)];
  const crypto = testCrypto(1);
  const nullPp = sign<PrePrepare>(crypto, { type: "pre-prepare", view: 1, seq: 1, digest: crypto.batchDigest([]), requests: [], replica: 1 });
  const bad = sign<NewView>(crypto, { type: "new-view", view: 1, viewChanges: vcs, prePrepares: [nullPp], replica: 1 });
  const replica = c.nodes[2]!.replica;
  replica.step({ type: "message", from: 1, message: bad });
  assert.equal(replica.counters()["invalid-new-view"], 1);
  assert.equal(replica.status().view, 0);
  const withBatch = sign<PrePrepare>(crypto, { type: "pre-prepare", view: 1, seq: 1, digest: pp.digest, requests: pp.requests, replica: 1 });
  replica.step({ type: "message", from: 1, message: sign<NewView>(crypto, { type: "new-view", view: 1, viewChanges: vcs, prePrepares: [withBatch], replica: 1 }) });
  assert.equal(replica.counters()["invalid-new-view"], 2, "re-proposals go by digest, without their batches");
  const goodPp = sign<PrePrepare>(crypto, { type: "pre-prepare", view: 1, seq: 1, digest: pp.digest, requests: [], replica: 1 });
  const forgedPp = { ...goodPp, signature: "1:forged" };
  replica.step({ type: "message", from: 1, message: sign<NewView>(crypto, { type: "new-view", view: 1, viewChanges: vcs, prePrepares: [forgedPp], replica: 1 }) });
  assert.equal(replica.counters()["invalid-new-view"], 3, "a re-proposal the new primary did not sign");
  const good = sign<NewView>(crypto, { type: "new-view", view: 1, viewChanges: vcs, prePrepares: [goodPp], replica: 1 });
  replica.step({ type: "message", from: 1, message: good });
  assert.equal(replica.status().view, 1);
  assert.equal(replica.status().normal, true);
});

test("a NEW-VIEW with fewer than 2f + 1 VIEW-CHANGEs, or two from one replica, is rejected", () => {
  const c = new TestCluster(4);
  const crypto = testCrypto(1);
  const replica = c.nodes[2]!.replica;
  for (const vcs of [[viewChange(1, 1), viewChange(2, 1)], [viewChange(1, 1), viewChange(2, 1), viewChange(2, 1)]]) {
    replica.step({ type: "message", from: 1, message: sign<NewView>(crypto, { type: "new-view", view: 1, viewChanges: vcs, prePrepares: [], replica: 1 }) });
  }
  assert.equal(replica.counters()["invalid-new-view"], 2);
});

test("certificate validation: VIEW-CHANGEs verify no client signature, and a batch's are verified once however many certificates carry it", () => {
  let requestVerifications = 0;
  const base = testCrypto(0);
  const counting = { ...base, verifyRequest: (r: Parameters<typeof base.verifyRequest>[0]) => (requestVerifications++, base.verifyRequest(r)) };
  const v = new CertificateValidator(counting, 4, quorumsFor(4), 4, 8);
  const requests = [request("a", 1), request("b", 1), request("c", 1)];
  const pp = prePrepare(0, 1, requests);
  for (let i = 0; i < 5; i++) assert.ok(v.validViewChange(viewChange(1 + (i % 3), 1, [certificate(pp, [1, 2])])));
  assert.equal(requestVerifications, 0);
  for (let i = 0; i < 5; i++) assert.ok(v.validPreparedCertificate(certificate(pp, [1 + (i % 3), 1 + ((i + 1) % 3)])));
  assert.equal(requestVerifications, 3);
  // A batch whose requests differ from the signed digest is still refused, remembered or not.
  assert.ok(!v.validPrePrepare({ ...pp, requests: [request("a", 1)] }));
  const forged = { ...request("x", 1), signature: "client:forged" };
  const bad = prePrepare(0, 2, [forged]);
  assert.ok(!v.validPrePrepare(bad));
  assert.ok(!v.validPrePrepare(bad), "a batch with a bad request is never remembered as valid");
});
