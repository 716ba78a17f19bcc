// An in-memory stand-in for the gateway's clients (GatewayLedger), for the gateway's own tests: a
// shared key-value store and account table that every fake writes to, one block per committed
// call, and hooks to make the next call fail or wait. It keeps the ledger's nonce rule for
// pre-signed envelopes (an envelope must carry its account's next nonce) so the gateway's mapping
// of refusals can be checked; it does not model consensus.

import { bytesToHex } from "../../src/app/bytes.js";
import { type TransactionResult, encodeResult } from "../../src/app/result.js";
import { type Operation, decodeTransaction } from "../../src/app/transaction.js";
import type { ClientCounters, Committed } from "../../src/client/types.js";
import type { GatewayLedger, LedgerBlock, LedgerReadOptions, LedgerReplicaStatus } from "../../src/gateway/types.js";

interface Account {
  balance: bigint;
  nextNonce: number;
}

/** The state every fake of one test shares. */
export class FakeCluster {
  height = 0;
  readonly values = new Map<string, Uint8Array>();
  readonly accounts = new Map<string, Account>();
  readonly blocks: LedgerBlock[] = [];
  statuses: LedgerReplicaStatus[] = [];

  account(id: Uint8Array): Account {
    const key = bytesToHex(id);
    let account = this.accounts.get(key);
    if (account === undefined) {
      account = { balance: 0n, nextNonce: 1 };
      this.accounts.set(key, account);
    }
    return account;
  }

  /** Executes an operation the way the ledger would, and commits it as the next block. */
  execute(operation: Operation, envelope: Uint8Array): { result: TransactionResult; height: number } {
    const result = this.apply(operation);
    this.height += 1;
    const hash = this.height.toString(16).padStart(64, "0");
    this.blocks.push({
      height: this.height,
      seq: this.height,
      hash,
      previousHash: (this.height - 1).toString(16).padStart(64, "0"),
      stateRoot: "ab".repeat(32),
      transactionRoot: "cd".repeat(32),
      resultsRoot: "ef".repeat(32),
      transactionCount: 1,
      transactions: [envelope],
      results: [encodeResult(result)],
      signers: [0, 1, 2],
      bodyPruned: false,
    });
    return { result, height: this.height };
  }

  private apply(operation: Operation): TransactionResult {
    switch (operation.type) {
      case "put":
        this.values.set(bytesToHex(operation.key), operation.value);
        return { ok: true, kind: "done" };
      case "get": {
        const value = this.values.get(bytesToHex(operation.key));
        return value === undefined ? { ok: true, kind: "absent" } : { ok: true, kind: "value", value };
      }
      case "delete":
        return { ok: true, kind: "flag", flag: this.values.delete(bytesToHex(operation.key)) };
      case "cas": {
        const current = this.values.get(bytesToHex(operation.key));
        const matches = operation.expected === null ? current === undefined : current !== undefined && Buffer.compare(current, operation.expected) === 0;
        if (matches) this.values.set(bytesToHex(operation.key), operation.value);
        return { ok: true, kind: "flag", flag: matches };
      }
      case "mint":
        this.account(operation.to).balance += operation.amount;
        return { ok: true, kind: "done" };
      case "transfer":
        return { ok: false, error: "insufficient-balance" };
      case "balance":
        return { ok: true, kind: "amount", amount: this.account(operation.account).balance };
    }
  }
}

export class FakeLedger implements GatewayLedger {
  // A few of the SDK's counters (it adds more over time; the gateway exports whichever it has).
  readonly counters = { repliesReceived: 3, repliesUnmatched: 1, rebroadcasts: 2 } as Partial<ClientCounters> as ClientCounters;

  inFlight = 0;
  connectedReplicas = 4;
  /** Every call, as "method" or "method:consistency". */
  readonly calls: string[] = [];
  /** The next call rejects with this (once). */
  failNext: Error | undefined;
  /** While set, every call waits for it before it runs. */
  gate: Promise<void> | undefined;
  closed = false;
  private nonce = 1;

  constructor(
    readonly cluster: FakeCluster,
    readonly name: string,
  ) {}

  async submit(operation: Operation): Promise<Committed> {
    await this.enter(`submit:${operation.type}`);
    const { result, height } = this.cluster.execute(operation, new Uint8Array([1, 2, 3]));
    return { result, height, nonce: this.nonce++, replicas: [0, 1] };
  }

  async submitEnvelope(envelope: Uint8Array): Promise<Committed> {
    await this.enter("submitEnvelope");
    const transaction = decodeTransaction(envelope);
    const account = this.cluster.account(transaction.clientKey);
    if (transaction.nonce !== account.nextNonce) {
      const error = transaction.nonce < account.nextNonce ? "stale-nonce" : "nonce-gap";
      return { result: { ok: false, error, nextNonce: account.nextNonce }, height: 0, nonce: transaction.nonce, replicas: [0, 1] };
    }
    account.nextNonce += 1;
    const { result, height } = this.cluster.execute(transaction.operation, envelope);
    return { result, height, nonce: transaction.nonce, replicas: [0, 1] };
  }

  async read(key: Uint8Array, options: LedgerReadOptions = {}): Promise<{ value: Uint8Array | undefined; height: number }> {
    await this.enter(`read:${options.consistency ?? "linearizable"}`);
    return { value: this.cluster.values.get(bytesToHex(key)), height: this.cluster.height };
  }

  async account(id: Uint8Array, options: LedgerReadOptions = {}): Promise<{ balance: bigint; nextNonce: number; height: number }> {
    await this.enter(`account:${options.consistency ?? "linearizable"}`);
    const { balance, nextNonce } = this.cluster.account(id);
    return { balance, nextNonce, height: this.cluster.height };
  }

  async status(): Promise<readonly LedgerReplicaStatus[]> {
    await this.enter("status");
    return this.cluster.statuses;
  }

  async block(height: number): Promise<LedgerBlock | undefined> {
    await this.enter("block");
    return this.cluster.blocks[height - 1];
  }

  async blocks(from: number, limit: number): Promise<readonly LedgerBlock[]> {
    await this.enter("blocks");
    return this.cluster.blocks.slice(from - 1, from - 1 + limit);
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private async enter(call: string): Promise<void> {
    this.calls.push(call);
    if (this.gate !== undefined) await this.gate;
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure !== undefined) throw failure;
  }
}
