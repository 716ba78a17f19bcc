// The block certifier (src/node/block-certifier.ts): a height is certified once 2f + 1 distinct
// replicas signed OUR header of it, signatures that come early wait for our block, and the
// memory held is bounded by the window around the executed height. Signatures are real Ed25519
// signatures over real headers, and every certificate is checked with `verifyCertificate`.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { type BlockHeader } from "../../src/ledger/block-header.js";
import { type CommitCertificate, type SignatureCheck, verifyCertificate } from "../../src/ledger/certificate.js";
import { ed25519Verify } from "../../src/crypto/ed25519.js";
import { BlockCertifier, headerDigest } from "../../src/node/block-certifier.js";
import { testCluster } from "../ledger/fixtures.js";
import { headerAt, signedBy } from "./signature-fixtures.js";

// n = 7, f = 2: a certificate needs 2f + 1 = 5 signatures, which differs from n - 1, f + 1 and
// f + 2. This replica is 0.
const cluster = testCluster(7);
const OWN = 0;
const AHEAD_MAX = 8;
const BEHIND_MAX = 4;

interface Harness {
  readonly certifier: BlockCertifier;
  readonly certified: Array<{ header: BlockHeader; certificate: CommitCertificate }>;
  readonly abandoned: number[];
  /** Our block at `height` executed and signed. */
  readonly ownBlock: (height: number) => void;
  /** Replica `replica`'s signature over the header at `height` with state root byte `stateRootByte` (ours is 1). */
  readonly peer: (replica: number, height: number, stateRootByte?: number) => void;
}

function harness(verify?: SignatureCheck): Harness {
  const certified: Array<{ header: BlockHeader; certificate: CommitCertificate }> = [];
  const abandoned: number[] = [];
  const certifier = new BlockCertifier({
    cluster: cluster.config,
    aheadMax: AHEAD_MAX,
    behindMax: BEHIND_MAX,
    onCertified: (header, certificate) => certified.push({ header, certificate }),
    onAbandoned: (height) => abandoned.push(height),
    ...(verify === undefined ? {} : { verify }),
  });
  return {
    certifier,
    certified,
    abandoned,
    ownBlock: (height) => {
      const header = headerAt(cluster, height);
      certifier.onOwnBlock(header, signedBy(cluster, OWN, header));
    },
    peer: (replica, height, stateRootByte = 1) => {
      certifier.onSignature(replica, height, signedBy(cluster, replica, headerAt(cluster, height, stateRootByte)).signature);
    },
  };
}

function assertCertifiedAt(certified: Harness["certified"], heights: readonly number[]): void {
  assert.deepEqual(
    certified.map(({ header }) => header.height),
    heights,
  );
  for (const { header, certificate } of certified) {
    assert.deepEqual(header, headerAt(cluster, header.height), "the certificate is for our header");
    assert.deepEqual(verifyCertificate(cluster.config, header, certificate), { ok: true }, `the certificate of height ${header.height} verifies`);
  }
}

describe("certifying our blocks", () => {
  it("certifies a height at exactly 2f + 1 distinct valid signatures, ours included, exactly once", () => {
    const { certifier, certified, ownBlock, peer } = harness();
    ownBlock(1);
    for (const replica of [1, 2, 3]) peer(replica, 1);
    assert.equal(certified.length, 0, "four signatures are not a quorum");
    peer(5, 1);
    assertCertifiedAt(certified, [1]);
    assert.deepEqual(certified[0]?.certificate.signatures.map(({ replica }) => replica), [0, 1, 2, 3, 5]);
    // The sixth and seventh signatures make no second certificate.
    peer(4, 1);
    peer(6, 1);
    assertCertifiedAt(certified, [1]);
    assert.equal(certifier.counters.certified, 1);
    assert.equal(certifier.counters.signaturesAccepted, 4);
  });

  it("checks peers' signatures with the verify function it is given (a replica's sodium backend)", () => {
    const checked: number[] = [];
    const { certifier, certified, ownBlock, peer } = harness((publicKey, message, signature) => {
      checked.push(signature.length);
      return ed25519Verify(publicKey, message, signature) && checked.length !== 2;
    });
    ownBlock(1);
    for (const replica of [1, 2, 3, 4, 5]) peer(replica, 1);
    assert.equal(checked.length, 5, "every peer signature went through it");
    assert.equal(certifier.counters.signaturesInvalid, 1, "its false verdict counts as an invalid signature");
    assertCertifiedAt(certified, [1]);
  });

  it("a signature over another header (another state root) is invalid and counts toward no quorum", () => {
    const { certifier, certified, ownBlock, peer } = harness();
    ownBlock(1);
    for (const replica of [1, 2, 3, 4, 5, 6]) peer(replica, 1, 2);
    assert.equal(certified.length, 0);
    assert.equal(certifier.counters.signaturesInvalid, 6);
    assert.equal(certifier.counters.signaturesAccepted, 0);
  });

  it("a replica whose signature was invalid may still send a valid one", () => {
    const { certified, ownBlock, peer } = harness();
    ownBlock(1);
    peer(1, 1, 2);
    for (const replica of [1, 2, 3]) peer(replica, 1);
    assert.equal(certified.length, 0);
    peer(4, 1);
    assertCertifiedAt(certified, [1]);
  });

  it("a second signature from one replica is dropped and counts once", () => {
    const { certifier, certified, ownBlock, peer } = harness();
    ownBlock(1);
    for (let copy = 0; copy < 4; copy++) peer(1, 1);
    peer(OWN, 1);
    assert.equal(certifier.counters.signaturesAccepted, 1);
    assert.equal(certifier.counters.signaturesDropped, 4, "three copies of replica 1's and one in our name");
    peer(2, 1);
    peer(3, 1);
    assert.equal(certified.length, 0);
    peer(4, 1);
    assertCertifiedAt(certified, [1]);
  });

  it("a signature from a replica outside the cluster is invalid and adds nothing", () => {
    const { certifier, certified, ownBlock } = harness();
    ownBlock(1);
    const valid = signedBy(cluster, 1, headerAt(cluster, 1)).signature;
    for (const replica of [-1, cluster.config.n, 1000]) certifier.onSignature(replica, 1, valid);
    assert.equal(certifier.counters.signaturesInvalid, 3);
    assert.equal(certifier.counters.signaturesAccepted, 0);
    assert.equal(certified.length, 0);
  });

  it("a signature from a replica outside the cluster is refused at once, even before our block, and holds no memory", () => {
    const { certifier } = harness();
    const valid = signedBy(cluster, 1, headerAt(cluster, 2)).signature;
    for (const replica of [-1, cluster.config.n, 1000]) certifier.onSignature(replica, 2, valid);
    assert.equal(certifier.counters.signaturesInvalid, 3);
    assert.equal(certifier.pendingHeights, 0);
  });

  it("heights certify independently", () => {
    const { certified, ownBlock, peer } = harness();
    ownBlock(1);
    ownBlock(2);
    for (const replica of [1, 2, 3]) peer(replica, 2);
    for (const replica of [1, 2, 3]) peer(replica, 1);
    assert.equal(certified.length, 0);
    peer(4, 2);
    peer(4, 1);
    assertCertifiedAt(certified, [2, 1]);
  });
});

describe("signatures that arrive before our block", () => {
  it("early signatures wait unverified and are checked when our block arrives, the bad ones counted invalid", () => {
    const { certifier, certified, ownBlock, peer } = harness();
    for (const replica of [1, 2, 3]) peer(replica, 1);
    peer(4, 1, 2);
    assert.equal(certifier.counters.signaturesAccepted, 0, "nothing to check them against yet");
    assert.equal(certifier.counters.signaturesInvalid, 0);
    assert.equal(certifier.pendingHeights, 1);
    ownBlock(1);
    assert.equal(certifier.counters.signaturesAccepted, 3);
    assert.equal(certifier.counters.signaturesInvalid, 1);
    assert.equal(certified.length, 0, "ours and three valid are four");
    peer(5, 1);
    assertCertifiedAt(certified, [1]);
    assert.deepEqual(certified[0]?.certificate.signatures.map(({ replica }) => replica), [0, 1, 2, 3, 5]);
  });

  it("early signatures beyond the quorum are not checked when our block arrives", () => {
    const checked: number[] = [];
    const { certifier, certified, ownBlock, peer } = harness((publicKey, message, signature) => {
      checked.push(signature.length);
      return ed25519Verify(publicKey, message, signature);
    });
    for (const replica of [1, 2, 3, 4, 5, 6]) peer(replica, 1);
    ownBlock(1);
    assert.equal(checked.length, 4, "ours and four peers' make the quorum of five; the other two are dropped unchecked");
    assert.equal(certifier.counters.signaturesDropped, 2);
    assertCertifiedAt(certified, [1]);
  });

  it("our block certifies at once when a quorum of early signatures was waiting", () => {
    const { certified, ownBlock, peer } = harness();
    ownBlock(1);
    for (const replica of [1, 2, 3, 4]) peer(replica, 2);
    assert.equal(certified.length, 0);
    ownBlock(2);
    assertCertifiedAt(certified, [2]);
  });

  it("a second early signature from one replica is dropped", () => {
    const { certifier, ownBlock, peer } = harness();
    peer(1, 1, 2);
    peer(1, 1);
    assert.equal(certifier.counters.signaturesDropped, 1);
    ownBlock(1);
    assert.equal(certifier.counters.signaturesInvalid, 1, "the first one is the one kept");
    assert.equal(certifier.counters.signaturesAccepted, 0);
  });
});

describe("the window of heights a certifier keeps", () => {
  it("signatures for height 0 or below are dropped before any block executed", () => {
    const { certifier } = harness();
    for (const height of [0, -1]) certifier.onSignature(1, height, new Uint8Array(64));
    assert.equal(certifier.counters.signaturesDropped, 2);
    assert.equal(certifier.pendingHeights, 0);
  });

  it("signatures more than aheadMax above the executed height are dropped", () => {
    const { certifier, ownBlock, peer } = harness();
    peer(1, AHEAD_MAX);
    peer(1, AHEAD_MAX + 1);
    assert.equal(certifier.counters.signaturesDropped, 1);
    assert.equal(certifier.pendingHeights, 1);
    ownBlock(1);
    peer(1, AHEAD_MAX + 1);
    peer(1, AHEAD_MAX + 2);
    assert.equal(certifier.counters.signaturesDropped, 2, "the window moved up with the executed height");
    assert.equal(certifier.pendingHeights, 3);
  });

  it("signatures at or below the executed height minus behindMax are dropped, and nonsense heights too", () => {
    const { certifier, ownBlock, peer } = harness();
    ownBlock(10);
    peer(1, 10 - BEHIND_MAX);
    peer(1, 1);
    assert.equal(certifier.counters.signaturesDropped, 2);
    const pending = certifier.pendingHeights;
    peer(1, 10 - BEHIND_MAX + 1);
    assert.equal(certifier.counters.signaturesDropped, 2);
    assert.equal(certifier.pendingHeights, pending + 1);
    for (const height of [0, -1, 10.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1]) {
      certifier.onSignature(1, height, new Uint8Array(64));
    }
    assert.equal(certifier.counters.signaturesDropped, 7);
    assert.equal(certifier.counters.signaturesInvalid, 0);
  });

  it("a height of ours that falls more than behindMax below the executed height uncertified is abandoned exactly once", () => {
    const { certifier, certified, abandoned, ownBlock, peer } = harness();
    ownBlock(1);
    ownBlock(2);
    for (const replica of [1, 2, 3, 4]) peer(replica, 2);
    assertCertifiedAt(certified, [2]);
    for (let height = 3; height <= 1 + BEHIND_MAX; height++) ownBlock(height);
    assert.equal(abandoned.length, 0, `height 1 is kept while the executed height is at most ${1 + BEHIND_MAX}`);
    ownBlock(2 + BEHIND_MAX);
    assert.deepEqual(abandoned, [1]);
    assert.equal(certifier.counters.abandoned, 1);
    for (let height = 3 + BEHIND_MAX; height <= 20; height++) ownBlock(height);
    assert.equal(abandoned.filter((height) => height === 1).length, 1, "height 1 is handed over once");
    assert.equal(abandoned.includes(2), false, "a certified height is never abandoned");
    assert.equal(certifier.counters.abandoned, abandoned.length);
    assert.deepEqual(abandoned, Array.from({ length: 20 - BEHIND_MAX - 1 }, (_, index) => index + 1).filter((height) => height !== 2));
  });

  it("a jump in the executed height abandons every uncertified height of ours it leaves behind", () => {
    const { certifier, abandoned, ownBlock, peer } = harness();
    ownBlock(1);
    ownBlock(2);
    ownBlock(3);
    peer(1, 4);
    ownBlock(3 + BEHIND_MAX + 1);
    assert.deepEqual([...abandoned].sort((left, right) => left - right), [1, 2, 3]);
    assert.equal(certifier.counters.abandoned, 3);
    assert.equal(certifier.pendingHeights, 2, "height 4 (early signature only) and our new block");
  });

  it("skipTo forgets every height at or below it: early signatures are discarded, our uncertified blocks abandoned", () => {
    const { certifier, certified, abandoned, ownBlock, peer } = harness();
    ownBlock(1);
    for (const replica of [1, 2, 3, 4]) peer(replica, 3);
    peer(1, 4);
    for (const replica of [1, 2, 3]) peer(replica, 5);
    assert.equal(certifier.pendingHeights, 4);
    certifier.skipTo(4);
    assert.equal(certifier.pendingHeights, 1, "only height 5 is left");
    assert.deepEqual(abandoned, [1], "height 1 was ours; heights 3 and 4 never executed here");
    assert.equal(certifier.counters.abandoned, 1);
    // Height 5 keeps its early signatures and certifies when our block arrives.
    ownBlock(5);
    assert.equal(certified.length, 0);
    peer(4, 5);
    assertCertifiedAt(certified, [5]);
    assert.equal(certifier.counters.signaturesAccepted, 4, "the signatures for heights 3 and 4 were never checked");
  });

  it("skipTo moves the window of accepted heights up, and never down", () => {
    const { certifier } = harness();
    const signature = new Uint8Array(64);
    certifier.skipTo(20);
    certifier.onSignature(1, 20 + AHEAD_MAX, signature);
    assert.equal(certifier.counters.signaturesDropped, 0);
    certifier.onSignature(1, 20 + AHEAD_MAX + 1, signature);
    assert.equal(certifier.counters.signaturesDropped, 1);
    certifier.skipTo(5);
    certifier.onSignature(2, 20 - BEHIND_MAX, signature);
    assert.equal(certifier.counters.signaturesDropped, 2, "the executed height is still 20");
  });
});

describe("handing late heights to the repair", () => {
  it("takeUncertified hands over our uncertified heights signed at least ageMs ago, ascending, and drops their late signatures", () => {
    const certified: Harness["certified"] = [];
    const certifier = new BlockCertifier({ cluster: cluster.config, aheadMax: AHEAD_MAX, behindMax: BEHIND_MAX, onCertified: (header, certificate) => certified.push({ header, certificate }) });
    const own = (height: number, nowMs: number): void => {
      const header = headerAt(cluster, height);
      certifier.onOwnBlock(header, signedBy(cluster, OWN, header), nowMs);
    };
    own(1, 1_000);
    own(2, 2_500);
    own(3, 2_200);
    assert.deepEqual(certifier.takeUncertified(3_000, 1_000), [1], "only the block signed 1,000 ms before or earlier");
    assert.deepEqual(certifier.takeUncertified(4_000, 1_000), [2, 3]);
    assert.equal(certifier.counters.handedOver, 3);
    assert.equal(certifier.pendingHeights, 0);
    const dropped = certifier.counters.signaturesDropped;
    for (let replica = 1; replica < 7; replica++) certifier.onSignature(replica, 1, signedBy(cluster, replica, headerAt(cluster, 1)).signature);
    assert.equal(certifier.counters.signaturesDropped, dropped + 6, "a handed-over height takes no signatures");
    assert.equal(certifier.pendingHeights, 0, "and holds no memory for them");
    assert.deepEqual(certified, []);
  });

  it("late signatures for a certified height are dropped without holding memory", () => {
    const h = harness();
    h.ownBlock(1);
    for (const replica of [1, 2, 3, 4]) h.peer(replica, 1);
    assertCertifiedAt(h.certified, [1]);
    const dropped = h.certifier.counters.signaturesDropped;
    h.peer(5, 1);
    h.peer(6, 1);
    assert.equal(h.certifier.counters.signaturesDropped, dropped + 2);
    assert.equal(h.certifier.pendingHeights, 0);
  });
});

describe("headerDigest", () => {
  it("is the lowercase hex header hash, and differs between headers", () => {
    const digest = headerDigest(headerAt(cluster, 3));
    assert.match(digest, /^[0-9a-f]{64}$/);
    assert.equal(headerDigest(headerAt(cluster, 3)), digest);
    assert.notEqual(headerDigest(headerAt(cluster, 3, 2)), digest);
  });
});
