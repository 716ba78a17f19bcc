// From agreement to the ledger on disk (issue 3 §2-4): each committed batch, in sequence order,
// is executed, becomes block `seq` (height = seq) chained to the block before it, and is stored
// with exactly the state entries it changed and the applied-state metadata in ONE store
// transaction, so that after a crash the store holds the block and its state or neither.
// The commit certificate follows when 2f + 1 signatures over the header hash have arrived.
//
// Execution runs synchronously in `commit`; the store write is queued and `commit` resolves once
// it is durable. A caller may therefore start the next batch before the previous write finished
// (LMDB batches them), but it must not vouch for a block (sign its header, vote a checkpoint on
// it) before its `commit` resolved. Answering the block's clients may come first (`stage`): a
// reply vouches for the order, which 2f + 1 replicas made durable as commit records before the
// batch could execute anywhere, so a replica that loses the block in a crash executes the same
// batch again from its peers and gets the same results (seed 003, normal case: "n − f identical
// COMMIT messages: execute, INFORM" — the reply follows execution, not the disk; the crash case
// is the one of a replica that crashed after its commit records and before the block, as before).
// A failed write leaves memory ahead of the disk, so the pipeline refuses everything after it: the
// runtime restarts the replica, which resumes from the store.
//
// On open the pipeline resumes at the store's applied height: the state is rebuilt from the stored
// state entries and checked against the applied state digest, and the chain continues from the
// stored header at that height.

import { Executor, type ExecutedRequest } from "../app/executor.js";
import { type LedgerApplication, createLedgerApplication } from "../app/ledger-application.js";
import type { Transaction } from "../app/transaction.js";
import type { CommittedBatch } from "../consensus/pbft/types.js";
import { type Block, buildBlock, encodeBlockBody } from "../ledger/block.js";
import { type BlockHeader, GENESIS_PREV_HASH, blockHeaderHash, decodeBlockHeader, encodeBlockHeader } from "../ledger/block-header.js";
import { type CommitCertificate, encodeCertificate, verifyCertificate } from "../ledger/certificate.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import { StateTree } from "../ledger/state-tree.js";
import { STATE_CHUNK_ENTRIES_MAX, StorageCorruptionError, type ReplicaStore } from "../storage/index.js";

export interface BlockPipelineOptions {
  readonly cluster: ClusterConfig;
  readonly store: ReplicaStore;
  /**
   * The application to execute with; default: key-value store and token ledger with the cluster's
   * genesis authority, verifying signatures. It must be fresh: its state is replaced by the store's.
   */
  readonly application?: LedgerApplication;
}

/** A block the pipeline built and stored. */
export interface CommittedBlock {
  readonly block: Block;
  readonly headerHash: Uint8Array;
  /** Every request of the batch with its outcome and result, in batch order. */
  readonly executed: readonly ExecutedRequest[];
  /** State entries the block wrote (value null: deleted). */
  readonly stateWriteCount: number;
}

export class BlockPipeline {
  readonly cluster: ClusterConfig;
  readonly store: ReplicaStore;
  readonly application: LedgerApplication;
  readonly executor: Executor<Transaction>;
  private previousHash: Uint8Array;
  private heightCommitted: number;
  /** Set when a store write failed: memory is then ahead of the disk and nothing may follow. */
  private failure: unknown = undefined;

  private constructor(options: BlockPipelineOptions, application: LedgerApplication, height: number, previousHash: Uint8Array) {
    this.cluster = options.cluster;
    this.store = options.store;
    this.application = application;
    this.executor = new Executor(application);
    this.heightCommitted = height;
    this.previousHash = previousHash;
  }

  /**
   * A pipeline that continues the store's chain. Throws `StorageCorruptionError` when the stored
   * state does not hash to the applied state digest or the stored header at the applied height.
   */
  static open(options: BlockPipelineOptions): BlockPipeline {
    const { store, cluster } = options;
    const application = options.application ?? createLedgerApplication({ authority: cluster.genesisAuthority });
    const applied = store.appliedState();
    if (applied === undefined) {
      if (store.latestHeight() !== undefined) throw new StorageCorruptionError("meta", "", "the store holds blocks but no applied-state metadata");
      const pipeline = new BlockPipeline(options, application, 0, GENESIS_PREV_HASH);
      application.ledgerState.tree.recordChanges();
      return pipeline;
    }
    const stored = store.getHeaders(applied.height, applied.height)[0];
    if (stored === undefined) throw new StorageCorruptionError("block-headers", "", `the applied height ${applied.height} has no stored header`);
    const header = decodeBlockHeader(stored.header);
    const pipeline = new BlockPipeline(options, application, applied.height, blockHeaderHash(header));
    pipeline.executor.restore({ seq: applied.seq, app: storedStateTree(store).snapshot() });
    const root = application.stateRoot();
    if (!bytesEqual(root, applied.stateDigest) || !bytesEqual(root, header.stateRoot)) {
      throw new StorageCorruptionError("state", "", `the stored state does not hash to the state root of block ${applied.height}`);
    }
    application.ledgerState.tree.recordChanges();
    return pipeline;
  }

  /** The height of the last block committed (queued writes included); 0 before the first. */
  get height(): number {
    return this.heightCommitted;
  }

  /** The hash of the last block's header (all zeros before the first block). */
  get lastHeaderHash(): Uint8Array {
    return this.previousHash.slice();
  }

  /**
   * Executes `batch` (the next sequence number), builds its block and stores it with its state
   * changes. `certify`, when given, supplies the block's certificate from its header, stored in
   * the same transaction (tests and benchmarks that hold every key; a replica collects signatures
   * from its peers and calls `attachCertificate`). Resolves once the block is stored.
   */
  commit(batch: CommittedBatch, certify?: (header: BlockHeader) => CommitCertificate): Promise<CommittedBlock> {
    try {
      return this.stage(batch, certify).stored;
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /**
   * `commit`, with the executed block returned at once beside the promise of its store write, so
   * a caller can answer clients before the write is durable (see the file comment). Throws what
   * `commit` rejects with.
   */
  stage(batch: CommittedBatch, certify?: (header: BlockHeader) => CommitCertificate): { readonly block: CommittedBlock; readonly stored: Promise<CommittedBlock> } {
    if (this.failure !== undefined) throw new Error("block pipeline: a store write failed; reopen the store and the pipeline", { cause: this.failure });
    const height = this.heightCommitted + 1;
    if (batch.seq !== height) throw new RangeError(`block pipeline: batch seq ${batch.seq} is not the next height ${height}`);
    const executed = this.executor.executeBatch(batch);
    const stateRoot = this.application.stateRoot();
    const block = buildBlock({
      clusterId: this.cluster.clusterId,
      height,
      prevHash: this.previousHash,
      stateRoot,
      transactions: batch.requests.map((request) => request.operation),
      results: executed.map((request) => request.result),
    });
    // The tree's own arrays, not copies: `commitBlock` frames (copies) each one before it returns.
    const stateWrites = this.application.ledgerState.tree.drainChanges();
    let certificate: CommitCertificate | undefined;
    try {
      certificate = certify === undefined ? undefined : this.checkedCertificate(block.header, certify(block.header));
    } catch (error) {
      // The batch is executed in memory but cannot be stored: nothing may follow it.
      this.failure = error;
      throw error;
    }
    const headerHash = blockHeaderHash(block.header);
    this.heightCommitted = height;
    this.previousHash = headerHash;
    const written = this.store.commitBlock({
      height,
      header: encodeBlockHeader(block.header),
      body: encodeBlockBody(block.transactions, block.results),
      ...(certificate === undefined ? {} : { certificate: encodeCertificate(certificate) }),
      stateWrites,
      meta: { seq: batch.seq, stateDigest: stateRoot },
    });
    const staged: CommittedBlock = { block, headerHash, executed, stateWriteCount: stateWrites.length };
    const stored = written.then(
      () => staged,
      (error: unknown) => {
        this.failure ??= error;
        throw error;
      },
    );
    return { block: staged, stored };
  }

  /** Stores the commit certificate of block `height` once it verifies against the stored header. */
  async attachCertificate(height: number, certificate: CommitCertificate): Promise<void> {
    const stored = this.store.getHeaders(height, height)[0];
    if (stored === undefined) throw new RangeError(`block pipeline: no stored block at height ${height}`);
    await this.store.attachCertificate(height, encodeCertificate(this.checkedCertificate(decodeBlockHeader(stored.header), certificate)));
  }

  private checkedCertificate(header: BlockHeader, certificate: CommitCertificate): CommitCertificate {
    const verdict = verifyCertificate(this.cluster, header, certificate);
    if (!verdict.ok) throw new Error(`block pipeline: the certificate for block ${header.height} does not verify: ${verdict.message}`);
    return certificate;
  }
}

/** The store's state entries as a state tree. */
export function storedStateTree(store: ReplicaStore): StateTree {
  const tree = new StateTree();
  let after: Uint8Array | undefined;
  for (;;) {
    const chunk = store.readStateChunk({ entriesMax: STATE_CHUNK_ENTRIES_MAX, bytesMax: 64 << 20, ...(after === undefined ? {} : { after }) });
    for (const [key, value] of chunk.entries) tree.put(key, value);
    if (chunk.done || chunk.cursor === undefined) return tree;
    after = chunk.cursor;
  }
}

export function bytesEqual(left: Uint8Array, right: Uint8Array): boolean {
  return left.length === right.length && Buffer.from(left.buffer, left.byteOffset, left.length).equals(Buffer.from(right.buffer, right.byteOffset, right.length));
}
