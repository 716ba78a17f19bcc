// Moving the ledger's state between replicas (state transfer, issue 3 §4): a frozen copy taken at
// a checkpoint, exported in chunks of entries in key-hash order, and a resumable import that
// rebuilds the tree chunk by chunk on the receiving side. The state tree's chunk format
// (src/ledger/state-tree-snapshot.ts) is the wire format; the exactly-once table travels with
// the rest because it is part of the tree ("reply/" entries, ledger-state.ts).
//
// Trust. A peer's chunks are checked for form as they arrive (each entry must be one the ledger
// writes, so execution can never trip over what was installed), and the whole state is checked
// against the certified root before it replaces anything: the receiver compares the import's
// root with the stable checkpoint's state digest (2f + 1 signatures), so a lying peer can waste
// a transfer but never install a wrong state.

import { type StateSnapshotChunk, StateSnapshotDecodeError, StateTree, decodeSnapshotChunk } from "../ledger/state-tree.js";
import { ledgerEntryProblem } from "./ledger-state.js";

/** An immutable copy of the ledger state at one point (a checkpoint), exportable in chunks. */
export class LedgerSnapshot {
  /** The state root of this snapshot: what the checkpoint's state digest certifies. */
  readonly root: Uint8Array;
  private readonly tree: StateTree;

  private constructor(tree: StateTree, root: Uint8Array) {
    this.tree = tree;
    this.root = root;
  }

  /**
   * A copy of `tree`, which later changes to `tree` leave alone. The copy costs time and memory
   * in proportion to the state (about a second per million entries); it is the in-memory stand-in
   * for a storage engine's read snapshot.
   */
  static capture(tree: StateTree): LedgerSnapshot {
    return new LedgerSnapshot(StateTree.fromSnapshot(tree.snapshot()), tree.root());
  }

  get entryCount(): number {
    return this.tree.size;
  }

  /**
   * Up to `entryCountMax` entries after the key hash `afterKeyHash` (from the start when
   * undefined). A receiver resumes an interrupted transfer by asking again after its import's
   * `cursor`. The cursor comes from a peer: it must be a 32-byte key hash (RangeError otherwise).
   */
  exportChunk(afterKeyHash: Uint8Array | undefined, entryCountMax: number): StateSnapshotChunk {
    return this.tree.exportChunk(afterKeyHash, entryCountMax);
  }

  /** The whole state as one chunk. */
  bytes(): Uint8Array {
    return this.tree.snapshot();
  }
}

/** A state being received chunk by chunk; `LedgerApplication.install` puts it in place. */
export class LedgerStateImport {
  private tree: StateTree | undefined = new StateTree();

  /**
   * Adds a chunk that follows everything imported so far. A chunk that is malformed, out of
   * order or holds an entry the ledger never writes is refused whole (StateSnapshotDecodeError)
   * and leaves the import as it was, so the transfer can resume from `cursor` with another peer.
   */
  importChunk(bytes: Uint8Array): void {
    const tree = this.liveTree();
    const entries = decodeSnapshotChunk(bytes);
    entries.forEach(([key, value], index) => {
      const problem = ledgerEntryProblem(key, value);
      if (problem !== null) throw new StateSnapshotDecodeError(`state snapshot: entry ${index} is not a ledger entry: ${problem}`);
    });
    tree.importChunk(bytes);
  }

  /** The key hash of the last entry imported, to resume after; undefined before the first entry. */
  get cursor(): Uint8Array | undefined {
    return this.liveTree().lastKeyHash();
  }

  get entryCount(): number {
    return this.liveTree().size;
  }

  /** The root of what was imported so far; complete when it equals the certified root. */
  root(): Uint8Array {
    return this.liveTree().root();
  }

  /** Hands the tree over (once) to the application installing it. */
  take(): StateTree {
    const tree = this.liveTree();
    this.tree = undefined;
    return tree;
  }

  private liveTree(): StateTree {
    if (this.tree === undefined) throw new Error("ledger state import: already installed");
    return this.tree;
  }
}
