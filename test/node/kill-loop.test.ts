// Crash safety with real replica processes (issue 3 §5): four replicas under closed-loop put load
// from several client keys while a loop SIGKILLs one replica at a time at a random instant (the
// primary among them), keeps it down for a random 100-1500 ms and restarts it. A killed replica
// comes back from its store alone: whatever it voted for was on disk before the vote left, so it
// can never contradict itself (replica-runtime.ts, "The Ready loop").
//
// Afterwards every replica is stopped and its store opened, and the test checks
//   (a) the ledgers are identical: every height two stores both hold has the same header hash,
//       and a store lacks a height only below a checkpoint it installed by state transfer;
//   (b) at least 2f + 1 replicas reached the highest acknowledged height;
//   (c) no acknowledged transaction was lost: every acknowledged put's value is in the state of
//       every replica that executed past it;
//   (d) `bulwark verify` passes on every replica: a killed replica gathers the certificates of the
//       blocks whose signatures it missed (certificate-repair.ts), and one that state-transferred
//       backfills the whole certified history below its checkpoint (block-backfill.ts).
// Liveness is checked too: every put of the load is acknowledged, and after the last kill one
// more put per client must be.
//
// BULWARK_PROCESS_KILLS sets the number of kills (default 6, about 20 s in `npm test`;
// the long run uses 25) and BULWARK_PROCESS_SEED the seed of the schedule (which replica, when,
// for how long). The seed fixes the schedule, not the interleaving: two runs kill at different
// heights.

import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { Random } from "../../src/sim/random.js";
import { type AckedPut, type LedgerSnapshot, ProcessCluster, PutLoad } from "../support/process-cluster.js";

const KILLS = Number(process.env.BULWARK_PROCESS_KILLS ?? 6);
const SEED = Number(process.env.BULWARK_PROCESS_SEED ?? 20_250_311);
// A mistyped variable must not turn the test into one that kills nothing.
assert.ok(Number.isSafeInteger(KILLS) && KILLS >= 1, `BULWARK_PROCESS_KILLS must be a positive integer; got ${process.env.BULWARK_PROCESS_KILLS}`);
assert.ok(Number.isSafeInteger(SEED), `BULWARK_PROCESS_SEED must be an integer; got ${process.env.BULWARK_PROCESS_SEED}`);
const PROTOCOL = {
  tickMs: 10,
  // Small checkpoints and window, so a replica down for a second falls behind the window and
  // catches up by state transfer, and one down briefly catches up from its peers' logs.
  checkpointInterval: 16,
  watermarkWindow: 64,
  // A backup suspects a killed primary after 0.5 s, so a primary kill costs well under a second.
  viewChangeTimeoutTicks: 50,
  viewChangeTimeoutMaxTicks: 400,
  statusIntervalTicks: 10,
};
const UP_BEFORE_KILL_MS = { min: 200, max: 1_500 };
const DOWN_MS = { min: 100, max: 1_500 };
/** Load after the last restart, before the final puts. */
const LOAD_AFTER_KILLS_MS = 3_000;
/**
 * Time for every replica to execute the last puts, and to hand any block still uncertified to the
 * certificate repair: a block whose peers signed it while this replica was down or behind gets
 * no signatures by itself, and the runtime hands it over after a 2 s grace, checked every second
 * (replica-runtime.ts, CERTIFY_GRACE_MS). `waitForJobs` then waits for that repair to finish.
 */
const SETTLE_MS = 4_000;
const LOG_TAIL_LINES = 15;
/** How long a restarted replica may take to backfill its history and gather missing certificates. */
const HISTORY_TIMEOUT_MS = 20_000;

function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

interface Kill {
  readonly replica: number;
  readonly downMs: number;
  /** The highest acknowledged height when the kill happened. */
  readonly atHeight: number;
}

/** Heights at or below which replica `replica`'s store may lack headers: the highest checkpoint it installed. */
function installedCheckpoint(cluster: ProcessCluster, replica: number): number {
  let highest = 0;
  for (const line of cluster.logLines(replica, "installed the state of a stable checkpoint")) {
    const seq = line.fields.seq;
    if (typeof seq === "number") highest = Math.max(highest, seq);
  }
  return highest;
}

/**
 * The height at or below which an acknowledged put must be: its own when the replies named one,
 * otherwise (every agreeing reply came from a reply cache) the lowest height named by a put sent
 * after it was acknowledged, which was ordered after it. Undefined when no such put exists.
 */
function heightBound(put: AckedPut, acked: readonly AckedPut[]): number | undefined {
  if (put.height > 0) return put.height;
  let bound: number | undefined;
  for (const later of acked) {
    if (later.sentAt > put.ackedAt && later.height > 0) bound = Math.min(bound ?? later.height, later.height);
  }
  return bound;
}

describe("replica processes killed at random instants under load (SIGKILL)", () => {
  it(`keep identical ledgers, lose no acknowledged put, and stay live (${KILLS} kills, seed ${SEED})`, async (t) => {
    const random = new Random(SEED);
    const cluster = await ProcessCluster.create(t, { protocol: PROTOCOL });
    for (let replica = 0; replica < cluster.n; replica++) await cluster.start(replica);
    const clientCount = random.between(4, 8);
    const load = await PutLoad.connect(cluster, clientCount);
    t.after(() => load.close());
    const tails = (): string => `\n${cluster.logTails(LOG_TAIL_LINES)}`;

    load.start();
    const kills: Kill[] = [];
    for (let kill = 0; kill < KILLS; kill++) {
      await sleep(random.between(UP_BEFORE_KILL_MS.min, UP_BEFORE_KILL_MS.max));
      // The first victim is replica 0, the primary of view 0, so the primary is killed at least
      // once whatever the seed; later victims are uniform (the primary among them).
      const replica = kill === 0 ? 0 : random.below(cluster.n);
      const downMs = random.between(DOWN_MS.min, DOWN_MS.max);
      kills.push({ replica, downMs, atHeight: load.maxHeight });
      await cluster.kill(replica);
      await sleep(downMs);
      await cluster.start(replica);
    }
    await sleep(LOAD_AFTER_KILLS_MS);
    await load.stop();
    assert.deepEqual(load.failures, [], `every put of the load is acknowledged${tails()}`);
    // Liveness after all the kills: one more put per client, each acknowledged.
    const final = await load.putEach();
    await load.close();
    await sleep(SETTLE_MS);
    // A replica that installed a checkpoint, or restarted with blocks its peers had not signed yet,
    // finishes fetching the history below it and the missing certificates before the audit.
    for (let replica = 0; replica < cluster.n; replica++) {
      await cluster.waitForJobs(replica, "backfilling the blocks at and below an installed checkpoint from peers", "backfill complete", HISTORY_TIMEOUT_MS);
      await cluster.waitForJobs(replica, "gathering certificates for uncertified blocks", "every stored block is certified", HISTORY_TIMEOUT_MS);
    }
    await cluster.stopAll();

    const keys = load.acked.map((put) => put.key);
    const ledgers: LedgerSnapshot[] = [];
    for (let replica = 0; replica < cluster.n; replica++) ledgers.push(await cluster.readLedger(replica, keys));
    const checkpoints = ledgers.map((_, replica) => installedCheckpoint(cluster, replica));
    const highestAcked = load.maxHeight;
    const heights = ledgers.map((ledger) => ledger.appliedHeight);
    t.diagnostic(
      `${kills.length} kills (${kills.map((kill) => `r${kill.replica} at h${kill.atHeight} for ${kill.downMs} ms`).join(", ")}); ` +
        `${clientCount} clients, ${load.acked.length} puts acknowledged (${load.acked.filter((put) => put.height === 0).length} from reply caches); ` +
        `highest acknowledged height ${highestAcked} (final puts at ${final.map((put) => put.height).join(", ")}); applied heights ${heights.join(", ")}; ` +
        `state transfers installed up to ${checkpoints.map((seq, replica) => `r${replica}: ${seq}`).join(", ")}`,
    );

    // (a) Identical ledgers.
    for (let replica = 0; replica < cluster.n; replica++) {
      const ledger = ledgers[replica]!;
      for (let height = 1; height <= ledger.appliedHeight; height++) {
        if (ledger.headerHashes.has(height)) continue;
        assert.ok(height <= checkpoints[replica]!, `replica ${replica} lacks the header at height ${height}, above its installed checkpoint ${checkpoints[replica]}${tails()}`);
      }
      for (const height of ledger.headerHashes.keys()) {
        assert.ok(height <= ledger.appliedHeight, `replica ${replica} stores a header at height ${height}, above its applied height ${ledger.appliedHeight}${tails()}`);
      }
      for (let other = replica + 1; other < cluster.n; other++) {
        for (const [height, hash] of ledger.headerHashes) {
          const otherHash = ledgers[other]!.headerHashes.get(height);
          if (otherHash === undefined) continue;
          assert.equal(hash, otherHash, `replicas ${replica} and ${other} store different headers at height ${height}${tails()}`);
        }
      }
    }

    // (b) A quorum reached the highest acknowledged height.
    const reached = heights.filter((height) => height >= highestAcked).length;
    assert.ok(reached >= 2 * cluster.f + 1, `only ${reached} replicas reached the highest acknowledged height ${highestAcked} (heights ${heights.join(", ")})${tails()}`);

    // (c) No acknowledged put lost.
    let unbounded = 0;
    for (const put of load.acked) {
      const bound = heightBound(put, load.acked);
      if (bound === undefined) {
        unbounded += 1;
        continue;
      }
      for (let replica = 0; replica < cluster.n; replica++) {
        if (ledgers[replica]!.appliedHeight < bound) continue;
        const stored = ledgers[replica]!.kvValues.get(put.key);
        assert.equal(
          stored === undefined ? undefined : Buffer.from(stored).toString("utf8"),
          put.value,
          `replica ${replica} (applied height ${ledgers[replica]!.appliedHeight}) lost ${put.key}, acknowledged at height ${put.height} (bound ${bound})${tails()}`,
        );
      }
    }
    assert.ok(unbounded <= clientCount, `${unbounded} acknowledged puts could not be placed at a height`);

    // (d) The audit.
    const audits = await Promise.all(ledgers.map((_, replica) => cluster.verify(replica)));
    const report = audits.map((audit, replica) => `r${replica}: exit ${audit.exitCode}${audit.exitCode === 0 ? "" : ` ${JSON.stringify(audit.summary ?? audit.stderr.trim())}`}`);
    t.diagnostic(`bulwark verify: ${report.join("; ")}`);
    for (const [replica, audit] of audits.entries()) {
      assert.equal(audit.exitCode, 0, `bulwark verify of replica ${replica}: ${audit.stdout}${audit.stderr}\n${cluster.logTail(replica, LOG_TAIL_LINES)}`);
    }
  });
});
