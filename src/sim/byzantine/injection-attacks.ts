// Byzantine messages injected on the replica's own schedule: replays of old messages (its own and
// other replicas' signed ones) and forgeries (messages claiming another replica, signed with the
// wrong key; view changes carrying fabricated certificates; client requests with bad signatures).
// DESIGN.md: "nothing a peer sends may crash a replica"; each of these must be dropped or be
// harmless.

import type {
  Checkpoint,
  CheckpointProof,
  ClientRequest,
  NewView,
  Outbound,
  Prepare,
  PreparedCertificate,
  PrePrepare,
  ReplicaId,
  ReplicaMessage,
  ViewChange,
} from "../../consensus/pbft/types.js";
import type { Behaviour, ByzantineActor } from "./behaviour.js";
import { sendToAll } from "./behaviour.js";

/** Per tick, at act rate 1: chance of a replay burst and of a forgery. */
const REPLAY_CHANCE_PER_TICK = 0.1;
const FORGERY_CHANCE_PER_TICK = 0.05;

export class Replay implements Behaviour {
  readonly name = "replay" as const;
  private readonly actRate: number;

  constructor(actRate: number) {
    this.actRate = actRate;
  }

  transform(): boolean {
    return false;
  }

  onTick(actor: ByzantineActor): void {
    const history = actor.history();
    if (history.length === 0 || !actor.random.chance(REPLAY_CHANCE_PER_TICK * this.actRate)) return;
    const burst = actor.random.between(1, 3);
    for (let i = 0; i < burst; i++) {
      const message = actor.random.pick(history);
      const to = actor.random.pick(actor.others());
      actor.send(to, message, this.name);
    }
    actor.note(this.name, `re-sent ${burst} old message(s)`);
  }
}

function otherThan(actor: ByzantineActor, excluded: ReplicaId): ReplicaId {
  const candidates = actor.others().filter((id) => id !== excluded);
  return actor.random.pick(candidates);
}

export class Forgery implements Behaviour {
  readonly name = "forgery" as const;
  private readonly actRate: number;
  private forgedTimestamp = 1_000_000;

  constructor(actRate: number) {
    this.actRate = actRate;
  }

  /** As primary, slips a request with a forged client signature into a genuine proposal. */
  transform(actor: ByzantineActor, outbound: Outbound): boolean {
    const message = outbound.message;
    if (outbound.to !== "all" || message.type !== "pre-prepare" || message.replica !== actor.id) return false;
    if (!actor.random.chance(0.5)) return false;
    const requests = [...message.requests, this.forgedRequest(actor)];
    const forged = actor.sign({ ...message, requests, digest: actor.batchDigest(requests) });
    actor.note(this.name, `pre-prepare s${message.seq} with a forged client request`);
    sendToAll(actor, forged, this.name);
    return true;
  }

  onTick(actor: ByzantineActor): void {
    if (!actor.random.chance(FORGERY_CHANCE_PER_TICK * this.actRate)) return;
    const choice = actor.random.below(5);
    if (choice === 0) this.impersonate(actor);
    else if (choice === 1) this.fabricatedViewChange(actor);
    else if (choice === 2) this.forgedCheckpoint(actor);
    else if (choice === 3) this.unrequestedNewView(actor);
    else {
      actor.note(this.name, "relayed a client request with a forged signature");
      sendToAll(actor, { type: "request", request: this.forgedRequest(actor) }, this.name);
    }
  }

  /** A message seen recently, re-attributed to another replica and signed with this one's key. */
  private impersonate(actor: ByzantineActor): void {
    const candidates = actor.history().filter((message) => message.type === "prepare" || message.type === "commit" || message.type === "checkpoint" || message.type === "pre-prepare" || message.type === "view-change");
    if (candidates.length === 0) return;
    const original = actor.random.pick(candidates) as ReplicaMessage & { readonly replica: ReplicaId; readonly signature: string };
    const claimed = otherThan(actor, actor.id);
    // Spreading the original makes a new object with the same type and fields but the claimed sender.
    const signature = actor.random.chance(0.5) ? actor.fakeDigest() : original.signature;
    const forged = { ...original, replica: claimed, signature } as ReplicaMessage;
    actor.note(this.name, `${original.type} claiming to be r${claimed}`);
    sendToAll(actor, forged, this.name);
  }

  /** A VIEW-CHANGE validly signed by this replica but carrying a fabricated proof and certificate. */
  private fabricatedViewChange(actor: ByzantineActor): void {
    const { f, checkpointInterval } = actor;
    const view = actor.view() + 1;
    const fabricateStable = actor.random.chance(0.5);
    const stableSeq = fabricateStable ? actor.stableSeq() + checkpointInterval * actor.random.between(1, 3) : 0;
    const stateDigest = actor.fakeDigest();
    const checkpoints: Checkpoint[] = [];
    if (fabricateStable) {
      for (let i = 0; i < 2 * f + 1; i++) {
        const replica = i === 0 ? actor.id : otherThan(actor, actor.id);
        checkpoints.push({ type: "checkpoint", seq: stableSeq, stateDigest, replica, signature: actor.fakeDigest() });
      }
    }
    const stable: CheckpointProof = { type: "checkpoint-proof", seq: stableSeq, stateDigest: fabricateStable ? stateDigest : "", checkpoints };
    const seq = stableSeq + 1;
    const requests = actor.recentRequests().slice(0, 2);
    const prePrepare: PrePrepare = {
      type: "pre-prepare",
      view: actor.view(),
      seq,
      digest: actor.batchDigest(requests),
      // By digest, as VIEW-CHANGEs carry certificates: only the forged signatures give it away.
      requests: [],
      replica: actor.primaryOf(actor.view()),
      signature: actor.fakeDigest(),
    };
    const prepares: Prepare[] = [];
    for (let i = 0; i < 2 * f; i++) {
      prepares.push({ type: "prepare", view: prePrepare.view, seq, digest: prePrepare.digest, replica: otherThan(actor, prePrepare.replica), signature: actor.fakeDigest() });
    }
    const certificate: PreparedCertificate = { prePrepare, prepares };
    const viewChange: ViewChange = actor.sign({ type: "view-change", view, stable, prepared: [certificate], replica: actor.id, signature: "" });
    actor.note(this.name, `view-change v${view} with a fabricated ${fabricateStable ? "checkpoint proof and " : ""}certificate`);
    sendToAll(actor, viewChange, this.name);
  }

  /**
   * A NEW-VIEW for the next view this replica leads, although nobody asked for a view change:
   * validly signed, backed by its own VIEW-CHANGE alone, and re-proposing null requests over the
   * recent sequence numbers (which may already have committed elsewhere). Backups that check a
   * NEW-VIEW against 2f + 1 VIEW-CHANGEs drop it; one that did not would overwrite history.
   */
  private unrequestedNewView(actor: ByzantineActor): void {
    let view = actor.view() + 1;
    while (actor.primaryOf(view) !== actor.id) view += 1;
    const genesis: CheckpointProof = { type: "checkpoint-proof", seq: 0, stateDigest: "", checkpoints: [] };
    const viewChange = actor.sign<ViewChange>({ type: "view-change", view, stable: genesis, prepared: [], replica: actor.id, signature: "" });
    const nullDigest = actor.batchDigest([]);
    const prePrepares: PrePrepare[] = [];
    const first = actor.stableSeq() + 1;
    const last = Math.min(actor.stableSeq() + actor.watermarkWindow, actor.lastExecuted() + 3);
    for (let seq = first; seq <= last; seq++) {
      prePrepares.push(actor.sign<PrePrepare>({ type: "pre-prepare", view, seq, digest: nullDigest, requests: [], replica: actor.id, signature: "" }));
    }
    const newView = actor.sign<NewView>({ type: "new-view", view, viewChanges: [viewChange], prePrepares, replica: actor.id, signature: "" });
    actor.note(this.name, `unrequested new-view v${view} with null requests at s${first}..s${last}`);
    sendToAll(actor, newView, this.name);
  }

  private forgedCheckpoint(actor: ByzantineActor): void {
    const replica = otherThan(actor, actor.id);
    const seq = actor.stableSeq() + actor.checkpointInterval;
    const checkpoint: Checkpoint = { type: "checkpoint", seq, stateDigest: actor.fakeDigest(), replica, signature: actor.fakeDigest() };
    actor.note(this.name, `checkpoint s${seq} claiming to be r${replica}`);
    sendToAll(actor, checkpoint, this.name);
  }

  private forgedRequest(actor: ByzantineActor): ClientRequest {
    const genuine = actor.recentRequests();
    const client = genuine.length > 0 ? actor.random.pick(genuine).client : "c0";
    this.forgedTimestamp += 1;
    const operation = new Uint8Array([actor.random.below(256), actor.random.below(256), 0xba, 0xd0]);
    return { client, timestamp: this.forgedTimestamp, operation, signature: actor.fakeDigest() };
  }
}
