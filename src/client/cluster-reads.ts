// Reads that one replica answers and the client verifies (issue 4, "SDK additions"): proof reads,
// blocks and status. A proof or block that does not verify, a replica that is down or slow, one
// that cannot prove its state yet: each is a failure of that replica, recorded with its reason,
// and the next replica is asked. Only when every replica failed does the call fail, with
// ClusterUnavailableError listing each one's reason. The replicas are tried from a rotating first
// one, connected ones first, so reads spread over the cluster.
//
// A replica that answers "I do not have it" for a block may be lagging, or faulty and hiding it,
// so block reads keep asking until one replica serves it; only when every replica that answered
// lacked it is the block reported absent.

import { type BlockHeader, blockHeaderHash } from "../ledger/block-header.js";
import { linkVerdict } from "../ledger/chain.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import { describeBytes } from "../ledger/codec.js";
import { BulwarkClientError, ClusterUnavailableError, type ReplicaFailure } from "./errors.js";
import { checkReadProof, checkWireBlock } from "./proof-check.js";
import type { ReplicaQueries } from "./replica-queries.js";
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
  readonly attemptTimeoutMs?: number;
}

interface Found {
  readonly block: VerifiedBlock;
  readonly header: BlockHeader;
}

export class ClusterReads {
  private readonly cluster: ClusterConfig;
  private readonly queries: ReplicaQueries;
  private readonly counters: ClientCounters;
  private readonly isOpen: (replica: number) => boolean;
  private readonly deadlineMs: number;
  private readonly attemptTimeoutMs: number;
  private nextFirst = 0;

  constructor(options: ClusterReadsOptions) {
    this.cluster = options.cluster;
    this.queries = options.queries;
    this.counters = options.counters;
    this.isOpen = options.isOpen;
    this.deadlineMs = options.deadlineMs;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? READ_ATTEMPT_TIMEOUT_MS;
  }

  /**
   * The value of state key `key` (absent: undefined) proven by the first replica whose answer
   * verifies and is at `minHeight` or above.
   */
  async proofRead(key: Uint8Array, minHeight: number, signal?: AbortSignal): Promise<{ value: Uint8Array | undefined; height: number }> {
    const failures: ReplicaFailure[] = [];
    const deadline = Date.now() + this.deadlineMs;
    for (const replica of this.order()) {
      const timeoutMs = Math.min(this.attemptTimeoutMs, deadline - Date.now());
      if (timeoutMs <= 0) {
        failures.push({ replica, reason: `not asked: the read's ${this.deadlineMs} ms had passed` });
        continue;
      }
      const outcome = await this.queries.ask(replica, { kind: "read-request", key }, timeoutMs, signal);
      if (!outcome.ok) {
        failures.push({ replica, reason: outcome.reason });
        continue;
      }
      const answer = outcome.answer;
      if (answer.kind === "read-unavailable") {
        failures.push({ replica, reason: `cannot prove its state now (${answer.reason})` });
        continue;
      }
      const checked = checkReadProof(this.cluster, key, answer, minHeight);
      if (checked.ok) return checked.value;
      if (checked.stale === true) this.counters.answersStale += 1;
      else this.counters.answersRejected += 1;
      failures.push({ replica, reason: checked.reason });
    }
    throw this.unavailable(`a proof of state key ${describeBytes(key)}`, failures);
  }

  /** Every replica's own account of itself; unreachable ones are listed as such. */
  async status(timeoutMs: number): Promise<ReplicaStatus[]> {
    return Promise.all(
      this.cluster.replicas.map(async ({ id, address }): Promise<ReplicaStatus> => {
        const outcome = await this.queries.ask(id, { kind: "status-request" }, timeoutMs);
        if (!outcome.ok) return { replica: id, address, reachable: false };
        const { view, primary, normal, executedHeight, stableCheckpoint, certifiedHeight } = outcome.answer;
        return { replica: id, address, reachable: true, view, primary, normal, executedHeight, stableCheckpoint, certifiedHeight };
      }),
    );
  }

  /**
   * Block `height`, verified; a block with its body is preferred to one whose body the replica
   * pruned. Undefined when every replica that answered lacks it (or has not certified it yet).
   */
  async block(height: number, signal?: AbortSignal): Promise<VerifiedBlock | undefined> {
    const failures: ReplicaFailure[] = [];
    let lacking = 0;
    let pruned: VerifiedBlock | undefined;
    for (const replica of this.order()) {
      const outcome = await this.queries.ask(replica, { kind: "blocks-request", from: height, to: height }, this.attemptTimeoutMs, signal);
      if (!outcome.ok) {
        failures.push({ replica, reason: outcome.reason });
        continue;
      }
      const [wire, ...extra] = outcome.answer.blocks;
      if (wire === undefined || (wire.height === height && wire.certificate === undefined && extra.length === 0)) {
        lacking += 1;
        failures.push({ replica, reason: wire === undefined ? `does not have block ${height}` : `has not certified block ${height}` });
        continue;
      }
      const checked = extra.length === 0 ? checkWireBlock(this.cluster, wire, height) : { ok: false as const, reason: `sent ${extra.length + 1} blocks for one` };
      if (!checked.ok) {
        this.counters.answersRejected += 1;
        failures.push({ replica, reason: checked.reason });
        continue;
      }
      if (!checked.value.block.bodyPruned) return checked.value.block;
      pruned ??= checked.value.block;
    }
    if (pruned !== undefined || lacking > 0) return pruned;
    throw this.unavailable(`block ${height}`, failures);
  }

  /**
   * Up to `limit` verified blocks from `from`, ascending and contiguous: fewer when no replica has
   * (certified) the ones after. Each replica is asked on from where the previous one stopped.
   */
  async blocks(from: number, limit: number, signal?: AbortSignal): Promise<VerifiedBlock[]> {
    const end = from + limit - 1;
    const found = new Map<number, Found>();
    const failures: ReplicaFailure[] = [];
    let answered = false;
    let next = from;
    for (const replica of this.order()) {
      if (next > end) break;
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
        const outcome = await this.queries.ask(replica, { kind: "blocks-request", from: next, to }, this.attemptTimeoutMs, signal);
        if (!outcome.ok) {
          failures.push({ replica, reason: outcome.reason });
          break;
        }
        answered = true;
        const added = this.addBlocks(found, outcome.answer.blocks, next, to);
        if (typeof added === "string") {
          this.counters.answersRejected += 1;
          failures.push({ replica, reason: added });
          break;
        }
        while (found.has(next)) next++;
        if (added === 0) break;
      }
    }
    const blocks: VerifiedBlock[] = [];
    let previous: BlockHeader | undefined;
    for (let height = from; found.has(height); height++) {
      const { block, header } = found.get(height)!;
      if (previous !== undefined) {
        const linked = linkVerdict({ height: previous.height, hash: blockHeaderHash(previous) }, header);
        // Two certified blocks that do not chain: more than f replicas signed what they should not.
        if (!linked.ok) throw new BulwarkClientError(`certified blocks ${height - 1} and ${height} do not chain (${linked.message}): more than f replicas of the cluster are faulty`);
      }
      blocks.push(block);
      previous = header;
    }
    if (blocks.length === 0 && !answered) throw this.unavailable(`blocks from ${from}`, failures);
    return blocks;
  }

  /**
   * Verifies the certified blocks of one answer to a request for `from` .. `to` and adds them;
   * returns how many were added, or why the answer is refused. Blocks the replica has not
   * certified are skipped (another replica may have).
   */
  private addBlocks(found: Map<number, Found>, wires: readonly { readonly height: number; readonly header: Uint8Array; readonly body?: Uint8Array; readonly certificate?: Uint8Array }[], from: number, to: number): number | string {
    let added = 0;
    let last = from - 1;
    for (const wire of wires) {
      if (wire.height <= last || wire.height > to) return `sent block ${wire.height} in an answer for blocks ${from} to ${to}, out of order or out of range`;
      last = wire.height;
      if (wire.certificate === undefined) continue;
      const checked = checkWireBlock(this.cluster, wire, wire.height);
      if (!checked.ok) return checked.reason;
      found.set(wire.height, checked.value);
      added += 1;
    }
    return added;
  }

  /** Every replica once: connected ones first, each group from a rotating first replica. */
  private order(): number[] {
    const n = this.cluster.n;
    const first = this.nextFirst;
    this.nextFirst = (this.nextFirst + 1) % n;
    const rotated = Array.from({ length: n }, (_, index) => (first + index) % n);
    return [...rotated.filter((replica) => this.isOpen(replica)), ...rotated.filter((replica) => !this.isOpen(replica))];
  }

  private unavailable(what: string, failures: readonly ReplicaFailure[]): ClusterUnavailableError {
    let connected = 0;
    for (let replica = 0; replica < this.cluster.n; replica++) if (this.isOpen(replica)) connected += 1;
    return new ClusterUnavailableError(connected, 1, what, failures);
  }
}
