// The crash test's workload: block `height` of seed `seed` is a pure function of the two, so the
// writer process and the checking test agree on what every stored block and the state after it
// must be without talking to each other.

import type { PersistRecord } from "../../src/consensus/pbft/types.js";
import { sha256 } from "../../src/crypto/sha256.js";
import { Random } from "../../src/sim/random.js";
import type { BlockCommit, StateWrite } from "../../src/storage/index.js";
import { randomBytes } from "../support/random-bytes.js";

/** Keys the workload writes, so blocks overwrite and delete each other's entries. */
const KEY_SPACE = 40;
/** Every this many heights the writer records a stable checkpoint and prunes old bodies. */
export const CHECKPOINT_EVERY = 10;
export const PRUNE_EVERY = 25;
export const BODIES_KEPT = 30;

const encoder = new TextEncoder();

/** An independent stream per (seed, height, purpose), so the state replay never generates bodies. */
function stream(seed: number, height: number, purpose: number): Random {
  return new Random((Math.imul(seed, 0x9e3779b1) ^ Math.imul(height, 0x85ebca6b) ^ Math.imul(purpose, 0xc2b2ae35)) >>> 0);
}

function heightBytes(height: number): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(height));
  return bytes;
}

export function stateWrites(seed: number, height: number): StateWrite[] {
  const random = stream(seed, height, 1);
  const writes: StateWrite[] = [];
  const count = random.between(1, 12);
  for (let index = 0; index < count; index++) {
    const key = encoder.encode(`k${random.below(KEY_SPACE)}`);
    writes.push([key, random.chance(0.15) ? null : randomBytes(random, random.between(0, 64))]);
  }
  writes.push([encoder.encode("height"), heightBytes(height)]);
  return writes;
}

export interface WorkloadBlock {
  /** The block as committed: with its certificate at odd heights, without at even ones. */
  readonly commit: BlockCommit;
  /** Attached after the commit at even heights. */
  readonly certificate: Uint8Array;
  /** Appended before the block, as a replica persists its votes before it executes. */
  readonly records: PersistRecord[];
}

export function workloadBlock(seed: number, height: number): WorkloadBlock {
  const random = stream(seed, height, 2);
  const header = new Uint8Array([...heightBytes(height), ...randomBytes(random, 40)]);
  const body = randomBytes(random, random.between(1_000, 16_000));
  const certificate = randomBytes(random, 96);
  const digest = Buffer.from(sha256(header)).toString("hex");
  const requests = Array.from({ length: random.between(1, 3) }, (_, index) => ({
    client: `client-${index}`,
    timestamp: height,
    operation: randomBytes(random, random.between(10, 200)),
    signature: `request-signature-${height}-${index}`,
  }));
  const records: PersistRecord[] = [
    { kind: "pre-prepare", message: { type: "pre-prepare", view: 0, seq: height, digest, requests, replica: 0, signature: `pp-${height}` } },
    { kind: "prepare", message: { type: "prepare", view: 0, seq: height, digest, replica: 1, signature: `p-${height}` } },
    { kind: "commit", message: { type: "commit", view: 0, seq: height, digest, replica: 1, signature: `c-${height}` } },
  ];
  if (height % CHECKPOINT_EVERY === 0) {
    const checkpoint = { type: "checkpoint", seq: height, stateDigest: digest, replica: 1, signature: `cp-${height}` } as const;
    records.push({ kind: "checkpoint", message: checkpoint });
    // The checkpoint half an interval back becomes stable, so the newest votes stay above it.
    const stableSeq = height - CHECKPOINT_EVERY / 2;
    records.push({ kind: "stable-checkpoint", proof: { type: "checkpoint-proof", seq: stableSeq, stateDigest: `stable-${stableSeq}`, checkpoints: [] } });
  }
  const meta = { seq: height * 3, stateDigest: sha256(new Uint8Array([...header, 1])) };
  const commit: BlockCommit = {
    height,
    header,
    body,
    ...(height % 2 === 1 ? { certificate } : {}),
    stateWrites: stateWrites(seed, height),
    meta,
  };
  return { commit, certificate, records };
}

/** The state after blocks 1 .. height, kept incrementally: heights only grow across the test. */
export class ExpectedState {
  private height = 0;
  readonly entries = new Map<string, Uint8Array>();

  constructor(private readonly seed: number) {}

  advanceTo(height: number): Map<string, Uint8Array> {
    if (height < this.height) throw new Error(`expected state: the store went back from height ${this.height} to ${height}`);
    for (; this.height < height; ) {
      this.height++;
      for (const [key, value] of stateWrites(this.seed, this.height)) {
        const name = Buffer.from(key).toString("hex");
        if (value === null) this.entries.delete(name);
        else this.entries.set(name, value);
      }
    }
    return this.entries;
  }
}
