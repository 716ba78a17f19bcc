// The client's connections: one PeerLink per replica, each dialling that replica's address from
// the cluster config, proving the client's key in the handshake and checking that the other end
// holds the key the config lists for that replica (node/handshake.ts). A link redials by itself
// after any failure, and frames sent while it is down wait in its bounded queue.
//
// What reaches the client is only client replies that an authenticated replica sent about itself,
// and the answers to the client's queries (status, read-proof / read-unavailable, blocks): the
// handshake's session says which replica the connection is with, and a reply or status that names
// another replica is dropped and counted (a faulty replica must not vote twice). Anything else a
// replica sends (undecodable bytes, frames meant for replicas) breaks the wire protocol and closes
// that connection; the link then reconnects.

import type { Ed25519PrivateKey } from "../crypto/ed25519.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import type { Connection } from "../net/connection.js";
import { PeerLink } from "../net/peer-link.js";
import { parseAddress } from "../node/address.js";
import { clientDialHandshake } from "../node/handshake.js";
import { WireDecodeError, decodeWireFrame } from "../node/wire.js";
import type { PeerSession, WireFrame } from "../node/wire-types.js";
import type { ClientCounters, ClientTransportOptions } from "./types.js";

export type ClientReply = Extract<WireFrame, { kind: "client-reply" }>;
/** A replica's answer to one of the client's queries (replica-queries.ts). */
export type QueryAnswer = Extract<WireFrame, { kind: "status" | "read-proof" | "read-unavailable" | "blocks" }>;

export interface ReplicaLinksHandlers {
  /** A reply that replica `replica` (authenticated by the handshake) sent about itself. */
  onReply(replica: number, reply: ClientReply): void;
  /** An answer that replica `replica` sent to a query (status, read, blocks). */
  onAnswer(replica: number, answer: QueryAnswer): void;
  /** The link to `replica` completed a handshake: a new connection, so the replica holds no state for it yet. */
  onOpen(replica: number): void;
}

export class ReplicaLinks {
  private readonly links: readonly PeerLink<PeerSession>[];
  private readonly handlers: ReplicaLinksHandlers;
  private readonly counters: ClientCounters;

  constructor(cluster: ClusterConfig, privateKey: Ed25519PrivateKey, transport: ClientTransportOptions, counters: ClientCounters, handlers: ReplicaLinksHandlers) {
    this.handlers = handlers;
    this.counters = counters;
    this.links = cluster.replicas.map((replica) => {
      const { host, port } = parseAddress(replica.address);
      return new PeerLink<PeerSession>(
        {
          host,
          port,
          label: `replica ${replica.id} (${replica.address})`,
          handshake: clientDialHandshake({ cluster, privateKey }, replica.id),
          random: transport.random ?? Math.random,
          ...(transport.settings === undefined ? {} : { settings: transport.settings }),
          ...(transport.backoff === undefined ? {} : { backoff: transport.backoff }),
          ...(transport.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: transport.connectTimeoutMs }),
        },
        {
          onOpen: () => this.handlers.onOpen(replica.id),
          onFrame: (connection, payload) => this.onFrame(replica.id, connection, payload),
        },
      );
    });
  }

  start(): void {
    for (const link of this.links) link.start();
  }

  /** How many links have an open, authenticated connection. */
  get openCount(): number {
    let open = 0;
    for (const link of this.links) if (link.state === "open") open += 1;
    return open;
  }

  isOpen(replica: number): boolean {
    return this.links[replica]?.state === "open";
  }

  /** The handshake binding of `replica`'s open connection (node/session-attach.ts); undefined when it is not open. */
  binding(replica: number): Uint8Array | undefined {
    return this.links[replica]?.session?.binding;
  }

  /** Queues `payload` for `replica`; false when the link's queue is full (the frame is dropped and counted there). */
  send(replica: number, payload: Uint8Array): boolean {
    const link = this.links[replica];
    if (link === undefined) throw new RangeError(`replica ${replica} is not in the cluster`);
    return link.send(payload);
  }

  /** Each link's state, for an error message: "replica 0 (host:port) open, replica 1 (...) backoff after 3 failed connects". */
  describe(): string {
    return this.links
      .map((link) => (link.state === "open" ? `${link.label} open` : `${link.label} ${link.state} after ${link.counters.connectFailures} failed connection attempts`))
      .join(", ");
  }

  close(): void {
    for (const link of this.links) link.close();
  }

  private onFrame(replica: number, connection: Connection<PeerSession>, payload: Uint8Array): void {
    const session = connection.session;
    // The handshake factory for this link only completes with the replica it dialled; checking
    // again keeps a reply's attribution resting on what was proven, not on which link it came in on.
    if (session?.kind !== "replica" || session.id !== replica) {
      this.counters.framesRejected += 1;
      connection.protocolError(`the connection's session is not replica ${replica}`);
      return;
    }
    let frame: WireFrame;
    try {
      frame = decodeWireFrame(payload);
    } catch (error) {
      if (!(error instanceof WireDecodeError)) throw error;
      this.counters.framesRejected += 1;
      connection.protocolError(`undecodable frame: ${error.message}`);
      return;
    }
    if (isQueryAnswer(frame)) {
      this.counters.answersReceived += 1;
      if (frame.kind === "status" && frame.replica !== replica) {
        this.counters.repliesMisattributed += 1;
        return;
      }
      this.handlers.onAnswer(replica, frame);
      return;
    }
    if (frame.kind !== "client-reply") {
      this.counters.framesRejected += 1;
      connection.protocolError(`a replica sent a ${frame.kind} frame to a client`);
      return;
    }
    this.counters.repliesReceived += 1;
    if (frame.replica !== replica) {
      this.counters.repliesMisattributed += 1;
      return;
    }
    this.handlers.onReply(replica, frame);
  }
}

function isQueryAnswer(frame: WireFrame): frame is QueryAnswer {
  return frame.kind === "status" || frame.kind === "read-proof" || frame.kind === "read-unavailable" || frame.kind === "blocks";
}
