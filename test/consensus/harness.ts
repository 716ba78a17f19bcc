// A small in-memory cluster for unit tests of the PBFT core: perfect FIFO delivery under the
// test's control, a hash-chain "application", and stand-in signatures. Only for tests of this
// one module; the simulator (src/sim) is the real multi-replica test tool.

import { createHash } from "node:crypto";
import {
  PbftReplica,
  signingPayload,
  sign,
  type ClientRequest,
  type Outbound,
  type PbftConfig,
  type PbftCrypto,
  type PersistRecord,
  type Ready,
  type ReplicaMessage,
  type Reply,
  type ReplyCache,
  type CoreMutation,
} from "../../src/consensus/pbft/index.js";

export function sha(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 32);
}

/** Signatures anyone could compute: fine for unit tests, where forgeries are built on purpose. */
export function testCrypto(id: number): PbftCrypto {
  return {
    batchDigest: (requests) => sha(requests.map((r) => `${r.client}/${r.timestamp}/${Buffer.from(r.operation).toString("hex")}/${r.signature}`).join(",")),
    sign: (payload) => `${id}:${sha(payload)}`,
    verify: (replica, payload, signature) => signature === `${replica}:${sha(payload)}`,
    verifyRequest: (request) => request.signature === `client:${sha(`${request.client}/${request.timestamp}`)}`,
  };
}

export function request(client: string, timestamp: number, operation = `op-${client}-${timestamp}`): ClientRequest {
  return { client, timestamp, operation: Buffer.from(operation), signature: `client:${sha(`${client}/${timestamp}`)}` };
}

export function config(n: number, overrides: Partial<PbftConfig> = {}): PbftConfig {
  return {
    n,
    checkpointInterval: 4,
    watermarkWindow: 8,
    maxBatchSize: 1,
    batchDelayTicks: 0,
    viewChangeTimeoutTicks: 20,
    viewChangeTimeoutMaxTicks: 160,
    statusIntervalTicks: 5,
    maxPendingRequests: 64,
    ...overrides,
  };
}

/** Execution stand-in: a hash chain over executed operations, with the per-client reply table. */
export class TestService implements ReplyCache {
  digest = "genesis";
  lastExecuted = 0;
  readonly table = new Map<string, { timestamp: number; result: Uint8Array }>();
  readonly applied: string[] = [];

  lastReply(client: string): { timestamp: number; result: Uint8Array } | undefined {
    return this.table.get(client);
  }

  execute(requests: readonly ClientRequest[]): Reply[] {
    const replies: Reply[] = [];
    for (const r of requests) {
      const known = this.table.get(r.client);
      if (known !== undefined && known.timestamp >= r.timestamp) continue;
      this.digest = sha(`${this.digest}|${r.client}|${r.timestamp}|${Buffer.from(r.operation).toString("hex")}`);
      const result = Buffer.from(this.digest);
      this.table.set(r.client, { timestamp: r.timestamp, result });
      this.applied.push(`${r.client}/${r.timestamp}`);
      replies.push({ client: r.client, timestamp: r.timestamp, view: 0, replica: 0, result });
    }
    return replies;
  }
}

export interface Node {
  replica: PbftReplica;
  service: TestService;
  records: PersistRecord[];
  up: boolean;
}

interface InFlight {
  from: number;
  to: number;
  message: ReplicaMessage;
}

/** n replicas wired together; messages wait in `inFlight` until the test delivers them. */
export class TestCluster {
  readonly nodes: Node[] = [];
  inFlight: InFlight[] = [];
  readonly replies: Reply[] = [];

  constructor(
    readonly n: number,
    readonly cfg: PbftConfig = config(n),
    mutation?: CoreMutation,
  ) {
    for (let id = 0; id < n; id++) {
      const service = new TestService();
      const replica = new PbftReplica({ id, config: cfg, crypto: testCrypto(id), replies: service, ...(mutation ? { mutation } : {}) });
      this.nodes.push({ replica, service, records: [], up: true });
    }
  }

  /** Acts on what replica `id` produced: persist, send, execute, feed `executed` back. */
  process(id: number): Ready[] {
    const node = this.nodes[id]!;
    const readies: Ready[] = [];
    for (;;) {
      const ready = node.replica.drain();
      const empty = ready.persist.length + ready.send.length + ready.execute.length + ready.replies.length + ready.fetchState.length === 0;
      if (empty) return readies;
      readies.push(ready);
      node.records.push(...ready.persist);
      for (const out of ready.send) this.enqueue(id, out);
      this.replies.push(...ready.replies);
      for (const batch of ready.execute) {
        this.replies.push(...node.service.execute(batch.requests));
        node.service.lastExecuted = batch.seq;
        node.replica.step({ type: "executed", seq: batch.seq, stateDigest: node.service.digest });
      }
    }
  }

  private enqueue(from: number, out: Outbound): void {
    const targets = out.to === "all" ? this.nodes.map((_, i) => i).filter((i) => i !== from) : [out.to];
    for (const to of targets) this.inFlight.push({ from, to, message: out.message });
  }

  step(id: number, input: Parameters<PbftReplica["step"]>[0]): Ready[] {
    this.nodes[id]!.replica.step(input);
    return this.process(id);
  }

  /** Delivers everything in flight (and what that produces) to replicas that are up. */
  deliverAll(filter: (m: InFlight) => boolean = () => true, limit = 100_000): void {
    for (let i = 0; i < limit && this.inFlight.length > 0; i++) {
      const m = this.inFlight.shift()!;
      if (!this.nodes[m.to]!.up || !filter(m)) continue;
      this.step(m.to, { type: "message", from: m.from, message: m.message });
    }
  }

  tick(count = 1): void {
    for (let t = 0; t < count; t++) {
      for (let id = 0; id < this.n; id++) if (this.nodes[id]!.up) this.step(id, { type: "tick" });
      this.deliverAll();
    }
  }

  submit(r: ClientRequest, to = this.nodes[0]!.replica.status().primary): void {
    this.step(to, { type: "request", request: r });
    this.deliverAll();
  }
}

export { sign, signingPayload };
