// A family of operations the ledger application can serve (the key-value store, the token
// ledger). A cluster's application is the set of services it was configured with; an operation
// no configured service handles is committed as "unknown-op".

import type { LedgerState } from "./ledger-state.js";
import type { OperationType, Transaction } from "./transaction.js";

export interface LedgerService {
  readonly name: string;
  readonly operations: readonly OperationType[];
  /**
   * Applies `transaction`, whose signature and nonce were checked, to `state` and returns the
   * encoded result. Deterministic; refusals are error results with no effect on `state`.
   */
  execute(state: LedgerState, transaction: Transaction): Uint8Array;
}
