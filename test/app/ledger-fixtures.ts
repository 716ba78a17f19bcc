// Shared pieces of the ledger application tests: reproducible keys, one operation of every type,
// signed requests, and an executor driver that numbers batches. Not a test file itself.

import { sha256 } from "../../src/crypto/sha256.js";
import { type Ed25519KeyPair, ed25519KeyPairFromSeed } from "../../src/crypto/ed25519.js";
import { Executor, type ExecutedRequest } from "../../src/app/executor.js";
import { type LedgerApplication, createLedgerApplication } from "../../src/app/ledger-application.js";
import { requestFromTransaction } from "../../src/app/request.js";
import { type TransactionResult, decodeResult } from "../../src/app/result.js";
import { type Operation, TRANSACTION_AMOUNT_MAX, type Transaction, signTransaction } from "../../src/app/transaction.js";
import type { ClientRequest } from "../../src/consensus/pbft/types.js";

const encoder = new TextEncoder();
const keyCache = new Map<string, Ed25519KeyPair>();

/** The key pair named `name`, derived from its name: the same in every run. */
export function keyOf(name: string): Ed25519KeyPair {
  let pair = keyCache.get(name);
  if (pair === undefined) {
    pair = ed25519KeyPairFromSeed(sha256(encoder.encode(`bulwark test key ${name}`)));
    keyCache.set(name, pair);
  }
  return pair;
}

export const AUTHORITY = keyOf("authority");

export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

/** One operation of every type, noop included, with both forms of cas and the amount bounds. */
export function everyOperation(): Operation[] {
  const alice = keyOf("alice").publicKey;
  const bob = keyOf("bob").publicKey;
  return [
    { type: "put", key: bytes("color"), value: bytes("blue") },
    { type: "put", key: bytes("empty value"), value: new Uint8Array(0) },
    { type: "get", key: bytes("color") },
    { type: "delete", key: bytes("color") },
    { type: "cas", key: bytes("color"), expected: bytes("blue"), value: bytes("green") },
    { type: "cas", key: bytes("fresh"), expected: null, value: bytes("first") },
    { type: "cas", key: bytes("fresh"), expected: new Uint8Array(0), value: new Uint8Array(0) },
    { type: "mint", to: bob, amount: 1_000_000n },
    { type: "transfer", to: bob, amount: TRANSACTION_AMOUNT_MAX },
    { type: "transfer", to: bob, amount: 0n },
    { type: "balance", account: alice },
    { type: "noop" },
  ];
}

/** A consensus request carrying `operation` signed by `signer` with `nonce`. */
export function signed(signer: Ed25519KeyPair, nonce: number, operation: Operation): ClientRequest {
  return requestFromTransaction(signTransaction(signer.privateKey, { clientKey: signer.publicKey, nonce, operation }));
}

/** A driver over a fresh application that serves both the key-value store and the token ledger. */
export function ledger(): Driver {
  return new Driver(createLedgerApplication({ authority: AUTHORITY.publicKey }));
}

/** An executor over `app` that gives each batch the next sequence number. */
export class Driver {
  readonly executor: Executor<Transaction>;

  constructor(readonly app: LedgerApplication) {
    this.executor = new Executor(app);
  }

  run(requests: readonly ClientRequest[]): ExecutedRequest[] {
    const seq = this.executor.lastExecuted + 1;
    return this.executor.executeBatch({ seq, view: 0, digest: `d${seq}`, requests });
  }

  /** Runs one request alone and decodes its result. */
  one(request: ClientRequest): TransactionResult {
    return decodeResult(this.run([request])[0]!.result);
  }
}

/** A result in a short readable form, e.g. "ok", "value:blue", "error:nonce-gap(next 2)". */
export function describe(result: TransactionResult): string {
  if (!result.ok) return "nextNonce" in result ? `error:${result.error}(next ${result.nextNonce})` : `error:${result.error}`;
  switch (result.kind) {
    case "done":
      return "ok";
    case "absent":
      return "absent";
    case "value":
      return `value:${new TextDecoder().decode(result.value)}`;
    case "flag":
      return `flag:${result.flag}`;
    case "amount":
      return `amount:${result.amount}`;
  }
}

export function describeAll(executed: readonly ExecutedRequest[]): string[] {
  return executed.map((entry) => `${entry.outcome} ${describe(decodeResult(entry.result))}`);
}
