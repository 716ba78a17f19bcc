// The Bulwark client library: connect to a cluster, submit signed transactions, and accept a
// result once f + 1 replicas agree on it; read state by proof, fetch verified blocks, ask the
// replicas how they are.

export { BulwarkClient, NONCE_RESIGNS_MAX } from "./client.js";
export { BLOCKS_LIMIT_MAX, READ_ATTEMPT_TIMEOUT_MS, STATUS_TIMEOUT_MS_DEFAULT } from "./cluster-reads.js";
export { CLIENT_KEY_FILE, type ConnectOptions, connect, defaultClientKeyPath } from "./connect.js";
export {
  BulwarkClientError,
  ClientClosedError,
  type ClientErrorClass,
  type ClientErrorCode,
  ClusterUnavailableError,
  classifyClientError,
  NonceError,
  RejectedError,
  type ReplicaFailure,
  type ReplyGroup,
  RequestAbortedError,
  TimeoutError,
} from "./errors.js";
export { type ReplicaRole, type StatusSummary, roleOf, summarizeStatus, vouched } from "./status-summary.js";
export {
  type AccountState,
  type ClientCounters,
  type ClientOptions,
  type ClientTransportOptions,
  type Committed,
  type Consistency,
  DEADLINE_MS_DEFAULT,
  IN_FLIGHT_MAX_DEFAULT,
  type ReadOptions,
  type ReadResult,
  type ReplicaStatus,
  REQUEST_TIMEOUT_MS_DEFAULT,
  type StatusOptions,
  type SubmitEnvelopeOptions,
  type SubmitOptions,
  type VerifiedBlock,
} from "./types.js";
