// What a set of replica statuses (BulwarkClient.status) says about the cluster as a whole, for any
// front end that shows it (the gateway's GET /v1/status, `bulwark status`). Each replica's status
// is its own unverified claim, so the cluster-wide figures are the ones f + 1 replicas vouch for
// (`vouched`), never the highest single report.

import { primaryOf } from "../consensus/pbft/quorum.js";
import { type ClusterConfig, certificateQuorum } from "../ledger/cluster.js";
import type { ReplicaStatus } from "./types.js";

export type ReplicaRole = "primary" | "backup" | "view-change" | "unreachable";

export interface StatusSummary {
  readonly n: number;
  readonly f: number;
  /** Replicas that answered. */
  readonly reachable: number;
  /** 2f + 1: replicas the cluster needs to commit. */
  readonly quorum: number;
  /** Whether at least `quorum` replicas answered. */
  readonly quorumReachable: boolean;
  /** The view f + 1 replicas have reached (null: fewer than f + 1 answered), and its primary. */
  readonly view: number | null;
  readonly primary: number | null;
  readonly executedHeight: number | null;
  readonly stableCheckpoint: number | null;
  readonly certifiedHeight: number | null;
  /** Every replica's own status with its role, in the order given. */
  readonly replicas: readonly (ReplicaStatus & { readonly role: ReplicaRole })[];
}

export function summarizeStatus(cluster: ClusterConfig, statuses: readonly ReplicaStatus[]): StatusSummary {
  const answered = statuses.filter((status) => status.reachable);
  const view = vouched(answered.map((status) => status.view), cluster.f);
  const quorum = certificateQuorum(cluster);
  return {
    n: cluster.n,
    f: cluster.f,
    reachable: answered.length,
    quorum,
    quorumReachable: answered.length >= quorum,
    view,
    primary: view === null ? null : primaryOf(view, cluster.n),
    executedHeight: vouched(answered.map((status) => status.executedHeight), cluster.f),
    stableCheckpoint: vouched(answered.map((status) => status.stableCheckpoint), cluster.f),
    certifiedHeight: vouched(answered.map((status) => status.certifiedHeight), cluster.f),
    replicas: statuses.map((status) => ({ ...status, role: roleOf(status, cluster.n) })),
  };
}

/** A replica's role as it reports it: the primary of its own view (PBFT §4.1, p = v mod n), unless it is changing views. */
export function roleOf(status: ReplicaStatus, n: number): ReplicaRole {
  if (!status.reachable) return "unreachable";
  if (status.normal === false) return "view-change";
  return status.view !== undefined && primaryOf(status.view, n) === status.replica ? "primary" : "backup";
}

/**
 * The highest value at least f + 1 replicas report reaching: the (f + 1)-th highest report. At
 * most f replicas are faulty, so one of those f + 1 is correct and really reached it; the highest
 * report alone could be a faulty replica's invention. Null when fewer than f + 1 reported.
 */
export function vouched(reports: readonly (number | undefined)[], f: number): number | null {
  const values = reports.filter((value): value is number => value !== undefined).sort((a, b) => b - a);
  return values[f] ?? null;
}
