// Reads that one replica answers and the client verifies (issue 4, "SDK additions"): proof reads,
// blocks and status. A proof or block that does not verify, a replica that is down or slow, one
// that cannot prove its state yet: each is a failure of that replica, recorded with its reason,
// and the next replica is asked, all within one deadline for the whole read (`eachReplica`). Only
// when no replica served does the call fail, with an error listing each one's reason. The
// replicas are tried from a rotating first one (random for a new client, so fresh clients do not
// all lean on replica 0), connected ones first, so reads spread over the cluster.
//
// "Absent" is never one replica's word. A replica that answers "I do not have it" for a block may
// be lagging, or faulty and hiding it; a block (or the first block of a range) is reported absent
// only once f + 1 replicas said they lack it, so at least one correct replica did. Otherwise the
// read goes on to the next replica, and fails as unavailable when none is left.

import { linkVerdict } from "../ledger/chain.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import { bytesEqual, describeBytes } from "../ledger/codec.js";
import type { RandomSource } from "../net/backoff.js";
import type { WireBlock } from "../node/wire-types.js";
import { CertifiedHeaders } from "./certified-headers.js";
import { BulwarkClientError, ReplicasFailedError, type ReplicaFailure } from "./errors.js";
import { type CheckedBlock, checkReadProof, checkWireBlock } from "./proof-check.js";
import type { AnswerOf, QueryOutcome, ReplicaQueries } from "./replica-queries.js";
import type { ClientCounters, ReplicaStatus, VerifiedBlock } from "./types.js";

/** How long one replica may take to answer a read: above the 2 s a replica holds a read for its certificate (node/client-services.ts). */
export const READ_ATTEMPT_TIMEOUT_MS = 3_000;
/** How long `status` waits for the replicas by default. */
export const STATUS_TIMEOUT_MS_DEFAULT = 2_000;
/** Most blocks one `blocks` call returns. */
export const BLOCKS_LIMIT_MAX = 100;
/** The most blocks one blocks answer holds (replica-runtime.ts, BLOCKS_PER_ANSWER_MAX): no point asking for more at once. */
const BLOCKS_PER_QUERY = 64;

export interface ClusterReadsOptions {
  readonly cluster: ClusterConfig;
  readonly queries: ReplicaQueries;
  readonly counters: ClientCounters;
  readonly isOpen: (replica: number) => boolean;
  /** How long one whole read may take, over every replica it asks. */
  readonly deadlineMs: number;
  /** Uniform in [0, 1): picks the replica the first read asks. */
  readonly random: RandomSource;
}

type BlocksQuery = { readonly kind: "blocks-request"; readonly from: number; readonly to: number };
type Query = { readonly kind: "read-request"; readonly key: Uint8Array } | BlocksQuery;

/** A verified block and the replica that served it. */
interface Found extends CheckedBlock {
  readonly replica: number;
}

export class ClusterReads {
  private readonly cluster: ClusterConfig;
  private readonly queries: ReplicaQueries;
  private readonly counters: ClientCounters;
  private readonly isOpen: (replica: number) => boolean;
  private readonly deadlineMs: number;
  /** Replicas that vouch for something: f + 1, so at least one is correct. */
  private readonly vouchers: number;
  private readonly certified = new CertifiedHeaders();
  private nextFirst: number;

  constructor(options: ClusterReadsOptions) {
    this.cluster = options.cluster;
    this.queries = options.queries;
    this.counters = options.counters;
    this.isOpen = options.isOpen;
    this.deadlineMs = options.deadlineMs;
    this.vouchers = options.cluster.f + 1;
    this.nextFirst = Math.min(this.cluster.n - 1, Math.floor(options.random() * this.cluster.n));
  }

  /**
   * The value of state key `key` (absent: undefined) proven by the first replica whose answer
   * verifies and is at `minHeight` or above.
   */
  async proofRead(key: Uint8Array, minHeight: number, signal?: AbortSignal): Promise<{ value: Uint8Array | undefined; height: number }> {
    const failures: ReplicaFailure[] = [];
    let proven: { value: Uint8Array | undefined; height: number } | undefined;
    await this.eachReplica(failures, async (replica, deadline) => {
      const outcome = await this.ask(replica, { kind: "read-request", key }, deadline, signal);
      if (!outcome.ok) return failed(failures, replica, outcome.reason);
      const answer = outcome.answer;
      if (answer.kind === "read-unavailable") return failed(failures, replica, `cannot prove its state now (${answer.reason})`);
      const checked = checkReadProof(this.cluster, key, answer, minHeight, this.certified);
      if (checked.ok) {
        proven = checked.value;
        return true;
      }
      if (checked.stale === true) this.counters.answersStale += 1;
      else this.counters.answersRejected += 1;
      return failed(failures, replica, checked.reason);
    });
    if (proven !== undefined) return proven;
    throw new ReplicasFailedError(`a proof of state key ${describeBytes(key)}`, failures);
  }

  /** Every replica's own account of itself; unreachable ones are listed as such. */
  async status(timeoutMs: number, signal?: AbortSignal): Promise<ReplicaStatus[]> {
    return Promise.all(
      this.cluster.replicas.map(async ({ id, address }): Promise<ReplicaStatus> => {
        const outcome = await this.queries.ask(id, { kind: "status-request" }, timeoutMs, signal);
        if (!outcome.ok) return { replica: id, address, reachable: false };
        const { view, primary, normal, executedHeight, stableCheckpoint, certifiedHeight } = outcome.answer;
        return { replica: id, address, reachable: true, view, primary, normal, executedHeight, stableCheckpoint, certifiedHeight };
      }),
    );
  }

  /**
   * Block `height`, verified; a block with its body is preferred to one whose body the replica
   * pruned. Undefined when f + 1 replicas lack it (or have not certified it yet).
   */
  async block(height: number, signal?: AbortSignal): Promise<VerifiedBlock | undefined> {
    const failures: ReplicaFailure[] = [];
    let lacking = 0;
    let full: VerifiedBlock | undefined;
    let pruned: VerifiedBlock | undefined;
    await this.eachReplica(failures, async (replica, deadline) => {
      const outcome = await this.ask(replica, { kind: "blocks-request", from: height, to: height }, deadline, signal);
      if (!outcome.ok) return failed(failures, replica, outcome.reason);
      const [wire, ...extra] = outcome.answer.blocks;
      if (wire === undefined || (wire.height === height && wire.certificate === undefined && extra.length === 0)) {
        lacking += 1;
        failed(failures, replica, wire === undefined ? `does not have block ${height}` : `has not certified block ${height}`);
        // Enough say it is not there; a header already found is still worth its body.
        return lacking >= this.vouchers && pruned === undefined;
      }
      const checked = extra.length === 0 ? checkWireBlock(this.cluster, wire, height) : { ok: false as const, reason: `sent ${extra.length + 1} blocks for one` };
      if (!checked.ok) {
        this.counters.answersRejected += 1;
        return failed(failures, replica, checked.reason);
      }
      if (!checked.value.block.bodyPruned) {
        full = checked.value.block;
        return true;
      }
      pruned ??= checked.value.block;
      return false;
    });
    if (full !== undefined || pruned !== undefined) return full ?? pruned;
    if (lacking >= this.vouchers) return undefined;
    throw new ReplicasFailedError(`block ${height}`, failures);
  }

  /**
   * Up to `limit` verified blocks from `from`, ascending and contiguous. Fewer when the replicas
   * asked stop having (certified) the ones after; none only when f + 1 replicas lack block `from`.
   * Each replica is asked on from where the previous one stopped; then blocks that came without
   * their bodies are asked of the other replicas (a faulty replica may strip them).
   */
  async blocks(from: number, limit: number, signal?: AbortSignal): Promise<VerifiedBlock[]> {
    const end = from + limit - 1;
    const deadline = Date.now() + this.deadlineMs;
    const found = new Map<number, Found>();
    const failures: ReplicaFailure[] = [];
    let next = from;
    /** Replicas whose answers held no certified block at `next`. */
    let lackingNext = 0;
    await this.eachReplica(failures, async (replica, deadline) => {
      // Each round that adds a block moves on; a round that adds none ends this replica's turn.
      for (let round = 0; round <= limit && next <= end; round++) {
        // A replica serves the top of a range first and may cut its bottom off (a byte bound), so
        // the range stops below blocks already found.
        let to = Math.min(end, next + BLOCKS_PER_QUERY - 1);
        for (let height = next; height <= to; height++) {
          if (found.has(height)) {
            to = height - 1;
            break;
          }
        }
        const outcome = await this.ask(replica, { kind: "blocks-request", from: next, to }, deadline, signal);
        if (!outcome.ok) return failed(failures, replica, outcome.reason);
        const added = this.addBlocks(found, replica, outcome.answer.blocks, next, to);
        if (typeof added === "string") {
          this.counters.answersRejected += 1;
          return failed(failures, replica, added);
        }
        const before = next;
        while (found.has(next)) next++;
        if (next !== before) lackingNext = 0;
        if (added === 0) {
          lackingNext += 1;
          failed(failures, replica, `has no certified block ${next}`);
          return lackingNext >= this.vouchers;
        }
      }
      return next > end;
    }, deadline);
    if (next === from && lackingNext < this.vouchers) throw new ReplicasFailedError(`blocks from ${from}`, failures);
    await this.fillBodies(found, from, next - 1, deadline, signal);
    const blocks: VerifiedBlock[] = [];
    let previous: Found | undefined;
    for (let height = from; height < next; height++) {
      const entry = found.get(height)!;
      if (previous !== undefined) {
        const linked = linkVerdict({ height: previous.header.height, hash: previous.hash }, entry.header);
        // Two certified blocks that do not chain: more than f replicas signed what they should not.
        if (!linked.ok) throw new BulwarkClientError(`certified blocks ${height - 1} and ${height} do not chain (${linked.message}): more than f replicas of the cluster are faulty`);
      }
      blocks.push(entry.block);
      previous = entry;
    }
    return blocks;
  }

  /**
   * Asks the other replicas for the bodies of the blocks `from` .. `to` that came without one
   * (pruned there, too large for a shared answer, or stripped by a faulty replica), keeping the
   * first copy of each that carries its body. Best effort: what no replica serves stays pruned.
   */
  private async fillBodies(found: Map<number, Found>, from: number, to: number, deadline: number, signal: AbortSignal | undefined): Promise<void> {
    const bodiless = (): number[] => {
      const heights: number[] = [];
      for (let height = from; height <= to; height++) if (found.get(height)!.block.bodyPruned) heights.push(height);
      return heights;
    };
    if (bodiless().length === 0) return;
    await this.eachReplica([], async (replica, deadline) => {
      for (let round = 0; round <= to - from; round++) {
        const missing = bodiless();
        if (missing.length === 0) return true;
        // A replica that sent every one of them without its body would only say so again.
        if (missing.every((height) => found.get(height)!.replica === replica)) return false;
        const low = missing[0]!;
        const query = { kind: "blocks-request", from: low, to: Math.min(missing[missing.length - 1]!, low + BLOCKS_PER_QUERY - 1) } as const;
        const outcome = await this.ask(replica, query, deadline, signal);
        if (!outcome.ok || this.addBodies(found, replica, outcome.answer.blocks, query) === 0) return false;
      }
      return false;
    }, deadline);
  }

  /**
   * Verifies the certified blocks of one answer to a request for `from` .. `to` and adds the new
   * ones; returns how many were added, or why the answer is refused. Blocks the replica has not
   * certified are skipped (another replica may have).
   */
  private addBlocks(found: Map<number, Found>, replica: number, wires: readonly WireBlock[], from: number, to: number): number | string {
    let added = 0;
    let last = from - 1;
    for (const wire of wires) {
      if (wire.height <= last || wire.height > to) return `sent block ${wire.height} in an answer for blocks ${from} to ${to}, out of order or out of range`;
      last = wire.height;
      if (wire.certificate === undefined) continue;
      const checked = checkWireBlock(this.cluster, wire, wire.height);
      if (!checked.ok) return checked.reason;
      if (!found.has(wire.height)) added += 1;
      found.set(wire.height, { ...checked.value, replica });
    }
    return added;
  }

  /**
   * Replaces body-less blocks with copies from `wires` that carry their body and are the same
   * block (the same header hash); returns how many. A wire that does not verify is skipped: the
   * bodies pass is best effort.
   */
  private addBodies(found: Map<number, Found>, replica: number, wires: readonly WireBlock[], query: BlocksQuery): number {
    let replaced = 0;
    for (const wire of wires) {
      const known = found.get(wire.height);
      if (wire.height < query.from || wire.height > query.to || known === undefined || !known.block.bodyPruned || wire.body === undefined) continue;
      const checked = checkWireBlock(this.cluster, wire, wire.height);
      if (!checked.ok) {
        this.counters.answersRejected += 1;
        continue;
      }
      if (checked.value.block.bodyPruned || !bytesEqual(checked.value.hash, known.hash)) continue;
      found.set(wire.height, { ...checked.value, replica });
      replaced += 1;
    }
    return replaced;
  }

  /**
   * Gives each replica in turn (`order`) to `visit` until one visit returns true, all within the
   * read's deadline (by default deadlineMs from now): `visit` gets the deadline, and a replica
   * whose turn comes after it is listed in `failures` as not asked.
   */
  private async eachReplica(failures: ReplicaFailure[], visit: (replica: number, deadline: number) => Promise<boolean>, deadline = Date.now() + this.deadlineMs): Promise<void> {
    for (const replica of this.order()) {
      if (Date.now() >= deadline) {
        failures.push({ replica, reason: `not asked: the read's ${this.deadlineMs} ms had passed` });
        continue;
      }
      if (await visit(replica, deadline)) return;
    }
  }

  /** Asks one replica, waiting at most READ_ATTEMPT_TIMEOUT_MS and never past `deadline`. */
  private ask<Q extends Query>(replica: number, query: Q, deadline: number, signal: AbortSignal | undefined): Promise<QueryOutcome<AnswerOf<Q["kind"]>>> {
    const timeoutMs = Math.min(READ_ATTEMPT_TIMEOUT_MS, deadline - Date.now());
    if (timeoutMs <= 0) return Promise.resolve({ ok: false, reason: `not asked: the read's ${this.deadlineMs} ms had passed` });
    return this.queries.ask(replica, query, timeoutMs, signal);
  }

  /** Every replica once: connected ones first, each group from a rotating first replica. */
  private order(): number[] {
    const n = this.cluster.n;
    const first = this.nextFirst;
    this.nextFirst = (this.nextFirst + 1) % n;
    const rotated = Array.from({ length: n }, (_, index) => (first + index) % n);
    return [...rotated.filter((replica) => this.isOpen(replica)), ...rotated.filter((replica) => !this.isOpen(replica))];
  }
}

/** Records why `replica` failed; false, so a visit can `return failed(...)` and go on to the next replica. */
function failed(failures: ReplicaFailure[], replica: number, reason: string): false {
  failures.push({ replica, reason });
  return false;
}
