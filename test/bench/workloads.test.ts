import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { bytesToHex } from "../../src/app/bytes.js";
import { type Transaction, decodeTransaction, verifyTransaction } from "../../src/app/transaction.js";
import { BenchKey, buildEnvelope, envelopeKeyAndNonce } from "../../src/bench/bench-keys.js";
import { KV_VALUE_BYTES, KvWorkload } from "../../src/bench/kv-workload.js";
import type { PreparedWorkload } from "../../src/bench/prepared-workload.js";
import { TRANSFER_FUNDING_PER_ACCOUNT, TransferWorkload } from "../../src/bench/transfer-workload.js";
import type { AuthMode } from "../../src/bench/types.js";
import { prepareInParallel } from "../../src/bench/parallel-prepare.js";
import { createWorkload } from "../../src/bench/workload.js";

const KEY_SEED = new Uint8Array(32).fill(9);
const AUTHORITY = BenchKey.derive(new Uint8Array(32).fill(1), "authority", 0);

function transfer(auth: AuthMode, options: { clients?: number; accounts?: number; firstNonce?: number } = {}): TransferWorkload {
  return new TransferWorkload({ auth, clients: options.clients ?? 8, seed: 5, keySeed: KEY_SEED, accounts: options.accounts ?? 50, authority: { key: AUTHORITY, firstNonce: options.firstNonce ?? 1 } });
}

/** Client `client`'s next `count` envelopes, decoded. */
function take(workload: PreparedWorkload, client: number, count: number): Transaction[] {
  return Array.from({ length: count }, () => decodeTransaction(workload.next(client)));
}

/** Checks that each key's nonces run 1, 2, 3, ... in the order given. */
function assertNonceOrder(transactions: readonly Transaction[]): void {
  const next = new Map<string, number>();
  for (const transaction of transactions) {
    const key = bytesToHex(transaction.clientKey);
    const expected = next.get(key) ?? 1;
    assert.equal(transaction.nonce, expected, `key ${key.slice(0, 8)}: nonce ${transaction.nonce}, expected ${expected}`);
    next.set(key, expected + 1);
  }
}

describe("benchmark workloads", () => {
  for (const name of ["noop", "kv", "transfer"] as const) {
    it(`${name}: each client's envelopes use its own keys' nonces in turn, and no two clients share a key`, () => {
      const workload = createWorkload({ name, auth: "signed", clients: 4, seed: 3, keySeed: KEY_SEED, records: 1000, accounts: 20, authority: { key: AUTHORITY, firstNonce: 1 } });
      const owner = new Map<string, number>();
      for (let client = 0; client < 4; client++) {
        const transactions = take(workload, client, 30);
        assertNonceOrder(transactions);
        const ownKeys = new Set(workload.keysOfClient(client).map((key) => bytesToHex(key.publicKey)));
        for (const transaction of transactions) {
          const key = bytesToHex(transaction.clientKey);
          assert.ok(ownKeys.has(key), `client ${client} sent with a key it does not own`);
          assert.equal(owner.get(key) ?? client, client, "a key belongs to one client");
          owner.set(key, client);
        }
      }
    });
  }

  it("prepared envelopes are the same ones next() would build, and running out builds more on demand (counted)", () => {
    const make = (): KvWorkload => new KvWorkload({ auth: "signed", clients: 3, seed: 11, keySeed: KEY_SEED, records: 500 });
    const prepared = make();
    prepared.prepare(5);
    assert.equal(prepared.preparedLeft, 15);
    const fresh = make();
    for (let client = 0; client < 3; client++) {
      for (let i = 0; i < 7; i++) assert.deepEqual(prepared.next(client), fresh.next(client), `client ${client}, envelope ${i}`);
    }
    assert.equal(prepared.builtOnDemand, 3 * 2);
    assert.equal(prepared.preparedLeft, 0);
  });

  it("a thread's share of the clients is built client by client, with progress every 16 clients and once at the end", () => {
    const make = (): KvWorkload => new KvWorkload({ auth: "session", clients: 40, seed: 2, keySeed: KEY_SEED, records: 100 });
    const share = Array.from({ length: 37 }, (_, index) => index + 3);
    const workload = make();
    const reports: Array<[number, boolean]> = [];
    workload.prepareClients(share, 2, (built, finished) => reports.push([built.length, finished]));
    assert.deepEqual(reports, [
      [16, false],
      [16, false],
      [5, true],
    ]);
    assert.equal(workload.preparedLeft, 37 * 2);
    const fresh = make();
    for (const client of [3, 20, 39]) for (let i = 0; i < 3; i++) assert.deepEqual(workload.next(client), fresh.next(client), `client ${client}, envelope ${i}`);
    assert.equal(workload.builtOnDemand, 3, "one past the two built, for each client taken");
    const none: Array<[number, boolean]> = [];
    make().prepareClients([], 2, (built, finished) => none.push([built.length, finished]));
    assert.deepEqual(none, [[0, true]], "an empty share still reports its end");
  });

  for (const name of ["kv", "transfer"] as const) {
    it(`${name}: envelopes built on preparation threads are the ones this thread would build, and later ones follow on`, async () => {
      const settings = { name, auth: "signed", clients: 5, seed: 4, keySeed: KEY_SEED, records: 300, accounts: 12 } as const;
      const parallel = createWorkload(settings);
      let progress = 0;
      await prepareInParallel(parallel, { settings, perClient: 6, threads: 2, onProgress: (fraction) => (progress = fraction) });
      assert.equal(progress, 1);
      assert.equal(parallel.preparedLeft, 30);
      const sequential = createWorkload(settings);
      for (let client = 0; client < 5; client++) {
        for (let i = 0; i < 9; i++) assert.deepEqual(parallel.next(client), sequential.next(client), `client ${client}, envelope ${i}`);
      }
      assert.equal(parallel.builtOnDemand, 15);
    });
  }

  it("kv: about half reads and half 100-byte updates, over keys of the record range, the same for the same seed", () => {
    const workload = new KvWorkload({ auth: "session", clients: 2, seed: 1, keySeed: KEY_SEED, records: 100 });
    const transactions = take(workload, 0, 2000);
    const gets = transactions.filter((t) => t.operation.type === "get").length;
    assert.ok(gets > 900 && gets < 1100, `${gets} reads of 2,000`);
    for (const { operation } of transactions) {
      assert.ok(operation.type === "get" || operation.type === "put");
      const key = new TextDecoder().decode(operation.key);
      assert.match(key, /^user\d+$/);
      assert.ok(Number(key.slice(4)) < 100, key);
      if (operation.type === "put") assert.equal(operation.value.length, KV_VALUE_BYTES);
    }
    const again = new KvWorkload({ auth: "session", clients: 2, seed: 1, keySeed: KEY_SEED, records: 100 });
    assert.deepEqual(take(again, 0, 50).map((t) => t.operation), transactions.slice(0, 50).map((t) => t.operation));
  });

  it("kv with preload puts every record once in its setup rounds, and none without", () => {
    assert.equal([...new KvWorkload({ auth: "signed", clients: 1, seed: 1, keySeed: KEY_SEED, records: 2500 }).setupRounds()].length, 0);
    const rounds = [...new KvWorkload({ auth: "signed", clients: 1, seed: 1, keySeed: KEY_SEED, records: 2500, preload: true }).setupRounds()];
    const transactions = rounds.flat().map(decodeTransaction);
    const keys = transactions.map((t) => (t.operation.type === "put" ? new TextDecoder().decode(t.operation.key) : "not a put"));
    assert.equal(new Set(keys).size, 2500);
    assertNonceOrder(transactions);
    for (const round of rounds) assert.equal(new Set(round.map((e) => bytesToHex(decodeTransaction(e).clientKey))).size, round.length, "one envelope per key in a round");
  });

  it("session envelopes decode as unsigned (format 2) and signed ones verify", () => {
    const session = decodeTransaction(createWorkload({ name: "noop", auth: "session", clients: 1, seed: 1, keySeed: KEY_SEED }).next(0));
    assert.equal(session.signature.length, 0);
    assert.equal(session.operation.type, "noop");
    const envelope = createWorkload({ name: "noop", auth: "signed", clients: 1, seed: 1, keySeed: KEY_SEED }).next(0);
    assert.equal(envelope[0], 1, "format version 1");
    const signed = decodeTransaction(envelope);
    assert.equal(signed.signature.length, 64);
    assert.ok(verifyTransaction(signed));
    assert.ok(verifyTransaction(decodeTransaction(transfer("signed").next(3))));
  });

  it("reads an envelope's key and nonce in place as the decoder does", () => {
    const key = BenchKey.derive(KEY_SEED, "x", 1);
    for (const nonce of [1, 255, 2 ** 32 + 7, Number.MAX_SAFE_INTEGER]) {
      for (const auth of ["signed", "session"] as const) {
        const envelope = buildEnvelope(key, auth, nonce, { type: "noop" });
        const read = envelopeKeyAndNonce(envelope);
        assert.equal(read.nonce, nonce);
        assert.deepEqual(read.clientKey, decodeTransaction(envelope).clientKey);
      }
    }
  });

  it("transfer: the setup rounds fund every account from the authority's mints, each key's nonces in turn", () => {
    for (const accounts of [2, 50, 1000, 1001]) {
      const workload = transfer("signed", { clients: 2, accounts, firstNonce: 7 });
      const balances = new Map<string, bigint>();
      const nextNonce = new Map<string, number>([[bytesToHex(AUTHORITY.publicKey), 7]]);
      let rounds = 0;
      for (const round of workload.setupRounds()) {
        rounds += 1;
        const transactions = round.map(decodeTransaction);
        assert.equal(new Set(transactions.map((t) => bytesToHex(t.clientKey))).size, round.length, "a round has one envelope per key");
        for (const t of transactions) {
          assert.ok(verifyTransaction(t), "setup envelopes are signed");
          const from = bytesToHex(t.clientKey);
          assert.equal(t.nonce, nextNonce.get(from) ?? 1, "nonces in turn");
          nextNonce.set(from, t.nonce + 1);
          if (t.operation.type === "mint") {
            assert.equal(from, bytesToHex(AUTHORITY.publicKey), "only the authority mints");
            const to = bytesToHex(t.operation.to);
            balances.set(to, (balances.get(to) ?? 0n) + t.operation.amount);
          } else {
            assert.equal(t.operation.type, "transfer");
            if (t.operation.type !== "transfer") continue;
            const balance = balances.get(from) ?? 0n;
            assert.ok(balance >= t.operation.amount, "a distributor sends only what it received in an earlier round");
            balances.set(from, balance - t.operation.amount);
            const to = bytesToHex(t.operation.to);
            balances.set(to, (balances.get(to) ?? 0n) + t.operation.amount);
          }
        }
      }
      for (let account = 0; account < accounts; account++) assert.equal(balances.get(bytesToHex(workload.accountKey(account))), TRANSFER_FUNDING_PER_ACCOUNT, `account ${account} of ${accounts}`);
      const distributorsLeftOver = [...balances.entries()].filter(([key, amount]) => amount !== 0n && ![...Array(accounts).keys()].some((a) => bytesToHex(workload.accountKey(a)) === key));
      assert.deepEqual(distributorsLeftOver, [], "distributors pass on everything");
      if (accounts === 1000) assert.ok(rounds <= 30, `${rounds} rounds for 1,000 accounts`);
    }
  });

  it("transfer: a client sends from its accounts in turn, to other accounts, one token at a time", () => {
    const workload = transfer("session", { clients: 4, accounts: 10 });
    const owned = workload.keysOfClient(1).map((key) => bytesToHex(key.publicKey));
    assert.equal(owned.length, 3);
    const transactions = take(workload, 1, 9);
    assert.deepEqual(transactions.map((t) => bytesToHex(t.clientKey)), [...owned, ...owned, ...owned]);
    for (const t of transactions) {
      assert.equal(t.signature.length, 0);
      assert.ok(t.operation.type === "transfer" && t.operation.amount === 1n);
      if (t.operation.type === "transfer") assert.notDeepEqual(t.operation.to, t.clientKey);
    }
    // What load-connections attaches in session mode: every client's keysOfClient, which cover every account once.
    const attached = [0, 1, 2, 3].flatMap((client) => workload.keysOfClient(client).map((key) => bytesToHex(key.publicKey)));
    assert.equal(attached.length, 10);
    assert.deepEqual(new Set(attached), new Set(Array.from({ length: 10 }, (_, account) => bytesToHex(workload.accountKey(account)))), "every account attaches a session");
  });
});
