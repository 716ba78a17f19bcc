import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ScrambledZipfian, fnv64Mod } from "../../src/bench/zipfian.js";
import { Random } from "../../src/sim/random.js";

/** YCSB's Utils.fnvhash64 in 64-bit BigInt arithmetic, the reference for the 32-bit version. */
function fnvReference(value: number, modulus: number): number {
  const mask = (1n << 64n) - 1n;
  let hash = 0xcbf29ce484222325n;
  let rest = BigInt(value);
  for (let i = 0; i < 8; i++) {
    hash ^= rest & 0xffn;
    rest >>= 8n;
    hash = (hash * 0x100000001b3n) & mask;
  }
  // Java's Math.abs of the signed 64-bit value.
  const signed = hash >= 1n << 63n ? hash - (1n << 64n) : hash;
  const absolute = signed < 0n ? -signed : signed;
  return Number(absolute % BigInt(modulus));
}

function draws(generator: ScrambledZipfian, count: number): number[] {
  return Array.from({ length: count }, () => generator.next());
}

describe("the scrambled zipfian key chooser", () => {
  it("hashes like YCSB's fnvhash64 for small, large and sign-flipping values", () => {
    const values = [0, 1, 2, 255, 256, 65_535, 1_234_567, 4_294_967_295, 4_294_967_296, 9_999_999_999, 10_000_000_000];
    const random = new Random(20_251_121);
    for (let i = 0; i < 2000; i++) values.push(Math.floor(random.float() * 10_000_000_001));
    for (const modulus of [1, 7, 100_000, 2 ** 31 + 11, 2 ** 36]) {
      for (const value of values) assert.equal(fnv64Mod(value, modulus), fnvReference(value, modulus), `fnv(${value}) mod ${modulus}`);
    }
  });

  it("draws only record indexes in [0, records)", () => {
    for (const records of [1, 2, 10, 100_000]) {
      const generator = new ScrambledZipfian(records, 7);
      for (const index of draws(generator, 20_000)) assert.ok(Number.isInteger(index) && index >= 0 && index < records, `${index} outside [0, ${records})`);
    }
  });

  it("gives the same sequence for the same seed and a different one for another seed", () => {
    assert.deepEqual(draws(new ScrambledZipfian(100_000, 42), 1000), draws(new ScrambledZipfian(100_000, 42), 1000));
    assert.notDeepEqual(draws(new ScrambledZipfian(100_000, 42), 1000), draws(new ScrambledZipfian(100_000, 43), 1000));
  });

  it("is skewed: a few records take a large share of the draws, unlike a uniform choice", () => {
    const records = 100_000;
    const count = 200_000;
    const frequencies = new Map<number, number>();
    for (const index of draws(new ScrambledZipfian(records, 1), count)) frequencies.set(index, (frequencies.get(index) ?? 0) + 1);
    const sorted = [...frequencies.values()].sort((a, b) => b - a);
    const share = (top: number): number => sorted.slice(0, top).reduce((sum, value) => sum + value, 0) / count;
    // Theta 0.99 over 10^10 items: the hottest item alone is 1/zeta(10^10) ≈ 3.8 % of the draws.
    assert.ok(share(1) > 0.03 && share(1) < 0.05, `hottest record ${share(1)}`);
    assert.ok(share(10) > 0.1, `top 10 records ${share(10)}`);
    assert.ok(share(1000) > 0.3, `top 1,000 records ${share(1000)}`);
    // Uniform draws would touch 1 - e^-2 ≈ 86 % of the records; the zipfian's head takes draws from the tail.
    assert.ok(frequencies.size < 0.8 * records, `${frequencies.size} distinct records drawn`);
    // Scrambled: the hot records are spread over the key space, not the lowest indexes.
    const hottest = [...frequencies.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([index]) => index);
    assert.ok(hottest.some((index) => index > records / 2), `hottest records ${hottest.join(", ")}`);
  });
});
