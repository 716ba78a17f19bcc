// Commit certificates signed by replica keys held in one place: for tests, the simulator of a
// whole cluster and benchmarks that build certified stores. A real replica signs with its own key
// only and collects the other signatures from its peers.

import type { Ed25519PrivateKey } from "../crypto/ed25519.js";
import type { BlockHeader } from "../ledger/block-header.js";
import { type CommitCertificate, createCertificate, signBlock } from "../ledger/certificate.js";

/**
 * A certificate for `header` signed by every replica whose key is given: `privateKeys[i]` is
 * replica i's key (undefined: that replica does not sign).
 */
export function certifyWithKeys(privateKeys: readonly (Ed25519PrivateKey | undefined)[], header: BlockHeader): CommitCertificate {
  const signatures = privateKeys.flatMap((privateKey, replica) => (privateKey === undefined ? [] : [signBlock(privateKey, replica, header)]));
  return createCertificate(header.height, signatures);
}
