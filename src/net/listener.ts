// Accepts incoming TCP connections and runs each as a `Connection` with the responder side of
// the handshake. One set of handlers serves every connection; each callback names its
// connection, whose `session` says who the peer proved to be.
//
// The listener bounds how many connections it holds (`connectionsMax`), so a flood of sockets
// costs at most that many send queues and decoders; a connection beyond the bound is closed at
// once and counted. A connection that fails (garbage, an oversized frame, a failed handshake)
// closes alone: the listener keeps serving the others.

import { type AddressInfo, type Server, type Socket, createServer } from "node:net";
import { type CloseReason, Connection, type ConnectionHandlers, type ConnectionSettings, connectionSettings, isPeerFault } from "./connection.js";
import type { HandshakeFactory } from "./handshake.js";
import { type ListenerCounters, newListenerCounters } from "./metrics.js";

/** Default bound on open connections: replicas and clients together. */
export const CONNECTIONS_MAX_DEFAULT = 1_024;

export interface ListenerOptions<Session> {
  /** Address to bind; "127.0.0.1" for tests, "0.0.0.0" to serve other machines. */
  readonly host: string;
  /** Port to bind; 0 picks a free one (see `listen()`'s result). */
  readonly port: number;
  readonly handshake: HandshakeFactory<Session>;
  readonly settings?: Partial<ConnectionSettings>;
  readonly connectionsMax?: number;
}

export class Listener<Session> {
  readonly counters: ListenerCounters = newListenerCounters();
  private readonly options: ListenerOptions<Session>;
  private readonly settings: ConnectionSettings;
  private readonly connectionsMax: number;
  private readonly handlers: ConnectionHandlers<Session>;
  private readonly open = new Set<Connection<Session>>();
  private server: Server | undefined;
  private closed = false;

  constructor(options: ListenerOptions<Session>, handlers: ConnectionHandlers<Session>) {
    this.options = options;
    this.settings = connectionSettings(options.settings);
    this.connectionsMax = options.connectionsMax ?? CONNECTIONS_MAX_DEFAULT;
    if (!Number.isSafeInteger(this.connectionsMax) || this.connectionsMax < 1) {
      throw new RangeError(`connectionsMax must be a positive integer; got ${this.connectionsMax}`);
    }
    this.handlers = handlers;
  }

  /** Connections currently held, handshaking or open. */
  get connectionCount(): number {
    return this.open.size;
  }

  get connections(): ReadonlySet<Connection<Session>> {
    return this.open;
  }

  /** Binds and starts accepting; resolves with the bound address (the port, when 0 was asked for). */
  listen(): Promise<AddressInfo> {
    if (this.server !== undefined || this.closed) return Promise.reject(new Error("listener: listen() may be called once, before close()"));
    const server = createServer({ noDelay: true }, this.onSocket);
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(new Error(`could not listen on ${this.options.host}:${this.options.port}: ${error.message}`));
      server.once("error", onError);
      server.listen(this.options.port, this.options.host, () => {
        server.off("error", onError);
        // Accept errors (EMFILE and the like) are the machine's, not a peer's: log and keep serving.
        server.on("error", (error) => this.settings.log.log("warn", "listener-error", { error: error.message }, "listener error"));
        resolve(server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting, closes every connection, and resolves when the server's handle is released. */
  close(): Promise<void> {
    this.closed = true;
    for (const connection of [...this.open]) connection.close();
    const server = this.server;
    if (server === undefined || !server.listening) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }

  private readonly onSocket = (socket: Socket): void => {
    if (this.closed || this.open.size >= this.connectionsMax) {
      this.counters.connectionsRefused += 1;
      this.settings.log.log("warn", "connections-max", { remote: socket.remoteAddress, connectionsMax: this.connectionsMax }, "refused a connection: at connectionsMax");
      socket.destroy();
      return;
    }
    this.counters.connectionsAccepted += 1;
    const connection = new Connection<Session>(
      socket,
      { settings: this.settings, handshake: this.options.handshake("responder"), label: `${socket.remoteAddress}:${socket.remotePort}`, counters: this.counters },
      { onOpen: (opened) => this.handlers.onOpen?.(opened), onFrame: (from, payload) => this.handlers.onFrame(from, payload), onClose: this.onClose },
    );
    this.open.add(connection);
    connection.start();
  };

  private readonly onClose = (connection: Connection<Session>, reason: CloseReason): void => {
    this.open.delete(connection);
    if (isPeerFault(reason)) this.counters.connectionsFailed += 1;
    this.handlers.onClose?.(connection, reason);
  };
}
