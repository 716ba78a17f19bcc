// The end-to-end audit of one replica's store behind `bulwark verify` (issue 3 §3): trusting
// nothing in the store but the cluster's public config, it walks every block from height 1 and
// checks, in this order, the first failure ending the audit:
//
//   1. each header, body and certificate reads back (storage checksums) and decodes;
//   2. the chain: heights go up by one from 1, each prevHash is the previous header's hash;
//   3. the certificate: 2f + 1 valid signatures of the cluster's replicas over the header hash;
//   4. the body against the header: txCount, txRoot, resultsRoot (`verifyBlock`);
//   5. a replay of execution from the empty state: every result and every stateRoot recomputed
//      and compared with the block's;
//   6. the applied-state metadata and the stored state entries against the replayed state.
//
// Replay needs every body from height 1. Below the body retention height the bodies are pruned:
// then steps 1-3 still run over every header, step 4 over the bodies that remain, and the stored
// state is checked against the stateRoot of the latest certified header instead of a replay.

import { Executor } from "../app/executor.js";
import { createLedgerApplication } from "../app/ledger-application.js";
import { requestFromEnvelope } from "../app/request.js";
import type { Transaction } from "../app/transaction.js";
import { decodeBlockBody } from "../ledger/block.js";
import { type BlockHeader, blockHeaderHash, decodeBlockHeader } from "../ledger/block-header.js";
import { type CommitCertificate, decodeCertificate, verifyCertificate } from "../ledger/certificate.js";
import { linkVerdict } from "../ledger/chain.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import { LedgerDecodeError } from "../ledger/codec.js";
import { StateTree } from "../ledger/state-tree.js";
import { verifyBlock } from "../ledger/verify.js";
import { STATE_CHUNK_ENTRIES_MAX, StorageCorruptionError, type ReplicaStore } from "../storage/index.js";
import { bytesEqual } from "./block-pipeline.js";
import { VerifyPool } from "../crypto/verify-pool.js";
import { PrecomputedVerifier, verifyEnvelopes } from "./signature-pool.js";

/** Where the first problem is. */
export type AuditPart = "header" | "body" | "certificate" | "chain" | "replay" | "applied-state" | "state";

export interface AuditProblem {
  /** The block height it concerns; undefined for problems of the state as a whole. */
  readonly height: number | undefined;
  readonly part: AuditPart;
  /** For a state entry: its key, hex-encoded. */
  readonly stateKeyHex?: string;
  readonly message: string;
}

export interface AuditReport {
  readonly ok: boolean;
  /** Undefined when `ok`. */
  readonly problem: AuditProblem | undefined;
  /** Blocks whose header and certificate were checked. */
  readonly blocks: number;
  /** Transactions replayed (or whose roots were checked, when replay was impossible). */
  readonly transactions: number;
  /** Whether execution was replayed from the empty state (false when bodies are pruned). */
  readonly replayed: boolean;
  /** Bodies below this height are pruned (1 or 0: none). */
  readonly bodyRetentionHeight: number;
  /** State entries compared. */
  readonly stateEntries: number;
  readonly elapsedMs: number;
  /** Things the operator should know that are not failures (e.g. replay skipped). */
  readonly notes: readonly string[];
}

class AuditFailure extends Error {
  constructor(readonly problem: AuditProblem) {
    super(problem.message);
  }
}

function fail(height: number | undefined, part: AuditPart, message: string, stateKeyHex?: string): never {
  throw new AuditFailure({ height, part, message, ...(stateKeyHex === undefined ? {} : { stateKeyHex }) });
}

/** Runs `read`, turning a storage corruption or decode error into the problem of `part` at `height`. */
function guarded<T>(height: number | undefined, part: AuditPart, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof StorageCorruptionError) {
      const partOf = part === "state" || part === "applied-state" ? part : partOfDatabase(error.database, part);
      // A state entry's stored key is its application key behind one prefix byte (storage/layout.ts).
      fail(height, partOf, error.message, part === "state" ? error.keyHex.slice(2) : undefined);
    }
    if (error instanceof LedgerDecodeError) fail(height, part, `${part} does not decode: ${error.message}`);
    throw error;
  }
}

function partOfDatabase(database: string, fallback: AuditPart): AuditPart {
  if (database === "block-headers") return "header";
  if (database === "block-bodies") return "body";
  if (database === "block-certificates") return "certificate";
  return fallback;
}

export interface AuditOptions {
  /** Called after each block with its height, for progress output. */
  readonly onBlock?: (height: number, latest: number) => void;
  /**
   * Worker threads that verify transaction signatures for the replay, a block ahead of it
   * (default 0: verify on this thread). Results are the same either way.
   */
  readonly signatureWorkers?: number;
}

/** Audits `store` against `cluster`; never throws for anything found in the store. */
export async function auditStore(store: ReplicaStore, cluster: ClusterConfig, options: AuditOptions = {}): Promise<AuditReport> {
  const started = performance.now();
  const notes: string[] = [];
  const counts = { blocks: 0, transactions: 0, stateEntries: 0 };
  let replayed = false;
  let retention = 0;
  try {
    retention = guarded(undefined, "applied-state", () => store.bodyRetentionHeight());
    replayed = retention <= 1;
    if (!replayed) {
      notes.push(
        `bodies below height ${retention} are pruned: execution cannot be replayed from the empty state; headers and certificates were checked at every height, ` +
          `bodies from height ${retention}, and the stored state against the latest certified stateRoot`,
      );
    }
    const workers = options.signatureWorkers ?? 0;
    const pool = workers > 0 && replayed ? new VerifyPool({ workerCount: workers }) : undefined;
    try {
      await auditChain(store, cluster, retention, replayed, counts, options, pool);
    } finally {
      await pool?.close();
    }
  } catch (error) {
    if (!(error instanceof AuditFailure)) throw error;
    return { ok: false, problem: error.problem, ...counts, replayed, bodyRetentionHeight: retention, elapsedMs: performance.now() - started, notes };
  }
  return { ok: true, problem: undefined, ...counts, replayed, bodyRetentionHeight: retention, elapsedMs: performance.now() - started, notes };
}

/** The signature verdicts of one block's transactions, computed on the pool ahead of the replay. */
interface Prefetched {
  readonly height: number;
  readonly envelopes: readonly Uint8Array[];
  readonly verdicts: Promise<Uint8Array>;
}

/**
 * Starts verifying block `height`'s signatures on the pool. Any trouble reading the block is left
 * for the audit loop to meet, and report, in height order.
 */
function prefetch(store: ReplicaStore, pool: VerifyPool | undefined, height: number, latest: number): Prefetched | undefined {
  if (pool === undefined || height > latest) return undefined;
  try {
    const body = store.getBlock(height)?.body;
    if (body === undefined) return undefined;
    const envelopes = decodeBlockBody(body).transactions;
    const verdicts = verifyEnvelopes(pool, envelopes);
    // Awaited later, or never when the audit stops first; either way not an unhandled rejection.
    verdicts.catch(() => undefined);
    return { height, envelopes, verdicts };
  } catch {
    return undefined;
  }
}

async function auditChain(
  store: ReplicaStore,
  cluster: ClusterConfig,
  retention: number,
  replay: boolean,
  counts: { blocks: number; transactions: number; stateEntries: number },
  options: AuditOptions,
  pool: VerifyPool | undefined,
): Promise<void> {
  const latest = guarded(undefined, "header", () => store.latestHeight()) ?? 0;
  const applied = guarded(undefined, "applied-state", () => store.appliedState());
  const verifier = new PrecomputedVerifier();
  const application = createLedgerApplication({ authority: cluster.genesisAuthority, verifier });
  const executor = new Executor<Transaction>(application);
  let ahead = prefetch(store, pool, 1, latest);
  let previous: { height: number; hash: Uint8Array } | undefined;
  let previousHeader: BlockHeader | undefined;
  for (let height = 1; height <= latest; height++) {
    const stored = guarded(height, "header", () => store.getBlock(height));
    if (stored === undefined) fail(height, "chain", `block ${height} is missing (the latest block is ${latest})`);
    const header = guarded(height, "header", () => decodeBlockHeader(stored.header));
    if (header.height !== height) fail(height, "header", `the header stored at height ${height} says height ${header.height}`);
    if (header.seq !== height) fail(height, "header", `the header at height ${height} has seq ${header.seq}; every block's seq is its height`);
    if (stored.certificate === undefined) fail(height, "certificate", `block ${height} has no commit certificate`);
    const certificateBytes = stored.certificate;
    const certificate: CommitCertificate = guarded(height, "certificate", () => decodeCertificate(certificateBytes));
    const certified = verifyCertificate(cluster, header, certificate);
    const linked = linkVerdict(previous, header);
    if (!linked.ok) fail(height, "chain", linked.message);
    if (!certified.ok) fail(height, headerOrCertificate(store, height, header), `the certificate does not certify the header: ${certified.code}: ${certified.message}`);

    if (stored.body !== undefined) {
      const bodyBytes = stored.body;
      const body = guarded(height, "body", () => decodeBlockBody(bodyBytes));
      const verdict = verifyBlock(cluster, { header, ...body }, certificate, previousHeader);
      if (!verdict.ok) fail(height, "body", `${verdict.code}: ${verdict.message}`);
      counts.transactions += body.transactions.length;
      if (replay) {
        const current = ahead?.height === height ? ahead : undefined;
        ahead = prefetch(store, pool, height + 1, latest);
        verifier.clear();
        if (current !== undefined) verifier.record(current.envelopes, await current.verdicts);
        const executed = executor.executeBatch({ seq: height, view: 0, digest: "", requests: body.transactions.map(requestFromEnvelope) });
        executed.forEach((request, index) => {
          if (!bytesEqual(request.result, body.results[index]!)) {
            fail(height, "replay", `the replayed result of transaction ${index} differs from the stored one`);
          }
        });
        if (!bytesEqual(application.stateRoot(), header.stateRoot)) {
          fail(height, "replay", `the replayed state root after block ${height} differs from the header's stateRoot`);
        }
      }
    } else if (height >= retention) {
      fail(height, "body", `block ${height} has no body but is not below the retention height ${retention}`);
    }
    previous = { height, hash: blockHeaderHash(header) };
    previousHeader = header;
    counts.blocks++;
    options.onBlock?.(height, latest);
  }
  auditState(store, latest, applied, previousHeader, replay ? application.ledgerState.tree : undefined, counts);
}

/**
 * Which of the two is wrong when a certificate does not certify its header: the header, when the
 * next block's prevHash is not its hash (the next block's own certificate vouches for that
 * prevHash); otherwise the certificate. At the tip there is no next block to ask.
 */
function headerOrCertificate(store: ReplicaStore, height: number, header: BlockHeader): AuditPart {
  try {
    const next = store.getHeaders(height + 1, height + 1)[0];
    if (next === undefined) return "certificate";
    return bytesEqual(decodeBlockHeader(next.header).prevHash, blockHeaderHash(header)) ? "certificate" : "header";
  } catch (error) {
    if (error instanceof StorageCorruptionError || error instanceof LedgerDecodeError) return "certificate";
    throw error;
  }
}

function auditState(
  store: ReplicaStore,
  latest: number,
  applied: ReturnType<ReplicaStore["appliedState"]>,
  latestHeader: BlockHeader | undefined,
  replayedTree: StateTree | undefined,
  counts: { stateEntries: number },
): void {
  if (latest === 0) {
    if (applied !== undefined) fail(undefined, "applied-state", `the store has no blocks but applied-state metadata for height ${applied.height}`);
  } else {
    if (applied === undefined) fail(latest, "applied-state", "the store has blocks but no applied-state metadata");
    if (applied.height !== latest || applied.seq !== latest) {
      fail(latest, "applied-state", `the applied-state metadata says height ${applied.height} seq ${applied.seq}; the latest block is ${latest}`);
    }
    if (!bytesEqual(applied.stateDigest, latestHeader!.stateRoot)) fail(latest, "applied-state", `the applied state digest is not block ${latest}'s stateRoot`);
  }
  const storedTree = new StateTree();
  let after: Uint8Array | undefined;
  for (;;) {
    const chunk = guarded(undefined, "state", () =>
      store.readStateChunk({ entriesMax: STATE_CHUNK_ENTRIES_MAX, bytesMax: 64 << 20, ...(after === undefined ? {} : { after }) }),
    );
    for (const [key, value] of chunk.entries) {
      counts.stateEntries++;
      if (replayedTree !== undefined) {
        const expected = replayedTree.get(key);
        if (expected === undefined) fail(undefined, "state", `state entry ${describeKey(key)} is stored but not in the replayed state`, hexOf(key));
        if (!bytesEqual(expected, value)) fail(undefined, "state", `state entry ${describeKey(key)} differs from the replayed value`, hexOf(key));
      } else {
        storedTree.put(key, value);
      }
    }
    if (chunk.done || chunk.cursor === undefined) break;
    after = chunk.cursor;
  }
  if (replayedTree !== undefined) {
    if (counts.stateEntries !== replayedTree.size) {
      for (const [key] of replayedTree.entries()) {
        if (guarded(undefined, "state", () => store.getState(key)) === undefined) fail(undefined, "state", `state entry ${describeKey(key)} of the replayed state is missing from the store`, hexOf(key));
      }
    }
    return;
  }
  const expectedRoot = latestHeader?.stateRoot ?? new StateTree().root();
  if (!bytesEqual(storedTree.root(), expectedRoot)) {
    fail(undefined, "state", `the stored state entries do not hash to the stateRoot of block ${latest} (replay was impossible, so the bad entry cannot be named)`);
  }
}

function hexOf(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

/** A state key for a message: printable keys as text, with the hex always. */
function describeKey(key: Uint8Array): string {
  const text = Buffer.from(key).toString("latin1");
  const printable = /^[\x20-\x7e]*$/.test(text) ? text : text.replace(/[^\x20-\x7e]/g, ".");
  return `"${printable.slice(0, 48)}" (${hexOf(key).slice(0, 96)})`;
}
