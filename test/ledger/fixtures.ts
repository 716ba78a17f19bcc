// A certified ledger for tests: a cluster of n replicas with reproducible keys, and blocks each
// signed by a chosen set of replicas. Keys come from the simulator's seeded generator, so every
// run signs the same bytes (tests never use Math.random).

import { type Ed25519KeyPair, ed25519KeyPairFromSeed } from "../../src/crypto/ed25519.js";
import { type Block, buildBlock } from "../../src/ledger/block.js";
import { GENESIS_PREV_HASH, blockHeaderHash } from "../../src/ledger/block-header.js";
import { type CommitCertificate, createCertificate, signBlock } from "../../src/ledger/certificate.js";
import type { ClusterConfig } from "../../src/ledger/cluster.js";
import { clusterConfigToJsonValue, parseClusterConfig } from "../../src/ledger/cluster-json.js";
import { Random } from "../../src/sim/random.js";
import { hex, randomBytes } from "../support/random-bytes.js";

export interface TestCluster {
  readonly config: ClusterConfig;
  readonly keys: readonly Ed25519KeyPair[];
  readonly authority: Ed25519KeyPair;
}

export function keyPair(random: Random): Ed25519KeyPair {
  return ed25519KeyPairFromSeed(randomBytes(random, 32));
}

/** The JSON value `bulwark init` would write for `n` replicas, keys drawn from `seed`. */
export function clusterJson(n: number, seed = 1, clusterId = "test-cluster"): { json: Record<string, unknown>; keys: Ed25519KeyPair[]; authority: Ed25519KeyPair } {
  const random = new Random(seed);
  const keys = Array.from({ length: n }, () => keyPair(random));
  const authority = keyPair(random);
  const json = {
    version: 1,
    clusterId,
    n,
    f: Math.floor((n - 1) / 3),
    genesisAuthority: hex(authority.publicKey),
    replicas: keys.map((key, id) => ({ id, address: `127.0.0.1:${7000 + id}`, publicKey: hex(key.publicKey) })),
  };
  return { json, keys, authority };
}

export function testCluster(n: number, seed = 1, clusterId = "test-cluster"): TestCluster {
  const { json, keys, authority } = clusterJson(n, seed, clusterId);
  return { config: parseClusterConfig(json), keys, authority };
}

/** A copy of a config's JSON value, for tests that break one field. */
export function jsonOf(config: ClusterConfig): Record<string, unknown> {
  return JSON.parse(JSON.stringify(clusterConfigToJsonValue(config))) as Record<string, unknown>;
}

/** Signatures of `signers` (default: the first 2f + 1 replicas) over `block`'s header. */
export function certify(cluster: TestCluster, block: Block, signers?: readonly number[]): CommitCertificate {
  const chosen = signers ?? Array.from({ length: 2 * cluster.config.f + 1 }, (_, id) => id);
  return createCertificate(
    block.header.height,
    chosen.map((id) => signBlock((cluster.keys[id] as Ed25519KeyPair).privateKey, id, block.header)),
  );
}

/** Opaque transactions and results of random lengths: the ledger never looks inside either. */
export function randomEntries(random: Random, count: number, bytesMax = 200): { transactions: Uint8Array[]; results: Uint8Array[] } {
  const transactions = Array.from({ length: count }, () => randomBytes(random, random.between(1, bytesMax)));
  const results = Array.from({ length: count }, () => randomBytes(random, random.between(0, 16)));
  return { transactions, results };
}

export interface CertifiedBlock {
  readonly block: Block;
  readonly certificate: CommitCertificate;
}

/** A certified chain of `length` blocks from height 1, with `transactionsPerBlock` each. */
export function certifiedChain(cluster: TestCluster, length: number, transactionsPerBlock: number, seed = 7): CertifiedBlock[] {
  const random = new Random(seed);
  const chain: CertifiedBlock[] = [];
  let prevHash = GENESIS_PREV_HASH;
  for (let height = 1; height <= length; height += 1) {
    const block = buildBlock({
      clusterId: cluster.config.clusterId,
      height,
      prevHash,
      stateRoot: randomBytes(random, 32),
      ...randomEntries(random, transactionsPerBlock),
    });
    chain.push({ block, certificate: certify(cluster, block) });
    prevHash = blockHeaderHash(block.header);
  }
  return chain;
}

/** `bytes` with the byte at `position` changed (xor with a non-zero mask). */
export function flipByte(bytes: Uint8Array, position: number, mask = 0x01): Uint8Array {
  const copy = new Uint8Array(bytes);
  copy[position] = (copy[position] as number) ^ mask;
  return copy;
}
