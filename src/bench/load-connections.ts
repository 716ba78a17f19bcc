// The client connections that carry a load's envelopes. A replica routes the replies of at most
// 4,096 client keys to one connection (node/replica-runtime.ts, ROUTES_PER_CONNECTION_MAX) and
// answers nothing for the keys beyond, so a load of many keys (10,000 accounts in `transfer`) is
// spread over enough connections to stay below that. In session mode each connection attaches
// the keys of the clients it carries.

import { BulwarkClient } from "../client/index.js";
import { type Ed25519PrivateKey, generateEd25519KeyPair } from "../crypto/ed25519.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import type { EnvelopeSubmitter } from "./load-driver.js";
import type { PreparedWorkload } from "./prepared-workload.js";

/** Most keys whose envelopes one connection carries: below the replicas' 4,096 routes per connection. */
export const KEYS_PER_CONNECTION_MAX = 4_000;
/** A connection's most requests in flight: at least every client's it serves, and a whole setup round's. */
export const IN_FLIGHT_FLOOR = 1_024;

export interface LoadConnections {
  /** The connection that carries client `client`'s envelopes. */
  submitterOf(client: number): EnvelopeSubmitter;
  close(): Promise<void>;
}

/** Session authentication of `keys` on the connection. */
function attachSessionKeys(connection: BulwarkClient, keys: readonly Ed25519PrivateKey[]): void {
  try {
    for (const key of keys) connection.addSessionKey(key);
  } catch (error) {
    throw new Error(`session authentication could not be set up (${(error as Error).message}); run with --auth signed`, { cause: error });
  }
}

/**
 * Connects the connections for `clients` (indexes into `workload`): the i-th of them uses
 * connection i mod count. Whatever fails, no connection is left open.
 */
export async function connectLoad(cluster: ClusterConfig, workload: PreparedWorkload, clients: readonly number[], signal: AbortSignal | undefined): Promise<LoadConnections> {
  let keys = 0;
  for (const client of clients) keys += workload.keysOfClient(client).length;
  const count = Math.max(1, Math.min(clients.length, Math.ceil(keys / KEYS_PER_CONNECTION_MAX)));
  const connections: BulwarkClient[] = [];
  const connectionOf = new Map<number, BulwarkClient>();
  try {
    for (let index = 0; index < count; index++) {
      const served = clients.filter((_, position) => position % count === index);
      const connection = await BulwarkClient.connect({ cluster, privateKey: generateEd25519KeyPair().privateKey, inFlightMax: Math.max(IN_FLIGHT_FLOOR, served.length) }, { signal });
      connections.push(connection);
      for (const client of served) connectionOf.set(client, connection);
      if (workload.auth === "session") attachSessionKeys(connection, served.flatMap((client) => workload.keysOfClient(client).map((key) => key.privateKey)));
    }
  } catch (error) {
    await Promise.all(connections.map((connection) => connection.close()));
    throw error;
  }
  return {
    submitterOf: (client) => {
      const connection = connectionOf.get(client);
      if (connection === undefined) throw new RangeError(`client ${client} has no connection`);
      return connection;
    },
    close: async () => {
      await Promise.all(connections.map((connection) => connection.close()));
    },
  };
}
