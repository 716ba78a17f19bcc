// Queries the client puts to ONE replica at a time (status, proof reads, blocks), as opposed to
// transactions, which go to the cluster and are accepted on f + 1 matching replies. Each query
// has a request id unique within this client; an answer counts only when it carries the id of a
// query in flight AND comes from the replica that query was put to, so a replica can neither
// answer for another nor answer twice. What an answer is worth (does its proof verify?) is for
// the caller to decide: this file only pairs questions with answers and bounds how many wait.
//
// A query ends with an outcome, never a rejection, except when the caller's AbortSignal fires
// (RequestAbortedError) or the client closes (ClientClosedError): a replica that is down, slow or
// answers the wrong kind is one failed outcome among the replicas the caller may try next.

import type { WireFrame } from "../node/wire-types.js";
import { ClientClosedError, RequestAbortedError } from "./errors.js";
import type { QueryAnswer } from "./replica-links.js";
import type { ClientCounters } from "./types.js";

/** Most queries in flight at once; beyond it a query fails at once (each holds a timer and its answer). */
export const QUERIES_IN_FLIGHT_MAX = 4_096;

type Query = Extract<WireFrame, { kind: "status-request" | "read-request" | "blocks-request" }>;
type AnswerKind = QueryAnswer["kind"];

export type QueryOutcome<A extends QueryAnswer = QueryAnswer> = { readonly ok: true; readonly answer: A } | { readonly ok: false; readonly reason: string };

/** What each query may be answered with. */
const ANSWER_KINDS: Readonly<Record<Query["kind"], readonly AnswerKind[]>> = {
  "status-request": ["status"],
  "read-request": ["read-proof", "read-unavailable"],
  "blocks-request": ["blocks"],
};

/** The answer kinds of query kind K. */
export type AnswerOf<K extends Query["kind"]> = K extends "status-request"
  ? Extract<QueryAnswer, { kind: "status" }>
  : K extends "read-request"
    ? Extract<QueryAnswer, { kind: "read-proof" | "read-unavailable" }>
    : Extract<QueryAnswer, { kind: "blocks" }>;

/** The links as the queries use them (replica-links.ts has these). */
export interface QueryTransport {
  isOpen(replica: number): boolean;
  send(replica: number, payload: Uint8Array): boolean;
}

interface Pending {
  readonly replica: number;
  readonly expects: readonly AnswerKind[];
  readonly settle: (outcome: QueryOutcome) => void;
  readonly fail: (error: Error) => void;
}

export class ReplicaQueries {
  private readonly transport: QueryTransport;
  private readonly counters: ClientCounters;
  private readonly encode: (frame: WireFrame) => Uint8Array;
  private readonly pending = new Map<number, Pending>();
  private nextRequestId = 1;
  private closed = false;

  constructor(transport: QueryTransport, counters: ClientCounters, encode: (frame: WireFrame) => Uint8Array) {
    this.transport = transport;
    this.counters = counters;
    this.encode = encode;
  }

  /**
   * Puts `query` (its requestId is set here) to `replica` and resolves with its answer, or with
   * why there is none: not connected, no answer within `timeoutMs`, an answer of the wrong kind.
   */
  ask<Q extends DistributiveOmit<Query, "requestId">>(replica: number, query: Q, timeoutMs: number, signal?: AbortSignal): Promise<QueryOutcome<AnswerOf<Q["kind"]>>> {
    if (this.closed) return Promise.reject(new ClientClosedError());
    if (signal?.aborted === true) return Promise.reject(new RequestAbortedError(signal.reason));
    if (!this.transport.isOpen(replica)) return Promise.resolve({ ok: false, reason: "not connected" });
    if (this.pending.size >= QUERIES_IN_FLIGHT_MAX) return Promise.resolve({ ok: false, reason: `${QUERIES_IN_FLIGHT_MAX} queries already in flight on this client` });
    const requestId = this.nextRequestId++;
    const frame = { ...query, requestId } as Query;
    // Encoded before anything waits, so a query the format refuses (a RangeError) leaves nothing behind.
    const payload = this.encode(frame);
    return new Promise<QueryOutcome<AnswerOf<Q["kind"]>>>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.pending.delete(requestId);
      };
      const onAbort = (): void => {
        finish();
        reject(new RequestAbortedError(signal?.reason));
      };
      const timer = setTimeout(() => {
        finish();
        resolve({ ok: false, reason: `no answer within ${timeoutMs} ms` });
      }, timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(requestId, {
        replica,
        expects: ANSWER_KINDS[frame.kind],
        settle: (outcome) => {
          finish();
          resolve(outcome as QueryOutcome<AnswerOf<Q["kind"]>>);
        },
        fail: (error) => {
          finish();
          reject(error);
        },
      });
      if (!this.transport.send(replica, payload)) this.pending.get(requestId)?.settle({ ok: false, reason: "its send queue is full" });
    });
  }

  /** An answer from `replica` (authenticated by the handshake). */
  onAnswer(replica: number, answer: QueryAnswer): void {
    const pending = this.pending.get(answer.requestId);
    if (pending === undefined || pending.replica !== replica) {
      this.counters.answersUnmatched += 1;
      return;
    }
    if (!pending.expects.includes(answer.kind)) {
      this.counters.answersRejected += 1;
      pending.settle({ ok: false, reason: `answered with a ${answer.kind} frame` });
      return;
    }
    pending.settle({ ok: true, answer });
  }

  /** Every query in flight rejects with ClientClosedError, and so does every later one. */
  close(): void {
    this.closed = true;
    for (const pending of [...this.pending.values()]) pending.fail(new ClientClosedError());
  }
}

/** Omit over each member of a union (the built-in Omit merges the members). */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
