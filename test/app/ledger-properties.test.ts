// Property tests of the ledger application under random workloads (ledger-workload.ts), each
// replayable from its seed: conservation of tokens, exactly-once execution, determinism across
// independent instances, and state transfer by snapshot and by resumable chunks.

import { test } from "node:test";
import assert from "node:assert/strict";

import type { ExecutedRequest } from "../../src/app/executor.js";
import { type LedgerApplication, createLedgerApplication } from "../../src/app/ledger-application.js";
import { ACCOUNT_KEY_PREFIX, decodeAccount } from "../../src/app/ledger-state.js";
import { decodeResult, resultErrorCode } from "../../src/app/result.js";
import { decodeTransaction } from "../../src/app/transaction.js";
import { StateSnapshotDecodeError } from "../../src/ledger/state-tree.js";
import { Random } from "../../src/sim/random.js";
import { AUTHORITY, Driver, bytes, describe, signed } from "./ledger-fixtures.js";
import { LedgerWorkload } from "./ledger-workload.js";

const SEEDS = [1, 2, 3, 4, 5];
const BATCHES_PER_SEED = 40;
const GENESIS_AMOUNT = 1000n;

function newLedger(verifySignatures = true): LedgerApplication {
  return createLedgerApplication({ authority: AUTHORITY.publicKey, verifySignatures });
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

/** Sum of every account balance in the state, read straight from the tree. */
function balanceSum(app: LedgerApplication): bigint {
  let sum = 0n;
  for (const [key, value] of app.ledgerState.tree.entries()) {
    if (hex(key).startsWith(hex(ACCOUNT_KEY_PREFIX))) sum += decodeAccount(value).balance;
  }
  return sum;
}

/**
 * A shadow of the balances, moved only by requests the ledger executed with an ok result; it
 * checks each such move against what the shadow says the sender had.
 */
class Shadow {
  readonly balances = new Map<string, bigint>();
  minted = 0n;
  /** (client, nonce) of every request that took effect. */
  readonly executed = new Set<string>();
  readonly nextNonce = new Map<string, number>();

  observe(entries: readonly ExecutedRequest[]): void {
    for (const entry of entries) {
      const errorCode = resultErrorCode(entry.result);
      if (entry.outcome !== "executed") continue;
      const identity = `${entry.client}@${entry.timestamp}`;
      assert.ok(!this.executed.has(identity), `${identity} executed twice`);
      this.executed.add(identity);
      assert.equal(entry.timestamp, this.nextNonce.get(entry.client) ?? 1, `${identity} executed out of turn`);
      this.nextNonce.set(entry.client, entry.timestamp + 1);
      const { clientKey, operation } = decodeTransaction(entry.operation);
      const sender = hex(clientKey);
      if (operation.type === "transfer") {
        const had = this.balances.get(sender) ?? 0n;
        if (errorCode === "insufficient-balance") {
          assert.ok(operation.amount > had, `${identity} refused a transfer of ${operation.amount} with ${had}`);
        } else {
          assert.equal(errorCode, undefined);
          assert.ok(operation.amount <= had, `${identity} sent ${operation.amount} holding ${had}`);
          this.balances.set(sender, had - operation.amount);
          const to = hex(operation.to);
          this.balances.set(to, (this.balances.get(to) ?? 0n) + operation.amount);
        }
      } else if (operation.type === "mint" && errorCode === undefined) {
        assert.equal(sender, hex(AUTHORITY.publicKey));
        const to = hex(operation.to);
        this.balances.set(to, (this.balances.get(to) ?? 0n) + operation.amount);
        this.minted += operation.amount;
      }
    }
  }

  check(app: LedgerApplication): void {
    assert.equal(app.ledgerState.supply(), this.minted, "supply equals what was minted");
    assert.equal(balanceSum(app), this.minted, "balances sum to the supply");
    for (const [account, balance] of this.balances) {
      assert.equal(app.ledgerState.account(Buffer.from(account, "hex")).balance, balance, `balance of ${account.slice(0, 8)}`);
    }
    for (const [client, next] of this.nextNonce) {
      assert.equal(app.ledgerState.account(Buffer.from(client, "hex")).nextNonce, next, `next nonce of ${client.slice(0, 8)}`);
    }
  }
}

for (const seed of SEEDS) {
  test(`seed ${seed}: supply is conserved, no balance goes negative, and nothing executes twice or out of turn under double spends and replays`, () => {
    const random = new Random(seed);
    const app = newLedger();
    const driver = new Driver(app);
    const workload = new LedgerWorkload(random, app, { clientCount: 10, forgeries: true });
    const shadow = new Shadow();
    const outcomes = new Map<string, number>();
    const count = (entries: readonly ExecutedRequest[]): void => {
      for (const entry of entries) {
        const key = `${entry.outcome} ${resultErrorCode(entry.result) ?? "ok"}`;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      }
    };
    const genesis = driver.run(workload.genesis(GENESIS_AMOUNT));
    shadow.observe(genesis);
    shadow.check(app);
    for (let index = 0; index < BATCHES_PER_SEED; index++) {
      const executed = driver.run(workload.nextBatch());
      count(executed);
      shadow.observe(executed);
      shadow.check(app);
    }
    // The workload really did attempt what the property is about.
    for (const expected of ["executed ok", "executed insufficient-balance", "duplicate ok", "rejected stale-nonce", "rejected nonce-gap", "rejected bad-signature"]) {
      assert.ok((outcomes.get(expected) ?? 0) > 0, `the workload produced no "${expected}" (${[...outcomes.keys()].join(", ")})`);
    }
    // After all the gaps, forgeries and stale nonces, every client still transacts with its next nonce.
    const last = driver.run(
      workload.clients.map((client) => signed(client, app.ledgerState.account(client.publicKey).nextNonce, { type: "balance", account: client.publicKey })),
    );
    assert.deepEqual(last.map((entry) => entry.outcome), workload.clients.map(() => "executed"));
    shadow.observe(last);
    shadow.check(app);
  });
}

test("identical batches give identical results and state roots on independent instances", () => {
  const random = new Random(11);
  const instances = [newLedger(), newLedger(), newLedger()];
  const drivers = instances.map((app) => new Driver(app));
  const workload = new LedgerWorkload(random, instances[0]!, { clientCount: 6, forgeries: true });
  const batches = [workload.genesis(GENESIS_AMOUNT)];
  for (let index = 0; index < BATCHES_PER_SEED; index++) {
    const batch = batches[batches.length - 1]!;
    const results = drivers.map((driver) => driver.run(batch).map((entry) => `${entry.outcome}:${hex(entry.result)}`));
    assert.deepEqual(results[1], results[0]);
    assert.deepEqual(results[2], results[0]);
    const roots = instances.map((app) => app.stateDigest());
    assert.equal(new Set(roots).size, 1, `batch ${index}: roots differ`);
    batches.push(workload.nextBatch());
  }
});

test("skipping signature verification changes nothing when every request is signed, as consensus guarantees", () => {
  const random = new Random(12);
  const verifying = newLedger(true);
  const trusting = newLedger(false);
  const drivers = [new Driver(verifying), new Driver(trusting)];
  const workload = new LedgerWorkload(random, verifying, { clientCount: 6, forgeries: false });
  let batch = workload.genesis(GENESIS_AMOUNT);
  for (let index = 0; index < BATCHES_PER_SEED; index++) {
    const [one, other] = drivers.map((driver) => driver.run(batch).map((entry) => hex(entry.result)));
    assert.deepEqual(other, one);
    assert.equal(trusting.stateDigest(), verifying.stateDigest());
    batch = workload.nextBatch();
  }
});

test("snapshot then restore on a fresh instance gives the same root, and both behave the same afterwards", () => {
  const random = new Random(21);
  const source = newLedger();
  const sourceDriver = new Driver(source);
  const workload = new LedgerWorkload(random, source, { clientCount: 6, forgeries: true });
  sourceDriver.run(workload.genesis(GENESIS_AMOUNT));
  for (let index = 0; index < 10; index++) sourceDriver.run(workload.nextBatch());

  const snapshot = sourceDriver.executor.snapshot();
  const target = newLedger();
  const targetDriver = new Driver(target);
  targetDriver.executor.restore(snapshot);
  assert.equal(target.stateDigest(), source.stateDigest());
  assert.equal(targetDriver.executor.lastExecuted, sourceDriver.executor.lastExecuted);
  const rootAtSnapshot = source.stateDigest();

  // Replays of everything executed so far are answered the same way on both; new work too.
  for (let index = 0; index < 10; index++) {
    const batch = workload.nextBatch();
    const expected = sourceDriver.run(batch).map((entry) => `${entry.outcome}:${hex(entry.result)}`);
    const actual = targetDriver.run(batch).map((entry) => `${entry.outcome}:${hex(entry.result)}`);
    assert.deepEqual(actual, expected);
    assert.equal(target.stateDigest(), source.stateDigest());
  }
  // Later execution did not change the snapshot.
  const again = newLedger();
  again.restore(snapshot.app);
  assert.equal(again.stateDigest(), rootAtSnapshot);
});

test("a chunked state transfer resumes from its cursor with any peer, and refuses chunks out of order or not ledger entries", () => {
  const random = new Random(31);
  // Two replicas with the same state: the receiver may switch between them mid-transfer.
  const peers = [newLedger(false), newLedger(false)];
  const drivers = peers.map((app) => new Driver(app));
  const workload = new LedgerWorkload(random, peers[0]!, { clientCount: 10, forgeries: false });
  let batch = workload.genesis(GENESIS_AMOUNT);
  for (let index = 0; index < 8; index++) {
    for (const driver of drivers) driver.run(batch);
    batch = workload.nextBatch();
  }
  const snapshots = peers.map((app) => app.snapshot());
  assert.ok(snapshots[0]!.entryCount > 20);

  const target = newLedger(false);
  const imported = target.beginImport();
  let refusalsChecked = false;
  for (let chunks = 0; ; chunks++) {
    const chunk = random.pick(snapshots).exportChunk(imported.cursor, 1 + random.below(7));
    if (chunks % 3 === 1 && !chunk.done) continue; // lost in transit: the next request resumes from the cursor
    if (chunks === 3) {
      // A chunk from before the cursor, or one with a foreign entry, is refused and changes nothing.
      const countBefore = imported.entryCount;
      assert.throws(() => imported.importChunk(snapshots[0]!.exportChunk(undefined, 1).bytes), StateSnapshotDecodeError);
      const foreign = newLedger(false);
      foreign.ledgerState.tree.put(bytes("zz/unknown"), bytes("x"));
      assert.throws(() => imported.importChunk(foreign.snapshot().bytes()), /not a ledger entry/);
      assert.equal(imported.entryCount, countBefore);
      refusalsChecked = true;
    }
    imported.importChunk(chunk.bytes);
    if (chunk.done) break;
  }
  assert.ok(refusalsChecked);
  assert.throws(() => target.install(imported, new Uint8Array(32)), /not the expected one/);
  // The runtime's path: the import's root is the certified one, then the executor installs it.
  assert.equal(hex(imported.root()), hex(snapshots[0]!.root));
  const targetDriver = new Driver(target);
  targetDriver.executor.restore({ seq: drivers[0]!.executor.lastExecuted, app: imported });
  assert.equal(targetDriver.executor.stateDigest(), peers[0]!.stateDigest());
  // The installed state answers exactly as the source does.
  const probe = workload.nextBatch();
  const expected = drivers[0]!.run(probe).map((entry) => describe(decodeResult(entry.result)));
  assert.deepEqual(targetDriver.run(probe).map((entry) => describe(decodeResult(entry.result))), expected);
  assert.equal(targetDriver.executor.stateDigest(), peers[0]!.stateDigest());
});
