// Vouched requests (consensus/pbft/types.ts `PbftCrypto.verifyRequest(request, vouched)`;
// certificates.ts; view-change.ts). A session request convinces only the replicas that received
// it from its client; anyone else may accept it only inside a batch that 2f + 1 replicas accepted,
// so that f + 1 correct replicas authenticated it. The crypto here accepts a request signed
// "session:…" only when vouched, as a replica's crypto does for one it never received. What must
// hold: in the normal case a backup refuses a pre-prepare carrying one; a prepared certificate, a
// commit certificate and a NEW-VIEW re-proposal that such a certificate fixed carry it; and a
// certificate with too few (or invalid) votes vouches for nothing: its pre-prepare is never even
// checked as vouched, so the batch is not remembered as valid and the same pre-prepare arriving on
// its own is still refused.

import { describe, it } from "node:test";
import assert from "node:assert/strict";

import {
  CertificateValidator,
  type ClientRequest,
  type Commit,
  type CommitCertificate,
  GENESIS_CHECKPOINT,
  type NewView,
  PbftReplica,
  type PbftCrypto,
  type PrePrepare,
  type Prepare,
  type PreparedCertificate,
  type ReplicaMessage,
  type ViewChange,
  planNewView,
  quorumsFor,
  sign,
} from "../../src/consensus/pbft/index.js";
import { TestService, config, request, testCrypto } from "./harness.js";

const N = 4;
const CONFIG = config(N, { maxBatchSize: 4 });

/** A request only its receivers could authenticate: its "signature" proves nothing to anyone else. */
function sessionRequest(client: string, timestamp: number): ClientRequest {
  return { client, timestamp, operation: Buffer.from(`session-op-${client}-${timestamp}`), signature: `session:${client}/${timestamp}` };
}

interface VerifyCall {
  readonly request: ClientRequest;
  readonly vouched: boolean;
}

/** testCrypto, except that a "session:" request is accepted only when vouched for; every check is logged. */
function sessionCrypto(id: number, calls: VerifyCall[] = []): PbftCrypto {
  const base = testCrypto(id);
  return {
    ...base,
    verifyRequest: (candidate, vouched = false) => {
      calls.push({ request: candidate, vouched });
      return candidate.signature.startsWith("session:") ? vouched : base.verifyRequest(candidate);
    },
  };
}

function prePrepare(view: number, seq: number, requests: readonly ClientRequest[]): PrePrepare {
  const primary = view % N;
  const crypto = sessionCrypto(primary);
  return sign<PrePrepare>(crypto, { type: "pre-prepare", view, seq, digest: crypto.batchDigest(requests), requests, replica: primary });
}

function prepareOf(replica: number, pp: PrePrepare): Prepare {
  return sign<Prepare>(sessionCrypto(replica), { type: "prepare", view: pp.view, seq: pp.seq, digest: pp.digest, replica });
}

function commitOf(replica: number, pp: PrePrepare): Commit {
  return sign<Commit>(sessionCrypto(replica), { type: "commit", view: pp.view, seq: pp.seq, digest: pp.digest, replica });
}

function preparedCertificate(pp: PrePrepare, voters: readonly number[]): PreparedCertificate {
  return { prePrepare: pp, prepares: voters.map((voter) => prepareOf(voter, pp)) };
}

function commitCertificate(pp: PrePrepare, voters: readonly number[]): CommitCertificate {
  return { type: "commit-certificate", prePrepare: pp, commits: voters.map((voter) => commitOf(voter, pp)) };
}

function validator(calls: VerifyCall[] = []): CertificateValidator {
  return new CertificateValidator(sessionCrypto(1, calls), N, quorumsFor(N), CONFIG.checkpointInterval, CONFIG.watermarkWindow);
}

/** A replica of the core with the session crypto, and its execution stand-in. */
function replica(id: number): { replica: PbftReplica; service: TestService } {
  const service = new TestService();
  return { replica: new PbftReplica({ id, config: CONFIG, crypto: sessionCrypto(id), replies: service }), service };
}

function deliver(target: PbftReplica, from: number, message: ReplicaMessage): void {
  target.step({ type: "message", from, message });
}

const SESSION = sessionRequest("carol", 1);
const PLAIN = request("alice", 1);

describe("vouched requests: the normal case", () => {
  it("a backup refuses a pre-prepare carrying a session request it did not receive itself", () => {
    const backup = replica(1).replica;
    deliver(backup, 0, prePrepare(0, 1, [PLAIN, SESSION]));
    const ready = backup.drain();
    assert.equal(backup.counters()["invalid-pre-prepare"], 1);
    assert.deepEqual(ready.send.map((out) => out.message.type), [], "no prepare");
  });

  it("the same backup prepares a pre-prepare of signed requests only (the control)", () => {
    const backup = replica(1).replica;
    deliver(backup, 0, prePrepare(0, 1, [PLAIN]));
    assert.deepEqual(backup.drain().send.map((out) => out.message.type), ["prepare"]);
    assert.equal(backup.counters()["invalid-pre-prepare"], undefined);
  });

  it("a client's session request that the crypto cannot vouch for is refused as a request too", () => {
    const backup = replica(1).replica;
    backup.step({ type: "request", request: SESSION });
    assert.equal(backup.counters()["bad-request-signature"], 1);
    assert.equal(backup.status().pendingRequests, 0);
  });
});

describe("vouched requests: certificates", () => {
  const pp = prePrepare(0, 1, [PLAIN, SESSION]);

  it("a prepared certificate with 2f prepares from backups carries a session request, and checks it as vouched", () => {
    const calls: VerifyCall[] = [];
    const v = validator(calls);
    assert.equal(v.validPreparedCertificate(preparedCertificate(pp, [1, 2])), true);
    assert.ok(calls.some((call) => call.request === SESSION && call.vouched), "the session request was checked as vouched");
  });

  it("a commit certificate with 2f + 1 commits carries a session request", () => {
    assert.equal(validator().validCommitCertificate(commitCertificate(pp, [0, 2, 3])), true);
  });

  it("the pre-prepare alone is refused, and vouched is what makes the difference", () => {
    const v = validator();
    assert.equal(v.validPrePrepare(pp), false);
    assert.equal(v.validPrePrepare(pp, true), true);
  });

  const tooWeak: [string, () => boolean][] = [
    ["a prepared certificate with one prepare", () => validator().validPreparedCertificate(preparedCertificate(pp, [1]))],
    ["a prepared certificate whose second prepare is the primary's", () => validator().validPreparedCertificate(preparedCertificate(pp, [1, 0]))],
    ["a prepared certificate with one backup's prepare twice", () => validator().validPreparedCertificate(preparedCertificate(pp, [1, 1]))],
    ["a commit certificate with 2f commits", () => validator().validCommitCertificate(commitCertificate(pp, [0, 1]))],
    ["a commit certificate with one commit twice", () => validator().validCommitCertificate(commitCertificate(pp, [0, 1, 1]))],
  ];
  for (const [name, check] of tooWeak) {
    it(`${name} is refused`, () => {
      assert.equal(check(), false);
    });
  }

  it("a certificate whose votes are forged or for another digest is refused", () => {
    const forged = { ...prepareOf(2, pp), signature: "2:forged" };
    assert.equal(validator().validPreparedCertificate({ prePrepare: pp, prepares: [prepareOf(1, pp), forged] }), false);
    const other = prePrepare(0, 1, [PLAIN]);
    assert.equal(validator().validPreparedCertificate({ prePrepare: pp, prepares: [prepareOf(1, pp), prepareOf(2, other)] }), false);
    assert.equal(validator().validCommitCertificate({ ...commitCertificate(pp, [0, 1]), commits: [commitOf(0, pp), commitOf(1, pp), commitOf(2, other)] }), false);
  });

  it("a certificate with too few votes never checks its pre-prepare as vouched, and leaves the batch unremembered", () => {
    const calls: VerifyCall[] = [];
    const v = validator(calls);
    assert.equal(v.validPreparedCertificate(preparedCertificate(pp, [1])), false);
    assert.equal(v.validCommitCertificate(commitCertificate(pp, [0, 1])), false);
    assert.equal(v.validPreparedCertificate({ prePrepare: pp, prepares: [prepareOf(1, pp), { ...prepareOf(2, pp), signature: "2:forged" }] }), false);
    assert.deepEqual(calls.filter((call) => call.vouched), [], "no request was checked as vouched");
    // The same pre-prepare on its own (the primary's, in the normal case) is still refused: the
    // weak certificates did not leave its batch in the validator's cache of validated batches.
    assert.equal(v.validPrePrepare(pp), false);
    assert.ok(calls.some((call) => call.request === SESSION && !call.vouched), "it was really checked, not answered from a cache");
  });

  it("once a valid certificate vouched for a batch, the same pre-prepare arriving later is accepted from the cache", () => {
    const v = validator();
    assert.equal(v.validPrePrepare(pp), false);
    assert.equal(v.validCommitCertificate(commitCertificate(pp, [0, 2, 3])), true);
    assert.equal(v.validPrePrepare(pp), true, "2f + 1 replicas accepted this very batch");
    assert.equal(v.validPrePrepare(prePrepare(0, 2, [SESSION])), false, "another batch with the same session request is not");
  });

  it("a vouched batch does not make another pre-prepare of the same seq valid: the digest binds the requests", () => {
    const v = validator();
    assert.equal(v.validCommitCertificate(commitCertificate(pp, [0, 2, 3])), true);
    const swapped = { ...pp, requests: [PLAIN, sessionRequest("carol", 2)] };
    assert.equal(v.validPrePrepare(swapped), false);
    assert.equal(v.validPrePrepare(swapped, true), false);
  });
});

describe("vouched requests: a replica catching up and changing views", () => {
  const pp = prePrepare(0, 1, [PLAIN, SESSION]);

  it("a backup that refused the pre-prepare executes the batch from a commit certificate of 2f + 1 commits", () => {
    const { replica: backup, service } = replica(3);
    deliver(backup, 0, pp);
    assert.equal(backup.counters()["invalid-pre-prepare"], 1);
    deliver(backup, 1, commitCertificate(pp, [0, 1, 2]));
    const ready = backup.drain();
    assert.deepEqual(ready.execute.map((batch) => batch.seq), [1]);
    assert.deepEqual(ready.execute[0]!.requests, [PLAIN, SESSION]);
    assert.equal(backup.counters()["invalid-commit-certificate"], undefined);
    service.execute(ready.execute[0]!.requests);
    assert.deepEqual(service.applied, ["alice/1", "carol/1"]);
  });

  it("a commit certificate of 2f commits is refused, and the pre-prepare sent again afterwards is still refused", () => {
    const backup = replica(3).replica;
    deliver(backup, 1, commitCertificate(pp, [0, 1]));
    assert.equal(backup.counters()["invalid-commit-certificate"], 1);
    deliver(backup, 0, pp);
    assert.equal(backup.counters()["invalid-pre-prepare"], 1);
    const ready = backup.drain();
    assert.deepEqual(ready.execute, []);
    assert.deepEqual(ready.send.map((out) => out.message.type), []);
  });

  /** View 1's NEW-VIEW (primary 1) from VIEW-CHANGEs of 0, 1 and 3; replica 0's carries `certificate`. */
  function newView(certificate: PreparedCertificate | undefined, prePrepares?: (planned: PrePrepare[]) => PrePrepare[]): NewView {
    const viewChanges = [0, 1, 3].map((sender) =>
      sign<ViewChange>(sessionCrypto(sender), {
        type: "view-change",
        view: 1,
        stable: GENESIS_CHECKPOINT,
        // By digest only, as VIEW-CHANGEs carry certificates (consensus/pbft/batches.ts).
        prepared: sender === 0 && certificate !== undefined ? [{ prePrepare: { ...certificate.prePrepare, requests: [] }, prepares: certificate.prepares }] : [],
        replica: sender,
      }),
    );
    const newPrimary = sessionCrypto(1);
    const plan = planNewView(viewChanges, newPrimary.batchDigest([]));
    const planned = plan.reproposals.map((proposal) =>
      sign<PrePrepare>(newPrimary, { type: "pre-prepare", view: 1, seq: proposal.seq, digest: proposal.digest, requests: [], replica: 1 }),
    );
    return sign<NewView>(newPrimary, { type: "new-view", view: 1, viewChanges, prePrepares: prePrepares === undefined ? planned : prePrepares(planned), replica: 1 });
  }

  it("a NEW-VIEW re-proposing a batch that a prepared certificate fixed: the backup prepares it by digest, fetches it, and takes its session request as vouched", () => {
    const { replica: backup, service } = replica(2);
    deliver(backup, 1, newView(preparedCertificate(pp, [2, 3])));
    assert.equal(backup.counters()["invalid-new-view"], undefined);
    assert.deepEqual({ view: backup.status().view, normal: backup.status().normal }, { view: 1, normal: true });
    const sent = backup.drain().send;
    const prepares = sent.map((out) => out.message).filter((message): message is Prepare => message.type === "prepare");
    assert.deepEqual(
      prepares.map((prepare) => ({ view: prepare.view, seq: prepare.seq, digest: prepare.digest })),
      [{ view: 1, seq: 1, digest: pp.digest }],
    );
    // It lacks the batch, so it asks replica 0, whose VIEW-CHANGE showed it prepared.
    assert.deepEqual(
      sent.filter((out) => out.message.type === "batch-request").map((out) => ({ to: out.to, message: out.message })),
      [{ to: 0, message: { type: "batch-request", seq: 1, digest: pp.digest, replica: 2 } }],
    );
    // Committed by digest, it executes only once the batch is here; the session request in it is vouched for.
    const reproposal = sign<PrePrepare>(sessionCrypto(1), { type: "pre-prepare", view: 1, seq: 1, digest: pp.digest, requests: [], replica: 1 });
    deliver(backup, 3, prepareOf(3, reproposal));
    for (const voter of [1, 3]) deliver(backup, voter, commitOf(voter, reproposal));
    assert.deepEqual(backup.drain().execute, []);
    assert.equal(backup.counters()["committed-awaiting-batch"], 1);
    deliver(backup, 0, { type: "batch", seq: 1, digest: pp.digest, requests: [PLAIN, SESSION], replica: 0 });
    const ready = backup.drain();
    assert.deepEqual(ready.execute.map((batch) => batch.requests), [[PLAIN, SESSION]]);
    service.execute(ready.execute[0]!.requests);
    assert.deepEqual(service.applied, ["alice/1", "carol/1"]);
  });

  it("a NEW-VIEW whose only certificate has too few prepares is refused", () => {
    const backup = replica(2).replica;
    deliver(backup, 1, newView(preparedCertificate(pp, [3])));
    assert.equal(backup.counters()["invalid-new-view"], 1);
    assert.equal(backup.status().view, 0);
  });

  it("a new primary cannot slip a session request into a seq that no certificate fixed", () => {
    const backup = replica(2).replica;
    const fixedElsewhere = prePrepare(0, 2, [PLAIN]);
    // Seq 2 prepared (with signed requests only), so seq 1 must be re-proposed as the null request.
    const smuggled = newView(preparedCertificate(fixedElsewhere, [2, 3]), (planned) => {
      const crypto = sessionCrypto(1);
      const forSeq1 = sign<PrePrepare>(crypto, { type: "pre-prepare", view: 1, seq: 1, digest: crypto.batchDigest([SESSION]), requests: [], replica: 1 });
      return [forSeq1, ...planned.slice(1)];
    });
    deliver(backup, 1, smuggled);
    assert.equal(backup.counters()["invalid-new-view"], 1);
    assert.equal(backup.status().view, 0);
    // The honest plan for the same VIEW-CHANGEs is accepted: the refusal is about the smuggled batch.
    const honest = replica(2).replica;
    deliver(honest, 1, newView(preparedCertificate(fixedElsewhere, [2, 3])));
    assert.equal(honest.status().view, 1);
  });
});
