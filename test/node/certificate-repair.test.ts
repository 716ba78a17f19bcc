// Certificate repair (src/node/certificate-repair.ts): which heights a round covers, and when the
// fresh signatures peers send for them make a commit certificate. Every signature is a real
// Ed25519 signature over a real header, and every certificate the repair returns is checked with
// `verifyCertificate`, as a client would.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { type BlockHeader } from "../../src/ledger/block-header.js";
import { type BlockSignature, verifyCertificate } from "../../src/ledger/certificate.js";
import { CertificateRepair, REPAIR_MISSING_MAX, REPAIR_WINDOW_HEIGHTS } from "../../src/node/certificate-repair.js";
import { testCluster } from "../ledger/fixtures.js";
import { headerAt, signedBy } from "./signature-fixtures.js";

// n = 7, f = 2: a certificate needs 2f + 1 = 5 signatures, which differs from n - 1, f + 1 and
// f + 2, so a repair that counted any of those would fail these tests. This replica is 0.
const cluster = testCluster(7);
const OWN = 0;
const QUORUM = 5;

/** This replica's stored header and signature for each height, recording which heights were asked. */
function ownStore(options: { readonly missing?: ReadonlySet<number> } = {}): {
  readonly own: (height: number) => { header: BlockHeader; signature: BlockSignature } | undefined;
  readonly asked: number[];
} {
  const asked: number[] = [];
  const own = (height: number): { header: BlockHeader; signature: BlockSignature } | undefined => {
    asked.push(height);
    if (options.missing?.has(height) === true) return undefined;
    const header = headerAt(cluster, height);
    return { header, signature: signedBy(cluster, OWN, header) };
  };
  return { own, asked };
}

/** A repair with `heights` missing and one round started over them. */
function repairWithRound(heights: readonly number[]): CertificateRepair {
  const repair = new CertificateRepair(cluster.config);
  repair.add(heights);
  assert.notEqual(repair.startRound(ownStore().own), undefined, "the round starts");
  return repair;
}

/** Peer `replica`'s signature bytes over our header at `height` (state root byte 1). */
function peerSignature(replica: number, height: number, stateRootByte = 1): Uint8Array {
  return signedBy(cluster, replica, headerAt(cluster, height, stateRootByte)).signature;
}

describe("certificate repair rounds", () => {
  it("a round covers the lowest missing heights within REPAIR_WINDOW_HEIGHTS of the lowest, and no others", () => {
    const repair = new CertificateRepair(cluster.config);
    const last = 10 + REPAIR_WINDOW_HEIGHTS - 1;
    repair.add([10, 12, last, last + 1, last + 500]);
    const { own, asked } = ownStore();
    assert.deepEqual(repair.startRound(own), { from: 10, to: last });
    assert.deepEqual(asked, [10, 12, last], "only the heights of the window are read from the store");
    assert.equal(repair.windowSize, 3);
    assert.equal(repair.size, 5, "the heights beyond the window still wait");
    assert.equal(repair.counters.rounds, 1);
    for (const height of [10, 12, last]) assert.equal(repair.wants(height), true, `height ${height} is in the round`);
    for (const height of [9, 11, last + 1, last + 500]) assert.equal(repair.wants(height), false, `height ${height} is not`);
  });

  it("a repair with nothing missing starts no round", () => {
    const repair = new CertificateRepair(cluster.config);
    const { own, asked } = ownStore();
    assert.equal(repair.startRound(own), undefined);
    assert.deepEqual(asked, []);
    assert.equal(repair.counters.rounds, 0);
    assert.equal(repair.size, 0);
  });

  it("a height the store no longer holds is dropped from the round and from the repair", () => {
    const repair = new CertificateRepair(cluster.config);
    repair.add([1, 2, 3]);
    const { own } = ownStore({ missing: new Set([2]) });
    assert.deepEqual(repair.startRound(own), { from: 1, to: 3 });
    assert.equal(repair.wants(2), false);
    assert.equal(repair.windowSize, 2);
    assert.equal(repair.size, 2);
    // It is never asked for again.
    const again = ownStore();
    repair.startRound(again.own);
    assert.equal(again.asked.includes(2), false);
  });

  it("when every height of the lowest window is gone the round moves on to the next missing heights", () => {
    const repair = new CertificateRepair(cluster.config);
    const far = 1 + 3 * REPAIR_WINDOW_HEIGHTS;
    repair.add([1, 2, far, far + 1]);
    const { own, asked } = ownStore({ missing: new Set([1, 2]) });
    assert.deepEqual(repair.startRound(own), { from: far, to: far + 1 });
    assert.deepEqual(asked, [1, 2, far, far + 1]);
    assert.equal(repair.size, 2);
    assert.equal(repair.counters.rounds, 1, "the skipped window is not a round");
  });

  it("when no missing height is stored any more there is no round and nothing left to repair", () => {
    const repair = new CertificateRepair(cluster.config);
    repair.add([4, 5, 4 + 2 * REPAIR_WINDOW_HEIGHTS]);
    assert.equal(repair.startRound(ownStore({ missing: new Set([4, 5, 4 + 2 * REPAIR_WINDOW_HEIGHTS]) }).own), undefined);
    assert.equal(repair.size, 0);
    assert.equal(repair.windowSize, 0);
    assert.equal(repair.counters.rounds, 0);
  });

  it("a new round keeps the signatures gathered in the last one for heights still missing", () => {
    const repair = repairWithRound([7, 8]);
    for (const replica of [1, 2, 3]) assert.equal(repair.onSignature(replica, 7, peerSignature(replica, 7)), undefined);
    const { own, asked } = ownStore();
    assert.deepEqual(repair.startRound(own), { from: 7, to: 8 });
    assert.deepEqual(asked, [], "heights already in the window are not read again");
    // One more signature is the fifth: ours and replicas 1, 2, 3 from the last round, and 4.
    const result = repair.onSignature(4, 7, peerSignature(4, 7));
    assert.ok(result !== undefined, "the kept signatures count toward the quorum");
    assert.deepEqual(result.certificate.signatures.map(({ replica }) => replica), [0, 1, 2, 3, 4]);
  });
});

describe("adding heights to repair", () => {
  it("add keeps the heights ascending and ignores duplicates, within one call and across calls", () => {
    const repair = new CertificateRepair(cluster.config);
    repair.add([9, 3, 5, 3]);
    repair.add([5, 1, 9]);
    assert.equal(repair.size, 4);
    const { own, asked } = ownStore();
    assert.deepEqual(repair.startRound(own), { from: 1, to: 9 });
    assert.deepEqual(asked, [1, 3, 5, 9]);
  });

  it("add stops at REPAIR_MISSING_MAX heights, and takes more once some are resolved", () => {
    const repair = new CertificateRepair(cluster.config);
    const heights = Array.from({ length: REPAIR_MISSING_MAX + 10 }, (_, index) => index + 2);
    repair.add(heights);
    assert.equal(repair.size, REPAIR_MISSING_MAX);
    repair.add([1]);
    assert.equal(repair.size, REPAIR_MISSING_MAX, "a full repair takes no height, not even a lower one");
    assert.equal(repair.startRound(ownStore().own)?.from, 2);

    repair.forget(2);
    assert.equal(repair.size, REPAIR_MISSING_MAX - 1);
    repair.add([1]);
    assert.equal(repair.size, REPAIR_MISSING_MAX);
    assert.equal(repair.startRound(ownStore().own)?.from, 1);
  });

  it("a forgotten height leaves the round and the repair, and its signatures no longer count", () => {
    const repair = repairWithRound([3, 4]);
    repair.forget(3);
    assert.equal(repair.wants(3), false);
    assert.equal(repair.size, 1);
    assert.equal(repair.windowSize, 1);
    for (const replica of [1, 2, 3, 4, 5, 6]) assert.equal(repair.onSignature(replica, 3, peerSignature(replica, 3)), undefined);
    assert.equal(repair.counters.signaturesAccepted, 0);
    assert.equal(repair.counters.certified, 0);
  });
});

describe("bad input to the repair", () => {
  it("add refuses anything that is not a block height", () => {
    const repair = new CertificateRepair(cluster.config);
    for (const height of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => repair.add([height]), RangeError, String(height));
    assert.equal(repair.size, 0);
  });

  it("forgetting a height that was never missing changes nothing", () => {
    const repair = new CertificateRepair(cluster.config);
    repair.add([3, 5]);
    repair.forget(4);
    repair.forget(4);
    assert.equal(repair.size, 2);
    repair.forget(5);
    assert.equal(repair.size, 1);
  });
});

describe("certifying a height", () => {
  it("certifies a height at exactly 2f + 1 distinct valid signatures, ours included, with a certificate that verifies", () => {
    const repair = repairWithRound([5, 6]);
    for (const replica of [1, 2, 3]) {
      assert.equal(repair.onSignature(replica, 5, peerSignature(replica, 5)), undefined, `${replica + 1} signatures are not a quorum`);
    }
    const result = repair.onSignature(6, 5, peerSignature(6, 5));
    assert.ok(result !== undefined, `${QUORUM} signatures certify`);
    assert.equal(result.height, 5);
    assert.deepEqual(result.header, headerAt(cluster, 5));
    assert.equal(result.certificate.height, 5);
    assert.deepEqual(result.certificate.signatures.map(({ replica }) => replica), [0, 1, 2, 3, 6]);
    assert.deepEqual(verifyCertificate(cluster.config, headerAt(cluster, 5), result.certificate), { ok: true });
    assert.deepEqual(repair.counters, { certified: 1, signaturesAccepted: 4, signaturesInvalid: 0, rounds: 1 });
  });

  it("a certified height leaves the round and the repair, and later signatures for it do nothing", () => {
    const repair = repairWithRound([5, 6]);
    assert.equal(repair.size, 2);
    let result: ReturnType<CertificateRepair["onSignature"]>;
    for (const replica of [1, 2, 3, 4]) result = repair.onSignature(replica, 5, peerSignature(replica, 5));
    assert.ok(result !== undefined);
    assert.equal(repair.size, 1);
    assert.equal(repair.windowSize, 1);
    assert.equal(repair.wants(5), false);
    assert.equal(repair.onSignature(5, 5, peerSignature(5, 5)), undefined);
    assert.equal(repair.counters.certified, 1);
    assert.equal(repair.counters.signaturesAccepted, 4);
    // The next round covers only the height still missing.
    const { own, asked } = ownStore();
    assert.deepEqual(repair.startRound(own), { from: 6, to: 6 });
    assert.deepEqual(asked, []);
  });

  it("a signature over another header (another state root) is invalid and counts toward no quorum", () => {
    const repair = repairWithRound([5]);
    for (const replica of [1, 2, 3, 4, 5, 6]) {
      assert.equal(repair.onSignature(replica, 5, peerSignature(replica, 5, 2)), undefined);
    }
    assert.equal(repair.counters.signaturesInvalid, 6);
    assert.equal(repair.counters.signaturesAccepted, 0);
    assert.equal(repair.counters.certified, 0);
    assert.equal(repair.wants(5), true, "the height stays in the round");
    assert.equal(repair.size, 1);
  });

  it("a replica's signature over another height's header is invalid", () => {
    const repair = repairWithRound([5]);
    assert.equal(repair.onSignature(1, 5, peerSignature(1, 6)), undefined);
    assert.equal(repair.counters.signaturesInvalid, 1);
  });

  it("a signature in another replica's name is invalid, and that replica may still sign", () => {
    const repair = repairWithRound([5]);
    // Replica 2 sends replica 1's signature as its own.
    assert.equal(repair.onSignature(2, 5, peerSignature(1, 5)), undefined);
    assert.equal(repair.counters.signaturesInvalid, 1);
    let result: ReturnType<CertificateRepair["onSignature"]>;
    for (const replica of [1, 2, 3, 4]) result = repair.onSignature(replica, 5, peerSignature(replica, 5));
    assert.ok(result !== undefined, "replica 2's own signature still counts");
  });

  it("a second signature from one replica counts once, even if both are valid", () => {
    const repair = repairWithRound([5]);
    for (let copy = 0; copy < 5; copy++) assert.equal(repair.onSignature(1, 5, peerSignature(1, 5)), undefined);
    assert.equal(repair.counters.signaturesAccepted, 1);
    // Our own signature is already in: a peer claiming id 0 adds nothing.
    assert.equal(repair.onSignature(OWN, 5, peerSignature(OWN, 5)), undefined);
    assert.equal(repair.counters.signaturesAccepted, 1);
    for (const replica of [2, 3]) assert.equal(repair.onSignature(replica, 5, peerSignature(replica, 5)), undefined);
    assert.ok(repair.onSignature(4, 5, peerSignature(4, 5)) !== undefined, "the fifth distinct replica certifies");
  });

  it("an invalid signature does not use up the replica's place: its valid signature later counts", () => {
    const repair = repairWithRound([5]);
    assert.equal(repair.onSignature(1, 5, new Uint8Array(64)), undefined);
    assert.equal(repair.onSignature(1, 5, peerSignature(1, 5, 9)), undefined);
    assert.equal(repair.counters.signaturesInvalid, 2);
    for (const replica of [1, 2, 3]) assert.equal(repair.onSignature(replica, 5, peerSignature(replica, 5)), undefined);
    assert.ok(repair.onSignature(4, 5, peerSignature(4, 5)) !== undefined);
  });

  it("a signature from a replica outside the cluster is ignored without being counted", () => {
    const repair = repairWithRound([5]);
    for (const replica of [-1, cluster.config.n, 1000]) {
      // A valid signature by some key, so only the replica id can be what refuses it.
      assert.equal(repair.onSignature(replica, 5, peerSignature(1, 5)), undefined);
    }
    assert.deepEqual(repair.counters, { certified: 0, signaturesAccepted: 0, signaturesInvalid: 0, rounds: 1 });
    for (const replica of [1, 2, 3]) assert.equal(repair.onSignature(replica, 5, peerSignature(replica, 5)), undefined, "they added nothing to the quorum");
  });

  it("signatures for heights outside the round are not wanted and not kept for a later round", () => {
    const repair = new CertificateRepair(cluster.config);
    const beyond = 1 + REPAIR_WINDOW_HEIGHTS;
    repair.add([1, beyond]);
    assert.equal(repair.wants(1), false, "no round started yet");
    assert.equal(repair.onSignature(1, 1, peerSignature(1, 1)), undefined);
    assert.deepEqual(repair.startRound(ownStore().own), { from: 1, to: 1 });
    assert.equal(repair.wants(beyond), false);
    for (const replica of [1, 2, 3, 4, 5, 6]) assert.equal(repair.onSignature(replica, beyond, peerSignature(replica, beyond)), undefined);
    assert.equal(repair.counters.signaturesAccepted, 0);

    // Once height 1 is forgotten the next round covers `beyond`, which starts from our signature alone.
    repair.forget(1);
    assert.deepEqual(repair.startRound(ownStore().own), { from: beyond, to: beyond });
    for (const replica of [1, 2, 3]) assert.equal(repair.onSignature(replica, beyond, peerSignature(replica, beyond)), undefined);
    assert.ok(repair.onSignature(4, beyond, peerSignature(4, beyond)) !== undefined);
  });

  it("the certificate keeps its own copy of each signature's bytes", () => {
    const repair = repairWithRound([5]);
    let result: ReturnType<CertificateRepair["onSignature"]>;
    const received: Uint8Array[] = [];
    for (const replica of [1, 2, 3, 4]) {
      const bytes = peerSignature(replica, 5);
      received.push(bytes);
      result = repair.onSignature(replica, 5, bytes);
    }
    assert.ok(result !== undefined);
    // The network layer may reuse its receive buffers.
    for (const bytes of received) bytes.fill(0);
    assert.deepEqual(verifyCertificate(cluster.config, headerAt(cluster, 5), result.certificate), { ok: true });
  });
});
