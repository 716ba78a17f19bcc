import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";

import { ed25519Sign, ed25519Verify } from "../../src/crypto/ed25519.js";
import { buildBlock } from "../../src/ledger/block.js";
import { GENESIS_PREV_HASH, blockHeaderHash } from "../../src/ledger/block-header.js";
import {
  type BlockSignature,
  type CommitCertificate,
  blockSigningMessage,
  createCertificate,
  decodeCertificate,
  encodeCertificate,
  signBlock,
  verifyBlockSignature,
  verifyCertificate,
} from "../../src/ledger/certificate.js";
import { LedgerDecodeError, LedgerEncodeError } from "../../src/ledger/codec.js";
import { Random } from "../../src/sim/random.js";
import { hex } from "../support/random-bytes.js";
import { type TestCluster, certify, flipByte, keyPair, randomEntries, testCluster } from "./fixtures.js";

function blockAt(cluster: TestCluster, height: number, seed = height): ReturnType<typeof buildBlock> {
  const random = new Random(seed);
  return buildBlock({
    clusterId: cluster.config.clusterId,
    height,
    prevHash: height === 1 ? GENESIS_PREV_HASH : new Uint8Array(32).fill(height),
    stateRoot: new Uint8Array(32).fill(7),
    ...randomEntries(random, 3),
  });
}

function assertRejected(verdict: ReturnType<typeof verifyCertificate>, code: string, message?: RegExp): void {
  assert.equal(verdict.ok, false, "the certificate was accepted");
  if (verdict.ok) return;
  assert.equal(verdict.code, code, verdict.message);
  if (message !== undefined) assert.match(verdict.message, message);
}

for (const n of [4, 7]) {
  describe(`commit certificates, n = ${n}`, () => {
    const cluster = testCluster(n, n);
    const f = cluster.config.f;
    const quorum = 2 * f + 1;
    const block = blockAt(cluster, 5);
    const everyone = Array.from({ length: n }, (_, id) => id);

    it(`accepts 2f + 1 = ${quorum} signatures, any 2f + 1 of them, and all n`, () => {
      assert.deepEqual(verifyCertificate(cluster.config, block.header, certify(cluster, block)), { ok: true });
      assert.deepEqual(verifyCertificate(cluster.config, block.header, certify(cluster, block, everyone.slice(n - quorum))), { ok: true });
      assert.deepEqual(verifyCertificate(cluster.config, block.header, certify(cluster, block, everyone)), { ok: true });
    });

    it(`rejects 2f = ${2 * f} signatures`, () => {
      assertRejected(verifyCertificate(cluster.config, block.header, certify(cluster, block, everyone.slice(0, 2 * f))), "too-few-signatures", /needs 2f \+ 1/);
      assertRejected(verifyCertificate(cluster.config, block.header, { height: 5, signatures: [] }), "too-few-signatures");
    });

    it("rejects a replica that signs twice, even when the rest make a quorum", () => {
      const certificate = certify(cluster, block, everyone.slice(0, quorum));
      const duplicated: CommitCertificate = { height: 5, signatures: [...certificate.signatures, certificate.signatures[0] as BlockSignature] };
      assertRejected(verifyCertificate(cluster.config, block.header, duplicated), "duplicate-signer", /replica 0 signs twice/);
      assert.throws(() => createCertificate(5, duplicated.signatures), LedgerEncodeError);
    });

    it("rejects a signature over another height, and a certificate that claims another height", () => {
      const other = blockAt(cluster, 6, 5);
      const certificate = certify(cluster, block);
      const [first, ...rest] = certificate.signatures;
      const overOtherHeight = signBlock(cluster.keys[first!.replica]!.privateKey, first!.replica, other.header);
      assertRejected(verifyCertificate(cluster.config, block.header, { height: 5, signatures: [overOtherHeight, ...rest] }), "bad-signature", /replica 0/);
      assertRejected(verifyCertificate(cluster.config, block.header, { ...certificate, height: 6 }), "wrong-height");
      assertRejected(verifyCertificate(cluster.config, other.header, certificate), "wrong-height");
    });

    it("rejects a signer outside the cluster: an id beyond n, or a stranger's key in a member's place", () => {
      const certificate = certify(cluster, block);
      const stranger = keyPair(new Random(99));
      const outsider = signBlock(stranger.privateKey, n, block.header);
      assertRejected(verifyCertificate(cluster.config, block.header, { height: 5, signatures: [...certificate.signatures, outsider] }), "unknown-signer", new RegExp(`replica ${n} is not in cluster`));
      const impostor = signBlock(stranger.privateKey, 0, block.header);
      assertRejected(verifyCertificate(cluster.config, block.header, { height: 5, signatures: [impostor, ...certificate.signatures.slice(1)] }), "bad-signature");
      assertRejected(verifyCertificate(cluster.config, block.header, { height: 5, signatures: [{ replica: -1, signature: impostor.signature }] }), "unknown-signer");
    });

    it("rejects every signature that does not verify, even beyond a valid quorum", () => {
      const certificate = certify(cluster, block, everyone);
      const last = certificate.signatures[n - 1]!;
      const tampered = { replica: last.replica, signature: flipByte(last.signature, 10) };
      assertRejected(verifyCertificate(cluster.config, block.header, { height: 5, signatures: [...certificate.signatures.slice(0, n - 1), tampered] }), "bad-signature");
    });

    it("rejects a header from another cluster, and the same keys' signatures made for another cluster id", () => {
      const sibling = testCluster(n, n, "other-cluster");
      const foreign = blockAt(sibling, 5);
      assertRejected(verifyCertificate(cluster.config, foreign.header, certify(sibling, foreign)), "wrong-cluster");
      // Same keys, same block contents, other cluster id: the signatures must not carry over.
      const relabelled = { ...block.header, clusterId: "other-cluster" };
      const certificate = certify(sibling, { ...block, header: relabelled });
      assertRejected(verifyCertificate(cluster.config, block.header, certificate), "bad-signature");
    });

    it("round-trips through the documented encoding and rejects every single-byte change", () => {
      const certificate = certify(cluster, block);
      const encoding = encodeCertificate(certificate);
      assert.equal(encoding.length, 11 + quorum * 66);
      assert.equal(hex(encoding.subarray(0, 11)), `01${"0000000000000005"}${quorum.toString(16).padStart(4, "0")}`);
      assert.deepEqual(decodeCertificate(encoding), certificate);
      for (let position = 0; position < encoding.length; position += 1) {
        for (const mask of [0x01, 0x80]) {
          const flipped = flipByte(encoding, position, mask);
          let decoded: CommitCertificate;
          try {
            decoded = decodeCertificate(flipped);
          } catch (error) {
            assert.ok(error instanceof LedgerDecodeError);
            continue;
          }
          assert.equal(verifyCertificate(cluster.config, block.header, decoded).ok, false, `byte ${position} ^ ${mask} went unnoticed`);
        }
      }
    });
  });
}

describe("commit certificate details", () => {
  const cluster = testCluster(4);
  const block = blockAt(cluster, 1);

  it("signs the documented message: domain, clusterId, height and header hash", () => {
    const headerHash = blockHeaderHash(block.header);
    const message = blockSigningMessage(cluster.config.clusterId, 1, headerHash);
    const expected = Buffer.concat([
      Buffer.from("bulwark/block-commit/v1\0"),
      Buffer.from([cluster.config.clusterId.length]),
      Buffer.from(cluster.config.clusterId),
      Buffer.from("0000000000000001", "hex"),
      headerHash,
    ]);
    assert.equal(hex(message), expected.toString("hex"));
    const signature = signBlock(cluster.keys[2]!.privateKey, 2, block.header);
    assert.ok(ed25519Verify(cluster.config.replicas[2]!.publicKey, message, signature.signature));
    assert.deepEqual(signature.signature, ed25519Sign(cluster.keys[2]!.privateKey, message));
    assert.notEqual(createHash("sha256").update(message).digest("hex"), hex(headerHash));
  });

  it("checks one collected signature at a time for the runtime", () => {
    const good = signBlock(cluster.keys[1]!.privateKey, 1, block.header);
    assert.deepEqual(verifyBlockSignature(cluster.config, block.header, good), { ok: true });
    assert.equal(verifyBlockSignature(cluster.config, block.header, { ...good, replica: 2 }).ok, false);
    assert.equal(verifyBlockSignature(cluster.config, block.header, { ...good, replica: 4 }).ok, false);
    assert.equal(verifyBlockSignature(cluster.config, block.header, { replica: 1, signature: new Uint8Array(63) }).ok, false);
  });

  it("sorts collected signatures by replica id, so equal sets encode to equal bytes", () => {
    const signatures = [3, 0, 2].map((id) => signBlock(cluster.keys[id]!.privateKey, id, block.header));
    const certificate = createCertificate(1, signatures);
    assert.deepEqual(certificate.signatures.map((signature) => signature.replica), [0, 2, 3]);
    assert.deepEqual(encodeCertificate(certificate), encodeCertificate(createCertificate(1, [...signatures].reverse())));
    assert.throws(() => encodeCertificate({ height: 1, signatures }), LedgerEncodeError);
    assert.throws(() => encodeCertificate({ height: 0, signatures: [] }), LedgerEncodeError);
  });

  it("decodes only canonical certificates: ascending ids, exact length, known version", () => {
    const encoding = encodeCertificate(certify(cluster, block));
    const swapped = new Uint8Array(encoding);
    swapped.set(encoding.subarray(11, 11 + 66), 11 + 66);
    swapped.set(encoding.subarray(11 + 66, 11 + 132), 11);
    assert.throws(() => decodeCertificate(swapped), (error: unknown) => error instanceof LedgerDecodeError && error.code === "non-canonical");
    assert.throws(() => decodeCertificate(encoding.subarray(0, encoding.length - 1)), (error: unknown) => error instanceof LedgerDecodeError && error.code === "truncated");
    assert.throws(() => decodeCertificate(Uint8Array.from([...encoding, 0])), (error: unknown) => error instanceof LedgerDecodeError && error.code === "trailing-bytes");
    assert.throws(() => decodeCertificate(flipByte(encoding, 0, 0x02)), (error: unknown) => error instanceof LedgerDecodeError && error.code === "unsupported-version");
  });

  it("never throws on malformed certificates and headers", () => {
    const header = block.header;
    const junk: unknown[] = [null, undefined, 5, "x", [], {}, { height: 1 }, { height: 1, signatures: "all" }, { height: 1.5, signatures: [] }];
    for (const certificate of junk) {
      assert.equal(verifyCertificate(cluster.config, header, certificate as CommitCertificate).ok, false);
    }
    const badEntries: unknown[] = [null, 3, { replica: "0", signature: new Uint8Array(64) }, { replica: 0 }, { replica: 0, signature: [1, 2] }];
    for (const entry of badEntries) {
      const certificate = certify(cluster, block);
      const signatures = [entry, ...certificate.signatures] as BlockSignature[];
      assert.equal(verifyCertificate(cluster.config, header, { height: 1, signatures }).ok, false);
    }
    for (const badHeader of [null, {}, { ...header, prevHash: null }, { ...header, height: "1" }]) {
      assert.equal(verifyCertificate(cluster.config, badHeader as typeof header, certify(cluster, block)).ok, false);
    }
  });
});
