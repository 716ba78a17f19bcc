import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { type Block, buildBlock, decodeBlock, encodeBlock, resultTree, transactionTree } from "../../src/ledger/block.js";
import { GENESIS_PREV_HASH } from "../../src/ledger/block-header.js";
import { LedgerDecodeError } from "../../src/ledger/codec.js";
import { decodeInclusionProof, encodeInclusionProof } from "../../src/ledger/inclusion-proof.js";
import type { MerkleAuditPath } from "../../src/ledger/merkle.js";
import { StateProofDecodeError, StateTree, decodeStateProof, encodeStateProof } from "../../src/ledger/state-tree.js";
import type { Verification } from "../../src/ledger/verification.js";
import { verifyBlock, verifyResultInclusion, verifyStateValue, verifyTransactionInclusion } from "../../src/ledger/verify.js";
import { Random } from "../../src/sim/random.js";
import { randomBytes } from "../support/random-bytes.js";
import { certifiedChain, certify, flipByte, randomEntries, testCluster } from "./fixtures.js";

const cluster = testCluster(4);
const encoder = new TextEncoder();

function assertFails(verdict: Verification, code?: string): void {
  assert.equal(verdict.ok, false, "verification passed");
  if (!verdict.ok && code !== undefined) assert.equal(verdict.code, code, verdict.message);
}

/** Whether `bytes` still decode (with `decode`) into something `verify` accepts. */
function survives<T>(bytes: Uint8Array, decode: (bytes: Uint8Array) => T, verify: (value: T) => Verification): boolean {
  let value: T;
  try {
    value = decode(bytes);
  } catch (error) {
    assert.ok(error instanceof LedgerDecodeError || error instanceof StateProofDecodeError, String(error));
    return false;
  }
  return verify(value).ok;
}

function blockOf(transactionCount: number, seed: number, height = 1): Block {
  const random = new Random(seed);
  return buildBlock({
    clusterId: cluster.config.clusterId,
    height,
    prevHash: height === 1 ? GENESIS_PREV_HASH : randomBytes(random, 32),
    stateRoot: randomBytes(random, 32),
    ...randomEntries(random, transactionCount, 40),
  });
}

describe("verifyBlock", () => {
  it("accepts a certified block, with and without its previous header, and an empty block", () => {
    const [first, second] = certifiedChain(cluster, 2, 5);
    assert.deepEqual(verifyBlock(cluster.config, first!.block, first!.certificate), { ok: true });
    assert.deepEqual(verifyBlock(cluster.config, second!.block, second!.certificate, first!.block.header), { ok: true });
    const empty = buildBlock({ clusterId: cluster.config.clusterId, height: 1, prevHash: GENESIS_PREV_HASH, stateRoot: new Uint8Array(32), transactions: [], results: [] });
    assert.deepEqual(verifyBlock(cluster.config, empty, certify(cluster, empty)), { ok: true });
  });

  it("names what is wrong: count, txRoot, resultsRoot, link, genesis prevHash", () => {
    const [first, second] = certifiedChain(cluster, 2, 5);
    const block = second!.block;
    const certificate = second!.certificate;
    assertFails(verifyBlock(cluster.config, { ...block, transactions: block.transactions.slice(1) }, certificate), "tx-count-mismatch");
    assertFails(verifyBlock(cluster.config, { ...block, results: [...block.results, new Uint8Array(1)] }, certificate), "tx-count-mismatch");
    const swapped = [block.transactions[1]!, block.transactions[0]!, ...block.transactions.slice(2)];
    assertFails(verifyBlock(cluster.config, { ...block, transactions: swapped }, certificate), "tx-root-mismatch");
    assertFails(verifyBlock(cluster.config, { ...block, results: [new Uint8Array(3), ...block.results.slice(1)] }, certificate), "results-root-mismatch");
    assertFails(verifyBlock(cluster.config, block, certificate, block.header), "broken-link");
    const unrelated = certifiedChain(cluster, 1, 5, 99)[0]!.block.header;
    assertFails(verifyBlock(cluster.config, block, certificate, unrelated), "broken-link");
    assert.deepEqual(verifyBlock(cluster.config, block, certificate, first!.block.header), { ok: true });
    const rootless = buildBlock({ clusterId: cluster.config.clusterId, height: 1, prevHash: new Uint8Array(32).fill(1), stateRoot: new Uint8Array(32), transactions: [], results: [] });
    assertFails(verifyBlock(cluster.config, rootless, certify(cluster, rootless)), "broken-link");
  });

  it("rejects every single-byte change anywhere in a small block's encoding", () => {
    const block = blockOf(3, 21);
    const certificate = certify(cluster, block);
    const encoding = encodeBlock(block);
    assert.ok(survives(encoding, decodeBlock, (decoded) => verifyBlock(cluster.config, decoded, certificate)));
    for (let position = 0; position < encoding.length; position += 1) {
      for (const mask of [0x01, 0x10, 0xff]) {
        const flipped = flipByte(encoding, position, mask);
        assert.equal(survives(flipped, decodeBlock, (decoded) => verifyBlock(cluster.config, decoded, certificate)), false, `byte ${position} ^ ${mask}`);
      }
    }
  });

  it("rejects single-byte changes at random positions of a 400-transaction block", () => {
    const block = blockOf(400, 22);
    const certificate = certify(cluster, block);
    const encoding = encodeBlock(block);
    const random = new Random(23);
    for (let trial = 0; trial < 200; trial += 1) {
      const position = random.below(encoding.length);
      const flipped = flipByte(encoding, position, random.between(1, 255));
      assert.equal(survives(flipped, decodeBlock, (decoded) => verifyBlock(cluster.config, decoded, certificate)), false, `byte ${position}`);
    }
  });

  it("never throws on malformed blocks", () => {
    const block = blockOf(2, 24);
    const certificate = certify(cluster, block);
    const junk: unknown[] = [
      null,
      7,
      {},
      { header: block.header },
      { ...block, transactions: "many" },
      { ...block, transactions: [1, 2], results: [1, 2] },
      { ...block, transactions: [null, block.transactions[1]] },
      { ...block, header: { ...block.header, txRoot: new Uint8Array(5) } },
    ];
    for (const value of junk) assertFails(verifyBlock(cluster.config, value as Block, certificate));
    assertFails(verifyBlock(cluster.config, block, certificate, { ...block.header, height: -1 }), "malformed");
  });
});

describe("verifyTransactionInclusion and verifyResultInclusion", () => {
  const block = blockOf(13, 31);
  const certificate = certify(cluster, block);
  const transactions = transactionTree(block.transactions);
  const results = resultTree(block.results);

  it("accepts every transaction and result at its index", () => {
    block.transactions.forEach((transaction, index) => {
      const proof = decodeInclusionProof(encodeInclusionProof(transactions.inclusionProof(index)));
      assert.deepEqual(verifyTransactionInclusion(cluster.config, block.header, certificate, transaction, index, proof), { ok: true });
      const resultProof = results.inclusionProof(index);
      assert.deepEqual(verifyResultInclusion(cluster.config, block.header, certificate, block.results[index]!, index, resultProof), { ok: true });
    });
  });

  it("rejects another transaction, another index, a result proof for a transaction, and an uncertified header", () => {
    const proof = transactions.inclusionProof(4);
    assertFails(verifyTransactionInclusion(cluster.config, block.header, certificate, block.transactions[5]!, 4, proof), "not-included");
    assertFails(verifyTransactionInclusion(cluster.config, block.header, certificate, block.transactions[4]!, 5, proof), "not-included");
    assertFails(verifyTransactionInclusion(cluster.config, block.header, certificate, block.transactions[4]!, 13, proof), "not-included");
    assertFails(verifyResultInclusion(cluster.config, block.header, certificate, block.results[4]!, 4, proof), "not-included");
    const forged = { ...block.header, txRoot: transactionTree(block.transactions.slice(1)).root };
    assertFails(verifyTransactionInclusion(cluster.config, forged, certificate, block.transactions[4]!, 4, proof), "bad-signature");
  });

  it("rejects every single-byte change of an encoded proof", () => {
    for (const index of [0, 7, 12]) {
      const encoding = encodeInclusionProof(transactions.inclusionProof(index));
      const check = (path: MerkleAuditPath): Verification =>
        verifyTransactionInclusion(cluster.config, block.header, certificate, block.transactions[index]!, index, path);
      assert.ok(survives(encoding, decodeInclusionProof, check));
      for (let position = 0; position < encoding.length; position += 1) {
        assert.equal(survives(flipByte(encoding, position), decodeInclusionProof, check), false, `proof ${index}, byte ${position}`);
      }
    }
  });

  it("never throws on malformed proofs, indices and transactions", () => {
    const transaction = block.transactions[0]!;
    const junkProofs: unknown[] = [null, "path", [null], [new Uint8Array(31)], Array.from({ length: 65 }, () => new Uint8Array(32))];
    for (const proof of junkProofs) {
      assertFails(verifyTransactionInclusion(cluster.config, block.header, certificate, transaction, 0, proof as MerkleAuditPath));
    }
    for (const index of [-1, 0.5, Number.NaN, "0" as unknown as number, 2 ** 60]) {
      assertFails(verifyTransactionInclusion(cluster.config, block.header, certificate, transaction, index, transactions.inclusionProof(0)));
    }
    assertFails(verifyTransactionInclusion(cluster.config, block.header, certificate, "tx" as unknown as Uint8Array, 0, []), "malformed");
  });
});

describe("verifyStateValue", () => {
  const tree = new StateTree();
  for (let index = 0; index < 300; index += 1) tree.put(encoder.encode(`account-${index}`), encoder.encode(`balance-${index * 7}`));
  const block = buildBlock({ clusterId: cluster.config.clusterId, height: 1, prevHash: GENESIS_PREV_HASH, stateRoot: tree.root(), transactions: [], results: [] });
  const certificate = certify(cluster, block);
  const key = encoder.encode("account-42");
  const value = encoder.encode("balance-294");
  const missing = encoder.encode("account-300");

  it("accepts a key's value and a missing key's absence at the certified height", () => {
    assert.deepEqual(verifyStateValue(cluster.config, block.header, certificate, key, value, tree.prove(key)), { ok: true });
    assert.deepEqual(verifyStateValue(cluster.config, block.header, certificate, missing, undefined, tree.prove(missing)), { ok: true });
  });

  it("rejects a wrong value, a false absence, a false presence and another block's state", () => {
    assertFails(verifyStateValue(cluster.config, block.header, certificate, key, encoder.encode("balance-295"), tree.prove(key)), "state-proof-mismatch");
    assertFails(verifyStateValue(cluster.config, block.header, certificate, key, undefined, tree.prove(key)), "state-proof-mismatch");
    assertFails(verifyStateValue(cluster.config, block.header, certificate, missing, value, tree.prove(missing)), "state-proof-mismatch");
    const later = certifiedChain(cluster, 1, 0, 5)[0]!;
    assertFails(verifyStateValue(cluster.config, later.block.header, later.certificate, key, value, tree.prove(key)), "state-proof-mismatch");
  });

  it("rejects every single-byte change of an encoded state proof", () => {
    for (const [claimKey, claimValue] of [[key, value], [missing, undefined]] as const) {
      const encoding = encodeStateProof(tree.prove(claimKey));
      const check = (proof: ReturnType<typeof decodeStateProof>): Verification =>
        verifyStateValue(cluster.config, block.header, certificate, claimKey, claimValue, proof);
      assert.ok(survives(encoding, decodeStateProof, check));
      for (let position = 0; position < encoding.length; position += 1) {
        assert.equal(survives(flipByte(encoding, position), decodeStateProof, check), false, `byte ${position}`);
      }
    }
  });

  it("never throws on a malformed key, value or proof", () => {
    const proof = tree.prove(key);
    assertFails(verifyStateValue(cluster.config, block.header, certificate, "k" as unknown as Uint8Array, value, proof), "malformed");
    assertFails(verifyStateValue(cluster.config, block.header, certificate, key, 5 as unknown as Uint8Array, proof), "malformed");
    for (const junk of [null, {}, { levels: "x", terminal: {} }, { levels: [{}], terminal: { kind: "present" } }]) {
      assertFails(verifyStateValue(cluster.config, block.header, certificate, key, value, junk as unknown as typeof proof));
    }
  });
});
