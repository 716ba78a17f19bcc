// The token ledger (issue 3 §1; seed 000 §6, the account model): mint, transfer and balance over
// the "acct/" and "meta/supply" entries of the ledger state (ledger-state.ts).
//
//   operation            checks, in order                                 result
//   mint(to, amount)     signer is the genesis authority  (not-authority)  ok
//                        supply + amount <= 2^64 - 1      (amount-overflow)
//   transfer(to, amt)    amount <= sender's balance (insufficient-balance) ok
//   balance(account)     none                                              ok: amount
//
// Conservation. Only mint creates tokens, and it adds the same amount to one balance and to the
// supply; a transfer moves an amount between two balances; nothing destroys tokens. So the sum of
// all balances always equals the recorded supply, and since the supply never exceeds 2^64 - 1,
// no balance and no sum of two balances can overflow a u64: a transfer needs no overflow check
// (it asserts instead). No balance goes negative because a transfer never moves more than the
// sender holds. Double spends and replays are the nonce rule's business (executor.ts): a signed
// transfer takes effect at most once, and only with its account's next nonce.

import { ED25519_PUBLIC_KEY_BYTES, describePublicKeyProblem, ed25519PublicKeyProblem } from "../crypto/ed25519.js";
import { equalBytes } from "./bytes.js";
import type { LedgerService } from "./ledger-service.js";
import type { LedgerState } from "./ledger-state.js";
import { encodeResult, errorResult } from "./result.js";
import { TRANSACTION_AMOUNT_MAX, type Transaction } from "./transaction.js";

export interface TokenLedgerOptions {
  /** The genesis authority's raw Ed25519 public key, from the cluster config: the only minter. */
  readonly authority: Uint8Array;
}

export function tokenLedger(options: TokenLedgerOptions): LedgerService {
  const authority = checkedAuthority(options.authority);
  return {
    name: "token",
    operations: ["mint", "transfer", "balance"],
    execute(state: LedgerState, transaction: Transaction): Uint8Array {
      const { operation } = transaction;
      switch (operation.type) {
        case "mint": {
          if (!equalBytes(transaction.clientKey, authority)) return errorResult("not-authority");
          const supply = state.supply();
          if (operation.amount > TRANSACTION_AMOUNT_MAX - supply) return errorResult("amount-overflow");
          const recipient = state.account(operation.to);
          state.setSupply(supply + operation.amount);
          state.setAccount(operation.to, { balance: recipient.balance + operation.amount, nextNonce: recipient.nextNonce });
          return encodeResult({ ok: true, kind: "done" });
        }
        case "transfer":
          return transfer(state, transaction.clientKey, operation.to, operation.amount);
        case "balance":
          return encodeResult({ ok: true, kind: "amount", amount: state.account(operation.account).balance });
        default:
          throw new Error(`token ledger: asked to execute a ${operation.type} operation`);
      }
    },
  };
}

function transfer(state: LedgerState, from: Uint8Array, to: Uint8Array, amount: bigint): Uint8Array {
  const sender = state.account(from);
  if (amount > sender.balance) return errorResult("insufficient-balance");
  // To oneself: the balance check above still applies (one cannot send what one lacks), but no
  // balance changes; writing the account twice from one read would create tokens.
  if (equalBytes(from, to)) return encodeResult({ ok: true, kind: "done" });
  const recipient = state.account(to);
  const credited = recipient.balance + amount;
  if (credited > TRANSACTION_AMOUNT_MAX) {
    throw new Error("token ledger: a balance would exceed the supply bound; the supply record is corrupt");
  }
  state.setAccount(from, { balance: sender.balance - amount, nextNonce: sender.nextNonce });
  state.setAccount(to, { balance: credited, nextNonce: recipient.nextNonce });
  return encodeResult({ ok: true, kind: "done" });
}

function checkedAuthority(authority: Uint8Array): Uint8Array {
  if (!(authority instanceof Uint8Array) || authority.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new TypeError(`the token authority must be a ${ED25519_PUBLIC_KEY_BYTES}-byte Ed25519 public key`);
  }
  const problem = ed25519PublicKeyProblem(authority);
  if (problem !== null) throw new TypeError(`the token authority: ${describePublicKeyProblem(problem, authority)}`);
  return authority.slice();
}
