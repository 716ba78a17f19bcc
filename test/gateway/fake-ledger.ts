// An in-memory stand-in for the gateway's clients (GatewayLedger), for the gateway's own tests: a
// shared key-value store and account table that every fake writes to, one block per committed
// call, and hooks to make the next call fail or wait. It keeps the ledger's nonce rule for
// pre-signed envelopes (an envelope must carry its account's next nonce) so the gateway's mapping
// of refusals can be checked; it does not model consensus. A fake's proof reads can lag
// (`proofLagBlocks`): they then answer from an older state, as a lagging replica would, but, like
// the SDK, never from one older than the read's `minHeight` or the height the fake has seen.

import { bytesToHex } from "../../src/app/bytes.js";
import { type TransactionResult, encodeResult } from "../../src/app/result.js";
import { type Operation, decodeTransaction, transactionId } from "../../src/app/transaction.js";
import { RequestAbortedError } from "../../src/client/errors.js";
import type { ClientCounters, Committed, ReadOptions, ReplicaStatus, SubmitEnvelopeOptions, SubmitOptions, VerifiedBlock } from "../../src/client/types.js";
import type { GatewayLedger } from "../../src/gateway/types.js";

interface Account {
  balance: bigint;
  nextNonce: number;
}

/** The state every fake of one test shares. */
export class FakeCluster {
  height = 0;
  readonly values = new Map<string, Uint8Array>();
  /** `history[h]`: the key-value state after block h (history[0]: the empty genesis state). */
  readonly history: ReadonlyMap<string, Uint8Array>[] = [new Map()];
  readonly accounts = new Map<string, Account>();
  readonly blocks: VerifiedBlock[] = [];
  statuses: ReplicaStatus[] = [];

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
      transactionIds: [bytesToHex(transactionId(envelope))],
      signers: [0, 1, 2],
      bodyPruned: false,
    });
    this.history.push(new Map(this.values));
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
      case "noop":
        return { ok: true, kind: "done" };
    }
  }
}

export class FakeLedger implements GatewayLedger {
  // A few of the SDK's counters (it adds more over time; the gateway exports whichever it has).
  readonly counters = { repliesReceived: 3, repliesUnmatched: 1, rebroadcasts: 2 } as Partial<ClientCounters> as ClientCounters;

  inFlight = 0;
  connectedReplicas = 4;
  /** Like the SDK's: the highest height this fake has seen committed or read. */
  height = 0;
  /** How many blocks behind the cluster this fake's proof reads answer (see the file comment). */
  proofLagBlocks = 0;
  /** The signal of every call that took one, in order. */
  readonly signals: (AbortSignal | undefined)[] = [];
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

  async submit(operation: Operation, options: SubmitOptions = {}): Promise<Committed> {
    await this.enter(`submit:${operation.type}`, options.signal);
    const { result, height } = this.cluster.execute(operation, new Uint8Array([1, 2, 3]));
    this.height = Math.max(this.height, height);
    return { result, height, nonce: this.nonce++, replicas: [0, 1] };
  }

  async submitEnvelope(envelope: Uint8Array, options: SubmitEnvelopeOptions = {}): Promise<Committed> {
    await this.enter("submitEnvelope", options.signal);
    const transaction = decodeTransaction(envelope);
    const account = this.cluster.account(transaction.clientKey);
    if (transaction.nonce !== account.nextNonce) {
      const error = transaction.nonce < account.nextNonce ? "stale-nonce" : "nonce-gap";
      return { result: { ok: false, error, nextNonce: account.nextNonce }, height: 0, nonce: transaction.nonce, replicas: [0, 1] };
    }
    account.nextNonce += 1;
    const { result, height } = this.cluster.execute(transaction.operation, envelope);
    this.height = Math.max(this.height, height);
    return { result, height, nonce: transaction.nonce, replicas: [0, 1] };
  }

  async read(key: Uint8Array | string, options: ReadOptions = {}): Promise<{ value: Uint8Array | undefined; height: number }> {
    await this.enter(`read:${options.consistency ?? "linearizable"}`, options.signal);
    const keyHex = bytesToHex(typeof key === "string" ? new TextEncoder().encode(key) : key);
    const height = options.consistency === "proof" ? this.proofHeight(options) : this.cluster.height;
    this.height = Math.max(this.height, height);
    return { value: this.cluster.history[height]!.get(keyHex), height };
  }

  async account(id: Uint8Array, options: ReadOptions = {}): Promise<{ balance: bigint; nextNonce: number; height: number }> {
    await this.enter(`account:${options.consistency ?? "linearizable"}`, options.signal);
    const { balance, nextNonce } = this.cluster.account(id);
    return { balance, nextNonce, height: this.cluster.height };
  }

  async status(options: { signal?: AbortSignal } = {}): Promise<ReplicaStatus[]> {
    await this.enter("status", options.signal);
    return this.cluster.statuses;
  }

  async block(height: number, options: SubmitOptions = {}): Promise<VerifiedBlock | undefined> {
    await this.enter("block", options.signal);
    return this.cluster.blocks[height - 1];
  }

  async blocks(from: number, limit: number, options: SubmitOptions = {}): Promise<VerifiedBlock[]> {
    await this.enter("blocks", options.signal);
    return this.cluster.blocks.slice(from - 1, from - 1 + limit);
  }

  /** The height a proof read answers at: behind by proofLagBlocks, but never below what it must see. */
  private proofHeight(options: ReadOptions): number {
    const lagging = Math.max(0, this.cluster.height - this.proofLagBlocks);
    return Math.min(this.cluster.height, Math.max(lagging, options.minHeight ?? 0, this.height));
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private async enter(call: string, signal: AbortSignal | undefined): Promise<void> {
    this.calls.push(call);
    this.signals.push(signal);
    // Like the SDK, a call whose signal fires stops waiting at once.
    if (this.gate !== undefined) await Promise.race([this.gate, aborted(signal)]);
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure !== undefined) throw failure;
  }
}

/** Rejects with the SDK's RequestAbortedError when `signal` fires; never settles without one. */
function aborted(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal === undefined) return;
    const fire = (): void => reject(new RequestAbortedError(signal.reason));
    if (signal.aborted) fire();
    else signal.addEventListener("abort", fire, { once: true });
  });
}
