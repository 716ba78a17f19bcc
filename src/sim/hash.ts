// A fast 53-bit non-cryptographic string hash (cyrb53, by bryc, public domain). The simulator uses
// it in place of SHA-256 and ed25519: collisions are irrelevant at the few million digests a run
// makes, and nothing in the simulation searches for them.

export function cyrb53(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** cyrb53 as a fixed-width base-36 string (11 characters), the simulator's digest format. */
export function hashText(text: string): string {
  return cyrb53(text).toString(36).padStart(11, "0");
}
