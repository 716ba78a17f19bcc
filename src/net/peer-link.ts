// An outgoing link to one peer address that stays up: it dials, runs the handshake, and after
// any failure redials with exponential back-off (backoff.ts) until closed.
//
// The link owns one bounded send queue that outlives its connections. Frames sent while the peer
// is away wait there, up to the queue's bounds, and flow as soon as the next connection's
// handshake is done; frames that do not fit are dropped and counted, as on a live connection.
// Frames already handed to a socket that then fails are lost with it: delivery is at most once,
// and the protocol above re-sends what matters (see send-queue.ts).

import { type Socket, connect } from "node:net";
import { BACKOFF_DEFAULTS, type BackoffOptions, type RandomSource, assertBackoffOptions, backoffDelayMs } from "./backoff.js";
import { type CloseReason, Connection, type ConnectionHandlers, type ConnectionSettings, connectionSettings } from "./connection.js";
import { FRAME_HEADER_BYTES } from "./frame.js";
import type { HandshakeFactory } from "./handshake.js";
import { type PeerLinkCounters, newPeerLinkCounters } from "./metrics.js";
import { SendQueue } from "./send-queue.js";

/** A dial that has not connected by then is abandoned and retried after back-off. */
export const CONNECT_TIMEOUT_MS_DEFAULT = 3_000;

export interface PeerLinkOptions<Session> {
  readonly host: string;
  readonly port: number;
  /** Names the link in logs; defaults to host:port. */
  readonly label?: string;
  readonly handshake: HandshakeFactory<Session>;
  /** Uniform in [0, 1); jitters the back-off. */
  readonly random: RandomSource;
  readonly settings?: Partial<ConnectionSettings>;
  readonly backoff?: Partial<BackoffOptions>;
  readonly connectTimeoutMs?: number;
}

/**
 * The connection handlers run for each of the link's connections. `onClose` is called for every
 * connection that ends, whether or not its handshake finished; the link then redials by itself.
 */
export type PeerLinkHandlers<Session> = ConnectionHandlers<Session>;

export type PeerLinkState = "idle" | "connecting" | "handshaking" | "open" | "backoff" | "closed";

export class PeerLink<Session> {
  readonly label: string;
  readonly counters: PeerLinkCounters = newPeerLinkCounters();
  private readonly host: string;
  private readonly port: number;
  private readonly settings: ConnectionSettings;
  private readonly handshake: HandshakeFactory<Session>;
  private readonly handlers: PeerLinkHandlers<Session>;
  private readonly random: RandomSource;
  private readonly backoff: BackoffOptions;
  private readonly connectTimeoutMs: number;
  private readonly queue: SendQueue;
  private currentState: PeerLinkState = "idle";
  // Failed attempts since the last open connection: the back-off exponent.
  private attempt = 0;
  private everOpened = false;
  private dialling: Socket | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private backoffTimer: NodeJS.Timeout | undefined;
  private connection: Connection<Session> | undefined;

  constructor(options: PeerLinkOptions<Session>, handlers: PeerLinkHandlers<Session>) {
    this.host = options.host;
    this.port = options.port;
    this.label = options.label ?? `${options.host}:${options.port}`;
    this.settings = connectionSettings(options.settings);
    this.handshake = options.handshake;
    this.handlers = handlers;
    this.random = options.random;
    this.backoff = { ...BACKOFF_DEFAULTS, ...options.backoff };
    assertBackoffOptions(this.backoff);
    this.connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS_DEFAULT;
    this.queue = new SendQueue({ bytesMax: this.settings.sendQueueBytesMax, framesMax: this.settings.sendQueueFramesMax });
  }

  get state(): PeerLinkState {
    return this.currentState;
  }

  /** The open connection's handshake session, if a connection is open. */
  get session(): Session | undefined {
    return this.currentState === "open" ? this.connection?.session : undefined;
  }

  get sendQueueFrames(): number {
    return this.queue.frames;
  }

  /** Queued bytes, prefixes included; never above `sendQueueBytesMax`. */
  get sendQueueBytes(): number {
    return this.queue.bytes;
  }

  /** Starts dialling. */
  start(): void {
    if (this.currentState !== "idle") throw new Error(`peer link ${this.label}: start() called in state ${this.currentState}`);
    this.dial();
  }

  /**
   * Queues a frame for the peer, connected or not. Returns false, and counts the frame as dropped,
   * when the queue is full or the link is closed. The caller must not modify `payload` afterwards.
   */
  send(payload: Uint8Array): boolean {
    if (this.connection !== undefined) return this.connection.send(payload);
    if (payload.length > this.settings.frameBytesMax) {
      throw new RangeError(`peer link ${this.label}: a ${payload.length}-byte payload exceeds frameBytesMax (${this.settings.frameBytesMax})`);
    }
    if (this.currentState !== "closed" && this.queue.offer(payload)) return true;
    this.counters.framesDropped += 1;
    this.counters.bytesDropped += FRAME_HEADER_BYTES + payload.length;
    return false;
  }

  /** Stops the link for good: closes the connection, cancels timers, discards queued frames. */
  close(): void {
    if (this.currentState === "closed") return;
    this.currentState = "closed";
    this.clearTimers();
    this.dialling?.destroy();
    this.dialling = undefined;
    this.connection?.close();
    this.connection = undefined;
    this.counters.framesDiscarded += this.queue.clear().frames;
  }

  private dial(): void {
    this.currentState = "connecting";
    this.counters.connectAttempts += 1;
    const socket = connect({ host: this.host, port: this.port });
    this.dialling = socket;
    const onError = (error: NodeJS.ErrnoException): void => this.dialFailed(socket, error.code ?? error.message);
    // `on`, not `once`: the listener stays after a failure, so a late error on the abandoned
    // socket finds a handler instead of becoming an uncaught exception.
    socket.on("error", onError);
    this.connectTimer = setTimeout(() => this.dialFailed(socket, `no connection within ${this.connectTimeoutMs} ms`), this.connectTimeoutMs);
    socket.once("connect", () => {
      if (this.dialling !== socket) return;
      socket.off("error", onError);
      this.clearTimers();
      this.dialling = undefined;
      this.currentState = "handshaking";
      const connection = new Connection<Session>(
        socket,
        { settings: this.settings, handshake: this.handshake("initiator"), label: this.label, counters: this.counters, queue: this.queue },
        { onOpen: this.onOpen, onFrame: (from, payload) => this.handlers.onFrame(from, payload), onClose: this.onClose },
      );
      this.connection = connection;
      connection.start();
    });
  }

  private dialFailed(socket: Socket, detail: string): void {
    if (this.dialling !== socket) return;
    this.dialling = undefined;
    this.clearTimers();
    socket.destroy();
    this.counters.connectFailures += 1;
    this.settings.log.log("info", "connect-failed", { link: this.label, detail }, "could not connect to peer; retrying with back-off");
    this.scheduleRedial();
  }

  private readonly onOpen = (connection: Connection<Session>): void => {
    if (connection !== this.connection) return;
    this.currentState = "open";
    this.counters.connected = true;
    if (this.everOpened) this.counters.reconnects += 1;
    this.everOpened = true;
    this.attempt = 0;
    this.handlers.onOpen?.(connection);
  };

  private readonly onClose = (connection: Connection<Session>, reason: CloseReason): void => {
    if (connection !== this.connection) return;
    this.connection = undefined;
    if (!this.counters.connected) this.counters.connectFailures += 1;
    this.counters.connected = false;
    this.handlers.onClose?.(connection, reason);
    if (this.currentState !== "closed") this.scheduleRedial();
  };

  private scheduleRedial(): void {
    this.currentState = "backoff";
    const delayMs = backoffDelayMs(this.attempt, this.backoff, this.random);
    this.attempt += 1;
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      this.dial();
    }, delayMs);
  }

  private clearTimers(): void {
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    if (this.backoffTimer !== undefined) clearTimeout(this.backoffTimer);
    this.connectTimer = undefined;
    this.backoffTimer = undefined;
  }
}
