// X25519 (src/crypto/x25519.ts): both backends agree with RFC 7748's test vector and with each
// other, and a peer key of small order or the wrong length yields no shared secret, never a throw.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { type X25519Backend, x25519Backend } from "../../src/crypto/x25519.js";

const fromHex = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex, "hex"));
const backends: readonly X25519Backend[] = [x25519Backend("sodium-native"), x25519Backend("node:crypto")];

// RFC 7748 §6.1: Alice's and Bob's key pairs and their shared secret.
const alicePrivate = fromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
const alicePublic = fromHex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
const bobPrivate = fromHex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
const bobPublic = fromHex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
const sharedSecret = fromHex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");

// Points of small order (libsodium's blocklist, RFC 7748 §7): with any of them as the peer's key
// the result is all zeros.
const SMALL_ORDER_KEYS = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
].map(fromHex);

describe("X25519", () => {
  it("each backend reproduces RFC 7748's shared secret from either side", () => {
    for (const backend of backends) {
      assert.deepEqual(backend.sharedSecret(alicePrivate, bobPublic), sharedSecret, backend.name);
      assert.deepEqual(backend.sharedSecret(bobPrivate, alicePublic), sharedSecret, backend.name);
    }
  });

  it("fresh key pairs from either backend agree on the secret with the other backend", () => {
    for (const ours of backends) {
      for (const theirs of backends) {
        const a = ours.keyPair();
        const b = theirs.keyPair();
        assert.equal(a.publicKey.length, 32);
        assert.equal(a.secretKey.length, 32);
        const secret = ours.sharedSecret(a.secretKey, b.publicKey);
        assert.ok(secret !== undefined);
        assert.deepEqual(theirs.sharedSecret(b.secretKey, a.publicKey), secret, `${ours.name} with ${theirs.name}`);
      }
    }
  });

  it("two key pairs are never the same", () => {
    for (const backend of backends) assert.notDeepEqual(backend.keyPair().publicKey, backend.keyPair().publicKey);
  });

  it("a peer key of small order or of the wrong length gives no secret, and nothing throws", () => {
    for (const backend of backends) {
      const { secretKey } = backend.keyPair();
      for (const key of SMALL_ORDER_KEYS) assert.equal(backend.sharedSecret(secretKey, key), undefined, `${backend.name}: ${Buffer.from(key).toString("hex")}`);
      assert.equal(backend.sharedSecret(secretKey, new Uint8Array(31)), undefined);
      assert.equal(backend.sharedSecret(secretKey, new Uint8Array(33).fill(9)), undefined);
    }
  });

  it("a secret key of the wrong length is a programming error", () => {
    for (const backend of backends) assert.throws(() => backend.sharedSecret(new Uint8Array(16), alicePublic), /secret key is 32 bytes, not 16/);
  });
});
