// The key-value store (issue 3 §1): put, get, delete and compare-and-set over the "kv/" entries
// of the ledger state (ledger-state.ts). Every operation succeeds once its transaction is
// authentic and in turn; the results say what happened.
//
//   operation              result
//   put(key, value)        ok
//   get(key)               ok: value, or ok: absent
//   delete(key)            ok: flag (whether the key was present)
//   cas(key, expected, v)  ok: flag (whether it swapped); expected = null means "key absent"
//
// An empty value is a value: `put(k, "")` makes `get(k)` return an empty value, not absent.

import { equalBytes } from "./bytes.js";
import type { LedgerService } from "./ledger-service.js";
import type { LedgerState } from "./ledger-state.js";
import { encodeResult } from "./result.js";
import type { Transaction } from "./transaction.js";

export const kvStore: LedgerService = {
  name: "kv",
  operations: ["put", "get", "delete", "cas"],
  execute(state: LedgerState, transaction: Transaction): Uint8Array {
    const { operation } = transaction;
    switch (operation.type) {
      // The transaction was decoded for this execution, so its value can go into the state as it is.
      case "put":
        state.adoptValue(operation.key, operation.value);
        return encodeResult({ ok: true, kind: "done" });
      case "get": {
        const value = state.getValue(operation.key);
        return encodeResult(value === undefined ? { ok: true, kind: "absent" } : { ok: true, kind: "value", value });
      }
      case "delete":
        return encodeResult({ ok: true, kind: "flag", flag: state.deleteValue(operation.key) });
      case "cas": {
        const current = state.getValue(operation.key);
        const matches = operation.expected === null ? current === undefined : current !== undefined && equalBytes(current, operation.expected);
        if (matches) state.adoptValue(operation.key, operation.value);
        return encodeResult({ ok: true, kind: "flag", flag: matches });
      }
      default:
        throw new Error(`kv store: asked to execute a ${operation.type} operation`);
    }
  },
};
