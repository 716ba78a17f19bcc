// The hook for authenticating a connection before it carries protocol traffic.
//
// Issue 4 §2 starts every connection with a signed handshake that proves who the peer is and
// agrees per-connection MAC keys. The transport runs whatever `Handshake` it is given: the
// handshake's frames go first, on their own, and frames the peer sends before the handshake is
// done go to the handshake instead of the application, refused when larger than the handshake's
// own `frameBytesMax` (a peer that has proved nothing must not make a replica buffer 16 MiB).
// Frames the application sends meanwhile wait in the send queue. When the handshake returns
// `done`, its session (the authenticated peer) is attached to the connection and normal traffic
// starts; when it returns `fail`, or takes longer than the handshake timeout, the connection
// closes with that reason. A peer that skips or garbles the handshake never reaches the
// application.
//
// A handshake that agreed keys hands the connection a `FrameAuthenticator` with its `done` step.
// From then on the connection appends a tag to every frame it sends and checks (and strips) the
// tag of every frame it receives, closing the connection with "bad-mac" on the first one that
// fails. The transport does no cryptography of its own: the authenticator does (frame-mac.ts is
// the one Bulwark uses), so a handshake without keys (`noHandshake`, test handshakes) leaves
// frames exactly as they were.

/**
 * Authenticates the frames of one connection in both directions after its handshake. Each
 * direction has its own key and an implicit frame counter that both ends advance in step, so a
 * frame that is altered, replayed, reordered or dropped makes the next check fail. The counters
 * advance on every call: the connection seals each frame exactly once, in the order it writes
 * them, and opens each received frame exactly once, in the order they arrive.
 */
export interface FrameAuthenticator {
  /** Bytes of the tag appended to every frame after the handshake. */
  readonly tagBytes: number;
  /**
   * Writes the tag of the next outgoing frame, whose payload is `payload`, at `target[offset]`
   * (`tagBytes` of it, which must be there). An offset rather than a view, so a connection seals
   * straight into its write batch without making a view per frame. Returns false, writing
   * nothing, when this end can tag no more frames (its frame counter ran out, or it was disposed):
   * the connection must close, and a new one agrees new keys.
   */
  seal(payload: Uint8Array, target: Uint8Array, offset: number): boolean;
  /**
   * Whether the `tagBytes` at `source[offset]` are the tag of the next incoming frame, whose
   * payload is `payload`; usually `source` is the received frame or chunk and `offset` where the
   * tag starts in it. After one false answer every later call answers false: the stream can no
   * longer be trusted. Never throws.
   */
  open(payload: Uint8Array, source: Uint8Array, offset: number): boolean;
  /** Frames that passed `open` so far: which frame failed, for the log. */
  readonly framesOpened: number;
  /** Called once when the connection closes: the keys are no longer needed and are zeroed. */
  dispose(): void;
}

/** What a handshake does next. `send` frames go out before anything else on the connection. */
export type HandshakeStep<Session> =
  | { readonly kind: "continue"; readonly send?: readonly Uint8Array[] }
  | {
      readonly kind: "done";
      readonly session: Session;
      /** Frames sent before the authenticator takes over: a last handshake frame goes out untagged. */
      readonly send?: readonly Uint8Array[];
      /** Tags every later frame in both directions; absent, frames go untagged. */
      readonly authenticator?: FrameAuthenticator;
    }
  | { readonly kind: "fail"; readonly detail: string };

/** One connection's handshake: a small state machine, like the consensus core, with no I/O. */
export interface Handshake<Session> {
  /**
   * The largest frame the peer may send before the handshake is done. The connection refuses a
   * larger one as soon as its length prefix arrives ("frame-too-large"), so a peer that has proved
   * nothing cannot make it buffer up to the connection's frameBytesMax; the limit rises to that
   * when the handshake is done.
   */
  readonly frameBytesMax: number;
  /** Called once, when the socket is connected. */
  start(): HandshakeStep<Session>;
  /** Called for each frame the peer sends until the handshake is done or failed. */
  receive(payload: Uint8Array): HandshakeStep<Session>;
  /**
   * Called once if the connection closes before the handshake is done (a timeout, the peer going
   * away, a failure): a handshake holding secrets zeroes them. Optional for handshakes without any.
   */
  abandon?(): void;
}

/** The side that dialled (a peer link) initiates; the side that accepted (a listener) responds. */
export type HandshakeRole = "initiator" | "responder";

export type HandshakeFactory<Session> = (role: HandshakeRole) => Handshake<Session>;

/** No authentication: the connection opens at once with a null session. For tests and tools. */
export const noHandshake: HandshakeFactory<null> = () => ({
  frameBytesMax: 0, // done before the peer can send anything
  start: () => ({ kind: "done", session: null }),
  receive: () => ({ kind: "fail", detail: "no handshake expected" }),
});

/** The largest MAC tag a frame authenticator may add; frameBytesMax leaves this much room under the prefix's limit. */
export const FRAME_TAG_BYTES_MAX = 64;

/** Default bound on how long a handshake may take before the connection is closed. */
export const HANDSHAKE_TIMEOUT_MS_DEFAULT = 5_000;
