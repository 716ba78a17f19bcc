// Byzantine answers to batch fetches (consensus/pbft/batches.ts): VIEW-CHANGE and NEW-VIEW name
// batches by digest, and a replica that lacks a re-proposed batch asks its peers for it. A faulty
// peer can answer with other requests under the asked-for digest, or push such a batch unasked to
// replicas awaiting it. Only the digest check stands between these and a replica executing a batch
// that never committed (the `skip-batch-digest-check` mutation shows the checkers notice).

import type { BatchBody, ClientRequest, Outbound } from "../../consensus/pbft/types.js";
import type { Behaviour, ByzantineActor } from "./behaviour.js";

/** Chance per tick (times the act rate) of pushing an unasked, wrong batch for a recent re-proposal. */
const UNASKED_CHANCE_PER_TICK = 0.05;

/** Other requests than `requests`: a subset, others seen recently, or a reordering. */
function otherRequests(actor: ByzantineActor, requests: readonly ClientRequest[]): ClientRequest[] {
  const random = actor.random;
  const others = actor.recentRequests().filter((request) => !requests.includes(request));
  const choice = random.below(3);
  if (choice === 0 && requests.length >= 2) return requests.slice(1);
  if (choice === 1 && requests.length >= 2) return [...requests].reverse();
  if (others.length > 0) return random.shuffle([...others]).slice(0, random.between(1, Math.min(4, others.length)));
  return requests.length >= 2 ? requests.slice(1) : [];
}

export class LyingBatches implements Behaviour {
  readonly name = "lyingBatches" as const;

  constructor(private readonly actRate: number) {}

  /** Answers a batch request with other requests under the asked-for digest. */
  transform(actor: ByzantineActor, outbound: Outbound): boolean {
    const message = outbound.message;
    if (outbound.to === "all" || message.type !== "batch" || message.replica !== actor.id) return false;
    const lie: BatchBody = { ...message, requests: otherRequests(actor, message.requests) };
    actor.note(this.name, `batch s${message.seq} ${message.digest} answered with ${lie.requests.length} other request(s)`);
    actor.send(outbound.to, lie, this.name);
    return true;
  }

  /** Pushes a wrong batch, unasked, for a digest a recent NEW-VIEW re-proposed. */
  onTick(actor: ByzantineActor): void {
    if (!actor.random.chance(UNASKED_CHANCE_PER_TICK * this.actRate)) return;
    const nullDigest = actor.batchDigest([]);
    const reproposals = actor
      .history()
      .flatMap((message) => (message.type === "new-view" ? message.prePrepares.filter((pp) => pp.digest !== nullDigest) : []));
    if (reproposals.length === 0) return;
    const pp = actor.random.pick(reproposals);
    const requests = otherRequests(actor, []);
    if (requests.length === 0) return;
    const lie: BatchBody = { type: "batch", seq: pp.seq, digest: pp.digest, requests, replica: actor.id };
    actor.note(this.name, `unasked batch s${pp.seq} ${pp.digest} with ${requests.length} other request(s)`);
    for (const to of actor.others()) actor.send(to, lie, this.name);
  }
}
