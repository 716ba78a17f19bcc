// The interface between a Byzantine replica and its behaviours. A Byzantine replica runs a real
// core (or two, for Twins) and lets its behaviours rewrite what the core sends and inject messages
// of their own. Behaviours can sign only with the replica's own key (`actor.sign`): forging
// another replica's signature is impossible, so forgeries carry bad signatures.

import type { ClientRequest, Digest, Outbound, ReplicaId, ReplicaMessage } from "../../consensus/pbft/types.js";
import type { SignedMessage } from "../core-port.js";
import type { Random } from "../random.js";
import type { BehaviourName } from "../scenario.js";

/** The Byzantine replica as its behaviours see it. */
export interface ByzantineActor {
  readonly id: ReplicaId;
  readonly n: number;
  readonly f: number;
  readonly checkpointInterval: number;
  readonly watermarkWindow: number;
  readonly random: Random;
  nowTicks(): number;
  /** The view of the core whose output is being handled (or of the first twin, on ticks). */
  view(): number;
  stableSeq(): number;
  /** The lowest executed seq among this replica's cores. */
  lastExecuted(): number;
  primaryOf(view: number): ReplicaId;
  /** Every replica but this one. */
  others(): readonly ReplicaId[];
  /** `message` re-signed with this replica's key (valid only if `message.replica` is this replica). */
  sign<M extends SignedMessage>(message: M): M;
  batchDigest(requests: readonly ClientRequest[]): Digest;
  /** A digest that matches no batch. */
  fakeDigest(): Digest;
  /** Sends `message` to one replica, counting it as an action of `behaviour`. */
  send(to: ReplicaId, message: ReplicaMessage, behaviour: BehaviourName): void;
  /** Counts actions that sent nothing (withheld messages, lying to a state fetch or a client). */
  count(behaviour: BehaviourName, actions: number): void;
  /** Notes what a behaviour did, in the trace. */
  note(behaviour: BehaviourName, text: string): void;
  /** Messages this replica received or sent recently, oldest first (bounded). */
  history(): readonly ReplicaMessage[];
  /** Client requests this replica saw recently (bounded), genuine and validly signed. */
  recentRequests(): readonly ClientRequest[];
}

export interface Behaviour {
  readonly name: BehaviourName;
  /**
   * Offered each message the core wants to send. Returns true when the behaviour took it over
   * (sent its own version, or suppressed it); false lets the next behaviour or the network have it.
   */
  transform(actor: ByzantineActor, outbound: Outbound): boolean;
  /** Called once per tick; behaviours that inject messages do it here. */
  onTick(actor: ByzantineActor): void;
}

/** Sends `message` to every other replica as an action of `behaviour`. */
export function sendToAll(actor: ByzantineActor, message: ReplicaMessage, behaviour: BehaviourName): void {
  for (const to of actor.others()) actor.send(to, message, behaviour);
}

/** Splits the other replicas into two non-empty groups at random (n ≥ 4, so there are ≥ 3). */
export function splitOthers(actor: ByzantineActor): [ReplicaId[], ReplicaId[]] {
  const shuffled = actor.random.shuffle([...actor.others()]);
  const cut = actor.random.between(1, shuffled.length - 1);
  return [shuffled.slice(0, cut), shuffled.slice(cut)];
}

/** Sends `first` to one group of replicas and `second` to the rest. */
export function sendSplit(actor: ByzantineActor, first: ReplicaMessage, second: ReplicaMessage, behaviour: BehaviourName): void {
  const [groupA, groupB] = splitOthers(actor);
  for (const to of groupA) actor.send(to, first, behaviour);
  for (const to of groupB) actor.send(to, second, behaviour);
}
