// sodium-native (libsodium) as an optional backend. It is a native addon, so it can fail to load
// (no prebuild for the platform, a broken install); every user of it therefore has a node:crypto
// fallback that computes the same function, and asks here whether the faster one is available.
// The module is loaded once per thread and its failure remembered, so a missing addon costs one
// attempt, not one per call.

import { createRequire } from "node:module";

/** Which library computes a primitive; both give the same results, at different speeds. */
export type CryptoBackendName = "sodium-native" | "node:crypto";
/** "auto": sodium-native when it loads, node:crypto otherwise. */
export type CryptoBackendPreference = CryptoBackendName | "auto";

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

/**
 * The sodium-native module typed as `T`, if it loads and has every function named in
 * `functions`; otherwise the reason it cannot be used.
 */
export function optionalSodium<T>(functions: readonly (keyof T & string)[]): { readonly usable: true; readonly sodium: T } | { readonly usable: false; readonly error: Error } {
  const { module, error } = loadOnce();
  if (module === null) return { usable: false, error: error ?? new Error("sodium-native did not load") };
  const missing = functions.filter((name) => typeof module[name] !== "function");
  if (missing.length > 0) return { usable: false, error: new Error(`sodium-native lacks ${missing.join(", ")}`) };
  return { usable: true, sodium: module as T };
}

/**
 * Resolves a backend preference: "auto" picks sodium-native when it is usable. Asking for
 * sodium-native explicitly when it is not usable is a configuration error and throws.
 */
export function chooseBackend<T>(
  preference: CryptoBackendPreference,
  functions: readonly (keyof T & string)[],
  what: string,
): { name: "sodium-native"; sodium: T } | { name: "node:crypto"; sodium: null } {
  if (preference === "node:crypto") return { name: "node:crypto", sodium: null };
  const loadedSodium = optionalSodium<T>(functions);
  if (loadedSodium.usable) return { name: "sodium-native", sodium: loadedSodium.sodium };
  if (preference === "sodium-native") throw new Error(`${what}: sodium-native was asked for but cannot be used (${loadedSodium.error.message})`);
  return { name: "node:crypto", sodium: null };
}
