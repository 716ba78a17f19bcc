// The `transfer` workload: token transfers among 10,000 accounts, each signed by (or, in session
// mode, session-authenticated for) its own account's key. Account a belongs to closed-loop client
// a mod clients, which sends from its accounts in turn, so every account's nonces are used in
// order and one client never has two transfers in flight. Recipients are uniform over the other
// accounts, the amount 1 token, so no account runs dry in any practical run.
//
// Funding (setup rounds, untimed). Only the genesis authority may mint, and one key has one
// request in flight at a time, so minting to 10,000 accounts one by one would take 10,000
// consensus rounds. Instead funds go down a tree of fan-out F = ⌈∛accounts⌉ (22 for 10,000): the
// authority mints to F distributors one by one (F rounds); each distributor transfers to F
// sub-distributors, the distributors side by side (F rounds); each sub-distributor transfers to
// its ≤ F accounts, side by side (F rounds). About 3∛accounts rounds (66 for 10,000) instead of
// the 2√accounts (200) of a two-level tree. Setup envelopes are always signed.

import assert from "node:assert/strict";

import type { Operation } from "../app/transaction.js";
import { Random } from "../sim/random.js";
import { BenchKey, buildEnvelope } from "./bench-keys.js";
import { type Draft, PreparedWorkload, streamSeed } from "./prepared-workload.js";
import type { AuthMode } from "./types.js";

export const TRANSFER_ACCOUNTS_DEFAULT = 10_000;
/** Each account's funding: enough for a billion one-token transfers. */
export const TRANSFER_FUNDING_PER_ACCOUNT = 1_000_000_000n;
const TRANSFER_AMOUNT = 1n;

export interface TransferAuthority {
  /** The genesis authority's key (the cluster's client.key), the only key that may mint. */
  readonly key: BenchKey;
  /** The authority account's next nonce (1 on a fresh cluster; discovered on a running one). */
  readonly firstNonce: number;
}

export interface TransferWorkloadOptions {
  readonly auth: AuthMode;
  readonly clients: number;
  readonly seed: number;
  readonly keySeed: Uint8Array;
  /** Needed for the setup rounds only (a preparation thread's copy of the workload has none). */
  readonly authority?: TransferAuthority;
  readonly accounts?: number;
}

export class TransferWorkload extends PreparedWorkload {
  readonly name = "transfer";
  readonly accounts: number;
  private readonly keySeed: Uint8Array;
  private readonly authority: TransferAuthority | undefined;
  private readonly accountKeys: readonly BenchKey[];
  /** Each account's next nonce. */
  private readonly nonces: Float64Array;
  /** Each client's next account, as the index of its turn: account client + turn * clients. */
  private readonly turns: Uint32Array;
  private readonly randoms: readonly Random[];

  constructor(options: TransferWorkloadOptions) {
    super(options.auth, options.clients);
    this.accounts = options.accounts ?? TRANSFER_ACCOUNTS_DEFAULT;
    assert.ok(this.accounts >= 2 && this.accounts >= options.clients, `the transfer workload needs at least 2 accounts and one per client; got ${this.accounts} for ${options.clients} clients`);
    this.keySeed = options.keySeed;
    this.authority = options.authority;
    this.accountKeys = Array.from({ length: this.accounts }, (_, account) => BenchKey.derive(options.keySeed, "transfer-account", account));
    this.nonces = new Float64Array(this.accounts).fill(1);
    this.turns = new Uint32Array(options.clients);
    this.randoms = Array.from({ length: options.clients }, (_, client) => new Random(streamSeed(options.seed, client)));
  }

  /** Account `account`'s public key. */
  accountKey(account: number): Uint8Array {
    return this.accountKeys[account]!.publicKey;
  }

  *setupRounds(): Iterable<readonly Uint8Array[]> {
    const authority = this.authority;
    assert.ok(authority !== undefined, "the transfer workload's setup needs the genesis authority");
    const fanOut = Math.ceil(Math.cbrt(this.accounts) - 1e-9);
    const perSub = fanOut;
    const perTop = fanOut * perSub;
    // Sub-distributor s funds accounts [s * perSub, (s + 1) * perSub); top distributor t funds subs [t * fanOut, (t + 1) * fanOut).
    const subs = Math.ceil(this.accounts / perSub);
    const tops = Math.ceil(this.accounts / perTop);
    const accountsUnder = (first: number, span: number): number => Math.max(0, Math.min(span, this.accounts - first));
    const topKeys = Array.from({ length: tops }, (_, index) => BenchKey.derive(this.keySeed, "transfer-distributor", index));
    const subKeys = Array.from({ length: subs }, (_, index) => BenchKey.derive(this.keySeed, "transfer-subdistributor", index));
    const funding = (accounts: number): bigint => TRANSFER_FUNDING_PER_ACCOUNT * BigInt(accounts);
    // The authority's mints, one per round: its nonces must commit in turn.
    for (let top = 0; top < tops; top++) {
      const mint: Operation = { type: "mint", to: topKeys[top]!.publicKey, amount: funding(accountsUnder(top * perTop, perTop)) };
      yield [buildEnvelope(authority.key, "signed", authority.firstNonce + top, mint)];
    }
    // Each top distributor's k-th transfer to a sub-distributor in round k, all side by side.
    for (let turn = 0; turn < fanOut; turn++) {
      const envelopes: Uint8Array[] = [];
      for (let top = 0; top < tops; top++) {
        const sub = top * fanOut + turn;
        if (sub >= subs) continue;
        const transfer: Operation = { type: "transfer", to: subKeys[sub]!.publicKey, amount: funding(accountsUnder(sub * perSub, perSub)) };
        envelopes.push(buildEnvelope(topKeys[top]!, "signed", turn + 1, transfer));
      }
      if (envelopes.length > 0) yield envelopes;
    }
    // Each sub-distributor's k-th transfer to an account in round k.
    for (let turn = 0; turn < perSub; turn++) {
      const envelopes: Uint8Array[] = [];
      for (let sub = 0; sub < subs; sub++) {
        const account = sub * perSub + turn;
        if (account >= this.accounts) continue;
        const transfer: Operation = { type: "transfer", to: this.accountKeys[account]!.publicKey, amount: TRANSFER_FUNDING_PER_ACCOUNT };
        envelopes.push(buildEnvelope(subKeys[sub]!, "signed", turn + 1, transfer));
      }
      if (envelopes.length > 0) yield envelopes;
    }
  }

  /** Client `client`'s accounts: in session mode every account authenticates its transfers by session. */
  keysOfClient(client: number): readonly BenchKey[] {
    const keys: BenchKey[] = [];
    for (let account = client; account < this.accounts; account += this.clients) keys.push(this.accountKeys[account]!);
    return keys;
  }

  protected draw(client: number): Draft {
    const owned = Math.ceil((this.accounts - client) / this.clients);
    const turn = this.turns[client]!;
    this.turns[client] = (turn + 1) % owned;
    const from = client + turn * this.clients;
    let to = this.randoms[client]!.below(this.accounts - 1);
    if (to >= from) to += 1;
    const nonce = this.nonces[from]!;
    this.nonces[from] = nonce + 1;
    return { key: this.accountKeys[from]!, nonce, operation: { type: "transfer", to: this.accountKeys[to]!.publicKey, amount: TRANSFER_AMOUNT } };
  }
}
