// Builds a Byzantine replica's behaviours from its plan. Twins is structural (a second core, set
// up by the host), so it has no message-rewriting behaviour here.

import type { BehaviourName, ByzantinePlan } from "../scenario.js";
import { LyingBatches } from "./batch-attacks.js";
import type { Behaviour } from "./behaviour.js";
import { Forgery, Replay } from "./injection-attacks.js";
import { CorruptDigest, Equivocation, SeqSkipReuse, SilentPrimary } from "./primary-attacks.js";
import { ConflictingVotes } from "./vote-attacks.js";

function create(name: BehaviourName, actRate: number): Behaviour | undefined {
  switch (name) {
    case "equivocation":
      return new Equivocation();
    case "silentPrimary":
      return new SilentPrimary();
    case "seqSkipReuse":
      return new SeqSkipReuse();
    case "conflictingVotes":
      return new ConflictingVotes();
    case "replay":
      return new Replay(actRate);
    case "forgery":
      return new Forgery(actRate);
    case "corruptDigest":
      return new CorruptDigest();
    case "lyingBatches":
      return new LyingBatches(actRate);
    case "twins":
      return undefined;
  }
}

export function createBehaviours(plan: ByzantinePlan): Behaviour[] {
  const behaviours: Behaviour[] = [];
  for (const name of plan.behaviours) {
    const behaviour = create(name, plan.actRate);
    if (behaviour !== undefined) behaviours.push(behaviour);
  }
  return behaviours;
}
