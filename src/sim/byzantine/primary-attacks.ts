// Byzantine behaviours of a primary (seed 003, "Primary failure versus malicious replicas"):
// proposals that differ per backup, no proposals at all, abused sequence numbers and proposals
// whose digest does not match their batch. A correct cluster must keep agreement through all of
// them and replace the primary when they stall progress.

import type { ClientRequest, NewView, Outbound, PrePrepare } from "../../consensus/pbft/types.js";
import type { Behaviour, ByzantineActor } from "./behaviour.js";
import { sendSplit, sendToAll } from "./behaviour.js";

function ownPrePrepare(actor: ByzantineActor, outbound: Outbound): PrePrepare | undefined {
  const message = outbound.message;
  return outbound.to === "all" && message.type === "pre-prepare" && message.replica === actor.id ? message : undefined;
}

function sameRequests(a: readonly ClientRequest[], b: readonly ClientRequest[]): boolean {
  return a.length === b.length && a.every((request, i) => request === b[i]);
}

/** A different batch built only from genuine client requests: reordered, a subset, empty, or other requests. */
function alternativeBatch(actor: ByzantineActor, requests: readonly ClientRequest[]): ClientRequest[] | undefined {
  const random = actor.random;
  const choice = random.below(4);
  if (choice === 0 && requests.length >= 2) {
    const reordered = random.shuffle([...requests]);
    if (!sameRequests(reordered, requests)) return reordered;
    return [...requests].reverse();
  }
  if (choice === 1 && requests.length >= 2) {
    const subset = [...requests];
    subset.splice(random.below(subset.length), 1);
    return subset;
  }
  if (choice === 2) {
    const others = actor.recentRequests().filter((request) => !requests.includes(request));
    if (others.length > 0) return random.shuffle([...others]).slice(0, random.between(1, Math.min(4, others.length)));
  }
  return requests.length > 0 ? [] : undefined;
}

/**
 * As primary, a different valid batch for some backups at the same seq; as new primary, a
 * NEW-VIEW that drops re-proposals; in a view change, different VIEW-CHANGEs to different replicas.
 */
export class Equivocation implements Behaviour {
  readonly name = "equivocation" as const;

  transform(actor: ByzantineActor, outbound: Outbound): boolean {
    const prePrepare = ownPrePrepare(actor, outbound);
    if (prePrepare !== undefined) {
      const requests = alternativeBatch(actor, prePrepare.requests);
      if (requests === undefined) return false;
      const alternative = actor.sign({ ...prePrepare, requests, digest: actor.batchDigest(requests) });
      actor.note(this.name, `s${prePrepare.seq}: batches ${prePrepare.digest} and ${alternative.digest}`);
      sendSplit(actor, prePrepare, alternative, this.name);
      return true;
    }
    const message = outbound.message;
    if (outbound.to === "all" && message.type === "view-change" && message.replica === actor.id && message.prepared.length > 0) {
      // Two validly signed VIEW-CHANGEs for one view: one hides every prepared certificate. A
      // NEW-VIEW built on the second must still keep whatever committed (2f + 1 VIEW-CHANGEs
      // include f + 1 correct ones, and one of them prepared it).
      const hiding = actor.sign({ ...message, prepared: [] });
      actor.note(this.name, `view-change v${message.view}: ${message.prepared.length} certificate(s) hidden from some replicas`);
      sendSplit(actor, message, hiding, this.name);
      return true;
    }
    if (outbound.to === "all" && message.type === "new-view" && message.replica === actor.id) {
      const alternative = this.withoutReproposals(actor, message);
      if (alternative === undefined) return false;
      // To some backups, or to all: a NEW-VIEW only some accept splits the view, one all accept
      // (if validation were broken) would overwrite what committed.
      if (actor.random.chance(0.5)) {
        actor.note(this.name, `new-view v${message.view}: null requests instead of re-proposals for some backups`);
        sendSplit(actor, message, alternative, this.name);
      } else {
        actor.note(this.name, `new-view v${message.view}: null requests instead of re-proposals for all backups`);
        sendToAll(actor, alternative, this.name);
      }
      return true;
    }
    return false;
  }

  onTick(): void {}

  /** The NEW-VIEW with every re-proposal replaced by a null request: it ignores the prepared certificates. */
  private withoutReproposals(actor: ByzantineActor, newView: NewView): NewView | undefined {
    const nullDigest = actor.batchDigest([]);
    if (newView.prePrepares.every((prePrepare) => prePrepare.digest === nullDigest)) return undefined;
    const prePrepares = newView.prePrepares.map((prePrepare) =>
      prePrepare.digest === nullDigest ? prePrepare : actor.sign({ ...prePrepare, requests: [], digest: nullDigest }),
    );
    return actor.sign({ ...newView, prePrepares });
  }
}

/** As primary, sends nothing at all (the backups must time out and change the view). */
export class SilentPrimary implements Behaviour {
  readonly name = "silentPrimary" as const;
  private suppressed = 0;

  transform(actor: ByzantineActor, outbound: Outbound): boolean {
    if (actor.primaryOf(actor.view()) !== actor.id) return false;
    this.suppressed += 1;
    // Silence has no message to count, so each withheld message counts as one action.
    if (this.suppressed === 1 || this.suppressed % 16 === 0) {
      actor.note(this.name, `withheld ${outbound.message.type} (${this.suppressed} so far)`);
    }
    actor.count(this.name, 1);
    return true;
  }

  onTick(): void {}
}

/** As primary, proposes at a skipped sequence number, or re-uses a used one for a different batch. */
export class SeqSkipReuse implements Behaviour {
  readonly name = "seqSkipReuse" as const;
  /** Own recent proposals (bounded), for re-use. */
  private readonly proposed: PrePrepare[] = [];

  transform(actor: ByzantineActor, outbound: Outbound): boolean {
    const prePrepare = ownPrePrepare(actor, outbound);
    if (prePrepare === undefined) return false;
    const earlier = this.proposed.filter((old) => old.view === prePrepare.view && old.seq < prePrepare.seq && old.digest !== prePrepare.digest);
    this.remember(prePrepare);
    if (earlier.length > 0 && actor.random.chance(0.5)) {
      const reused = actor.random.pick(earlier);
      const duplicate = actor.sign({ ...prePrepare, seq: reused.seq });
      actor.note(this.name, `re-used s${reused.seq} for batch ${prePrepare.digest}`);
      sendToAll(actor, prePrepare, this.name);
      sendToAll(actor, duplicate, this.name);
      return true;
    }
    const skipped = actor.sign({ ...prePrepare, seq: prePrepare.seq + actor.random.between(1, 3) });
    actor.note(this.name, `moved s${prePrepare.seq} to s${skipped.seq}`);
    sendToAll(actor, skipped, this.name);
    return true;
  }

  onTick(): void {}

  private remember(prePrepare: PrePrepare): void {
    this.proposed.push(prePrepare);
    if (this.proposed.length > 32) this.proposed.shift();
  }
}

/** Pre-prepares whose digest does not match their batch. */
export class CorruptDigest implements Behaviour {
  readonly name = "corruptDigest" as const;

  transform(actor: ByzantineActor, outbound: Outbound): boolean {
    const message = outbound.message;
    if (outbound.to !== "all") return false;
    if ((message.type === "pre-prepare" || message.type === "prepare") && message.replica === actor.id) {
      const corrupted = actor.sign({ ...message, digest: actor.fakeDigest() });
      actor.note(this.name, `${message.type} s${message.seq} with digest ${corrupted.digest}`);
      sendToAll(actor, corrupted, this.name);
      return true;
    }
    return false;
  }

  onTick(): void {}
}
