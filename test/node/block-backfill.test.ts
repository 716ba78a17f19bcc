// Block backfill (src/node/block-backfill.ts): after a state transfer, the blocks at and below the
// installed checkpoint are fetched from peers, walking down from its trusted header. A header is
// kept only if it hashes to the prevHash of the trusted header above it; a body only if it hashes
// to its header's roots; a certificate only if it verifies. A top block that does not link fails
// the peer; a lower one that does not link ends the run stored from that answer.

import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { buildBlock, encodeBlockBody } from "../../src/ledger/block.js";
import { blockHeaderHash, encodeBlockHeader } from "../../src/ledger/block-header.js";
import { encodeCertificate } from "../../src/ledger/certificate.js";
import { BACKFILL_BLOCKS_PER_REQUEST, type BackfillVerdict, BlockBackfill, type VerifiedHistoryBlock } from "../../src/node/block-backfill.js";
import type { WireBlock, WireFrame } from "../../src/node/wire-types.js";
import { type CertifiedBlock, certifiedChain, certify, flipByte, testCluster } from "../ledger/fixtures.js";

type BlocksRequest = Extract<WireFrame, { kind: "blocks-request" }>;

const cluster = testCluster(4);
/** Long enough for three requests, and not a multiple of BACKFILL_BLOCKS_PER_REQUEST. */
const TOP = 2 * BACKFILL_BLOCKS_PER_REQUEST + 22;
const chain = certifiedChain(cluster, TOP, 2);
/** Another chain of the same cluster: every block certified, none linking to `chain`. */
const fork = certifiedChain(cluster, TOP, 2, 99);

function certified(blocks: readonly CertifiedBlock[], height: number): CertifiedBlock {
  const block = blocks[height - 1];
  assert.ok(block !== undefined, `the chain has a block at ${height}`);
  return block;
}

/** Block `height` as a server sends it: header, body and certificate. */
function wireBlock(height: number, blocks: readonly CertifiedBlock[] = chain): WireBlock {
  const { block, certificate } = certified(blocks, height);
  return { height, header: encodeBlockHeader(block.header), body: encodeBlockBody(block.transactions, block.results), certificate: encodeCertificate(certificate) };
}

/** An honest server's answer: the blocks it holds in the range, ascending; `topCount` keeps only the highest ones. */
function answer(request: BlocksRequest, topCount = Infinity): WireBlock[] {
  const blocks: WireBlock[] = [];
  for (let height = Math.max(request.from, request.to - topCount + 1); height <= request.to; height++) blocks.push(wireBlock(height));
  return blocks;
}

/** The answer to `request` with the block at each height in `replacements` replaced (or, for undefined, left out). */
function answerWith(request: BlocksRequest, replacements: ReadonlyMap<number, WireBlock | undefined>): WireBlock[] {
  return answer(request).flatMap((block) => {
    if (!replacements.has(block.height)) return [block];
    const replacement = replacements.get(block.height);
    return replacement === undefined ? [] : [replacement];
  });
}

function backfillFrom(height: number, firstRequestId = 1): BlockBackfill {
  return new BlockBackfill(cluster.config, certified(chain, height).block.header, firstRequestId);
}

function stored(verdict: BackfillVerdict): Extract<BackfillVerdict, { kind: "store" }> {
  assert.equal(verdict.kind, "store", verdict.kind === "peer-failed" ? verdict.reason : undefined);
  return verdict;
}

/** What a verified block holds, as comparable strings. */
function partsOf(block: VerifiedHistoryBlock | WireBlock): { height: number; header: string; body?: string; certificate?: string } {
  const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");
  return {
    height: block.height,
    header: hex(block.header),
    ...(block.body === undefined ? {} : { body: hex(block.body) }),
    ...(block.certificate === undefined ? {} : { certificate: hex(block.certificate) }),
  };
}

const heightsOf = (blocks: readonly { readonly height: number }[]): number[] => blocks.map(({ height }) => height);
const descending = (from: number, to: number): number[] => Array.from({ length: from - to + 1 }, (_, index) => from - index);

describe("BlockBackfill", () => {
  it("walks a correct chain served in pieces from the trusted header down to height 1, keeping every header, body and certificate", () => {
    const backfill = backfillFrom(TOP, 7);
    assert.equal(backfill.done, false);
    assert.equal(backfill.lowestHeight, TOP + 1, "nothing below the trusted header is stored yet, not even its own block");
    const piece = 25;
    const kept: VerifiedHistoryBlock[] = [];
    const requests: BlocksRequest[] = [];
    for (let round = 0; !backfill.done; round++) {
      assert.ok(round < 100, "the walk ends");
      const request = backfill.request();
      requests.push(request);
      assert.equal(request.to, backfill.lowestHeight - 1, "each request starts just below what is trusted");
      assert.equal(request.from, Math.max(1, request.to - BACKFILL_BLOCKS_PER_REQUEST + 1));
      assert.ok(backfill.awaits(request.requestId));
      // This server answers only the top `piece` blocks of each range.
      const verdict = stored(backfill.onBlocks(answer(request, piece)));
      assert.equal(verdict.missingBodies, 0);
      assert.deepEqual(heightsOf(verdict.blocks), descending(request.to, Math.max(1, request.to - piece + 1)), "verified from the top down");
      kept.push(...verdict.blocks);
      assert.equal(backfill.lowestHeight, verdict.blocks.at(-1)!.height);
    }
    assert.equal(requests[0]!.to, TOP, "the trusted height itself comes first: its body and certificate did not travel with the state");
    assert.deepEqual(
      requests.map(({ requestId }) => requestId),
      Array.from({ length: Math.ceil(TOP / piece) }, (_, index) => 7 + index),
    );
    assert.deepEqual(kept.map(partsOf), descending(TOP, 1).map((height) => partsOf(wireBlock(height))));
    assert.equal(backfill.done, true);
    assert.equal(backfill.lowestHeight, 1);
  });

  it("a whole range answered at once moves the walk down by BACKFILL_BLOCKS_PER_REQUEST", () => {
    const backfill = backfillFrom(TOP);
    const request = backfill.request();
    assert.deepEqual({ from: request.from, to: request.to }, { from: TOP - BACKFILL_BLOCKS_PER_REQUEST + 1, to: TOP });
    assert.equal(stored(backfill.onBlocks(answer(request))).blocks.length, BACKFILL_BLOCKS_PER_REQUEST);
    assert.equal(backfill.lowestHeight, TOP - BACKFILL_BLOCKS_PER_REQUEST + 1);
    assert.equal(backfill.request().to, TOP - BACKFILL_BLOCKS_PER_REQUEST);
  });

  it("a trusted header at height 1 needs one request, for itself", () => {
    const backfill = backfillFrom(1);
    assert.equal(backfill.done, false);
    const request = backfill.request();
    assert.deepEqual({ from: request.from, to: request.to }, { from: 1, to: 1 });
    assert.deepEqual(stored(backfill.onBlocks(answer(request))).blocks.map(partsOf), [partsOf(wireBlock(1))]);
    assert.equal(backfill.done, true);
  });

  it("an answer without a linking block at the top of the range fails the peer and leaves the walk where it was", () => {
    const top = wireBlock(TOP);
    const failures: ReadonlyArray<readonly [string, (request: BlocksRequest) => WireBlock[]]> = [
      ["no blocks", () => []],
      ["the top block missing", (request) => answerWith(request, new Map([[TOP, undefined]]))],
      ["a certified block of another chain at the top", (request) => answerWith(request, new Map([[TOP, wireBlock(TOP, fork)]]))],
      ["the block below labelled with the top height", (request) => answerWith(request, new Map([[TOP, { ...wireBlock(TOP - 1), height: TOP }]]))],
      ["the top header with one byte changed", (request) => answerWith(request, new Map([[TOP, { ...top, header: flipByte(top.header, top.header.length - 1) }]]))],
      ["a top header that does not decode", (request) => answerWith(request, new Map([[TOP, { ...top, header: top.header.subarray(1) }]]))],
      ["only blocks outside the range", (request) => [wireBlock(request.from - 1), { ...top, height: TOP + 1 }]],
    ];
    const backfill = backfillFrom(TOP);
    for (const [name, serve] of failures) {
      const request = backfill.request();
      assert.deepEqual({ from: request.from, to: request.to }, { from: TOP - BACKFILL_BLOCKS_PER_REQUEST + 1, to: TOP }, `${name}: the same range is asked again`);
      assert.deepEqual(backfill.onBlocks(serve(request)), { kind: "peer-failed", reason: `no block at height ${TOP} that links to the trusted chain` }, name);
      assert.equal(backfill.lowestHeight, TOP + 1, name);
    }
    // The next, honest peer is asked for the same range and is believed.
    assert.equal(stored(backfill.onBlocks(answer(backfill.request()))).blocks.length, BACKFILL_BLOCKS_PER_REQUEST);
  });

  it("a lower block that does not link ends the verified run above it; the walk resumes there with the next request", () => {
    const breaks: ReadonlyArray<readonly [string, number, (height: number) => WireBlock | undefined]> = [
      ["a block of another chain", TOP - 10, (height) => wireBlock(height, fork)],
      ["a missing block", TOP - 20, () => undefined],
      ["a block whose header claims another height", TOP - 30, (height) => ({ ...wireBlock(height - 1), height })],
    ];
    for (const [name, brokenHeight, replace] of breaks) {
      const backfill = backfillFrom(TOP);
      const verdict = stored(backfill.onBlocks(answerWith(backfill.request(), new Map([[brokenHeight, replace(brokenHeight)]]))));
      assert.deepEqual(heightsOf(verdict.blocks), descending(TOP, brokenHeight + 1), name);
      assert.equal(backfill.lowestHeight, brokenHeight + 1, name);
      const next = backfill.request();
      assert.equal(next.to, brokenHeight, `${name}: asked again from the block that did not link`);
      assert.deepEqual(heightsOf(stored(backfill.onBlocks(answer(next))).blocks), descending(brokenHeight, next.from), name);
    }
  });

  it("blocks outside the requested range are ignored", () => {
    const backfill = backfillFrom(TOP - 1);
    const request = backfill.request();
    const verdict = stored(backfill.onBlocks([wireBlock(TOP), ...answer(request), wireBlock(request.from - 1), wireBlock(request.from - 2)]));
    assert.deepEqual(heightsOf(verdict.blocks), descending(request.to, request.from));
    assert.equal(backfill.lowestHeight, request.from);
  });

  it("a body that is there but does not match its header's roots ends the run above it; one that is absent is counted as missing", () => {
    const at = (height: number): WireBlock => wireBlock(height);
    const body = (height: number): Uint8Array => at(height).body!;
    const { transactions, results } = certified(chain, TOP - 6).block;
    const badBodies: [string, (height: number) => WireBlock][] = [
      ["another block's body", (height) => ({ ...at(height), body: body(height - 1) })],
      ["a flipped byte", (height) => ({ ...at(height), body: flipByte(body(height), body(height).length - 1) })],
      ["a truncated body", (height) => ({ ...at(height), body: body(height).subarray(0, 3) })],
      ["an empty body", (height) => ({ ...at(height), body: encodeBlockBody([], []) })],
      ["a changed transaction", (height) => ({ ...at(height), body: encodeBlockBody([flipByte(transactions[0]!, 0), ...transactions.slice(1)], results) })],
      ["changed results", (height) => ({ ...at(height), body: encodeBlockBody(certified(chain, height).block.transactions, [new Uint8Array([1]), new Uint8Array([2])]) })],
    ];
    for (const [what, bad] of badBodies) {
      // In the middle of the range: the blocks above it are stored, and the walk resumes at it.
      const backfill = backfillFrom(TOP);
      const request = backfill.request();
      const verdict = stored(backfill.onBlocks(answerWith(request, new Map([[TOP - 3, bad(TOP - 3)]]))));
      assert.deepEqual(heightsOf(verdict.blocks), descending(TOP, TOP - 2), what);
      assert.equal(backfill.lowestHeight, TOP - 2, what);
      assert.equal(backfill.request().to, TOP - 3, `${what}: the bad block is asked again`);
      // At the top of the range: nothing to store, the peer failed.
      const atTop = backfillFrom(TOP);
      assert.equal(atTop.onBlocks(answerWith(atTop.request(), new Map([[TOP, bad(TOP)]]))).kind, "peer-failed", what);
    }
    const { body: _dropped, ...withoutBody } = at(TOP - 5);
    const backfill = backfillFrom(TOP);
    const request = backfill.request();
    const verdict = stored(backfill.onBlocks(answerWith(request, new Map([[TOP - 5, withoutBody]]))));
    assert.equal(verdict.missingBodies, 1, "a pruned body is absent, not wrong");
    assert.deepEqual(heightsOf(verdict.blocks), descending(request.to, request.from));
    assert.deepEqual(partsOf(verdict.blocks.find((block) => block.height === TOP - 5)!), partsOf(withoutBody));
  });

  it("a certificate that is there but does not verify ends the run above it; one that is absent is tolerated", () => {
    const at = (height: number): WireBlock => wireBlock(height);
    const otherCluster = testCluster(4, 2);
    const badCertificates: [string, (height: number) => WireBlock][] = [
      ["another block's certificate", (height) => ({ ...at(height), certificate: at(height - 1).certificate! })],
      ["too few signers", (height) => ({ ...at(height), certificate: encodeCertificate(certify(cluster, certified(chain, height).block, [0, 1])) })],
      ["another cluster's keys", (height) => ({ ...at(height), certificate: encodeCertificate(certify(otherCluster, certified(chain, height).block)) })],
      ["a flipped byte", (height) => ({ ...at(height), certificate: flipByte(at(height).certificate!, at(height).certificate!.length - 1) })],
      ["a truncated certificate", (height) => ({ ...at(height), certificate: at(height).certificate!.subarray(1) })],
    ];
    for (const [what, bad] of badCertificates) {
      const backfill = backfillFrom(TOP);
      const request = backfill.request();
      const verdict = stored(backfill.onBlocks(answerWith(request, new Map([[TOP - 4, bad(TOP - 4)]]))));
      assert.deepEqual(heightsOf(verdict.blocks), descending(TOP, TOP - 3), what);
      assert.equal(backfill.lowestHeight, TOP - 3, what);
      const atTop = backfillFrom(TOP);
      assert.equal(atTop.onBlocks(answerWith(atTop.request(), new Map([[TOP, bad(TOP)]]))).kind, "peer-failed", what);
    }
    const { certificate: _dropped, ...withoutCertificate } = at(TOP - 6);
    const backfill = backfillFrom(TOP);
    const request = backfill.request();
    const verdict = stored(backfill.onBlocks(answerWith(request, new Map([[TOP - 6, withoutCertificate]]))));
    assert.equal(verdict.missingBodies, 0);
    assert.deepEqual(heightsOf(verdict.blocks), descending(request.to, request.from), "a block not certified yet is kept");
    assert.deepEqual(partsOf(verdict.blocks.find((block) => block.height === TOP - 6)!), partsOf(withoutCertificate));
  });

  it("a header that hashes to the expected prevHash but names another height is refused", () => {
    // Only a trusted header that 2f + 1 replicas should never have signed points past its
    // predecessor; the walk still stores nothing under a height its header does not name.
    const skipped = certified(chain, 8).block.header;
    const trusted = buildBlock({ clusterId: cluster.config.clusterId, height: 10, prevHash: blockHeaderHash(skipped), stateRoot: new Uint8Array(32), transactions: [], results: [] }).header;
    const backfill = new BlockBackfill(cluster.config, trusted, 1);
    const request = backfill.request();
    const verdict = stored(
      backfill.onBlocks([
        { height: 9, header: encodeBlockHeader(skipped), body: encodeBlockBody(certified(chain, 8).block.transactions, certified(chain, 8).block.results) },
        { height: 10, header: encodeBlockHeader(trusted), body: encodeBlockBody([], []) },
      ]),
    );
    assert.equal(request.to, 10);
    assert.deepEqual(heightsOf(verdict.blocks), [10]);
    assert.equal(backfill.lowestHeight, 10);
  });

  it("linksTo recognizes only the header just below the walk, and finish ends the walk", () => {
    const backfill = backfillFrom(TOP);
    const header = (height: number, blocks: readonly CertifiedBlock[] = chain): Uint8Array => encodeBlockHeader(certified(blocks, height).block.header);
    assert.ok(backfill.linksTo(header(TOP)), "the trusted header itself is the first one expected");
    assert.equal(backfill.linksTo(header(TOP - 1)), false);
    assert.equal(backfill.linksTo(header(TOP, fork)), false);
    assert.equal(backfill.linksTo(flipByte(header(TOP), 0)), false, "a header that does not decode");
    assert.equal(backfill.linksTo(new Uint8Array()), false);

    const request = backfill.request();
    stored(backfill.onBlocks(answer(request)));
    assert.ok(backfill.linksTo(header(request.from - 1)), "after a stored run, the header below it");
    assert.equal(backfill.linksTo(header(request.from)), false);
    assert.equal(backfill.done, false);
    backfill.finish();
    assert.equal(backfill.done, true);
    assert.equal(backfill.lowestHeight, 1);
  });

  it("only the current request id is awaited, and an answer nobody asked for fails the peer", () => {
    const backfill = backfillFrom(TOP, 40);
    assert.equal(backfill.awaits(40), false, "nothing was asked yet");
    assert.deepEqual(backfill.onBlocks(answer({ kind: "blocks-request", requestId: 40, from: 1, to: TOP })), { kind: "peer-failed", reason: "an answer nobody asked for" });
    const first = backfill.request();
    assert.equal(first.requestId, 40);
    assert.ok(backfill.awaits(40));
    const second = backfill.request();
    assert.equal(second.requestId, 41);
    assert.equal(backfill.awaits(40), false, "a timed-out request's late answer is not awaited");
    assert.ok(backfill.awaits(41));
    stored(backfill.onBlocks(answer(second)));
    assert.equal(backfill.awaits(41), false, "an answered request is not awaited twice");
    assert.deepEqual(backfill.onBlocks(answer(second)), { kind: "peer-failed", reason: "an answer nobody asked for" });
    assert.equal(backfill.lowestHeight, second.from, "the unasked answer changed nothing");
  });
});
