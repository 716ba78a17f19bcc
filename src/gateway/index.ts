// The HTTP gateway (issue 4): a client of the cluster through the SDK, serving the key-value
// store, pre-signed transactions, accounts, verified blocks, status, metrics and its OpenAPI
// document over HTTP.

export { buildGatewayApp, type GatewayAppOptions } from "./app.js";
export { GatewayError } from "./errors.js";
export { startGateway } from "./gateway.js";
export { LedgerPool } from "./ledger-pool.js";
export {
  BODY_LIMIT_BYTES_DEFAULT,
  CALLS_PENDING_MAX_DEFAULT,
  GATEWAY_HOST_DEFAULT,
  GATEWAY_PORT_DEFAULT,
  type Gateway,
  type GatewayClientOptions,
  type GatewayLedger,
  type GatewayOptions,
  WRITER_KEYS_DEFAULT,
  WRITER_KEYS_MAX,
} from "./types.js";
