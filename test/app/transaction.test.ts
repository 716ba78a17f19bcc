import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  type Operation,
  TRANSACTION_AMOUNT_MAX,
  TRANSACTION_BYTES_MAX,
  TRANSACTION_KEY_BYTES_MAX,
  TRANSACTION_NONCE_MAX,
  TRANSACTION_VALUE_BYTES_MAX,
  type Transaction,
  type TransactionBody,
  TransactionDecodeError,
  type TransactionDecodeErrorCode,
  TransactionEncodeError,
  decodeTransaction,
  encodeTransaction,
  signTransaction,
  transactionId,
  transactionSigningMessage,
  verifyTransaction,
} from "../../src/app/transaction.js";
import { type Ed25519KeyPair, Ed25519Verifier, ed25519KeyPairFromSeed, ed25519Sign, ed25519Verify } from "../../src/crypto/ed25519.js";
import { Random } from "../../src/sim/random.js";
import { fromHex, hex, randomBytes } from "../support/random-bytes.js";
import { everyOperation } from "./ledger-fixtures.js";

// RFC 8032 test 1's key: a fixed signer, so encodings below can be written out by hand.
const ALICE = ed25519KeyPairFromSeed(fromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
const BOB = ed25519KeyPairFromSeed(fromHex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"));
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

function signed(operation: Operation, nonce = 7, signer: Ed25519KeyPair = ALICE): Transaction {
  return signTransaction(signer.privateKey, { clientKey: signer.publicKey, nonce, operation });
}

function randomOperation(random: Random): Operation {
  const key = (): Uint8Array => randomBytes(random, random.between(1, random.chance(0.1) ? TRANSACTION_KEY_BYTES_MAX : 40));
  // Now and then a value anywhere up to the limit, inclusive.
  const value = (): Uint8Array => randomBytes(random, random.below(random.chance(0.05) ? TRANSACTION_VALUE_BYTES_MAX + 1 : 200));
  const amount = (): bigint => (BigInt(random.nextUint32()) << 32n) | BigInt(random.nextUint32());
  switch (random.below(8)) {
    case 0:
      return { type: "put", key: key(), value: value() };
    case 1:
      return { type: "get", key: key() };
    case 2:
      return { type: "delete", key: key() };
    case 3:
      return { type: "cas", key: key(), expected: random.chance(0.3) ? null : value(), value: value() };
    case 4:
      return { type: "mint", to: BOB.publicKey, amount: amount() };
    case 5:
      return { type: "transfer", to: ALICE.publicKey, amount: amount() };
    case 6:
      return { type: "noop" };
    default:
      return { type: "balance", account: BOB.publicKey };
  }
}

function assertDecodeError(encoding: Uint8Array, code: TransactionDecodeErrorCode, message?: RegExp): void {
  assert.throws(
    () => decodeTransaction(encoding),
    (error: unknown) => {
      assert.ok(error instanceof TransactionDecodeError, `expected a TransactionDecodeError, got ${String(error)}`);
      assert.equal(error.code, code, error.message);
      if (message !== undefined) assert.match(error.message, message);
      return true;
    },
  );
}

/** Decoding must give a transaction or a TransactionDecodeError: nothing else may escape. */
function decodeOrNull(encoding: Uint8Array): Transaction | null {
  try {
    return decodeTransaction(encoding);
  } catch (error) {
    if (error instanceof TransactionDecodeError) return null;
    throw error;
  }
}

test("every operation round-trips: decode(encode(t)) equals t, re-encodes to the same bytes and verifies", () => {
  for (const operation of everyOperation()) {
    const transaction = signed(operation);
    const encoding = encodeTransaction(transaction);
    const decoded = decodeTransaction(encoding);
    assert.deepEqual(decoded, transaction, operation.type);
    assert.equal(hex(encodeTransaction(decoded)), hex(encoding));
    assert.ok(verifyTransaction(decoded), operation.type);
  }
});

test("the encoding follows the documented layout byte for byte", () => {
  const body: TransactionBody = {
    clientKey: ALICE.publicKey,
    nonce: 0x0102030405,
    operation: { type: "put", key: bytes("k"), value: bytes("v1") },
  };
  const expectedBody =
    "01" + // version
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a" + // client key
    "0000000102030405" + // nonce
    "01" + // tag: put
    "0001" + "6b" + // key length, key
    "00000002" + "7631"; // value length, value
  const transaction = signTransaction(ALICE.privateKey, body);
  const encoding = encodeTransaction(transaction);
  assert.equal(hex(encoding), expectedBody + hex(transaction.signature));
  const domain = hex(bytes("bulwark/transaction/v1\0"));
  assert.equal(hex(transactionSigningMessage(body)), domain + expectedBody);
  assert.ok(ed25519Verify(ALICE.publicKey, fromHex(domain + expectedBody), transaction.signature));

  const layouts: [Operation, string][] = [
    [{ type: "get", key: bytes("k") }, "02" + "0001" + "6b"],
    [{ type: "delete", key: bytes("k") }, "03" + "0001" + "6b"],
    [{ type: "cas", key: bytes("k"), expected: null, value: bytes("v") }, "04" + "00016b" + "00" + "0000000176"],
    [{ type: "cas", key: bytes("k"), expected: bytes("e"), value: bytes("v") }, "04" + "00016b" + "01" + "0000000165" + "0000000176"],
    [{ type: "mint", to: BOB.publicKey, amount: 258n }, "05" + hex(BOB.publicKey) + "0000000000000102"],
    [{ type: "transfer", to: BOB.publicKey, amount: 1n }, "06" + hex(BOB.publicKey) + "0000000000000001"],
    [{ type: "balance", account: BOB.publicKey }, "07" + hex(BOB.publicKey)],
    [{ type: "noop" }, "08"],
  ];
  for (const [operation, expectedOperation] of layouts) {
    const message = transactionSigningMessage({ clientKey: ALICE.publicKey, nonce: 0, operation });
    assert.equal(hex(message), domain + "01" + hex(ALICE.publicKey) + "0000000000000000" + expectedOperation, operation.type);
  }
});

test("the largest transaction is exactly TRANSACTION_BYTES_MAX, and one byte more is oversize", () => {
  const largest = signed({
    type: "cas",
    key: new Uint8Array(TRANSACTION_KEY_BYTES_MAX).fill(1),
    expected: new Uint8Array(TRANSACTION_VALUE_BYTES_MAX).fill(2),
    value: new Uint8Array(TRANSACTION_VALUE_BYTES_MAX).fill(3),
  });
  const encoding = encodeTransaction(largest);
  assert.equal(encoding.length, TRANSACTION_BYTES_MAX);
  assert.deepEqual(decodeTransaction(encoding), largest);
  assert.ok(verifyTransaction(largest));
  const extended = new Uint8Array(TRANSACTION_BYTES_MAX + 1);
  extended.set(encoding);
  assertDecodeError(extended, "oversize", /is 132214 bytes; the limit is 132213/);
  assertDecodeError(new Uint8Array(10 * 1024 * 1024), "oversize");
});

test("every truncation of every operation is refused as truncated", () => {
  for (const operation of everyOperation()) {
    const encoding = encodeTransaction(signed(operation));
    for (let length = 0; length < encoding.length; length += 1) {
      assertDecodeError(encoding.subarray(0, length), "truncated");
    }
  }
});

test("bytes after the signature are refused", () => {
  for (const operation of everyOperation()) {
    const encoding = encodeTransaction(signed(operation));
    for (const extra of [[0], [1, 2, 3], new Array<number>(64).fill(0xff)]) {
      assertDecodeError(new Uint8Array([...encoding, ...extra]), "trailing-bytes", new RegExp(`${extra.length} bytes after`));
    }
  }
});

test("unknown operation tags and format versions are refused", () => {
  const encoding = encodeTransaction(signed({ type: "get", key: bytes("k") }));
  for (const tag of [0, 9, 0x7f, 0x80, 0xff]) {
    const altered = encoding.slice();
    altered[41] = tag;
    assertDecodeError(altered, "unknown-operation", new RegExp(`operation tag ${tag} is not`));
  }
  // Version 2 is the session format (session-transaction.test.ts); 3 is the first unknown one.
  for (const version of [0, 3, 0xff]) {
    const altered = encoding.slice();
    altered[0] = version;
    assertDecodeError(altered, "unsupported-version", new RegExp(`version ${version} is not supported`));
  }
});

test("keys and values over their limits, and empty keys, are refused by the decoder", () => {
  // A put with a one-byte key and value; lengths are patched to out-of-range values and the
  // buffer grown to match, so only the length rule can fail.
  const small = encodeTransaction(signed({ type: "put", key: bytes("k"), value: bytes("v") }));
  const withKeyLength = (length: number): Uint8Array => {
    const key = new Uint8Array(length).fill(0x6b);
    const encoding = new Uint8Array([...small.subarray(0, 42), length >> 8, length & 0xff, ...key, ...small.subarray(45)]);
    return encoding;
  };
  assertDecodeError(withKeyLength(0), "field-length", /key length is 0; keys are 1 to 1024 bytes/);
  assertDecodeError(withKeyLength(TRANSACTION_KEY_BYTES_MAX + 1), "field-length", /key length is 1025/);
  assertDecodeError(withKeyLength(0xffff), "field-length");
  // A key of exactly the limit passes the length rule (and then only the signature is wrong).
  assert.ok(decodeOrNull(withKeyLength(TRANSACTION_KEY_BYTES_MAX)) !== null);

  const valueLength = TRANSACTION_VALUE_BYTES_MAX + 1;
  const bigValue = new Uint8Array([
    ...small.subarray(0, 45),
    valueLength >>> 24,
    (valueLength >>> 16) & 0xff,
    (valueLength >>> 8) & 0xff,
    valueLength & 0xff,
    ...new Uint8Array(valueLength),
    ...small.subarray(small.length - 64),
  ]);
  assertDecodeError(bigValue, "field-length", /value length is 65537; the limit is 65536 bytes/);
  const hugeLength = small.slice();
  hugeLength.set([0xff, 0xff, 0xff, 0xff], 45);
  assertDecodeError(hugeLength, "field-length");
});

test("a cas expected-value flag other than 0 or 1 is refused as non-canonical", () => {
  const encoding = encodeTransaction(signed({ type: "cas", key: bytes("k"), expected: null, value: bytes("v") }));
  // 42 (header) + 2 + 1 (key): the flag.
  assert.equal(encoding[45], 0);
  for (const flag of [2, 3, 0x80, 0xff]) {
    const altered = encoding.slice();
    altered[45] = flag;
    assertDecodeError(altered, "non-canonical", new RegExp(`flag is ${flag}`));
  }
});

test("a nonce above 2^53 - 1 is refused; the largest safe nonce round-trips", () => {
  const largest = signed({ type: "get", key: bytes("k") }, TRANSACTION_NONCE_MAX);
  const encoding = encodeTransaction(largest);
  assert.equal(hex(encoding.subarray(33, 41)), "001fffffffffffff");
  assert.equal(decodeTransaction(encoding).nonce, TRANSACTION_NONCE_MAX);
  for (const nonceHex of ["0020000000000000", "8000000000000000", "ffffffffffffffff"]) {
    const altered = encoding.slice();
    altered.set(fromHex(nonceHex), 33);
    assertDecodeError(altered, "nonce-out-of-range");
  }
});

test("public keys of small order or in non-canonical form are refused wherever an account appears", () => {
  const zeroKey = new Uint8Array(32);
  const nonCanonical = new Uint8Array(32).fill(0xff);
  nonCanonical[31] = 0x7f;
  const cases: [Transaction, number][] = [
    [signed({ type: "get", key: bytes("k") }), 1],
    [signed({ type: "transfer", to: BOB.publicKey, amount: 5n }), 42],
    [signed({ type: "mint", to: BOB.publicKey, amount: 5n }), 42],
    [signed({ type: "balance", account: BOB.publicKey }), 42],
  ];
  for (const [transaction, keyOffset] of cases) {
    for (const badKey of [zeroKey, nonCanonical]) {
      const altered = encodeTransaction(transaction);
      altered.set(badKey, keyOffset);
      assertDecodeError(altered, "invalid-public-key", /small order|not canonically encoded/);
    }
  }
  assert.throws(
    () => encodeTransaction({ ...signed({ type: "get", key: bytes("k") }), clientKey: zeroKey }),
    (error: unknown) => error instanceof TransactionEncodeError && /client key: .*small order/.test(error.message),
  );
});

test("inputs that are not byte arrays are refused with a TransactionDecodeError", () => {
  const untyped = decodeTransaction as (input: unknown) => Transaction;
  for (const input of [null, undefined, "01", [1, 2, 3], 42, {}]) {
    assert.throws(() => untyped(input), (error: unknown) => error instanceof TransactionDecodeError && error.code === "not-bytes");
  }
});

test("changing any single byte of an encoded transaction makes it undecodable or unverifiable", () => {
  for (const operation of everyOperation()) {
    const encoding = encodeTransaction(signed(operation));
    for (let position = 0; position < encoding.length; position += 1) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const altered = encoding.slice();
        altered[position] = (altered[position] as number) ^ mask;
        const decoded = decodeOrNull(altered);
        if (decoded !== null) {
          assert.equal(verifyTransaction(decoded), false, `${operation.type}: byte ${position} ^ ${mask} still verifies`);
        }
      }
    }
  }
});

test("a signature is bound to the domain prefix and to the signer", () => {
  const body: TransactionBody = { clientKey: ALICE.publicKey, nonce: 1, operation: { type: "get", key: bytes("k") } };
  const withDomain = transactionSigningMessage(body);
  const withoutDomain = withDomain.subarray(bytes("bulwark/transaction/v1\0").length);
  // Signing the bare body (as a careless implementation would) does not give a valid transaction.
  assert.equal(verifyTransaction({ ...body, signature: ed25519Sign(ALICE.privateKey, withoutDomain) }), false);
  assert.ok(verifyTransaction({ ...body, signature: ed25519Sign(ALICE.privateKey, withDomain) }));
  // Bob's signature over Alice's body does not verify as Alice's.
  assert.equal(verifyTransaction({ ...body, signature: ed25519Sign(BOB.privateKey, withDomain) }), false);
  // signTransaction refuses a private key that is not the body's client key.
  assert.throws(() => signTransaction(BOB.privateKey, body), /does not belong to the transaction's client key/);
});

test("verifyTransaction gives false for malformed envelopes instead of throwing", () => {
  const good = signed({ type: "put", key: bytes("k"), value: bytes("v") });
  const malformed: Transaction[] = [
    { ...good, clientKey: good.clientKey.subarray(0, 31) },
    { ...good, signature: good.signature.subarray(0, 63) },
    { ...good, nonce: -1 },
    { ...good, nonce: 1.5 },
    { ...good, nonce: 2 ** 53 },
    { ...good, operation: { type: "put", key: new Uint8Array(0), value: bytes("v") } },
    { ...good, operation: { type: "put", key: new Uint8Array(TRANSACTION_KEY_BYTES_MAX + 1), value: bytes("v") } },
    { ...good, operation: { type: "put", key: bytes("k"), value: new Uint8Array(TRANSACTION_VALUE_BYTES_MAX + 1) } },
    { ...good, operation: { type: "transfer", to: BOB.publicKey, amount: -1n } },
    { ...good, operation: { type: "mint", to: BOB.publicKey, amount: TRANSACTION_AMOUNT_MAX + 1n } },
    { ...good, operation: { type: "balance", account: new Uint8Array(32) } },
    { ...good, operation: { type: "explode" } as unknown as Operation },
  ];
  for (const transaction of malformed) assert.equal(verifyTransaction(transaction), false);
  // A separate verifier (as a pool worker has) reaches the same verdicts.
  const verifier = new Ed25519Verifier({ keyCacheEntriesMax: 2 });
  assert.ok(verifyTransaction(good, verifier));
  for (const transaction of malformed) assert.equal(verifyTransaction(transaction, verifier), false);
});

test("encoding refuses fields that break the format, saying which rule", () => {
  const good = signed({ type: "put", key: bytes("k"), value: bytes("v") });
  const refusals: [Transaction, RegExp][] = [
    [{ ...good, signature: new Uint8Array(63) }, /signature is 64 bytes/],
    [{ ...good, nonce: -1 }, /nonce must be an integer from 0 to 9007199254740991, not -1/],
    [{ ...good, operation: { type: "get", key: new Uint8Array(0) } }, /key must be 1 to 1024 bytes/],
    [{ ...good, operation: { type: "cas", key: bytes("k"), expected: new Uint8Array(TRANSACTION_VALUE_BYTES_MAX + 1), value: bytes("v") } }, /expected value must be at most 65536 bytes/],
    [{ ...good, operation: { type: "transfer", to: BOB.publicKey.subarray(1), amount: 1n } }, /recipient: an Ed25519 public key is 32 bytes, not 31/],
    [{ ...good, operation: { type: "transfer", to: BOB.publicKey, amount: 1 as unknown as bigint } }, /amount must be a bigint/],
    [{ ...good, operation: { type: "explode" } as unknown as Operation }, /unknown operation type explode/],
  ];
  for (const [transaction, message] of refusals) {
    assert.throws(() => encodeTransaction(transaction), (error: unknown) => error instanceof TransactionEncodeError && message.test(error.message));
  }
});

test("transactionId is SHA-256 of the canonical encoding, from the envelope or from its bytes", () => {
  const transaction = signed({ type: "transfer", to: BOB.publicKey, amount: 10n });
  const encoding = encodeTransaction(transaction);
  const expected = createHash("sha256").update(encoding).digest("hex");
  assert.equal(hex(transactionId(transaction)), expected);
  assert.equal(hex(transactionId(encoding)), expected);
  assert.notEqual(hex(transactionId(signed({ type: "transfer", to: BOB.publicKey, amount: 11n }))), expected);
  assert.notEqual(hex(transactionId(signed({ type: "transfer", to: BOB.publicKey, amount: 10n }, 8))), expected);
});

test("decoded fields are copies: later changes to the input buffer do not reach them", () => {
  const transaction = signed({ type: "cas", key: bytes("key"), expected: bytes("old"), value: bytes("new") });
  const input = Buffer.from(encodeTransaction(transaction));
  const decoded = decodeTransaction(input);
  input.fill(0);
  assert.deepEqual(decoded, transaction);
  for (const field of [decoded.clientKey, decoded.signature]) {
    assert.equal(Object.getPrototypeOf(field), Uint8Array.prototype);
  }
  // Decoding from an offset view of a larger buffer works the same.
  const encoding = encodeTransaction(transaction);
  const framed = new Uint8Array(encoding.length + 10);
  framed.set(encoding, 5);
  assert.deepEqual(decodeTransaction(framed.subarray(5, 5 + encoding.length)), transaction);
});

test("property: random transactions round-trip canonically and verify (seeded)", () => {
  const random = new Random(20240603);
  const signers = Array.from({ length: 4 }, () => ed25519KeyPairFromSeed(randomBytes(random, 32)));
  for (let round = 0; round < 300; round += 1) {
    const signer = random.pick(signers);
    const operation = randomOperation(random);
    const nonce = random.chance(0.1) ? TRANSACTION_NONCE_MAX - random.below(1000) : random.below(1_000_000);
    const body: TransactionBody = { clientKey: signer.publicKey, nonce, operation };
    const transaction = signTransaction(signer.privateKey, body);
    const encoding = encodeTransaction(transaction);
    assert.ok(encoding.length <= TRANSACTION_BYTES_MAX);
    const decoded = decodeTransaction(encoding);
    assert.deepEqual(decoded, transaction);
    assert.equal(hex(encodeTransaction(decoded)), hex(encoding));
    assert.ok(verifyTransaction(decoded));
  }
});

test("property: random and mutated byte strings decode or fail with a TransactionDecodeError, nothing else", () => {
  const random = new Random(31337);
  const seeds = everyOperation().map((operation) => encodeTransaction(signed(operation)));
  for (let round = 0; round < 3000; round += 1) {
    let candidate: Uint8Array;
    if (random.chance(0.3)) {
      candidate = randomBytes(random, random.below(300));
      // Give half of them a plausible header so parsing gets past the first bytes.
      if (random.chance(0.5) && candidate.length > 42) {
        candidate[0] = 1;
        candidate.set(ALICE.publicKey, 1);
        candidate[41] = random.between(1, 7);
      }
    } else {
      candidate = random.pick(seeds).slice();
      for (let edits = random.between(1, 4); edits > 0; edits -= 1) {
        candidate[random.below(candidate.length)] = random.below(256);
      }
      if (random.chance(0.2)) candidate = candidate.subarray(0, random.below(candidate.length + 1));
    }
    const decoded = decodeOrNull(candidate);
    if (decoded !== null) {
      // Whatever decodes is canonical: it re-encodes to exactly the input.
      assert.equal(hex(encodeTransaction(decoded)), hex(candidate));
    }
  }
});
