// The hook for authenticating a connection before it carries protocol traffic.
//
// Issue 4 §2 starts every connection with a signed handshake that proves who the peer is and
// agrees per-connection MAC keys. The transport does no cryptography itself; it runs whatever
// `Handshake` it is given: the handshake's frames go first, on their own, and frames the peer
// sends before the handshake is done go to the handshake instead of the application. Frames the
// application sends meanwhile wait in the send queue. When the handshake returns `done`, its
// session (the authenticated peer and keys) is attached to the connection and normal traffic
// starts; when it returns `fail`, or takes longer than the handshake timeout, the connection
// closes with that reason. A peer that skips or garbles the handshake never reaches the
// application.

/** What a handshake does next. `send` frames go out before anything else on the connection. */
export type HandshakeStep<Session> =
  | { readonly kind: "continue"; readonly send?: readonly Uint8Array[] }
  | { readonly kind: "done"; readonly session: Session; readonly send?: readonly Uint8Array[] }
  | { readonly kind: "fail"; readonly detail: string };

/** One connection's handshake: a small state machine, like the consensus core, with no I/O. */
export interface Handshake<Session> {
  /** Called once, when the socket is connected. */
  start(): HandshakeStep<Session>;
  /** Called for each frame the peer sends until the handshake is done or failed. */
  receive(payload: Uint8Array): HandshakeStep<Session>;
}

/** The side that dialled (a peer link) initiates; the side that accepted (a listener) responds. */
export type HandshakeRole = "initiator" | "responder";

export type HandshakeFactory<Session> = (role: HandshakeRole) => Handshake<Session>;

/** No authentication: the connection opens at once with a null session. For tests and tools. */
export const noHandshake: HandshakeFactory<null> = () => ({
  start: () => ({ kind: "done", session: null }),
  receive: () => ({ kind: "fail", detail: "no handshake expected" }),
});

/** Default bound on how long a handshake may take before the connection is closed. */
export const HANDSHAKE_TIMEOUT_MS_DEFAULT = 5_000;
