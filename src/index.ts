// The package's main export (package.json "main"): the client SDK, the third-party verifiers of
// blocks, inclusion and state proofs, the transaction format, and the readers of the files that
// `bulwark init` writes. The replica itself runs through the `bulwark` command, not as a library.

export * from "./client/index.js";
export * from "./ledger/index.js";
export {
  type Operation,
  type OperationType,
  type Transaction,
  TRANSACTION_NONCE_MAX,
  decodeTransaction,
  encodeTransaction,
  signTransaction,
} from "./app/transaction.js";
export { type TransactionResult, decodeResult } from "./app/result.js";
export { type KeyFile, KeyFileError, readKeyFile } from "./node/keys.js";
export { readClusterFile } from "./ledger/cluster-json.js";
