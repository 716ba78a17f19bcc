// One framed TCP connection: frames in through a callback, frames out through a bounded queue
// whose contents are coalesced into few large socket writes.
//
// Sending. `send()` only queues; the queue is written at most once per event-loop turn
// (setImmediate), and again whenever the socket drains. Each write copies as many queued frames
// as fit in WRITE_BATCH_BYTES into one Buffer and hands it to the socket with one write(), so a
// replica that emits a burst of votes pays one syscall for the burst. LIMITS.md prices one
// write() per message at ~11 µs of CPU against ~0.4 µs coalesced.
//
// Measured with src/bench/transport-bench.ts (100-byte payloads, 2M frames, one loopback
// connection, receiver on a worker thread, 2 vCPU, Node 20.20; medians of 3 interleaved runs;
// "busy" is the sender thread's event-loop busy time per frame):
//   strategy                                        frames/s   MB/s   frames/write   busy/frame
//   Connection: gathered into one Buffer (kept)        5.7M     594        270         0.16 µs
//   the same gathering inline on a bare socket         6.9M     716        256         0.14 µs
//   cork(); write() per frame; uncork() per burst      3.1M     322        256         0.32 µs
//   one write() per frame                              0.19M     20          1         5.2 µs
// Copying 100-byte frames into one buffer is cheaper than cork's writev, which builds a chunk
// object and an iovec entry per frame; one write() per frame is 30× slower. Shared machines
// drift (other runs: Connection 3.5–5.7M/s, cork 2.5–3.1M/s), but the order never changed. A
// 16 KiB batch was slower (3.8M/s against 4.1M/s in one run) and 256 KiB within noise of 64 KiB
// (4.3M/s) while holding four times the memory per connection, so 64 KiB it is.
// Payloads of LARGE_PAYLOAD_BYTES or more are not copied: their prefix and payload go out
// together as one corked (writev) write.
//
// Authentication. A handshake that agreed keys hands the connection a FrameAuthenticator
// (handshake.ts; frame-mac.ts is Bulwark's): from then on each frame's length prefix also counts a
// tag after the payload. The authenticator seals each frame into the write batch, right behind
// the payload's copy, so a small payload is still copied once and only the 16-byte tag is added;
// a large frame gets a separate tag buffer in its corked write. On receipt the frame decoder
// knows the tag as the frames' trailer: it refuses a length prefix too short to hold one, and
// hands over a view of the payload and the tag's offset, which the authenticator checks in
// place: nothing is copied. The first bad tag closes the connection ("bad-mac"), counted in
// `framesBadMac` and logged through the rate limiter like every peer fault; nothing of that
// frame or after it reaches the handler. When the connection closes, the authenticator zeroes
// its keys; if a direction's frame counter ever ran out (2^53 frames), the connection would
// close ("mac-exhausted") and the next one agree new keys.
// Measured with transport-bench.ts as above on a quiet machine (median of 5 interleaved runs,
// 2M frames of 100 bytes; the receiver checks every tag, as a Connection does):
//   strategy                                        frames/s   MB/s   frames/write   busy/frame
//   Connection, untagged (noHandshake)                6.2M      644        294         0.13 µs
//   Connection, 16-byte tags (connection-mac)         1.0M      104        282         0.86 µs
//   raw-gather, for reference                         7.8M      814        256         0.11 µs
// A tag costs ~0.55 µs on each side (frame-mac.ts), four times the rest of the sending path, so
// an authenticated connection carries about a sixth of an untagged one's small frames: still a
// million messages a second, over a hundred times what signature verification lets a replica
// order (LIMITS.md). Untagged connections pay only a few branches: alternating single runs of
// the code before and after tags existed gave medians of 5.4M and 5.2M frames/s, with
// overlapping spreads (5.2–5.6M and 4.8–6.1M).
//
// Backpressure. Nothing is handed to the socket while it is above its high-water mark ('drain'
// not yet emitted); frames wait in the bounded send queue, and when that is full `send()` returns
// false, drops the frame and counts it (see send-queue.ts for why dropping is safe). So a
// connection holds at most the queue's bound plus one write batch, however slow its reader.
//
// Failure. Whatever the peer does, the connection ends in `close(reason)`: an oversized length
// prefix (before the handshake is done, "oversized" means above the handshake's own small
// limit), a failed or slow handshake, a protocol error reported by the application, an exception
// from the application's frame handler, or a socket error. Nothing a peer sends throws out of
// an event-loop callback. Peer faults are logged through the shared rate limiter.

import type { Socket } from "node:net";
import { FRAME_BYTES_LIMIT, FRAME_BYTES_MAX_DEFAULT, FRAME_HEADER_BYTES, FrameDecoder, assertFrameBytesMax, encodeFrame, writeFrame } from "./frame.js";
import { FRAME_TAG_BYTES_MAX, type FrameAuthenticator, HANDSHAKE_TIMEOUT_MS_DEFAULT, type Handshake, type HandshakeStep } from "./handshake.js";
import { type LogLevel, RateLimitedLog } from "./log.js";
import { type TransportCounters, newTransportCounters } from "./metrics.js";
import { SEND_QUEUE_BYTES_MAX_DEFAULT, SEND_QUEUE_FRAMES_MAX_DEFAULT, SendQueue } from "./send-queue.js";

/** Target size of one coalesced write; see the figures above. */
export const WRITE_BATCH_BYTES = 64 * 1024;
/**
 * Payloads this large are written in place rather than copied into a batch; every smaller frame
 * fits one batch. On a connection whose frames carry tags the bound is lower by the tag size.
 */
export const LARGE_PAYLOAD_BYTES = WRITE_BATCH_BYTES - FRAME_HEADER_BYTES;
// TCP keep-alive probes find a peer that vanished without a FIN (power loss, a cut cable).
const KEEPALIVE_INITIAL_DELAY_MS = 10_000;

export type CloseReasonKind =
  /** This side called close(). */
  | "local"
  /** The peer closed the connection. */
  | "remote-end"
  /** The operating system reported an error (reset, unreachable, keep-alive timeout). */
  | "socket-error"
  /** The peer announced a frame above the maximum frame size. */
  | "frame-too-large"
  /** A frame after the handshake failed its MAC check: altered, replayed, reordered, or one before it was lost. */
  | "bad-mac"
  /** This side's MAC frame counter ran out; a new connection agrees new keys. */
  | "mac-exhausted"
  /** The application rejected what the peer sent (see `Connection.protocolError`). */
  | "protocol-error"
  /** The application's frame handler threw. */
  | "handler-error"
  | "handshake-failed"
  | "handshake-timeout";

export interface CloseReason {
  readonly kind: CloseReasonKind;
  readonly detail: string;
}

// How loudly each close is logged: a peer's misbehaviour warns; a peer going away is routine.
const CLOSE_LOG_LEVEL: Readonly<Record<CloseReasonKind, LogLevel>> = {
  local: "debug",
  "remote-end": "debug",
  "socket-error": "info",
  "frame-too-large": "warn",
  "bad-mac": "warn",
  "mac-exhausted": "info",
  "protocol-error": "warn",
  "handler-error": "warn",
  "handshake-failed": "warn",
  "handshake-timeout": "warn",
};

/** Whether a close reason means the peer misbehaved (as opposed to going away). */
export function isPeerFault(reason: CloseReason): boolean {
  return CLOSE_LOG_LEVEL[reason.kind] === "warn";
}

/** Settings shared by the connections of a listener or a peer link. */
export interface ConnectionSettings {
  /** Largest payload accepted from the peer, and sent to it. Default 16 MiB. */
  readonly frameBytesMax: number;
  /** Bound on queued outgoing bytes, prefixes included. Default 32 MiB. */
  readonly sendQueueBytesMax: number;
  /** Bound on queued outgoing frames. Default 65,536. */
  readonly sendQueueFramesMax: number;
  /** A handshake that takes longer closes the connection. Default 5 s. */
  readonly handshakeTimeoutMs: number;
  /** Shared by every connection of the process, so a flood of failures logs a few lines. */
  readonly log: RateLimitedLog;
}

export function connectionSettings(overrides: Partial<ConnectionSettings> = {}): ConnectionSettings {
  const settings: ConnectionSettings = {
    frameBytesMax: overrides.frameBytesMax ?? FRAME_BYTES_MAX_DEFAULT,
    sendQueueBytesMax: overrides.sendQueueBytesMax ?? SEND_QUEUE_BYTES_MAX_DEFAULT,
    sendQueueFramesMax: overrides.sendQueueFramesMax ?? SEND_QUEUE_FRAMES_MAX_DEFAULT,
    handshakeTimeoutMs: overrides.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS_DEFAULT,
    log: overrides.log ?? new RateLimitedLog(),
  };
  assertFrameBytesMax(settings.frameBytesMax);
  // Room for a MAC tag after the largest payload within what the length prefix can say.
  if (settings.frameBytesMax > FRAME_BYTES_LIMIT - FRAME_TAG_BYTES_MAX) {
    throw new RangeError(`frameBytesMax must be at most ${FRAME_BYTES_LIMIT - FRAME_TAG_BYTES_MAX}, leaving room for a MAC tag; got ${settings.frameBytesMax}`);
  }
  if (settings.sendQueueBytesMax < FRAME_HEADER_BYTES + settings.frameBytesMax) {
    throw new RangeError(
      `sendQueueBytesMax (${settings.sendQueueBytesMax}) must hold one frame of frameBytesMax (${settings.frameBytesMax}) plus its ${FRAME_HEADER_BYTES}-byte prefix; raise it or lower frameBytesMax`,
    );
  }
  if (!(settings.handshakeTimeoutMs > 0)) throw new RangeError(`handshakeTimeoutMs must be positive; got ${settings.handshakeTimeoutMs}`);
  return settings;
}

export interface ConnectionHandlers<Session> {
  /** The handshake is done: `connection.session` is set and frames flow both ways. */
  onOpen?(connection: Connection<Session>): void;
  /**
   * A frame from the peer, after the handshake, its MAC tag (if any) checked and removed. The
   * payload may be a view into a socket chunk; copy it to keep it. Call
   * `connection.protocolError()` to reject the peer.
   */
  onFrame(connection: Connection<Session>, payload: Uint8Array): void;
  /** Called once, whatever closed the connection. */
  onClose?(connection: Connection<Session>, reason: CloseReason): void;
}

export interface ConnectionOptions<Session> {
  readonly settings: ConnectionSettings;
  readonly handshake: Handshake<Session>;
  /** Names the connection in logs: a peer id or the remote address. */
  readonly label: string;
  /** Counters to add to; a link or a listener passes its own to sum over connections. */
  readonly counters?: TransportCounters;
  /**
   * A queue that outlives this connection: a peer link passes one so frames sent while it
   * reconnects wait for the next connection. A connection never clears a queue it was given.
   */
  readonly queue?: SendQueue;
}

export type ConnectionState = "handshaking" | "open" | "closed";

const LOCAL_CLOSE: CloseReason = { kind: "local", detail: "closed by this side" };

export class Connection<Session> {
  readonly label: string;
  readonly counters: TransportCounters;
  private readonly socket: Socket;
  private readonly settings: ConnectionSettings;
  private readonly handlers: ConnectionHandlers<Session>;
  private readonly handshake: Handshake<Session>;
  private readonly queue: SendQueue;
  private readonly ownsQueue: boolean;
  private readonly decoder: FrameDecoder;
  private currentState: ConnectionState = "handshaking";
  private started = false;
  private currentSession: Session | undefined;
  private currentCloseReason: CloseReason | undefined;
  private flushImmediate: NodeJS.Immediate | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  // Set when a handshake that agreed keys is done; frames in both directions are tagged after it.
  private authenticator: FrameAuthenticator | undefined;
  // The authenticator's tag size, or 0: every frame's prefix counts this much after the payload.
  private tagBytes = 0;
  private largePayloadBytes = LARGE_PAYLOAD_BYTES;

  /** Wraps a connected socket. Nothing happens until `start()`. */
  constructor(socket: Socket, options: ConnectionOptions<Session>, handlers: ConnectionHandlers<Session>) {
    this.socket = socket;
    this.settings = options.settings;
    this.handlers = handlers;
    this.handshake = options.handshake;
    this.label = options.label;
    this.counters = options.counters ?? newTransportCounters();
    this.ownsQueue = options.queue === undefined;
    this.queue = options.queue ?? new SendQueue({ bytesMax: this.settings.sendQueueBytesMax, framesMax: this.settings.sendQueueFramesMax });
    // Until the handshake is done, only frames of the handshake's size: a peer that has proved
    // nothing cannot make this side buffer a frame of frameBytesMax.
    assertFrameBytesMax(this.handshake.frameBytesMax);
    this.decoder = new FrameDecoder(Math.min(this.handshake.frameBytesMax, this.settings.frameBytesMax));
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** What the handshake established; undefined until the connection is open. */
  get session(): Session | undefined {
    return this.currentSession;
  }

  get closeReason(): CloseReason | undefined {
    return this.currentCloseReason;
  }

  get sendQueueFrames(): number {
    return this.queue.frames;
  }

  /** Queued bytes, prefixes included; never above `sendQueueBytesMax`. */
  get sendQueueBytes(): number {
    return this.queue.bytes;
  }

  /** Bytes handed to the socket and not yet taken by the kernel: at most about one write batch. */
  get socketBufferedBytes(): number {
    return this.socket.writableLength;
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  /** Attaches the socket's events and runs the handshake. Call once, after registering the connection. */
  start(): void {
    if (this.started) throw new Error(`connection ${this.label}: start() called twice`);
    this.started = true;
    const socket = this.socket;
    socket.setNoDelay(true); // the queue already coalesces; Nagle would only add delay
    socket.setKeepAlive(true, KEEPALIVE_INITIAL_DELAY_MS);
    socket.on("data", this.onData);
    socket.on("drain", this.onDrain);
    socket.on("error", this.onError);
    socket.on("end", this.onEnd);
    socket.on("close", this.onSocketClose);
    if (socket.destroyed) {
      this.close({ kind: "socket-error", detail: "socket closed before the connection started" });
      return;
    }
    this.handshakeTimer = setTimeout(this.onHandshakeTimeout, this.settings.handshakeTimeoutMs);
    this.applyHandshakeStep(() => this.handshake.start());
  }

  /**
   * Queues a frame. Returns false, and counts the frame as dropped, when the send queue is full
   * or the connection is closed. The caller must not modify `payload` afterwards.
   */
  send(payload: Uint8Array): boolean {
    if (payload.length > this.settings.frameBytesMax) {
      throw new RangeError(`connection ${this.label}: a ${payload.length}-byte payload exceeds frameBytesMax (${this.settings.frameBytesMax})`);
    }
    if (this.currentState === "closed" || !this.queue.offer(payload)) {
      this.counters.framesDropped += 1;
      this.counters.bytesDropped += FRAME_HEADER_BYTES + payload.length;
      return false;
    }
    if (this.currentState === "open") this.scheduleFlush();
    return true;
  }

  /** Closes the connection because the peer broke the protocol (an undecodable message, a forged sender). */
  protocolError(detail: string): void {
    this.close({ kind: "protocol-error", detail });
  }

  /** Closes the connection at once; frames still queued in a queue it owns are discarded. */
  close(reason: CloseReason = LOCAL_CLOSE): void {
    if (this.currentState === "closed") return;
    const handshaking = this.currentState === "handshaking";
    this.currentState = "closed";
    this.currentCloseReason = reason;
    if (this.flushImmediate !== undefined) clearImmediate(this.flushImmediate);
    if (this.handshakeTimer !== undefined) clearTimeout(this.handshakeTimer);
    this.flushImmediate = undefined;
    this.handshakeTimer = undefined;
    if (this.ownsQueue) this.counters.framesDiscarded += this.queue.clear().frames;
    if (handshaking) this.handshake.abandon?.();
    this.authenticator?.dispose();
    this.socket.destroy();
    this.settings.log.log(CLOSE_LOG_LEVEL[reason.kind], reason.kind, { connection: this.label, reason: reason.kind, detail: reason.detail }, `connection closed: ${reason.kind}`);
    this.handlers.onClose?.(this, reason);
  }

  // ------------------------------------------------------------------------------------------
  // Receiving

  private readonly onData = (chunk: Buffer): void => {
    this.counters.bytesReceived += chunk.length;
    const error = this.decoder.push(chunk, this.onPayload);
    if (error === undefined) return;
    if (error.kind === "frame-too-large") {
      this.close({ kind: "frame-too-large", detail: `the peer announced a ${error.frameBytes}-byte frame; the limit is ${error.frameBytesMax}` });
    } else {
      // Only a connection whose frames carry tags has a trailer.
      this.rejectFrame(`a ${error.frameBytes}-byte frame is shorter than its ${error.trailerBytes}-byte MAC tag`);
    }
  };

  // Returns whether to keep decoding the chunk. The frame's tag, if it has one, is the decoder's
  // trailer: `tagBytes` at `source[tagOffset]`.
  private readonly onPayload = (payload: Uint8Array, source: Uint8Array, tagOffset: number): boolean => {
    if (this.currentState === "closed") return false;
    this.counters.framesReceived += 1;
    if (this.currentState === "handshaking") return this.applyHandshakeStep(() => this.handshake.receive(payload));
    const authenticator = this.authenticator;
    if (authenticator !== undefined && !authenticator.open(payload, source, tagOffset)) {
      return this.rejectFrame(`frame ${authenticator.framesOpened} after the handshake failed its MAC check: altered, replayed, reordered, or a frame before it was lost`);
    }
    try {
      this.handlers.onFrame(this, payload);
    } catch (error) {
      this.close({ kind: "handler-error", detail: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      return false;
    }
    return !this.isClosed();
  };

  private rejectFrame(detail: string): boolean {
    this.counters.framesBadMac += 1;
    this.close({ kind: "bad-mac", detail });
    return false;
  }

  private applyHandshakeStep(next: () => HandshakeStep<Session>): boolean {
    let step: HandshakeStep<Session>;
    try {
      step = next();
    } catch (error) {
      step = { kind: "fail", detail: `the handshake threw: ${error instanceof Error ? error.message : String(error)}` };
    }
    if (step.kind === "fail") {
      this.close({ kind: "handshake-failed", detail: step.detail });
      return false;
    }
    for (const payload of step.send ?? []) this.writeNow(payload);
    if (step.kind === "done" && this.currentState === "handshaking") {
      clearTimeout(this.handshakeTimer);
      this.handshakeTimer = undefined;
      this.currentSession = step.session;
      if (step.authenticator === undefined) this.decoder.setLimits(this.settings.frameBytesMax, 0);
      else this.attachAuthenticator(step.authenticator);
      this.currentState = "open";
      this.handlers.onOpen?.(this);
      if (this.queue.frames > 0) this.scheduleFlush();
    }
    return !this.isClosed();
  }

  // After the handshake's last frames went out untagged: every frame from here on carries a tag.
  private attachAuthenticator(authenticator: FrameAuthenticator): void {
    const tagBytes = authenticator.tagBytes;
    if (!Number.isSafeInteger(tagBytes) || tagBytes < 1 || tagBytes > FRAME_TAG_BYTES_MAX) {
      throw new Error(`connection ${this.label}: a frame authenticator's tag must be 1 to ${FRAME_TAG_BYTES_MAX} bytes, not ${tagBytes}`);
    }
    this.authenticator = authenticator;
    this.tagBytes = tagBytes;
    this.largePayloadBytes = LARGE_PAYLOAD_BYTES - tagBytes;
    this.decoder.setLimits(this.settings.frameBytesMax, tagBytes);
  }

  // A method rather than an inline comparison: handlers called in between may close the
  // connection, which TypeScript's narrowing of `currentState` cannot see.
  private isClosed(): boolean {
    return this.currentState === "closed";
  }

  private readonly onHandshakeTimeout = (): void => {
    this.handshakeTimer = undefined;
    this.close({ kind: "handshake-timeout", detail: `no handshake within ${this.settings.handshakeTimeoutMs} ms` });
  };

  // ------------------------------------------------------------------------------------------
  // Sending

  // Handshake frames skip the queue: they are few, small, and must precede everything queued.
  private writeNow(payload: Uint8Array): void {
    if (this.currentState === "closed") return;
    if (payload.length > this.settings.frameBytesMax) throw new RangeError(`connection ${this.label}: a ${payload.length}-byte handshake frame exceeds frameBytesMax`);
    this.socket.write(encodeFrame(payload));
    this.counters.framesSent += 1;
    this.counters.bytesSent += FRAME_HEADER_BYTES + payload.length;
    this.counters.socketWrites += 1;
  }

  private scheduleFlush(): void {
    if (this.flushImmediate === undefined) this.flushImmediate = setImmediate(this.flush);
  }

  private readonly onDrain = (): void => {
    this.flush();
  };

  private readonly flush = (): void => {
    if (this.flushImmediate !== undefined) clearImmediate(this.flushImmediate);
    this.flushImmediate = undefined;
    // Each pass writes at least one frame, so the loop ends; a write of a batch larger than the
    // socket's high-water mark sets writableNeedDrain, which ends it early until 'drain'.
    while (this.currentState === "open" && this.queue.frames > 0 && !this.socket.writableNeedDrain) this.writeBatch();
  };

  private writeBatch(): void {
    const first = this.queue.at(0);
    if (first === undefined) return;
    const tagBytes = this.tagBytes;
    const authenticator = this.authenticator;
    if (first.length >= this.largePayloadBytes) {
      this.queue.shift();
      let tag: Buffer | undefined;
      if (authenticator !== undefined) {
        tag = Buffer.allocUnsafe(tagBytes);
        if (!authenticator.seal(first, tag, 0)) return this.closeExhausted(1);
      }
      const prefix = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
      prefix.writeUInt32BE(first.length + tagBytes, 0);
      this.socket.cork();
      this.socket.write(prefix);
      this.socket.write(first);
      if (tag !== undefined) this.socket.write(tag);
      this.socket.uncork();
      this.countWrite(1, FRAME_HEADER_BYTES + first.length + tagBytes);
      return;
    }
    // One pass: size the batch from the queue's byte count (exact when every queued frame is small;
    // the queue does not count tags, so they are added here), then copy frames in until the next
    // one would not fit. A tag is written straight behind its payload's copy.
    const batch = Buffer.allocUnsafe(Math.min(WRITE_BATCH_BYTES, this.queue.bytes + this.queue.frames * tagBytes));
    let frames = 0;
    let offset = 0;
    for (;;) {
      const payload = this.queue.at(0);
      if (payload === undefined || payload.length >= this.largePayloadBytes || offset + FRAME_HEADER_BYTES + payload.length + tagBytes > batch.length) break;
      this.queue.shift();
      offset = writeFrame(batch, offset, payload, tagBytes);
      frames += 1;
      if (authenticator !== undefined) {
        if (!authenticator.seal(payload, batch, offset)) return this.closeExhausted(frames);
        offset += tagBytes;
      }
    }
    // The first frame is small, so it fits: every call makes progress and flush() terminates.
    if (frames === 0) throw new Error(`connection ${this.label}: a write batch took no frame`);
    this.socket.write(offset === batch.length ? batch : batch.subarray(0, offset));
    this.countWrite(frames, offset);
  }

  // The authenticator can tag no more frames: `frames` taken from the queue are never written.
  private closeExhausted(frames: number): void {
    this.counters.framesDiscarded += frames;
    this.close({ kind: "mac-exhausted", detail: "the frame counter of this connection's send key ran out; the next connection agrees new keys" });
  }

  private countWrite(frames: number, bytes: number): void {
    this.counters.framesSent += frames;
    this.counters.bytesSent += bytes;
    this.counters.socketWrites += 1;
  }

  // ------------------------------------------------------------------------------------------
  // Socket lifecycle

  private readonly onError = (error: NodeJS.ErrnoException): void => {
    this.close({ kind: "socket-error", detail: error.code ?? error.message });
  };

  private readonly onEnd = (): void => {
    this.close({ kind: "remote-end", detail: "the peer closed the connection" });
  };

  private readonly onSocketClose = (): void => {
    this.close({ kind: "remote-end", detail: "the socket closed" });
  };
}
