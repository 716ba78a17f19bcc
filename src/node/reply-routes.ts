// Where a replica sends the replies to a client's requests: the client connection its latest
// verified request came from. A client may reconnect (another connection, even another gateway
// process, possibly while the replica still thinks the old connection is open) and its replies
// must follow it. So a route moves for a request that
//
//   - verifies: its signature is the client's (a stranger's forged request moves nothing), and
//   - is not older than the one that set the route: a replay of one of the client's old
//     envelopes, which anyone can read in the blocks, does not move it.
//
// The same envelope offered again does move it: that is how a client that reconnected, or
// retried through another gateway, gets its reply. Someone else holding that envelope (it is
// public once executed) can take the route with it, but gains nothing: the client's own
// retransmission moves the route back and, in the same step, the core answers it from the reply
// cache (PBFT §4.1: a retransmitted request gets the cached reply).
//
// Memory is bounded by the connections: each holds at most `perConnectionMax` client keys, and a
// connection's routes go when it closes (`forget`).

import type { ClientRequest } from "../consensus/pbft/types.js";
import { positiveInteger } from "../crypto/verify-pool.js";

export interface ReplyRoutesOptions<C> {
  /** Whether the request's signature and fields verify (the core's check; it remembers its verdict). */
  readonly verify: (request: ClientRequest) => boolean;
  /** Whether replies can still reach `connection`. */
  readonly isOpen: (connection: C) => boolean;
  /** Most client keys one connection may hold routes for. */
  readonly perConnectionMax: number;
  /** Counts a refused move ("routes-stale", "routes-full"). */
  readonly count?: (name: string) => void;
}

export class ReplyRoutes<C> {
  private readonly verify: (request: ClientRequest) => boolean;
  private readonly isOpen: (connection: C) => boolean;
  private readonly perConnectionMax: number;
  private readonly count: (name: string) => void;
  /** Client key (hex) → its connection and the nonce of the request that set the route. */
  private readonly routes = new Map<string, { readonly connection: C; readonly nonce: number }>();
  private readonly keysOf = new Map<C, Set<string>>();

  constructor(options: ReplyRoutesOptions<C>) {
    this.verify = options.verify;
    this.isOpen = options.isOpen;
    this.perConnectionMax = positiveInteger("perConnectionMax", options.perConnectionMax);
    this.count = options.count ?? (() => undefined);
  }

  /** Client keys with a route. */
  get size(): number {
    return this.routes.size;
  }

  /** Where `client`'s replies go, if anywhere. */
  connectionOf(client: string): C | undefined {
    return this.routes.get(client)?.connection;
  }

  /** A request arrived on `connection`: routes its client's replies there if the rules above allow. Returns whether they go there now. */
  offer(request: ClientRequest, connection: C): boolean {
    if (!this.isOpen(connection)) return false;
    const client = request.client;
    const nonce = request.timestamp;
    const previous = this.routes.get(client);
    if (previous !== undefined) {
      if (previous.connection === connection) {
        if (nonce > previous.nonce && this.verify(request)) this.routes.set(client, { connection, nonce });
        return true;
      }
      if (nonce < previous.nonce) {
        this.count("routes-stale");
        return false;
      }
    }
    let keys = this.keysOf.get(connection);
    if (keys !== undefined && keys.size >= this.perConnectionMax) {
      this.count("routes-full");
      return false;
    }
    // Last, as the only costly check (once per request object: the core's verdict is remembered).
    if (!this.verify(request)) return false;
    if (keys === undefined) {
      keys = new Set();
      this.keysOf.set(connection, keys);
    }
    keys.add(client);
    if (previous !== undefined) {
      const previousKeys = this.keysOf.get(previous.connection);
      previousKeys?.delete(client);
      if (previousKeys?.size === 0) this.keysOf.delete(previous.connection);
    }
    this.routes.set(client, { connection, nonce });
    return true;
  }

  /** `connection` closed: its routes go. */
  forget(connection: C): void {
    const keys = this.keysOf.get(connection);
    if (keys === undefined) return;
    for (const key of keys) if (this.routes.get(key)?.connection === connection) this.routes.delete(key);
    this.keysOf.delete(connection);
  }
}
