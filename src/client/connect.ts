// The SDK's front door: connect to a cluster from the files `bulwark init` writes. The cluster
// config may be a path to cluster.json or the parsed config, the key a path to a key file or the
// key itself, by default the client.key beside cluster.json. A client that reuses a key must start
// from the account's next nonce, so by default the nonce is discovered: a proof read of the
// client's own account (verified against the cluster's keys, client/proof-check.ts) at a height
// f + 1 replicas vouch for, which a fresh account answers with nonce 1.

import { dirname, join } from "node:path";

import type { Ed25519PrivateKey } from "../crypto/ed25519.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import { readClusterFile } from "../ledger/cluster-json.js";
import { readKeyFile } from "../node/keys.js";
import { BulwarkClient } from "./client.js";
import type { ClientOptions } from "./types.js";

/** The name of the client key file `bulwark init` writes beside cluster.json. */
export const CLIENT_KEY_FILE = "client.key";

/** The default client key of a cluster: client.key beside its cluster.json (where `bulwark init` writes it). */
export function defaultClientKeyPath(clusterPath: string): string {
  return join(dirname(clusterPath), CLIENT_KEY_FILE);
}

export interface ConnectOptions extends Omit<ClientOptions, "cluster" | "privateKey" | "firstNonce"> {
  /** A path to cluster.json, or the parsed config. */
  readonly cluster: string | ClusterConfig;
  /** A path to a key file, or the key; default: client.key in the directory of the cluster.json path. */
  readonly key?: string | Ed25519PrivateKey;
  /**
   * The nonce of the first transaction, or "discover" (the default): read the account's next
   * nonce by proof once connected (`BulwarkClient.discoverNonce`). A number is used as given: one
   * too high fails with a NonceError, and one too low is not corrected, because replicas drop a
   * request with a used nonce without answering it, so its calls time out (client.ts, "Nonces").
   */
  readonly firstNonce?: number | "discover";
  /** Stops connecting (and discovering the nonce): the call rejects with RequestAbortedError and leaves nothing running. */
  readonly signal?: AbortSignal;
}

/**
 * A connected client (f + 1 replicas reachable), its nonce discovered unless `firstNonce` is a
 * number. Rejects with ClusterConfigError or KeyFileError for files that cannot be used,
 * ClusterUnavailableError when the cluster cannot be reached or no replica proves the account,
 * RequestAbortedError when `signal` fires, and TypeError when no key is given and there is no
 * cluster.json path to find one beside.
 */
export async function connect(options: ConnectOptions): Promise<BulwarkClient> {
  const { cluster: clusterOption, key, firstNonce = "discover", signal, ...rest } = options;
  const cluster = typeof clusterOption === "string" ? readClusterFile(clusterOption) : clusterOption;
  const privateKey = await resolveKey(key, clusterOption);
  const client = await BulwarkClient.connect({ ...rest, cluster, privateKey, ...(firstNonce === "discover" ? {} : { firstNonce }) }, { signal });
  if (firstNonce === "discover") {
    try {
      await client.discoverNonce({ signal });
    } catch (error) {
      await client.close();
      throw error;
    }
  }
  return client;
}

async function resolveKey(key: string | Ed25519PrivateKey | undefined, cluster: string | ClusterConfig): Promise<Ed25519PrivateKey> {
  if (key !== undefined && typeof key !== "string") return key;
  if (key === undefined && typeof cluster !== "string") {
    throw new TypeError(`connect: pass \`key\` (a key file's path or a private key); the default ${CLIENT_KEY_FILE} is looked for beside a cluster.json path, and the cluster was given as a parsed config`);
  }
  const path = key ?? defaultClientKeyPath(cluster as string);
  return (await readKeyFile(path)).privateKey;
}
