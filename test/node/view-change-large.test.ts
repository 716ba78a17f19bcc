// A view change with large batches prepared, between real replica processes (docs/RELIABILITY.md,
// "A view change with large batches under load"). A VIEW-CHANGE carries a prepared certificate
// for every batch prepared above the stable checkpoint. When those carried the batches' requests,
// a VIEW-CHANGE grew past the wire's 16 MiB frame limit under load, every peer dropped it, and no
// new view formed. Now certificates go by digest, and a replica fetches a re-proposed batch it
// lacks (consensus/pbft/batches.ts).
//
// Here: 16 clients put 60 KB values, unique keys, until more than 20 MiB of them committed with
// no stable checkpoint (the interval is 128 batches), then the primary is stopped (SIGSTOP, so
// its connections stay open and silent). A put sent after that must commit in a later view, and
// no replica may have dropped a frame for its size.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";

import { BulwarkClient } from "../../src/client/index.js";
import { generateEd25519KeyPair } from "../../src/crypto/ed25519.js";
import { ProcessCluster } from "../support/process-cluster.js";

const CLIENTS = 16;
const VALUE_BYTES = 60_000;
/** Above the 16 MiB frame limit, so the old VIEW-CHANGE could not have been sent. */
const COMMITTED_BYTES_BEFORE_STOP = 20 * 1024 * 1024;
const RECOVERY_DEADLINE_MS = 60_000;

describe("a view change with 20 MiB of batches prepared above the stable checkpoint", () => {
  it("completes between real processes: the stopped primary is replaced and puts commit again", { timeout: 240_000 }, async (t) => {
    const cluster = await ProcessCluster.create(t, { replicaFlags: ["--verify-workers", "1"] });
    for (let id = 0; id < cluster.n; id++) await cluster.start(id);
    const clients = await Promise.all(
      Array.from({ length: CLIENTS }, () =>
        BulwarkClient.connect({ cluster: cluster.config, privateKey: generateEd25519KeyPair().privateKey, requestTimeoutMs: 2_000, deadlineMs: RECOVERY_DEADLINE_MS }),
      ),
    );
    t.after(() => Promise.all(clients.map((client) => client.close())));

    let committedBytes = 0;
    let highest = 0;
    let stopped = false;
    const afterStop: number[] = [];
    const failures: string[] = [];
    const stoppedAt = { ms: 0 };
    const loops = clients.map(async (client, index) => {
      for (let n = 0; ; n++) {
        // Each client puts once more after the stop, then ends.
        const sentAfterStop = stopped;
        const value = randomBytes(VALUE_BYTES / 2).toString("hex");
        try {
          const committed = await client.put(`large/c${index}/${n}`, value);
          committedBytes += VALUE_BYTES;
          highest = Math.max(highest, committed.height);
          if (sentAfterStop) return void afterStop.push(Date.now() - stoppedAt.ms);
        } catch (error) {
          failures.push(`${sentAfterStop ? "after" : "before"} the stop: ${error instanceof Error ? error.message : String(error)}`);
          if (sentAfterStop) return;
        }
      }
    });
    while (committedBytes < COMMITTED_BYTES_BEFORE_STOP) {
      assert.ok(failures.length === 0, failures.join("\n"));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(highest < cluster.config.protocol.checkpointInterval, `height ${highest}: a checkpoint could have become stable`);
    cluster.signal(0, "SIGSTOP");
    t.after(() => {
      if (cluster.isRunning(0)) cluster.signal(0, "SIGCONT");
    });
    stoppedAt.ms = Date.now();
    stopped = true;
    await Promise.all(loops);

    const logs = cluster.logTails();
    assert.equal(afterStop.length, CLIENTS, `puts sent after the stop did not all commit:\n${failures.join("\n")}\n${logs}`);
    for (let id = 1; id < cluster.n; id++) {
      assert.deepEqual(cluster.logLines(id, "dropped a frame above the size limit"), [], `replica ${id} dropped an oversized frame`);
    }
    const statuses = await clients[0]!.status({ timeoutMs: 2_000 });
    const views = statuses.filter((status) => status.reachable).map((status) => status.view);
    assert.ok(views.length === 3 && views.every((view) => view !== undefined && view >= 1), `views ${JSON.stringify(views)}`);
    t.diagnostic(`committed ${(committedBytes / 1024 / 1024).toFixed(1)} MiB up to height ${highest} before the stop; views after: ${views.join(", ")}; puts after it committed in ${afterStop.sort((a, b) => a - b).join(", ")} ms`);
  });
});
