// X25519 Diffie-Hellman (RFC 7748) for the ephemeral key agreement of the connection handshake
// (node/handshake.ts). Keys are raw 32-byte strings, as they travel in handshake frames.
//
// Backend. Measured on the 2-vCPU CI machine kind (Node 20.20, medians of 3, one core): a key
// pair costs 17 µs with sodium-native (random scalar, crypto_scalarmult_base) against 126 µs with
// node:crypto (generateKeyPairSync and a DER export), and a shared secret 32 µs against 128 µs
// (node:crypto must wrap the peer's raw key in a KeyObject first). Each handshake side does one
// of each, next to one Ed25519 signature and one verification (~37 and ~117 µs through
// node:crypto, LIMITS.md), so node:crypto X25519 would about double a handshake's CPU. sodium-native is therefore the default
// and node:crypto the fallback when the addon cannot load; both compute the same function, so the
// two ends of a connection need not use the same one.

import { createPrivateKey, createPublicKey, diffieHellman, randomBytes } from "node:crypto";
import { type CryptoBackendName, type CryptoBackendPreference, type SodiumX25519, chooseSodium } from "./sodium.js";

export const X25519_PUBLIC_KEY_BYTES = 32;
const SECRET_KEY_BYTES = 32;
const SHARED_SECRET_BYTES = 32;

export interface X25519KeyPair {
  readonly publicKey: Uint8Array;
  /** Raw 32-byte scalar. The holder should zero it (`fill(0)`) once the shared secret is made. */
  readonly secretKey: Uint8Array;
}

export interface X25519Backend {
  readonly name: CryptoBackendName;
  /** A fresh key pair from the system's CSPRNG. */
  keyPair(): X25519KeyPair;
  /**
   * The shared secret of `secretKey` and the peer's `peerPublicKey`, or undefined when there is
   * none worth having: a peer key of the wrong length, or a point of small order, for which the
   * result is all zeros whatever our secret (RFC 7748 §6.1), so an attacker would know it too.
   * Never throws for any bytes the peer sends.
   */
  sharedSecret(secretKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array | undefined;
}

// DER prefixes that wrap a raw X25519 key for OpenSSL (RFC 8410 §4 and §7); fixed for X25519, as
// for Ed25519 in ed25519.ts, with the algorithm identifier 1.3.101.110 in place of 1.3.101.112.
const SPKI_DER_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00]);
const PKCS8_DER_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);

/** The X25519 implementation for `preference`; "auto" (the default) prefers sodium-native. */
export function x25519Backend(preference: CryptoBackendPreference = "auto"): X25519Backend {
  const sodium = chooseSodium("x25519", preference);
  return sodium === null ? nodeBackend : sodiumBackend(sodium);
}

function sodiumBackend(sodium: SodiumX25519): X25519Backend {
  return {
    name: "sodium-native",
    keyPair() {
      const secretKey = new Uint8Array(SECRET_KEY_BYTES);
      const publicKey = new Uint8Array(X25519_PUBLIC_KEY_BYTES);
      sodium.randombytes_buf(secretKey);
      sodium.crypto_scalarmult_base(publicKey, secretKey);
      return { publicKey, secretKey };
    },
    sharedSecret(secretKey, peerPublicKey) {
      assertSecretKey(secretKey);
      if (peerPublicKey.length !== X25519_PUBLIC_KEY_BYTES) return undefined;
      const shared = new Uint8Array(SHARED_SECRET_BYTES);
      try {
        sodium.crypto_scalarmult(shared, secretKey, peerPublicKey);
      } catch {
        return undefined; // libsodium refuses an all-zero result
      }
      return isAllZero(shared) ? undefined : shared;
    },
  };
}

const nodeBackend: X25519Backend = {
  name: "node:crypto",
  keyPair() {
    const secretKey = new Uint8Array(randomBytes(SECRET_KEY_BYTES));
    const publicDer = createPublicKey(privateKeyObject(secretKey)).export({ format: "der", type: "spki" });
    return { publicKey: Uint8Array.from(publicDer.subarray(SPKI_DER_PREFIX.length)), secretKey };
  },
  sharedSecret(secretKey, peerPublicKey) {
    assertSecretKey(secretKey);
    if (peerPublicKey.length !== X25519_PUBLIC_KEY_BYTES) return undefined;
    let shared: Buffer;
    try {
      const publicKey = createPublicKey({ key: Buffer.concat([SPKI_DER_PREFIX, peerPublicKey]), format: "der", type: "spki" });
      shared = diffieHellman({ privateKey: privateKeyObject(secretKey), publicKey });
    } catch {
      return undefined; // OpenSSL refuses an all-zero result ("failed during derivation")
    }
    const result = Uint8Array.from(shared);
    shared.fill(0);
    return isAllZero(result) ? undefined : result;
  },
};

function privateKeyObject(secretKey: Uint8Array): ReturnType<typeof createPrivateKey> {
  const der = Buffer.concat([PKCS8_DER_PREFIX, secretKey]);
  try {
    return createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  } finally {
    der.fill(0);
  }
}

function assertSecretKey(secretKey: Uint8Array): void {
  if (secretKey.length !== SECRET_KEY_BYTES) throw new RangeError(`an X25519 secret key is ${SECRET_KEY_BYTES} bytes, not ${secretKey.length}`);
}

// Accumulates over every byte rather than stopping at the first non-zero one, so the time taken
// says nothing about the secret.
function isAllZero(bytes: Uint8Array): boolean {
  let accumulated = 0;
  for (const byte of bytes) accumulated |= byte;
  return accumulated === 0;
}

// Resolved once, at module load, like the frame MAC's: every handshake uses the same one, and
// cryptoBackends() (sodium.ts) reports it.
const defaultBackend = x25519Backend();

/** A fresh ephemeral key pair, from the default backend. */
export function x25519KeyPair(): X25519KeyPair {
  return defaultBackend.keyPair();
}

/** See `X25519Backend.sharedSecret`; from the default backend. */
export function x25519SharedSecret(secretKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array | undefined {
  return defaultBackend.sharedSecret(secretKey, peerPublicKey);
}
