// The PBFT core's crypto for a real replica (src/node/replica-crypto.ts): batch digests that name
// exactly one batch, and signatures in the one canonical hex form the core compares as strings.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";

import { bytesToHex } from "../../src/app/bytes.js";
import { requestFromTransaction } from "../../src/app/request.js";
import { signTransaction } from "../../src/app/transaction.js";
import { CertificateValidator, quorumsFor, sign } from "../../src/consensus/pbft/index.js";
import type { ClientRequest, PrePrepare } from "../../src/consensus/pbft/types.js";
import { type Ed25519KeyPair, Ed25519Verifier, generateEd25519KeyPair } from "../../src/crypto/ed25519.js";
import { ReplicaCrypto } from "../../src/node/replica-crypto.js";
import { testCluster } from "../ledger/fixtures.js";

const cluster = testCluster(4);

function cryptoOf(replica: number): ReplicaCrypto {
  return new ReplicaCrypto(cluster.config, (cluster.keys[replica] as Ed25519KeyPair).privateKey);
}

/** A request carrying `operation` (not a real envelope: the digest hashes fields, it does not check them). */
function request(operation: string): ClientRequest {
  return { client: "client", timestamp: 1, operation: new TextEncoder().encode(operation), signature: "signature" };
}

function batch(...operations: string[]): ClientRequest[] {
  return operations.map(request);
}

describe("batch digests", () => {
  it("a batch digest is lowercase hex SHA-256, and the same for equal batches at every replica", () => {
    const digest = cryptoOf(0).batchDigest(batch("alpha", "beta"));
    assert.match(digest, /^[0-9a-f]{64}$/);
    assert.equal(cryptoOf(0).batchDigest(batch("alpha", "beta")), digest);
    assert.equal(cryptoOf(3).batchDigest(batch("alpha", "beta")), digest, "the digest does not depend on the replica's key");
    const crypto = cryptoOf(1);
    crypto.batchDigest(batch("something else entirely"));
    assert.equal(crypto.batchDigest(batch("alpha", "beta")), digest, "an earlier digest leaves nothing behind");
  });

  it("a batch digest is SHA-256 of the domain, the request count and each request's length-prefixed client, timestamp, signature and operation", () => {
    // Every replica must compute the same digest for a batch, whatever version it runs: the
    // encoding is part of the protocol, so it is written out here independently.
    const requests = batch("alpha", "", "gamma");
    const u32 = (value: number): Buffer => {
      const bytes = Buffer.alloc(4);
      bytes.writeUInt32BE(value);
      return bytes;
    };
    const field = (bytes: Buffer): Buffer => Buffer.concat([u32(bytes.length), bytes]);
    const hash = createHash("sha256").update("bulwark/batch/v2\0").update(u32(requests.length));
    for (const request of requests) {
      const timestamp = Buffer.alloc(8);
      timestamp.writeDoubleBE(request.timestamp);
      hash.update(field(Buffer.from(request.client))).update(timestamp).update(field(Buffer.from(request.signature))).update(field(Buffer.from(request.operation)));
    }
    assert.equal(cryptoOf(0).batchDigest(requests), hash.digest("hex"));
  });

  it("a request whose client, timestamp or signature field differs gives another digest, even with the same envelope", () => {
    // The core remembers a validated batch by its digest; a copy with an altered field must not match it.
    const crypto = cryptoOf(0);
    const [original] = batch("alpha");
    const altered: ClientRequest[] = [
      { ...original!, client: "f".repeat(64) },
      { ...original!, timestamp: original!.timestamp + 1 },
      { ...original!, signature: "0".repeat(128) },
    ];
    const digests = new Set([original!, ...altered].map((request) => crypto.batchDigest([request])));
    assert.equal(digests.size, 4);
  });

  it("different batches have different digests", () => {
    const crypto = cryptoOf(0);
    const batches = [batch(), batch(""), batch("", ""), batch("alpha"), batch("alphb"), batch("alpha", "beta"), batch("beta", "alpha"), batch("alpha", "beta", "")];
    const digests = new Set(batches.map((requests) => crypto.batchDigest(requests)));
    assert.equal(digests.size, batches.length);
  });

  it("splitting the same bytes into requests differently gives a different digest", () => {
    const crypto = cryptoOf(0);
    const splits = [batch("abc"), batch("ab", "c"), batch("a", "bc"), batch("a", "b", "c"), batch("", "abc"), batch("abc", "")];
    const digests = new Set(splits.map((requests) => crypto.batchDigest(requests)));
    assert.equal(digests.size, splits.length);
  });
});

describe("replica signatures", () => {
  const payload = "prepare/0/7/digest";

  it("a signature is 128 lowercase hex characters and verifies as its signer's at every replica", () => {
    const signature = cryptoOf(1).sign(payload);
    assert.match(signature, /^[0-9a-f]{128}$/);
    for (let replica = 0; replica < cluster.config.n; replica++) {
      assert.equal(cryptoOf(replica).verify(1, payload, signature), true, `replica ${replica} accepts it`);
    }
  });

  it("a signature does not verify for another payload", () => {
    const signature = cryptoOf(1).sign(payload);
    assert.equal(cryptoOf(0).verify(1, `${payload}x`, signature), false);
    assert.equal(cryptoOf(0).verify(1, "", signature), false);
  });

  it("a signature does not verify in another replica's name", () => {
    const signature = cryptoOf(2).sign(payload);
    assert.equal(cryptoOf(0).verify(2, payload, signature), true);
    for (const claimed of [0, 1, 3]) assert.equal(cryptoOf(0).verify(claimed, payload, signature), false, `not as replica ${claimed}'s`);
  });

  it("a replica id outside the cluster is refused", () => {
    const signature = cryptoOf(1).sign(payload);
    for (const replica of [-1, cluster.config.n, 1000, 1.5]) {
      assert.equal(cryptoOf(0).verify(replica, payload, signature), false, `replica ${replica}`);
    }
  });

  it("a signature in any form but canonical lowercase hex is refused, though its bytes are valid", () => {
    const signature = cryptoOf(1).sign(payload);
    assert.match(signature, /[a-f]/, "the signature has letters to change the case of");
    const variants = [
      signature.toUpperCase(),
      signature.replace(/[a-f]/, (letter) => letter.toUpperCase()),
      `${signature}00`,
      `${signature}0`,
      signature.slice(0, -2),
      `${signature}zz`,
      ` ${signature}`,
      `0x${signature.slice(2)}`,
      "",
    ];
    for (const variant of variants) assert.equal(cryptoOf(0).verify(1, payload, variant), false, JSON.stringify(variant));
    assert.equal(cryptoOf(0).verify(1, payload, 42 as unknown as string), false, "a signature that is not a string");
    // The canonical form still verifies after all that.
    assert.equal(cryptoOf(0).verify(1, payload, signature), true);
  });

  it("a corrupted signature of the right form is refused", () => {
    const signature = cryptoOf(1).sign(payload);
    const flipped = (signature[0] === "0" ? "1" : "0") + signature.slice(1);
    assert.equal(cryptoOf(0).verify(1, payload, flipped), false);
  });
});

/** Counts the signatures it is asked to verify. */
class CountingVerifier extends Ed25519Verifier {
  calls = 0;
  override verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    this.calls++;
    return super.verify(publicKey, message, signature);
  }
}

describe("client request checks", () => {
  const client = generateEd25519KeyPair();
  const transaction = signTransaction(client.privateKey, { clientKey: client.publicKey, nonce: 3, operation: { type: "put", key: new Uint8Array([1]), value: new Uint8Array([2]) } });

  it("checks each request object once: the runtime's routing check and the core's check share the verdict", () => {
    const verifier = new CountingVerifier();
    const crypto = new ReplicaCrypto(cluster.config, cluster.keys[0]!.privateKey, { requestVerifier: verifier });
    const request = requestFromTransaction(transaction);
    const forged = { ...request, signature: "0".repeat(128) };
    assert.equal(crypto.verdictOf(request), undefined, "not asked yet");
    assert.equal(crypto.verifyRequest(request), true);
    assert.equal(crypto.verifyRequest(request), true);
    assert.equal(crypto.verdictOf(request), true);
    assert.equal(verifier.calls, 1, "the second check answered from the first");
    assert.equal(crypto.verifyRequest(forged), false, "a request whose fields do not match its envelope is refused");
    assert.equal(crypto.verifyRequest(forged), false);
    assert.equal(crypto.verdictOf(forged), false);
    assert.equal(crypto.verifyRequest(requestFromTransaction(transaction)), true, "an equal request in another object is checked on its own");
    assert.equal(verifier.calls, 2);
  });

  it("without an injected verifier, requests are verified inline with the same verdicts", () => {
    const crypto = cryptoOf(0);
    assert.equal(crypto.verifyRequest(requestFromTransaction(transaction)), true);
    assert.equal(crypto.verifyRequest(requestFromTransaction({ ...transaction, nonce: 4 })), false, "the signature is over nonce 3");
  });
});

describe("the core's memory of validated batches, with the real crypto", () => {
  it("a copy of a validated pre-prepare whose request fields were altered is refused, not taken from the cache", () => {
    const primary = cryptoOf(0);
    const backup = cryptoOf(1);
    const client = generateEd25519KeyPair();
    const transaction = signTransaction(client.privateKey, { clientKey: client.publicKey, nonce: 5, operation: { type: "put", key: new Uint8Array([1]), value: new Uint8Array([2]) } });
    const genuine = requestFromTransaction(transaction);
    const prePrepare = sign<PrePrepare>(primary, { type: "pre-prepare", view: 0, seq: 1, digest: primary.batchDigest([genuine]), replica: 0, requests: [genuine] });
    const validator = new CertificateValidator(backup, 4, quorumsFor(4), 10, 100);
    assert.equal(validator.validPrePrepare(prePrepare), true);
    for (const altered of [{ ...genuine, timestamp: 6 }, { ...genuine, client: bytesToHex(generateEd25519KeyPair().publicKey) }]) {
      assert.equal(validator.validPrePrepare({ ...prePrepare, requests: [altered] }), false, JSON.stringify({ timestamp: altered.timestamp }));
    }
    assert.equal(validator.validPrePrepare(prePrepare), true, "the genuine one still passes from the cache");
  });
});
