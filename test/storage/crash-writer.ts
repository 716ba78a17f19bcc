// The process the crash test kills: it commits the workload's blocks and records in a loop with
// the durable policy and prints "ack <height>" once each height's writes have all resolved.
// stdout is a pipe, which Node writes synchronously on Linux, so an ack the test reads was
// printed after the writes were durable.
//
//   node crash-writer.js <data directory> <seed>
//
// Without arguments it does nothing: the test runner loads every file under test/.

import { ReplicaStore } from "../../src/storage/index.js";
import { BODIES_KEPT, PRUNE_EVERY, workloadBlock } from "./crash-workload.js";

export const CRASH_CLUSTER_ID = "crash-test";
export const CRASH_REPLICA_ID = 1;
/** The writer stops by itself after this long, in case the test that should kill it is gone. */
const LIFETIME_MS_MAX = 60_000;
const HEIGHTS_PER_RUN_MAX = 100_000;

async function run(directory: string, seed: number): Promise<void> {
  setTimeout(() => process.exit(3), LIFETIME_MS_MAX).unref();
  const store = await ReplicaStore.open({ directory, clusterId: CRASH_CLUSTER_ID, replicaId: CRASH_REPLICA_ID, sync: "durable" });
  // A kill between an even height's commit and its certificate leaves that block without one;
  // attach it now, as a replica does when a certificate arrives after its block.
  const latest = store.latestHeight();
  if (latest !== undefined && store.getBlock(latest)?.certificate === undefined) await store.attachCertificate(latest, workloadBlock(seed, latest).certificate);
  const first = (store.appliedState()?.height ?? 0) + 1;
  process.stdout.write(`ready ${first - 1}\n`);
  for (let height = first; height < first + HEIGHTS_PER_RUN_MAX; height++) {
    const block = workloadBlock(seed, height);
    await store.appendRecords(block.records);
    await store.commitBlock(block.commit);
    if (block.commit.certificate === undefined) await store.attachCertificate(height, block.certificate);
    if (height % PRUNE_EVERY === 0) await store.pruneBodiesBelow(Math.max(0, height - BODIES_KEPT));
    process.stdout.write(`ack ${height}\n`);
  }
  await store.close();
}

const [directory, seedText] = process.argv.slice(2);
if (directory !== undefined && seedText !== undefined && process.argv[1]?.endsWith("crash-writer.js")) {
  run(directory, Number(seedText)).catch((error: unknown) => {
    process.stderr.write(`crash-writer: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(2);
  });
}
