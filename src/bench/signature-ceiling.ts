// The signature-verification ceiling of a signed run, measured in the same run (issue 5: "at
// least 80 % of the signature-verification ceiling measured in the same run (ceiling = cores ×
// one core's verifications per second ÷ replicas, each replica verifying each transaction
// once)"). The bench measures one core's rate on its own main thread before it starts the
// replicas, while the machine is otherwise idle, with the backend the replicas verify with
// ("auto": sodium-native when it loads), over the shared signature policy, on messages the size
// of a transfer's signing message.

import { availableParallelism } from "node:os";
import { performance } from "node:perf_hooks";
import { ed25519KeyPairFromSeed, ed25519Sign } from "../crypto/ed25519.js";
import { type SignedItem, createEd25519VerifyBackend } from "../crypto/verify-pool.js";
import { median } from "./load-driver.js";

export interface SignatureCeiling {
  /** The library verifying (what the replicas' pools use). */
  readonly backend: string;
  /** Median of `rounds` timed rounds on one core. */
  readonly verifiesPerSecondOneCore: number;
  readonly cores: number;
  readonly replicas: number;
  /** cores × verifiesPerSecondOneCore ÷ replicas. */
  readonly ceilingTps: number;
  readonly rounds: number;
}

const KEYS = 64;
/** About a transfer's signing message (domain, key, nonce, operation). */
const MESSAGE_BYTES = 120;
const ITEMS = 2048;
const ROUNDS_DEFAULT = 5;
/** Each timed round verifies at least this long, so timer resolution does not matter. */
const ROUND_MS_MIN = 200;

function signedItems(): SignedItem[] {
  const pairs = Array.from({ length: KEYS }, (_, index) => ed25519KeyPairFromSeed(new Uint8Array(32).fill(index + 1)));
  return Array.from({ length: ITEMS }, (_, index) => {
    const pair = pairs[index % KEYS]!;
    const message = new Uint8Array(MESSAGE_BYTES);
    new DataView(message.buffer).setUint32(0, index);
    return { publicKey: pair.publicKey, message, signature: ed25519Sign(pair.privateKey, message) };
  });
}

/**
 * One core's verification rate and the ceiling it implies for `replicas` replicas sharing
 * `cores` cores. Takes about rounds × 0.2 s. Throws if the backend refuses a valid signature.
 */
export function measureSignatureCeiling(replicas: number, options: { readonly cores?: number; readonly rounds?: number } = {}): SignatureCeiling {
  const cores = options.cores ?? availableParallelism();
  const rounds = options.rounds ?? ROUNDS_DEFAULT;
  const backend = createEd25519VerifyBackend("auto");
  const items = signedItems();
  const rates: number[] = [];
  for (let round = 0; round < rounds; round++) {
    let verified = 0;
    const startedMs = performance.now();
    let elapsedMs: number;
    do {
      for (const item of items) {
        if (!backend.verify(item.publicKey, item.message, item.signature)) throw new Error(`${backend.name} refused a valid signature`);
      }
      verified += items.length;
      elapsedMs = performance.now() - startedMs;
    } while (elapsedMs < ROUND_MS_MIN);
    rates.push(verified / (elapsedMs / 1000));
  }
  const verifiesPerSecondOneCore = Math.round(median(rates));
  return { backend: backend.name, verifiesPerSecondOneCore, cores, replicas, ceilingTps: Math.round((cores * verifiesPerSecondOneCore) / replicas), rounds };
}
