// sodium-native (libsodium) as an optional backend, and the one place that says which library
// computes each primitive. It is a native addon, so it can fail to load (no prebuild for the
// platform, a broken install); every user of it therefore has a node:crypto fallback that
// computes the same function. The module is loaded once per thread and its failure remembered,
// so a missing addon costs one attempt, not one per call.
//
// A fallback is slower, not wrong (about 2× for Ed25519 verification, 4-7× for X25519, 6× for a
// small frame's MAC tag: verify-pool.ts, x25519.ts, frame-mac.ts), so it must not be silent:
// `cryptoBackends()` reports what "auto" chose for every primitive a replica computes, and why
// sodium-native was passed over, for the runtime to log once at start. Ed25519 signing goes through
// it too (ed25519.ts `ed25519Sign`, whose `sodiumSigning` choice the benchmark's bulk signing from
// raw seeds shares and reports with the run's settings, bench/bench-keys.ts).

import { createRequire } from "node:module";

/** Which library computes a primitive; both give the same results, at different speeds. */
export type CryptoBackendName = "sodium-native" | "node:crypto";
/** "auto": sodium-native when it loads, node:crypto otherwise. */
export type CryptoBackendPreference = CryptoBackendName | "auto";

/** What the frame MAC (net/frame-mac.ts) takes from sodium-native. */
export interface SodiumFrameMac {
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(
    ciphertext: Uint8Array,
    tag: Uint8Array,
    message: Uint8Array,
    associatedData: Uint8Array | null,
    nsec: null,
    nonce: Uint8Array,
    key: Uint8Array,
  ): number;
}

/** What X25519 (x25519.ts) takes from sodium-native. */
export interface SodiumX25519 {
  randombytes_buf(buffer: Uint8Array): void;
  crypto_scalarmult_base(publicKey: Uint8Array, secretKey: Uint8Array): void;
  /** Throws when the result is all zeros (a small-order peer key). */
  crypto_scalarmult(shared: Uint8Array, secretKey: Uint8Array, peerPublicKey: Uint8Array): void;
}

/** What Ed25519 verification (verify-pool.ts) takes from sodium-native. */
export interface SodiumEd25519 {
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

/**
 * What Ed25519 signing takes from sodium-native: key pairs from 32-byte seeds and detached
 * signatures. The secret key is libsodium's 64 bytes (the seed followed by the public key).
 * `ed25519Sign` (ed25519.ts) and the benchmark's keys (bench/bench-keys.ts) use it.
 */
export interface SodiumEd25519Signing {
  crypto_sign_seed_keypair(publicKey: Uint8Array, secretKey: Uint8Array, seed: Uint8Array): void;
  crypto_sign_detached(signature: Uint8Array, message: Uint8Array, secretKey: Uint8Array): void;
}

/** libsodium's Ed25519 secret key: the 32-byte seed followed by the 32-byte public key. */
export const SODIUM_SIGN_SECRET_KEY_BYTES = 64;

interface SodiumPrimitives {
  readonly mac: SodiumFrameMac;
  readonly x25519: SodiumX25519;
  readonly ed25519: SodiumEd25519;
  readonly sign: SodiumEd25519Signing;
}

/** A primitive with a sodium-native and a node:crypto implementation. */
export type CryptoPrimitive = keyof SodiumPrimitives;

// The functions each primitive needs: a sodium-native too old to have one of them is as unusable
// for that primitive as a missing one.
const FUNCTIONS: { readonly [P in CryptoPrimitive]: readonly (keyof SodiumPrimitives[P] & string)[] } = {
  mac: ["crypto_aead_chacha20poly1305_ietf_encrypt_detached"],
  x25519: ["randombytes_buf", "crypto_scalarmult_base", "crypto_scalarmult"],
  ed25519: ["crypto_sign_verify_detached"],
  sign: ["crypto_sign_seed_keypair", "crypto_sign_detached"],
};

const PRIMITIVE_NAMES: Readonly<Record<CryptoPrimitive, string>> = {
  mac: "the frame MAC",
  x25519: "X25519",
  ed25519: "Ed25519 verification",
  sign: "Ed25519 signing",
};

let loaded: { readonly module: Record<string, unknown> | null; readonly error: Error | null } | undefined;

function loadOnce(): { readonly module: Record<string, unknown> | null; readonly error: Error | null } {
  if (loaded !== undefined) return loaded;
  try {
    const require = createRequire(import.meta.url);
    loaded = { module: require("sodium-native") as Record<string, unknown>, error: null };
  } catch (error) {
    loaded = { module: null, error: error instanceof Error ? error : new Error(String(error)) };
  }
  return loaded;
}

/** sodium-native's functions for `primitive`, or why it cannot compute it. */
function usableSodium<P extends CryptoPrimitive>(primitive: P): { readonly sodium: SodiumPrimitives[P]; readonly reason: null } | { readonly sodium: null; readonly reason: string } {
  const { module, error } = loadOnce();
  if (module === null) return { sodium: null, reason: `sodium-native did not load: ${error?.message ?? "unknown error"}` };
  const missing = FUNCTIONS[primitive].filter((name) => typeof module[name] !== "function");
  if (missing.length > 0) return { sodium: null, reason: `sodium-native lacks ${missing.join(", ")}` };
  return { sodium: module as unknown as SodiumPrimitives[P], reason: null };
}

/**
 * The sodium-native functions `preference` selects for `primitive`, or null for node:crypto.
 * "auto" picks sodium-native when it is usable. Asking for sodium-native explicitly when it is not
 * usable is a configuration error and throws.
 */
export function chooseSodium<P extends CryptoPrimitive>(primitive: P, preference: CryptoBackendPreference): SodiumPrimitives[P] | null {
  if (preference === "node:crypto") return null;
  const usable = usableSodium(primitive);
  if (usable.sodium !== null) return usable.sodium;
  if (preference === "sodium-native") {
    throw new Error(`${PRIMITIVE_NAMES[primitive]}: sodium-native was asked for but cannot be used (${usable.reason}); use "node:crypto" or "auto"`);
  }
  return null;
}

/** What "auto" chose for each primitive in this process. */
export interface CryptoBackends {
  /** The frame MAC of every authenticated connection (net/frame-mac.ts). */
  readonly mac: CryptoBackendName;
  /** The handshake's ephemeral key agreement (x25519.ts). */
  readonly x25519: CryptoBackendName;
  /** Ed25519 verification, inline and in the verification pool (verify-pool.ts). */
  readonly ed25519: CryptoBackendName;
  /** Ed25519 signing (ed25519.ts `ed25519Sign`): votes, block signatures, handshakes. */
  readonly sign: CryptoBackendName;
  /** Why sodium-native computes none or only some of them; null when it computes all four. */
  readonly fallbackReason: string | null;
}

/**
 * The backend "auto" resolves to for every primitive a replica computes, for the runtime to log
 * once at start: a
 * process on node:crypto works, only slower. Components given an explicit preference (a
 * VerifyPool's `backend` option) report their own choice.
 */
export function cryptoBackends(): CryptoBackends {
  const reasons: string[] = [];
  const backendOf = (primitive: CryptoPrimitive): CryptoBackendName => {
    const { reason } = usableSodium(primitive);
    if (reason === null) return "sodium-native";
    if (!reasons.includes(reason)) reasons.push(reason);
    return "node:crypto";
  };
  return { mac: backendOf("mac"), x25519: backendOf("x25519"), ed25519: backendOf("ed25519"), sign: backendOf("sign"), fallbackReason: reasons.length === 0 ? null : reasons.join("; ") };
}
