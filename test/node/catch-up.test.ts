// Catch-up by state transfer with real replica processes (issue 3 §5): "a replica with a wiped
// data directory catches up by state transfer and then reports the same state root as the
// others". A replica that is more than a watermark window behind the stable checkpoint cannot be
// brought up to date from the other replicas' logs (they discarded everything below that
// checkpoint, PBFT §4.3), so it must fetch the checkpoint's state, check it against the 2f + 1
// signed checkpoint digest, install it, and then execute on from there like the others.
//
// Both cases end the same way: after the restart the replica logs the installation, takes part in
// a few more puts, and once every replica has stopped its store holds the same applied height,
// state digest and header hash at that height as every other store.

import { type TestContext, describe, it } from "node:test";
import assert from "node:assert/strict";

import { type LedgerSnapshot, ProcessCluster, PutLoad } from "../support/process-cluster.js";

const CHECKPOINT_INTERVAL = 8;
const WATERMARK_WINDOW = 32;
const PROTOCOL = {
  checkpointInterval: CHECKPOINT_INTERVAL,
  watermarkWindow: WATERMARK_WINDOW,
  // A restarted replica learns of the stable checkpoint from its peers' status messages: send them often.
  statusIntervalTicks: 10,
  viewChangeTimeoutTicks: 50,
  viewChangeTimeoutMaxTicks: 400,
};
const CLIENTS = 3;
const INSTALL_TIMEOUT_MS = 20_000;
/**
 * Time for the restarted replica to execute the last puts, and to hand any block still uncertified to the
 * certificate repair: a block whose peers signed it while this replica was down or behind gets
 * no signatures by itself, and the runtime hands it over after a 2 s grace, checked every second
 * (replica-runtime.ts, CERTIFY_GRACE_MS). `waitForJobs` then waits for that repair to finish.
 */
const SETTLE_MS = 4_000;
const LAGGING = 3;
const PUTS_MAX = 2_000;

function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

/**
 * Kills replica 3 (wiping its store when `wipe`), advances the others until their acknowledged
 * height is more than a window past where replica 3 stopped, restarts it, and checks that it
 * installed a checkpoint's state and ends with the same ledger tip as the others.
 */
async function killAdvanceRestart(t: TestContext, putsBefore: number, options: { readonly wipe: boolean }): Promise<void> {
  const cluster = await ProcessCluster.create(t, { protocol: PROTOCOL });
  for (let replica = 0; replica < cluster.n; replica++) await cluster.start(replica);
  const load = await PutLoad.connect(cluster, CLIENTS);
  t.after(() => load.close());
  await load.putCount(putsBefore);
  const heightAtKill = load.maxHeight;
  await cluster.kill(LAGGING);
  if (options.wipe) await cluster.wipe(LAGGING);
  const stranded = options.wipe ? 0 : heightAtKill;

  // Past the window plus two checkpoints, so the stable checkpoint is beyond anything the
  // others still hold a log for, whichever of the last two checkpoints is stable.
  const target = stranded + WATERMARK_WINDOW + 2 * CHECKPOINT_INTERVAL;
  const ackedBefore = load.acked.length;
  await load.putUntil(() => load.acked.length - ackedBefore >= 80 && load.maxHeight > target, PUTS_MAX);

  await cluster.start(LAGGING);
  const installed = await cluster.waitForLog(LAGGING, "installed the state of a stable checkpoint", INSTALL_TIMEOUT_MS);
  const installedSeq = installed.fields.seq;
  assert.ok(typeof installedSeq === "number" && installedSeq > stranded + WATERMARK_WINDOW, `replica ${LAGGING} installed checkpoint ${String(installedSeq)}; expected one above ${stranded + WATERMARK_WINDOW}`);
  assert.equal(installedSeq % CHECKPOINT_INTERVAL, 0, "an installed state is a checkpoint's");

  // A few more puts that the restarted replica executes like the others, past the checkpoint.
  await load.putEach();
  await load.putEach();
  await sleep(SETTLE_MS);
  await load.close();
  // The history below the checkpoint comes too, verified down the hash chain.
  await cluster.waitForLog(LAGGING, "backfill complete", INSTALL_TIMEOUT_MS);
  await cluster.waitForJobs(LAGGING, "gathering certificates for uncertified blocks", "every stored block is certified", INSTALL_TIMEOUT_MS);
  await cluster.stopAll();

  const ledgers: LedgerSnapshot[] = [];
  for (let replica = 0; replica < cluster.n; replica++) ledgers.push(await cluster.readLedger(replica, load.acked.map((put) => put.key)));
  const caughtUp = ledgers[LAGGING]!;
  const context = `\nheights ${ledgers.map((ledger) => ledger.appliedHeight).join(", ")}\n${cluster.logTail(LAGGING)}`;
  assert.ok(caughtUp.appliedHeight > installedSeq, `replica ${LAGGING} executed nothing after the installed checkpoint ${installedSeq}${context}`);
  for (let replica = 0; replica < LAGGING; replica++) {
    const other = ledgers[replica]!;
    assert.equal(caughtUp.appliedHeight, other.appliedHeight, `applied heights of replicas ${LAGGING} and ${replica}${context}`);
    assert.equal(caughtUp.stateDigestHex, other.stateDigestHex, `state digests of replicas ${LAGGING} and ${replica} at height ${other.appliedHeight}${context}`);
    const height = other.appliedHeight;
    assert.ok(other.headerHashes.has(height), `replica ${replica} stores its header at height ${height}`);
    assert.equal(caughtUp.headerHashes.get(height), other.headerHashes.get(height), `header hashes of replicas ${LAGGING} and ${replica} at height ${height}${context}`);
  }
  t.diagnostic(
    `replica ${LAGGING} stopped at height ${heightAtKill}${options.wipe ? " (then wiped)" : ""}, installed checkpoint ${installedSeq}, ` +
      `ended at height ${caughtUp.appliedHeight} like the others; ${load.acked.length} puts acknowledged`,
  );
  // The whole ledger, from height 1, audits on the caught-up replica: headers, bodies, certificates, replay.
  const audit = await cluster.verify(LAGGING);
  assert.equal(audit.exitCode, 0, `bulwark verify of replica ${LAGGING}: ${audit.stdout}${audit.stderr}`);
  assert.equal(audit.summary?.["blocks"], caughtUp.appliedHeight, "verify walked every block");
  // Every acknowledged put is in the caught-up state, including those it never executed itself.
  for (const put of load.acked) {
    const stored = caughtUp.kvValues.get(put.key);
    assert.equal(stored === undefined ? undefined : Buffer.from(stored).toString("utf8"), put.value, `replica ${LAGGING}'s value of ${put.key} (acknowledged at height ${put.height})${context}`);
  }
}

describe("catch-up by state transfer (real replica processes)", () => {
  it("a replica whose data directory was wiped installs a stable checkpoint's state and ends with the same state root as the others", async (t) => {
    await killAdvanceRestart(t, 60, { wipe: true });
  });

  it("a replica kept down while the others advance more than a window installs a checkpoint's state and ends with the same state root", async (t) => {
    await killAdvanceRestart(t, 20, { wipe: false });
  });
});
