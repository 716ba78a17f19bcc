// The keys a benchmark workload signs with, and how its envelopes are built. A workload holds
// thousands of keys (one per account in `transfer`), so a key is derived from a seed in
// microseconds: libsodium's seed-to-key-pair when sodium-native can sign (the choice
// `ed25519Sign` makes, crypto/ed25519.ts), node:crypto otherwise. The same library signs, at about half
// node:crypto's cost per signature, which matters because signed workloads build every envelope
// of the timed window before it starts. The KeyObject that the client SDK takes (for session
// attachments) is made only when asked for.
//
// Key seeds are SHA-256(keySeed || label || index): a run's keys are reproducible from its key
// seed, and a fresh random key seed per run keeps a benchmark against a running cluster from
// reusing keys whose nonces an earlier run consumed.

import { createHash } from "node:crypto";

import { type Operation, encodeTransaction, sessionTransaction, transactionSigningMessage } from "../app/transaction.js";
import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SEED_BYTES,
  ED25519_SIGNATURE_BYTES,
  type Ed25519PrivateKey,
  ed25519KeyPairFromSeed,
  ed25519Sign,
  ed25519SigningBackend,
  exportEd25519Seed,
  sodiumSigning,
} from "../crypto/ed25519.js";
import { type CryptoBackendName, SODIUM_SIGN_SECRET_KEY_BYTES } from "../crypto/sodium.js";
import type { AuthMode } from "./types.js";

/** Which library signs the bench's envelopes (reported with the run's settings): ed25519Sign's. */
export function benchSigningBackend(): CryptoBackendName {
  return ed25519SigningBackend();
}

export class BenchKey {
  readonly publicKey: Uint8Array;
  private readonly seed: Uint8Array;
  /** libsodium's 64-byte secret key, when sodium-native signs. */
  private readonly sodiumSecretKey: Uint8Array | undefined;
  private keyObject: Ed25519PrivateKey | undefined;

  private constructor(seed: Uint8Array, keyObject?: Ed25519PrivateKey) {
    this.seed = seed;
    this.keyObject = keyObject;
    const sodium = sodiumSigning();
    if (sodium !== null) {
      this.publicKey = new Uint8Array(ED25519_PUBLIC_KEY_BYTES);
      this.sodiumSecretKey = new Uint8Array(SODIUM_SIGN_SECRET_KEY_BYTES);
      sodium.crypto_sign_seed_keypair(this.publicKey, this.sodiumSecretKey, seed);
    } else {
      const pair = ed25519KeyPairFromSeed(seed);
      this.publicKey = pair.publicKey;
      this.keyObject ??= pair.privateKey;
      this.sodiumSecretKey = undefined;
    }
  }

  /** Key `index` of the family `label` ("client", "account", ...) under `keySeed`. */
  static derive(keySeed: Uint8Array, label: string, index: number): BenchKey {
    const indexBytes = new Uint8Array(4);
    new DataView(indexBytes.buffer).setUint32(0, index);
    const seed = createHash("sha256").update(keySeed).update(label).update(indexBytes).digest();
    return new BenchKey(new Uint8Array(seed.buffer, seed.byteOffset, ED25519_SEED_BYTES));
  }

  /** A key read from a key file (the genesis authority's). */
  static fromPrivateKey(privateKey: Ed25519PrivateKey): BenchKey {
    return new BenchKey(exportEd25519Seed(privateKey), privateKey);
  }

  /** The key as the client SDK takes it (made on first use). */
  get privateKey(): Ed25519PrivateKey {
    this.keyObject ??= ed25519KeyPairFromSeed(this.seed).privateKey;
    return this.keyObject;
  }

  sign(message: Uint8Array): Uint8Array {
    const sodium = sodiumSigning();
    if (sodium === null || this.sodiumSecretKey === undefined) return ed25519Sign(this.privateKey, message);
    const signature = new Uint8Array(ED25519_SIGNATURE_BYTES);
    sodium.crypto_sign_detached(signature, message, this.sodiumSecretKey);
    return signature;
  }
}

/**
 * The envelope of `operation` by `key` with `nonce`: signed, or session-authenticated (format
 * version 2, no signature; the client's session attachment vouches for it).
 */
export function buildEnvelope(key: BenchKey, auth: AuthMode, nonce: number, operation: Operation): Uint8Array {
  const body = { clientKey: key.publicKey, nonce, operation };
  if (auth === "session") return encodeTransaction(sessionTransaction(body));
  return encodeTransaction({ ...body, signature: key.sign(transactionSigningMessage(body)) });
}

/** Where the client key and the nonce sit in every envelope format (app/transaction.ts, "Layout"). */
const CLIENT_KEY_OFFSET = 1;
const NONCE_OFFSET = CLIENT_KEY_OFFSET + ED25519_PUBLIC_KEY_BYTES;
const NONCE_BYTES = 8;

/**
 * An envelope's client key and nonce, read in place (views, not copies) for the SDK's
 * `submitEnvelope(..., { decoded })`, which then need not decode every envelope. Only for
 * envelopes a workload built: nothing is checked.
 */
export function envelopeKeyAndNonce(envelope: Uint8Array): { readonly clientKey: Uint8Array; readonly nonce: number } {
  const view = new DataView(envelope.buffer, envelope.byteOffset + NONCE_OFFSET, NONCE_BYTES);
  return { clientKey: envelope.subarray(CLIENT_KEY_OFFSET, NONCE_OFFSET), nonce: view.getUint32(0) * 4_294_967_296 + view.getUint32(4) };
}
