// Byzantine votes: prepares and commits for digests the primary never proposed, or for different
// digests to different replicas. Quorum intersection (seed 003, "A normal-case property when
// n > 3f") is what keeps these from ever completing a certificate for a second batch.

import type { Outbound } from "../../consensus/pbft/types.js";
import type { Behaviour, ByzantineActor } from "./behaviour.js";
import { sendSplit, sendToAll } from "./behaviour.js";

export class ConflictingVotes implements Behaviour {
  readonly name = "conflictingVotes" as const;

  transform(actor: ByzantineActor, outbound: Outbound): boolean {
    const message = outbound.message;
    if (outbound.to !== "all" || (message.type !== "prepare" && message.type !== "commit") || message.replica !== actor.id) return false;
    // The null request's digest is a plausible wrong vote: it is what a NEW-VIEW could propose.
    const wrongDigest = actor.random.chance(0.5) ? actor.batchDigest([]) : actor.fakeDigest();
    if (wrongDigest === message.digest) return false;
    const wrong = actor.sign({ ...message, digest: wrongDigest });
    const choice = actor.random.below(3);
    if (choice === 0) {
      actor.note(this.name, `${message.type} s${message.seq} for ${wrongDigest} instead of ${message.digest}`);
      sendToAll(actor, wrong, this.name);
    } else if (choice === 1) {
      actor.note(this.name, `${message.type} s${message.seq}: ${message.digest} to some, ${wrongDigest} to others`);
      sendSplit(actor, message, wrong, this.name);
    } else {
      const otherWrong = actor.sign({ ...message, digest: actor.fakeDigest() });
      actor.note(this.name, `${message.type} s${message.seq}: two wrong digests to different replicas`);
      sendSplit(actor, wrong, otherWrong, this.name);
    }
    return true;
  }

  onTick(): void {}
}
