// YCSB's scrambled zipfian key chooser (core/src/main/java/site/ycsb/generator/
// ScrambledZipfianGenerator.java), so the kv workload's key popularity is the one YCSB's
// workload A has: a zipfian draw with theta 0.99 over a space of 10^10 items (Gray et al.,
// "Quickly generating billion-record synthetic databases", SIGMOD 1994), hashed with 64-bit
// FNV-1a and reduced modulo the record count. The hash spreads the popular items over the key
// space, so hot keys are not neighbours; their popularity stays zipfian: the hottest record gets
// about 4 % of the draws whatever the record count.
//
// Deterministic from a seed: the uniform draws come from the simulator's sfc32 (sim/random.ts),
// so one seed gives the same key sequence on every machine and run.

import assert from "node:assert/strict";

import { Random } from "../sim/random.js";

/** YCSB's zipfian constant: the skew of workload A's key popularity. */
export const ZIPFIAN_THETA = 0.99;
/** The item space the zipfian draw runs over before scrambling (YCSB's ITEM_COUNT). */
const ITEM_COUNT = 10_000_000_000;
/**
 * zeta(ITEM_COUNT, 0.99): the normalizing sum over 10^10 terms, precomputed as YCSB does (ZETAN),
 * since summing it takes minutes.
 */
const ZETAN = 26.46902820178302;
/** Beyond this the modular reduction below could lose exactness in doubles. */
export const ZIPFIAN_RECORDS_MAX = 2 ** 36;

const TWO_POW_32 = 4_294_967_296;
/** FNV-1a's 64-bit prime 0x100000001b3, as its high and low 32-bit halves. */
const FNV_PRIME_HIGH = 0x100;
const FNV_PRIME_LOW = 0x1b3;
/** FNV-1a's 64-bit offset basis 0xcbf29ce484222325, as its high and low halves. */
const FNV_OFFSET_HIGH = 0xcbf29ce4;
const FNV_OFFSET_LOW = 0x84222325;

export class ScrambledZipfian {
  private readonly random: Random;
  private readonly alpha = 1 / (1 - ZIPFIAN_THETA);
  private readonly eta: number;
  private readonly halfPowTheta = 0.5 ** ZIPFIAN_THETA;

  /** Draws record indexes in [0, records). */
  constructor(
    readonly records: number,
    seed: number,
  ) {
    assert.ok(Number.isSafeInteger(records) && records >= 1 && records <= ZIPFIAN_RECORDS_MAX, `records must be an integer from 1 to ${ZIPFIAN_RECORDS_MAX}; got ${records}`);
    this.random = new Random(seed);
    // YCSB's ZipfianGenerator(0, ITEM_COUNT): items = max - min + 1.
    const items = ITEM_COUNT + 1;
    const zeta2theta = 1 + this.halfPowTheta;
    this.eta = (1 - (2 / items) ** (1 - ZIPFIAN_THETA)) / (1 - zeta2theta / ZETAN);
  }

  /** The next record index. */
  next(): number {
    return fnv64Mod(this.nextItem(), this.records);
  }

  /** YCSB's ZipfianGenerator.nextValue over [0, ITEM_COUNT]. */
  private nextItem(): number {
    const u = this.random.float();
    const uz = u * ZETAN;
    if (uz < 1) return 0;
    if (uz < 1 + this.halfPowTheta) return 1;
    return Math.floor((ITEM_COUNT + 1) * (this.eta * u - this.eta + 1) ** this.alpha);
  }
}

/**
 * YCSB's Utils.fnvhash64(value) % modulus, computed on 32-bit halves so it needs no BigInt:
 * FNV-1a over the value's 8 little-endian bytes, the absolute value of the result read as a
 * signed 64-bit integer (Java's Math.abs), then the remainder.
 */
export function fnv64Mod(value: number, modulus: number): number {
  let high = FNV_OFFSET_HIGH;
  let low = FNV_OFFSET_LOW;
  const valueLow = value % TWO_POW_32;
  const valueHigh = Math.floor(value / TWO_POW_32);
  for (let i = 0; i < 8; i++) {
    const octet = i < 4 ? (valueLow >>> (8 * i)) & 0xff : (valueHigh >>> (8 * (i - 4))) & 0xff;
    low = (low ^ octet) >>> 0;
    // (high, low) * (FNV_PRIME_HIGH, FNV_PRIME_LOW) mod 2^64; every partial product is below 2^53.
    const lowProduct = low * FNV_PRIME_LOW;
    const carry = Math.floor(lowProduct / TWO_POW_32);
    high = (high * FNV_PRIME_LOW + low * FNV_PRIME_HIGH + carry) % TWO_POW_32;
    low = lowProduct % TWO_POW_32;
  }
  if (high >= 0x80000000) {
    // Two's complement negation: Math.abs of a negative long.
    low = (TWO_POW_32 - low) % TWO_POW_32;
    high = (TWO_POW_32 - high - (low === 0 ? 0 : 1)) % TWO_POW_32;
  }
  // (high * 2^32 + low) mod modulus, in steps that stay below 2^53 for a modulus below 2^37.
  let remainder = high % modulus;
  remainder = (remainder * 65_536) % modulus;
  remainder = (remainder * 65_536) % modulus;
  return (remainder + low) % modulus;
}
