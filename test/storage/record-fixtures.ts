// Consensus records of every kind with seeded random contents, for codec and record-log tests.
// Strings mix hex, non-ASCII text and lone surrogates, because a peer controls digests and client
// names and the codec must give back exactly what it was given.

import type {
  Checkpoint,
  CheckpointProof,
  ClientRequest,
  PersistRecord,
  PrePrepare,
  Prepare,
  PreparedCertificate,
  ViewChange,
} from "../../src/consensus/pbft/types.js";
import type { Random } from "../../src/sim/random.js";
import { randomBytes } from "../support/random-bytes.js";

const ODD_STRINGS = ["", "é", "日本語", "\u{1F600}", "\ud800", "a\udc00b", "\udbff\udfff", "\u0000"];

export function randomString(random: Random): string {
  if (random.chance(0.3)) return random.pick(ODD_STRINGS) + random.pick(ODD_STRINGS);
  return Buffer.from(randomBytes(random, random.between(0, 32))).toString("hex");
}

function count(random: Random): number {
  // Mostly small, sometimes past one LEB128 byte, sometimes near 2^53.
  if (random.chance(0.1)) return Number.MAX_SAFE_INTEGER - random.below(3);
  if (random.chance(0.2)) return random.nextUint32();
  return random.below(200);
}

function request(random: Random): ClientRequest {
  return { client: randomString(random), timestamp: count(random), operation: randomBytes(random, random.between(0, 300)), signature: randomString(random) };
}

function prePrepare(random: Random): PrePrepare {
  const requests = Array.from({ length: random.between(0, 5) }, () => request(random));
  return { type: "pre-prepare", view: count(random), seq: count(random), digest: randomString(random), requests, replica: random.below(7), signature: randomString(random) };
}

function prepare(random: Random): Prepare {
  return { type: "prepare", view: count(random), seq: count(random), digest: randomString(random), replica: random.below(7), signature: randomString(random) };
}

function checkpoint(random: Random): Checkpoint {
  return { type: "checkpoint", seq: count(random), stateDigest: randomString(random), replica: random.below(7), signature: randomString(random) };
}

function proof(random: Random): CheckpointProof {
  const checkpoints = Array.from({ length: random.between(0, 4) }, () => checkpoint(random));
  return { type: "checkpoint-proof", seq: count(random), stateDigest: randomString(random), checkpoints };
}

function prepared(random: Random): PreparedCertificate {
  return { prePrepare: prePrepare(random), prepares: Array.from({ length: random.between(0, 3) }, () => prepare(random)) };
}

function viewChange(random: Random): ViewChange {
  const certificates = Array.from({ length: random.between(0, 3) }, () => prepared(random));
  return { type: "view-change", view: count(random), stable: proof(random), prepared: certificates, replica: random.below(7), signature: randomString(random) };
}

/** One record of each of the nine kinds. */
export function oneOfEachKind(random: Random): PersistRecord[] {
  return [
    { kind: "view", view: count(random), normal: random.chance(0.5) },
    { kind: "pre-prepare", message: prePrepare(random) },
    { kind: "prepare", message: prepare(random) },
    { kind: "commit", message: { ...prepare(random), type: "commit" } },
    { kind: "prepared", certificate: prepared(random) },
    { kind: "checkpoint", message: checkpoint(random) },
    { kind: "stable-checkpoint", proof: proof(random) },
    { kind: "view-change", message: viewChange(random) },
    {
      kind: "new-view",
      message: {
        type: "new-view",
        view: count(random),
        viewChanges: Array.from({ length: random.between(0, 3) }, () => viewChange(random)),
        prePrepares: Array.from({ length: random.between(0, 3) }, () => prePrepare(random)),
        replica: random.below(7),
        signature: randomString(random),
      },
    },
  ];
}
