// The SDK against real replica processes (issue 4, "SDK additions"): connect from the files
// `bulwark init` writes, write through consensus, then read back by proof, fetch verified blocks
// and the replicas' status, and reuse the key from a second client that must discover its nonce.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";

import { decodeTransaction } from "../../src/app/transaction.js";
import { connect } from "../../src/client/connect.js";
import type { Committed } from "../../src/client/types.js";
import { generateEd25519KeyPair } from "../../src/crypto/ed25519.js";
import { writeKeyFile } from "../../src/node/keys.js";
import { ProcessCluster } from "../support/process-cluster.js";

const text = (bytes: Uint8Array | undefined): string | undefined => (bytes === undefined ? undefined : Buffer.from(bytes).toString("utf8"));

describe("the SDK against real replica processes", () => {
  it("writes, reads back by proof, fetches verified blocks and status, and a second client of the same key discovers its nonce", async (t) => {
    const cluster = await ProcessCluster.create(t);
    await Promise.all(Array.from({ length: cluster.n }, (_, replica) => cluster.start(replica)));
    const key = generateEd25519KeyPair();
    await writeKeyFile(join(cluster.directory, "client.key"), { role: "client", ...key });

    const first = await connect({ cluster: cluster.clusterFile, requestTimeoutMs: 1_000, deadlineMs: 10_000 });
    t.after(() => first.close());
    assert.equal(first.nonce, 1, "a fresh key starts at nonce 1, read from the genesis state");
    const puts: Committed[] = [];
    for (const [name, value] of [["alpha", "1"], ["beta", "2"], ["alpha", "3"]] as const) puts.push(await first.put(name, value));
    const lastHeight = puts[puts.length - 1]!.height;
    assert.ok(lastHeight >= 3, `the puts named their blocks (last at ${lastHeight})`);

    // Proof reads see the client's own writes: never older than the height it saw committed.
    const alpha = await first.read("alpha", { consistency: "proof" });
    assert.equal(text(alpha.value), "3");
    assert.ok(alpha.height >= lastHeight);
    assert.equal(await first.get("missing", { consistency: "proof" }), undefined);
    const linearizable = await first.read("beta");
    assert.equal(text(linearizable.value), "2");
    assert.ok(linearizable.height > lastHeight, "a linearizable read is a transaction of its own block");
    assert.equal(first.counters.answersRejected, 0, "honest replicas serve nothing that fails to verify");

    // The account by proof: the nonce the next transaction will carry.
    const account = await first.account(first.publicKey, { consistency: "proof" });
    assert.equal(account.nextNonce, first.nonce);
    assert.equal(account.balance, 0n);

    // Blocks: contiguous from 1 and verified, the put inside the block the replies named.
    const blocks = await first.blocks(1, 100);
    assert.ok(blocks.length >= puts[0]!.height, `blocks up to the certified tip (got ${blocks.length})`);
    blocks.forEach((block, index) => {
      assert.equal(block.height, index + 1);
      assert.ok(block.signers.length >= 2 * cluster.f + 1);
      if (index > 0) assert.equal(block.previousHash, blocks[index - 1]!.hash);
    });
    const holding = await first.block(puts[0]!.height);
    assert.ok(holding !== undefined && !holding.bodyPruned);
    const envelopes = holding.transactions.map((envelope) => decodeTransaction(envelope));
    assert.ok(envelopes.some((transaction) => transaction.nonce === puts[0]!.nonce && transaction.operation.type === "put"), "the first put is in its block");
    assert.equal(await first.block(1_000_000), undefined);

    const statuses = await first.status();
    assert.deepEqual(statuses.map((status) => [status.replica, status.reachable, status.normal]), [0, 1, 2, 3].map((replica) => [replica, true, true]));
    // A quorum executed the puts; one replica may still be catching up (PBFT goes on with 2f + 1).
    const upToDate = statuses.filter((status) => (status.executedHeight ?? 0) >= lastHeight && (status.certifiedHeight ?? 0) >= 1);
    assert.ok(upToDate.length >= 2 * cluster.f + 1, JSON.stringify(statuses));

    // A second client of the same key (a restarted process) discovers the account's next nonce.
    const second = await connect({ cluster: cluster.clusterFile, requestTimeoutMs: 1_000, deadlineMs: 10_000 });
    t.after(() => second.close());
    assert.equal(second.nonce, first.nonce, "the second client starts where the first left off");
    const secondPut = await second.put("gamma", "4");
    assert.equal(secondPut.nonce, first.nonce);
    assert.equal(second.counters.resigned, 0, "no nonce had to be tried twice");
    // The first client's nonce is stale now (replicas drop, unanswered, a request whose nonce was
    // already executed); it discovers the account's nonce again and goes on. A proof read is only
    // as fresh as the replica that answers, so it first waits to see the second client's write.
    const deadlineMs = Date.now() + 5_000;
    while (text(await first.get("gamma", { consistency: "proof" })) !== "4") {
      assert.ok(Date.now() < deadlineMs, "a proof read shows the second client's write within 5 s");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(await first.discoverNonce(), secondPut.nonce + 1);
    const firstAgain = await first.put("delta", "5");
    assert.equal(firstAgain.nonce, secondPut.nonce + 1);
    assert.equal(text(await second.get("delta", { consistency: "proof" })), "5");

    // With a replica down, status says so and proof reads go on through the others.
    await cluster.kill(3);
    const degraded = await first.status({ timeoutMs: 500 });
    assert.deepEqual(degraded.map((status) => status.reachable), [true, true, true, false]);
    assert.equal(text(await first.get("gamma", { consistency: "proof" })), "4");
  });
});
