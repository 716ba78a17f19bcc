import { describe, it } from "node:test";
import assert from "node:assert/strict";

import {
  type Account,
  LedgerState,
  LedgerStateError,
  TURN_RESULT_CACHED_BYTES_MAX,
  accountStateKey,
  decodeAccount,
  decodeReplyRecord,
  encodeAccount,
  encodeReplyRecord,
  kvStateKey,
  replyStateKey,
} from "../../src/app/ledger-state.js";
import { StateTree } from "../../src/ledger/state-tree.js";
import { Random } from "../../src/sim/random.js";
import { hex, randomBytes } from "../support/random-bytes.js";

const signature = (fill: number): Uint8Array => new Uint8Array(64).fill(fill);
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Public keys for tests: any 32 bytes will do, the state does not check that they are points. */
function publicKeys(count: number, seed: number): Uint8Array[] {
  const random = new Random(seed);
  return Array.from({ length: count }, () => randomBytes(random, 32));
}

/** The writes other than account write-backs, each of which checks the tree before it writes. */
const KV_AND_SUPPLY_WRITES: ReadonlyArray<readonly [string, (state: LedgerState) => unknown]> = [
  ["adoptValue", (state) => state.adoptValue(bytes("k"), bytes("v"))],
  ["deleteValue", (state) => state.deleteValue(bytes("k"))],
  ["setSupply", (state) => state.setSupply(7n)],
];

describe("ledger state: the account cache", () => {
  it("gives the tree of writing every record directly, for random turns and transfers, at every root", () => {
    const random = new Random(7);
    const keys = publicKeys(40, 7);
    // A small cache, so that it starts over many times along the way.
    const state = new LedgerState(new StateTree(), { accountCacheSlotsMax: 8 });
    const direct = new StateTree();
    const accounts = new Map<string, Account>();
    const accountOf = (key: Uint8Array): Account => accounts.get(hex(key)) ?? { balance: 0n, nextNonce: 1 };
    const setDirect = (key: Uint8Array, account: Account): void => {
      accounts.set(hex(key), account);
      direct.put(accountStateKey(key), encodeAccount(account));
    };
    for (let step = 0; step < 3000; step++) {
      const key = random.pick(keys);
      if (random.chance(0.4)) {
        const account = { balance: BigInt(random.below(1_000_000)), nextNonce: accountOf(key).nextNonce };
        state.setAccount(key, account);
        setDirect(key, account);
      } else {
        const nonce = accountOf(key).nextNonce;
        const record = { nonce, signature: signature(step & 0xff), result: randomBytes(random, random.between(1, 9)) };
        state.recordTurn(key, record);
        setDirect(key, { balance: accountOf(key).balance, nextNonce: nonce + 1 });
        direct.put(replyStateKey(key), encodeReplyRecord(record));
      }
      assert.deepEqual(state.account(key), accountOf(key));
      if (random.chance(0.05)) assert.deepEqual(state.root(), direct.root(), `step ${step}`);
    }
    assert.deepEqual(state.root(), direct.root());
    for (const key of keys) assert.deepEqual(decodeAccount(state.tree.get(accountStateKey(key)) ?? encodeAccount({ balance: 0n, nextNonce: 1 })), accountOf(key));
  });

  it("writes accounts back before anyone reads the tree", () => {
    const [alice] = publicKeys(1, 1) as [Uint8Array];
    const state = new LedgerState();
    state.setAccount(alice, { balance: 5n, nextNonce: 3 });
    assert.deepEqual(decodeAccount(state.tree.get(accountStateKey(alice))!), { balance: 5n, nextNonce: 3 });
    state.setAccount(alice, { balance: 6n, nextNonce: 3 });
    const snapshot = StateTree.fromSnapshot(state.tree.snapshot());
    assert.deepEqual(decodeAccount(snapshot.get(accountStateKey(alice))!), { balance: 6n, nextNonce: 3 });
  });

  it("sees a change made to the tree behind its back once its own changes are written", () => {
    const [alice] = publicKeys(1, 2) as [Uint8Array];
    const state = new LedgerState();
    state.setAccount(alice, { balance: 5n, nextNonce: 1 });
    const tree = state.tree;
    tree.put(accountStateKey(alice), encodeAccount({ balance: 9n, nextNonce: 4 }));
    assert.deepEqual(state.account(alice), { balance: 9n, nextNonce: 4 });
  });

  it("refuses to go on when the tree changed behind its back while account changes were unwritten", () => {
    const [alice, bob] = publicKeys(2, 3) as [Uint8Array, Uint8Array];
    const state = new LedgerState();
    const tree = state.tree;
    state.setAccount(alice, { balance: 5n, nextNonce: 1 });
    tree.put(accountStateKey(alice), encodeAccount({ balance: 9n, nextNonce: 1 }));
    assert.throws(() => state.account(bob), LedgerStateError);
  });

  it("a kv write or a supply write refuses to go on when the tree changed behind its back while account changes were unwritten", () => {
    const [alice] = publicKeys(1, 8) as [Uint8Array];
    for (const [name, write] of KV_AND_SUPPLY_WRITES) {
      const state = new LedgerState();
      const tree = state.tree;
      tree.put(kvStateKey(bytes("k")), bytes("before"));
      state.setAccount(alice, { balance: 5n, nextNonce: 1 });
      // Behind its back: the account it is about to write back, changed to something else.
      tree.put(accountStateKey(alice), encodeAccount({ balance: 9n, nextNonce: 1 }));
      assert.throws(() => write(state), LedgerStateError, name);
      assert.deepEqual(tree.get(kvStateKey(bytes("k"))), bytes("before"), `${name} wrote nothing`);
      assert.equal(state.supply(), 0n, `${name}: no supply written`);
    }
  });

  it("a kv write or a supply write after a change behind its back drops the cached accounts, so reads see the change", () => {
    const [alice] = publicKeys(1, 9) as [Uint8Array];
    for (const [name, write] of KV_AND_SUPPLY_WRITES) {
      const state = new LedgerState();
      assert.deepEqual(state.account(alice), { balance: 0n, nextNonce: 1 }, "now cached");
      state.tree.put(accountStateKey(alice), encodeAccount({ balance: 9n, nextNonce: 4 }));
      write(state);
      assert.deepEqual(state.account(alice), { balance: 9n, nextNonce: 4 }, name);
    }
  });

  it("returns the recorded turn as the executor's row, the same after a restart from the tree", () => {
    const [alice] = publicKeys(1, 4) as [Uint8Array];
    const client = hex(alice);
    const state = new LedgerState();
    assert.equal(state.lastTurn(client), undefined);
    state.recordTurn(alice, { nonce: 1, signature: signature(7), result: Uint8Array.of(0) });
    const row = { client, timestamp: 1, signature: hex(signature(7)), result: Uint8Array.of(0) };
    assert.deepEqual(state.lastTurn(client), row);
    const restarted = new LedgerState(StateTree.fromSnapshot(state.tree.snapshot()));
    assert.deepEqual(restarted.lastTurn(client), row);
    assert.deepEqual(decodeReplyRecord(restarted.tree.get(replyStateKey(alice))!).signature, signature(7));
    assert.equal(state.lastTurn(client.toUpperCase()), undefined, "a client id is lowercase hex");
    assert.equal(state.lastTurn("not hex"), undefined);
  });

  it("keeps a turn's result in the cache only up to TURN_RESULT_CACHED_BYTES_MAX bytes, and reads a longer one from the tree", () => {
    const [small, large] = publicKeys(2, 10) as [Uint8Array, Uint8Array];
    const state = new LedgerState();
    const smallResult = new Uint8Array(TURN_RESULT_CACHED_BYTES_MAX).fill(1);
    const largeResult = new Uint8Array(TURN_RESULT_CACHED_BYTES_MAX + 1).fill(2);
    state.recordTurn(small, { nonce: 1, signature: signature(1), result: smallResult });
    state.recordTurn(large, { nonce: 1, signature: signature(2), result: largeResult });
    assert.equal(state.lastTurn(hex(small))?.result, smallResult, "a small result is kept as it was recorded");
    const first = state.lastTurn(hex(large));
    assert.deepEqual(first, { client: hex(large), timestamp: 1, signature: hex(signature(2)), result: largeResult });
    assert.notEqual(first.result, largeResult, "the recorded array is not kept");
    const second = state.lastTurn(hex(large));
    assert.deepEqual(second, first);
    assert.notEqual(second.result, first.result, "each call decodes the long result again: no slot holds it");
    // The same when the turn is first read from the tree rather than recorded.
    const restarted = new LedgerState(StateTree.fromSnapshot(state.tree.snapshot()));
    assert.notEqual(restarted.lastTurn(hex(large))!.result, restarted.lastTurn(hex(large))!.result);
    assert.equal(restarted.lastTurn(hex(small))!.result, restarted.lastTurn(hex(small))!.result, "a small one read from the tree is cached");
  });

  it("asking for the last turn of clients with none keeps no slot, so made-up keys do not flush the cache", () => {
    const keys = publicKeys(200, 11);
    const [alice, ...strangers] = keys as [Uint8Array, ...Uint8Array[]];
    const state = new LedgerState(new StateTree(), { accountCacheSlotsMax: 8 });
    state.recordTurn(alice, { nonce: 1, signature: signature(1), result: Uint8Array.of(0) });
    const row = state.lastTurn(hex(alice));
    assert.ok(row !== undefined);
    const versionBefore = state.tree.version;
    for (const stranger of strangers) assert.equal(state.lastTurn(hex(stranger)), undefined);
    assert.equal(state.lastTurn(hex(alice)), row, "alice's slot survived: the same row, not decoded again");
    assert.equal(state.tree.version, versionBefore, "and nothing was written");
  });

  it("refuses a turn out of order and leaves the account as it was", () => {
    const [alice] = publicKeys(1, 5) as [Uint8Array];
    const state = new LedgerState();
    assert.throws(() => state.recordTurn(alice, { nonce: 2, signature: signature(1), result: Uint8Array.of(0) }), /next nonce is 1/);
    assert.throws(() => state.recordTurn(alice, { nonce: 1, signature: new Uint8Array(63), result: Uint8Array.of(0) }), /64 bytes/);
    assert.deepEqual(state.account(alice), { balance: 0n, nextNonce: 1 });
    assert.equal(state.tree.get(replyStateKey(alice)), undefined);
  });
});
