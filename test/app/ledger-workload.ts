// A random workload for property tests of the ledger: clients transferring among themselves in
// shuffled batches, with double spends (two transfers on one nonce), replays of earlier requests,
// gapped and stale nonces, forged signatures, minting by non-authorities, key-value traffic and
// balance queries mixed in. Reproducible from a seed (src/sim/random.ts). Not a test file itself.

import type { LedgerApplication } from "../../src/app/ledger-application.js";
import type { Operation } from "../../src/app/transaction.js";
import type { Ed25519KeyPair } from "../../src/crypto/ed25519.js";
import type { ClientRequest } from "../../src/consensus/pbft/types.js";
import type { Random } from "../../src/sim/random.js";
import { AUTHORITY, bytes, keyOf, signed } from "./ledger-fixtures.js";

export interface WorkloadOptions {
  readonly clientCount: number;
  /** Include requests with broken signatures (only for applications that verify them). */
  readonly forgeries: boolean;
}

export class LedgerWorkload {
  readonly clients: Ed25519KeyPair[];
  private readonly history: ClientRequest[] = [];
  private readonly latestOf = new Map<Ed25519KeyPair, ClientRequest>();

  constructor(
    private readonly random: Random,
    /** The instance whose state the clients read to choose nonces and amounts (they may be wrong on purpose). */
    private readonly app: LedgerApplication,
    private readonly options: WorkloadOptions,
  ) {
    this.clients = Array.from({ length: options.clientCount }, (_, index) => keyOf(`client ${index}`));
  }

  /** The authority mints `amount` to every client, in one batch. */
  genesis(amount: bigint): ClientRequest[] {
    const next = this.app.ledgerState.account(AUTHORITY.publicKey).nextNonce;
    return this.clients.map((client, index) => this.remember(signed(AUTHORITY, next + index, { type: "mint", to: client.publicKey, amount })));
  }

  nextBatch(): ClientRequest[] {
    const batch: ClientRequest[] = [];
    for (const client of this.clients) {
      if (this.random.chance(0.3)) continue;
      batch.push(...this.actionsOf(client));
    }
    if (this.random.chance(0.2)) {
      const next = this.app.ledgerState.account(AUTHORITY.publicKey).nextNonce;
      batch.push(signed(AUTHORITY, next, { type: "mint", to: this.random.pick(this.clients).publicKey, amount: BigInt(this.random.below(50)) }));
    }
    for (const request of batch) this.remember(request);
    return this.random.shuffle(batch);
  }

  private actionsOf(client: Ed25519KeyPair): ClientRequest[] {
    const { random } = this;
    const account = this.app.ledgerState.account(client.publicKey);
    const next = account.nextNonce;
    const balance = Number(account.balance);
    const amount = (): bigint => BigInt(random.below(Math.floor(balance * 1.3) + 2));
    const transfer = (nonce: number, value = amount()): ClientRequest =>
      signed(client, nonce, { type: "transfer", to: random.pick(this.clients).publicKey, amount: value });
    const roll = random.float();
    if (roll < 0.45) return [transfer(next)];
    if (roll < 0.55) {
      // A double spend: two transfers on one nonce that together exceed the balance.
      const half = BigInt(Math.floor(balance / 2) + 1);
      return [transfer(next, half), transfer(next, half)];
    }
    if (roll < 0.65 && this.history.length > 0) {
      // A replay: of this client's latest request (a retransmission) or of anyone's old one.
      const latest = this.latestOf.get(client);
      return [latest !== undefined && random.chance(0.5) ? latest : random.pick(this.history)];
    }
    if (roll < 0.72) return [transfer(next + 1 + random.below(3))];
    if (roll < 0.77) return [transfer(random.below(next))];
    if (roll < 0.82 && this.options.forgeries) return [forge(transfer(next))];
    if (roll < 0.86) return [signed(client, next, { type: "mint", to: client.publicKey, amount: 1000n })];
    if (roll < 0.93) return [signed(client, next, this.kvOperation())];
    return [signed(client, next, { type: "balance", account: random.pick(this.clients).publicKey })];
  }

  private kvOperation(): Operation {
    const key = bytes(`key ${this.random.below(6)}`);
    const value = bytes(`value ${this.random.below(4)}`);
    switch (this.random.below(4)) {
      case 0:
        return { type: "put", key, value };
      case 1:
        return { type: "get", key };
      case 2:
        return { type: "delete", key };
      default:
        return { type: "cas", key, expected: this.random.chance(0.3) ? null : bytes(`value ${this.random.below(4)}`), value };
    }
  }

  private remember(request: ClientRequest): ClientRequest {
    this.history.push(request);
    const sender = this.clients.find((client) => Buffer.from(client.publicKey).toString("hex") === request.client);
    if (sender !== undefined) this.latestOf.set(sender, request);
    return request;
  }
}

/** `request` with one bit of its envelope's signature flipped (and the request's copy of it kept in step). */
export function forge(request: ClientRequest): ClientRequest {
  const operation = request.operation.slice();
  operation[operation.length - 1]! ^= 0x01;
  return { ...request, operation, signature: Buffer.from(operation.subarray(operation.length - 64)).toString("hex") };
}
