// startGateway: connects the clients the gateway needs (unless it is given them), builds the
// application and listens. The writer keys are fresh Ed25519 keys made at every start: a new key's
// account starts at nonce 1, so no nonce discovery is needed, and key-value operations need no
// balance. Nothing about them is kept; a restarted gateway simply signs with new keys.

import type { AddressInfo } from "node:net";

import { pino } from "pino";

import { BulwarkClient } from "../client/client.js";
import { generateEd25519KeyPair } from "../crypto/ed25519.js";
import { buildGatewayApp } from "./app.js";
import { LedgerPool } from "./ledger-pool.js";
import {
  CALLS_PENDING_MAX_DEFAULT,
  GATEWAY_HOST_DEFAULT,
  GATEWAY_PORT_DEFAULT,
  type Gateway,
  type GatewayLedger,
  type GatewayOptions,
  WRITER_KEYS_DEFAULT,
  WRITER_KEYS_MAX,
} from "./types.js";

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const writerKeys = options.writerKeys ?? WRITER_KEYS_DEFAULT;
  if (!(Number.isSafeInteger(writerKeys) && writerKeys >= 1 && writerKeys <= WRITER_KEYS_MAX)) {
    throw new RangeError(`writerKeys must be an integer from 1 to ${WRITER_KEYS_MAX}; got ${writerKeys}`);
  }
  const port = options.port ?? GATEWAY_PORT_DEFAULT;
  if (!(Number.isSafeInteger(port) && port >= 0 && port <= 65_535)) throw new RangeError(`port must be an integer from 0 to 65535; got ${port}`);
  const logger = options.logger ?? pino({ name: "bulwark-gateway" });
  // Clients the gateway connected itself, and so closes.
  const owned: GatewayLedger[] = [];
  const connect = async (privateKey: GatewayOptions["privateKey"]): Promise<GatewayLedger> => {
    const client: GatewayLedger = await BulwarkClient.connect({ ...options.clientOptions, cluster: options.cluster, privateKey, firstNonce: 1 }, { signal: options.signal });
    owned.push(client);
    return client;
  };
  const closeOwned = async (): Promise<void> => {
    await Promise.all(owned.splice(0).map((client) => client.close()));
  };
  try {
    // allSettled, not all: when one connection fails, the others must still be awaited so that
    // every client that did connect is in `owned` and gets closed.
    const settled = await Promise.allSettled([
      options.client ?? connect(options.privateKey),
      ...(options.writers ?? Array.from({ length: writerKeys }, () => connect(generateEd25519KeyPair().privateKey))),
    ]);
    const failed = settled.find((outcome) => outcome.status === "rejected");
    if (failed !== undefined) throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
    const [reader, ...writers] = settled.map((outcome) => (outcome as PromiseFulfilledResult<GatewayLedger>).value);
    const pool = new LedgerPool(reader!, writers, options.callsPendingMax ?? CALLS_PENDING_MAX_DEFAULT);
    const app = await buildGatewayApp({ cluster: options.cluster, pool, logger, logRequests: options.logRequests ?? false, bodyLimitBytes: options.bodyLimitBytes });
    try {
      await app.listen({ host: options.host ?? GATEWAY_HOST_DEFAULT, port });
    } catch (error) {
      await app.close();
      throw error;
    }
    const address = app.server.address() as AddressInfo;
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;
    logger.info({ url, cluster: options.clusterPath ?? options.cluster.clusterId, writers: writers.length }, "gateway listening");
    let closing: Promise<void> | undefined;
    return {
      url,
      close: () => {
        closing ??= app.close().then(closeOwned);
        return closing;
      },
    };
  } catch (error) {
    await closeOwned();
    throw error;
  }
}
