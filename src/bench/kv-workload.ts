// The `kv` workload, like YCSB's workload A ("update heavy"): half reads, half updates of
// 100-byte values, keys chosen by YCSB's scrambled zipfian (zipfian.ts) over 100,000 records.
// A read is a `get` transaction ordered through consensus (a linearizable read: the only read a
// client of a BFT ledger can trust without proofs), an update a `put`. Each closed-loop client
// has a key of its own and draws from its own random stream, so the sequence of operations is
// fixed by the seed.
//
// With `preload` the records are first written once (YCSB's load phase), in setup rounds by
// loader keys of their own, so that reads find values and updates replace them; without it the
// store starts empty and fills as the run updates keys (the zipfian head within the warm-up).

import type { Operation } from "../app/transaction.js";
import { Random } from "../sim/random.js";
import { BenchKey, buildEnvelope } from "./bench-keys.js";
import { type Draft, PreparedWorkload, streamSeed } from "./prepared-workload.js";
import type { AuthMode } from "./types.js";
import { ScrambledZipfian } from "./zipfian.js";

export const KV_RECORDS_DEFAULT = 100_000;
export const KV_VALUE_BYTES = 100;
/** YCSB workload A's read proportion; the rest are updates. */
export const KV_READ_PROPORTION = 0.5;
/** Keys that write the records in the load phase, side by side: one round is one put by each. */
const PRELOAD_KEYS_MAX = 1_000;
/** Values are windows of this pool of random bytes: random content without drawing 100 bytes a transaction. */
const VALUE_POOL_BYTES = 64 * 1024;

export interface KvWorkloadOptions {
  readonly auth: AuthMode;
  readonly clients: number;
  readonly seed: number;
  readonly keySeed: Uint8Array;
  readonly records?: number;
  readonly preload?: boolean;
}

/** Record `index`'s key, as YCSB names its keys. */
export function kvRecordKey(index: number): Uint8Array {
  return new TextEncoder().encode(`user${index}`);
}

export class KvWorkload extends PreparedWorkload {
  readonly name = "kv";
  readonly records: number;
  private readonly preload: boolean;
  private readonly keySeed: Uint8Array;
  private readonly seed: number;
  private readonly keys: readonly BenchKey[];
  private readonly nonces: Float64Array;
  private readonly randoms: readonly Random[];
  private readonly choosers: readonly ScrambledZipfian[];
  private readonly recordKeys: readonly Uint8Array[];
  private readonly valuePool: Uint8Array;

  constructor(options: KvWorkloadOptions) {
    super(options.auth, options.clients);
    this.records = options.records ?? KV_RECORDS_DEFAULT;
    this.preload = options.preload ?? false;
    this.keySeed = options.keySeed;
    this.seed = options.seed;
    this.keys = Array.from({ length: options.clients }, (_, client) => BenchKey.derive(options.keySeed, "kv-client", client));
    this.nonces = new Float64Array(options.clients).fill(1);
    this.randoms = Array.from({ length: options.clients }, (_, client) => new Random(streamSeed(options.seed, 2 * client)));
    this.choosers = Array.from({ length: options.clients }, (_, client) => new ScrambledZipfian(this.records, streamSeed(options.seed, 2 * client + 1)));
    this.recordKeys = Array.from({ length: this.records }, (_, index) => kvRecordKey(index));
    const poolRandom = new Random(streamSeed(options.seed, -1));
    this.valuePool = new Uint8Array(VALUE_POOL_BYTES);
    for (let i = 0; i < VALUE_POOL_BYTES; i++) this.valuePool[i] = poolRandom.nextUint32() & 0xff;
  }

  keysOfClient(client: number): readonly BenchKey[] {
    return [this.keys[client]!];
  }

  /** With `preload`: every record put once, by up to 1,000 loader keys side by side (always signed: setup is not measured). */
  *setupRounds(): Iterable<readonly Uint8Array[]> {
    if (!this.preload) return;
    const loaders = Math.min(PRELOAD_KEYS_MAX, this.records);
    const loaderKeys = Array.from({ length: loaders }, (_, loader) => BenchKey.derive(this.keySeed, "kv-loader", loader));
    const random = new Random(streamSeed(this.seed, -2));
    for (let round = 0; round * loaders < this.records; round++) {
      const envelopes: Uint8Array[] = [];
      for (let loader = 0; loader < loaders; loader++) {
        const record = round * loaders + loader;
        if (record >= this.records) break;
        const operation: Operation = { type: "put", key: this.recordKeys[record]!, value: this.value(random) };
        envelopes.push(buildEnvelope(loaderKeys[loader]!, "signed", round + 1, operation));
      }
      yield envelopes;
    }
  }

  protected draw(client: number): Draft {
    const random = this.randoms[client]!;
    const key = this.recordKeys[this.choosers[client]!.next()]!;
    const operation: Operation = random.float() < KV_READ_PROPORTION ? { type: "get", key } : { type: "put", key, value: this.value(random) };
    const nonce = this.nonces[client]!;
    this.nonces[client] = nonce + 1;
    return { key: this.keys[client]!, nonce, operation };
  }

  private value(random: Random): Uint8Array {
    const offset = random.below(VALUE_POOL_BYTES - KV_VALUE_BYTES + 1);
    return this.valuePool.subarray(offset, offset + KV_VALUE_BYTES);
  }
}
