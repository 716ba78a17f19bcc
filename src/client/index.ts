// The Bulwark client library: connect to a cluster, submit signed transactions, and accept a
// result once f + 1 replicas agree on it.

export { BulwarkClient, NONCE_RESIGNS_MAX } from "./client.js";
export {
  BulwarkClientError,
  ClientClosedError,
  ClusterUnavailableError,
  NonceError,
  RejectedError,
  type ReplyGroup,
  RequestAbortedError,
  TimeoutError,
} from "./errors.js";
export {
  type ClientCounters,
  type ClientOptions,
  type ClientTransportOptions,
  type Committed,
  DEADLINE_MS_DEFAULT,
  IN_FLIGHT_MAX_DEFAULT,
  REQUEST_TIMEOUT_MS_DEFAULT,
  type SubmitOptions,
} from "./types.js";
