import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";

import { encodeTransaction, signTransaction, transactionId } from "../../src/app/transaction.js";
import {
  BLOCK_ENTRY_BYTES_MAX,
  buildBlock,
  decodeBlock,
  decodeBlockBody,
  encodeBlock,
  encodeBlockBody,
  transactionIds,
  transactionTree,
} from "../../src/ledger/block.js";
import {
  BLOCK_TRANSACTIONS_MAX,
  type BlockHeader,
  GENESIS_PREV_HASH,
  blockHeaderHash,
  decodeBlockHeader,
  encodeBlockHeader,
} from "../../src/ledger/block-header.js";
import { LedgerDecodeError, LedgerEncodeError } from "../../src/ledger/codec.js";
import { merkleRoot } from "../../src/ledger/merkle.js";
import { Random } from "../../src/sim/random.js";
import { fromHex, hex, randomBytes } from "../support/random-bytes.js";
import { flipByte, keyPair, randomEntries } from "./fixtures.js";

function sampleHeader(overrides: Partial<BlockHeader> = {}): BlockHeader {
  return {
    version: 1,
    clusterId: "cluster1",
    height: 0x1_0000_0002,
    seq: 0x1_0000_0002,
    prevHash: new Uint8Array(32).fill(0xaa),
    txRoot: new Uint8Array(32).fill(0xbb),
    txCount: 0x0102,
    stateRoot: new Uint8Array(32).fill(0xcc),
    resultsRoot: new Uint8Array(32).fill(0xdd),
    ...overrides,
  };
}

function assertDecodeError(decode: () => unknown, code?: string): void {
  assert.throws(decode, (error: unknown) => error instanceof LedgerDecodeError && (code === undefined || error.code === code));
}

describe("block header", () => {
  it("encodes to the documented layout", () => {
    const encoding = encodeBlockHeader(sampleHeader());
    assert.equal(encoding.length, 150 + "cluster1".length);
    assert.equal(
      hex(encoding),
      "01" + // version
        "08" + hex(new TextEncoder().encode("cluster1")) +
        "0000000100000002" + // height
        "0000000100000002" + // seq
        "aa".repeat(32) +
        "bb".repeat(32) +
        "00000102" + // txCount
        "cc".repeat(32) +
        "dd".repeat(32),
    );
  });

  it("round-trips, including heights above 2^32 and the largest safe height", () => {
    for (const height of [1, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
      const header = sampleHeader({ height, seq: height, txCount: BLOCK_TRANSACTIONS_MAX });
      assert.deepEqual(decodeBlockHeader(encodeBlockHeader(header)), header);
    }
  });

  it("hashes SHA-256 over the domain prefix and the encoding", () => {
    const header = sampleHeader();
    const expected = createHash("sha256").update("bulwark/block-header/v1\0").update(encodeBlockHeader(header)).digest();
    assert.equal(hex(blockHeaderHash(header)), expected.toString("hex"));
    assert.notEqual(hex(blockHeaderHash(sampleHeader({ txCount: 3 }))), expected.toString("hex"));
  });

  it("refuses to encode a malformed header, with the field named", () => {
    const cases: Array<[Partial<BlockHeader>, RegExp]> = [
      [{ seq: 5 }, /seq must equal height/],
      [{ height: 0, seq: 0 }, /height must be an integer from 1/],
      [{ height: 2 ** 53, seq: 2 ** 53 }, /height/],
      [{ clusterId: "" }, /clusterId/],
      [{ clusterId: "é" }, /clusterId/],
      [{ prevHash: new Uint8Array(31) }, /prevHash must be 32 bytes/],
      [{ txCount: BLOCK_TRANSACTIONS_MAX + 1 }, /txCount/],
      [{ txCount: 1.5 }, /txCount/],
      [{ resultsRoot: "no" as unknown as Uint8Array }, /resultsRoot/],
    ];
    for (const [override, message] of cases) {
      assert.throws(() => encodeBlockHeader(sampleHeader(override)), (error: unknown) => error instanceof LedgerEncodeError && message.test(error.message));
      assert.throws(() => blockHeaderHash(sampleHeader(override)), LedgerEncodeError);
    }
  });

  it("decodes only the canonical encoding: every truncation, a trailing byte, bad fields", () => {
    const encoding = encodeBlockHeader(sampleHeader());
    for (let length = 0; length < encoding.length; length += 1) assertDecodeError(() => decodeBlockHeader(encoding.subarray(0, length)), "truncated");
    assertDecodeError(() => decodeBlockHeader(Uint8Array.from([...encoding, 0])), "trailing-bytes");
    assertDecodeError(() => decodeBlockHeader(flipByte(encoding, 0, 0x03)), "unsupported-version");
    // seq (offset 10 + L) differs from height.
    assertDecodeError(() => decodeBlockHeader(flipByte(encoding, 10 + 8 + 7)), "non-canonical");
    // A clusterId byte outside the pattern.
    assertDecodeError(() => decodeBlockHeader(flipByte(encoding, 2, 0x80)), "non-canonical");
    // txCount above the maximum (offset 82 + L).
    assertDecodeError(() => decodeBlockHeader(flipByte(encoding, 82 + 8, 0x80)), "out-of-range");
    // Height 2^53 and above (its top byte is offset 2 + L).
    const huge = encodeBlockHeader(sampleHeader({ height: 1, seq: 1 }));
    huge[2 + 8] = 0x00;
    huge[2 + 8 + 1] = 0x20;
    huge[10 + 8] = 0x00;
    huge[10 + 8 + 1] = 0x20;
    assertDecodeError(() => decodeBlockHeader(huge), "out-of-range");
    assertDecodeError(() => decodeBlockHeader("header" as unknown as Uint8Array), "not-bytes");
  });

  it("copies its fields out of the input (a recycled buffer cannot change a decoded header)", () => {
    const encoding = Buffer.from(encodeBlockHeader(sampleHeader()));
    const header = decodeBlockHeader(encoding);
    encoding.fill(0);
    assert.deepEqual(header, sampleHeader());
    assert.equal(Object.getPrototypeOf(header.prevHash), Uint8Array.prototype);
  });
});

describe("block", () => {
  it("builds a header whose roots are computed from the body and round-trips through its encoding", () => {
    const random = new Random(11);
    const { transactions, results } = randomEntries(random, 9);
    const block = buildBlock({ clusterId: "c", height: 1, prevHash: GENESIS_PREV_HASH, stateRoot: randomBytes(random, 32), transactions, results });
    assert.equal(block.header.seq, 1);
    assert.equal(block.header.txCount, 9);
    assert.deepEqual(block.header.txRoot, merkleRoot(transactions.map((transaction) => createHashBytes(transaction))));
    assert.deepEqual(block.header.resultsRoot, merkleRoot(results));
    const decoded = decodeBlock(encodeBlock(block));
    assert.deepEqual(decoded.header, block.header);
    assert.deepEqual(decoded.transactions.map(hex), transactions.map(hex));
    assert.deepEqual(decoded.results.map(hex), results.map(hex));
  });

  it("gives a null request an empty block whose roots are those of the empty tree", () => {
    const block = buildBlock({ clusterId: "c", height: 7, prevHash: new Uint8Array(32).fill(1), stateRoot: new Uint8Array(32), transactions: [], results: [] });
    const emptyRoot = fromHex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert.deepEqual(block.header.txRoot, emptyRoot);
    assert.deepEqual(block.header.resultsRoot, emptyRoot);
    assert.equal(block.header.txCount, 0);
    const encoding = encodeBlock(block);
    assert.equal(encoding.length, 150 + 1 + 5);
    assert.deepEqual(decodeBlock(encoding), block);
  });

  it("uses the application's transaction ids as txRoot leaves", () => {
    const random = new Random(12);
    const client = keyPair(random);
    const transactions = [1, 2, 3].map((nonce) =>
      encodeTransaction(
        signTransaction(client.privateKey, { clientKey: client.publicKey, nonce, operation: { type: "put", key: Uint8Array.of(nonce), value: Uint8Array.of(9) } }),
      ),
    );
    assert.deepEqual(transactionIds(transactions), transactions.map((transaction) => transactionId(transaction)));
    assert.deepEqual(transactionTree(transactions).root, merkleRoot(transactions.map((transaction) => transactionId(transaction))));
  });

  it("encodes a body on its own in the documented layout", () => {
    const body = encodeBlockBody([Uint8Array.of(0xaa, 0xbb)], [Uint8Array.of()]);
    assert.equal(hex(body), "01" + "00000001" + "00000002" + "aabb" + "00000000");
    assert.deepEqual(decodeBlockBody(body), { transactions: [Uint8Array.of(0xaa, 0xbb)], results: [Uint8Array.of()] });
  });

  it("refuses bodies that break the rules, in both directions", () => {
    assert.throws(() => encodeBlockBody([Uint8Array.of(1)], []), /1 transactions but 0 results/);
    assert.throws(() => encodeBlockBody([new Uint8Array(BLOCK_ENTRY_BYTES_MAX + 1)], [Uint8Array.of()]), LedgerEncodeError);
    assert.throws(() => buildBlock({ clusterId: "c", height: 0, prevHash: GENESIS_PREV_HASH, stateRoot: new Uint8Array(32), transactions: [], results: [] }), LedgerEncodeError);
    // A count that the remaining bytes cannot hold is refused before anything is allocated for it.
    assertDecodeError(() => decodeBlockBody(fromHex("01" + "00010000")), "truncated");
    assertDecodeError(() => decodeBlockBody(fromHex("01" + "00010001")), "out-of-range");
    assertDecodeError(() => decodeBlockBody(fromHex("01" + "00000001" + "00100001" + "00000000")), "out-of-range");
    assertDecodeError(() => decodeBlockBody(fromHex("02" + "00000000")), "unsupported-version");
    assertDecodeError(() => decodeBlockBody(fromHex("01" + "00000000" + "00")), "trailing-bytes");
  });

  it("throws only LedgerDecodeError on random bytes and random mutations of a real block", () => {
    const random = new Random(13);
    const block = buildBlock({ clusterId: "c", height: 3, prevHash: randomBytes(random, 32), stateRoot: randomBytes(random, 32), ...randomEntries(random, 4) });
    const encoding = encodeBlock(block);
    for (let trial = 0; trial < 2000; trial += 1) {
      const input = trial % 2 === 0 ? randomBytes(random, random.below(300)) : mutate(encoding, random);
      try {
        decodeBlock(input);
      } catch (error) {
        assert.ok(error instanceof LedgerDecodeError, `trial ${trial}: ${String(error)}`);
      }
    }
  });
});

function createHashBytes(data: Uint8Array): Uint8Array {
  return Uint8Array.from(createHash("sha256").update(data).digest());
}

/** A copy of `bytes` with a few random bytes changed, inserted or removed. */
function mutate(bytes: Uint8Array, random: Random): Uint8Array {
  const copy = [...bytes];
  for (let edits = random.between(1, 3); edits > 0; edits -= 1) {
    const position = random.below(copy.length + 1);
    const kind = random.below(3);
    if (kind === 0 && position < copy.length) copy[position] = random.below(256);
    else if (kind === 1) copy.splice(position, 0, random.below(256));
    else copy.splice(position, 1);
  }
  return Uint8Array.from(copy);
}
