// Headers and block signatures for the certificate-gathering tests (block-certifier.test.ts,
// certificate-repair.test.ts): real headers and real Ed25519 signatures by the keys of a
// reproducible test cluster, so a certificate the code under test builds can be checked with
// `verifyCertificate` exactly as a client would check it.

import { type Ed25519KeyPair } from "../../src/crypto/ed25519.js";
import { buildBlock } from "../../src/ledger/block.js";
import { type BlockHeader, GENESIS_PREV_HASH } from "../../src/ledger/block-header.js";
import { type BlockSignature, signBlock } from "../../src/ledger/certificate.js";
import { type TestCluster } from "../ledger/fixtures.js";

/**
 * The header of an empty block at `height` whose state root is filled with `stateRootByte`: two
 * headers at one height that differ only in it stand for replicas that executed to different
 * states (the case a certificate must never cover).
 */
export function headerAt(cluster: TestCluster, height: number, stateRootByte = 1): BlockHeader {
  return buildBlock({
    clusterId: cluster.config.clusterId,
    height,
    prevHash: height === 1 ? GENESIS_PREV_HASH : new Uint8Array(32).fill(height % 256),
    stateRoot: new Uint8Array(32).fill(stateRootByte),
    transactions: [],
    results: [],
  }).header;
}

/** Replica `replica`'s real signature over `header`. */
export function signedBy(cluster: TestCluster, replica: number, header: BlockHeader): BlockSignature {
  const key = cluster.keys[replica] as Ed25519KeyPair;
  return signBlock(key.privateKey, replica, header);
}
