import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { type BlockHeader, blockHeaderHash } from "../../src/ledger/block-header.js";
import { type CertifiedHeader, HeaderChainVerifier, verifyHeaderChain } from "../../src/ledger/chain.js";
import { decodeBlock, encodeBlock } from "../../src/ledger/block.js";
import { verifyBlock } from "../../src/ledger/verify.js";
import { Random } from "../../src/sim/random.js";
import { type CertifiedBlock, certifiedChain, certify, flipByte, testCluster } from "./fixtures.js";

function headersOf(chain: readonly CertifiedBlock[]): CertifiedHeader[] {
  return chain.map(({ block, certificate }) => ({ header: block.header, certificate }));
}

function assertBrokenAt(verdict: ReturnType<typeof verifyHeaderChain>, height: number, code: string): void {
  assert.equal(verdict.ok, false, "the chain was accepted");
  if (verdict.ok) return;
  assert.equal(verdict.height, height, verdict.message);
  assert.equal(verdict.code, code, verdict.message);
  assert.match(verdict.message, new RegExp(`^height ${height}: `));
}

for (const n of [4, 7]) {
  describe(`header chains, n = ${n}`, () => {
    const cluster = testCluster(n, 40 + n);
    const chain = certifiedChain(cluster, 12, 3, n);

    it("accepts a certified chain from height 1, and reports its last hash", () => {
      const verdict = verifyHeaderChain(cluster.config, headersOf(chain));
      assert.ok(verdict.ok);
      assert.equal(verdict.headerCount, 12);
      assert.equal(verdict.lastHeight, 12);
      assert.deepEqual(verdict.lastHeaderHash, blockHeaderHash(chain[11]!.block.header));
    });

    it("names the height of one altered header: its certificate no longer matches", () => {
      for (const height of [1, 6, 12]) {
        const altered = headersOf(chain);
        const original = altered[height - 1]!;
        altered[height - 1] = { ...original, header: { ...original.header, stateRoot: new Uint8Array(32).fill(0xee) } };
        assertBrokenAt(verifyHeaderChain(cluster.config, altered), height, "bad-signature");
      }
    });

    it("names the height of a header re-certified by 2f + 1 replicas but not linked to its parent", () => {
      // Replicas that sign a header with a wrong prevHash (all 2f + 1 of them lying) still
      // cannot splice it into the chain: the link check names its height.
      const altered = headersOf(chain);
      const original = altered[4]!.header;
      const header: BlockHeader = { ...original, prevHash: new Uint8Array(32).fill(3) };
      altered[4] = { header, certificate: certify(cluster, { header, transactions: [], results: [] }) };
      assertBrokenAt(verifyHeaderChain(cluster.config, altered), 5, "broken-link");
    });

    it("names the height where a header is missing, repeated, or certified for another height", () => {
      const headers = headersOf(chain);
      assertBrokenAt(verifyHeaderChain(cluster.config, [...headers.slice(0, 7), ...headers.slice(8)]), 8, "broken-link");
      assertBrokenAt(verifyHeaderChain(cluster.config, [...headers.slice(0, 3), headers[2]!, ...headers.slice(3)]), 4, "broken-link");
      const swapped = [...headers];
      swapped[8] = { header: headers[8]!.header, certificate: headers[9]!.certificate };
      assertBrokenAt(verifyHeaderChain(cluster.config, swapped), 9, "wrong-height");
      assertBrokenAt(verifyHeaderChain(cluster.config, headers.slice(1)), 1, "broken-link");
    });

    it("continues after a trusted anchor, and refuses a chain that does not continue it", () => {
      const headers = headersOf(chain);
      const verdict = verifyHeaderChain(cluster.config, headers.slice(5), chain[4]!.block.header);
      assert.ok(verdict.ok);
      assert.equal(verdict.headerCount, 7);
      assertBrokenAt(verifyHeaderChain(cluster.config, headers.slice(6), chain[4]!.block.header), 6, "broken-link");
      const empty = verifyHeaderChain(cluster.config, [], chain[4]!.block.header);
      assert.ok(empty.ok && empty.lastHeight === 5);
    });
  });
}

describe("chain auditing", () => {
  const cluster = testCluster(4, 50);
  const chain = certifiedChain(cluster, 10, 6, 51);

  it("streams: after the first failure every later append reports that same height", () => {
    const verifier = new HeaderChainVerifier(cluster.config);
    const headers = headersOf(chain);
    headers[3] = { ...headers[3]!, header: { ...headers[3]!.header, txCount: headers[3]!.header.txCount + 1 } };
    const verdicts = headers.map(({ header, certificate }) => verifier.append(header, certificate).ok);
    assert.deepEqual(verdicts, [true, true, true, false, false, false, false, false, false, false]);
    const result = verifier.result();
    assert.ok(!result.ok && result.height === 4);
    assert.equal(verifier.expectedHeight, 4);
  });

  it("with verifyBlock per block, a single-byte change in any stored block names that block's height", () => {
    const random = new Random(52);
    const stored = chain.map(({ block }) => encodeBlock(block));
    for (let trial = 0; trial < 30; trial += 1) {
      const height = random.between(1, chain.length);
      const tampered = [...stored];
      const bytes = stored[height - 1]!;
      tampered[height - 1] = flipByte(bytes, random.below(bytes.length), random.between(1, 255));
      assert.equal(firstBadHeight(tampered, chain.map(({ certificate }) => certificate)), height);
    }
    assert.equal(firstBadHeight(stored, chain.map(({ certificate }) => certificate)), undefined);

    // The loop `bulwark verify` runs over a store: decode, verify against the previous header.
    function firstBadHeight(blocks: readonly Uint8Array[], certificates: readonly CertifiedBlock["certificate"][]): number | undefined {
      let previous: BlockHeader | undefined;
      for (let index = 0; index < blocks.length; index += 1) {
        let verdictOk: boolean;
        try {
          const block = decodeBlock(blocks[index]!);
          verdictOk = block.header.height === index + 1 && verifyBlock(cluster.config, block, certificates[index]!, previous).ok;
          previous = block.header;
        } catch {
          verdictOk = false;
        }
        if (!verdictOk) return index + 1;
      }
      return undefined;
    }
  });

  it("refuses a malformed anchor and malformed entries without throwing", () => {
    const anchored = verifyHeaderChain(cluster.config, headersOf(chain), { height: 0 } as unknown as BlockHeader);
    assert.ok(!anchored.ok && anchored.code === "malformed" && anchored.height === 0);
    for (const entry of [null, {}, { header: chain[0]!.block.header }, 5]) {
      const verdict = verifyHeaderChain(cluster.config, [entry as unknown as CertifiedHeader]);
      assert.ok(!verdict.ok && verdict.height === 1);
    }
  });
});
