// Transport counters as plain objects, mutated in place on the hot path. Exporters (prom-client,
// `bulwark status`) read them; nothing here allocates per frame. Counters only ever grow; the
// gauges (queue depths, `connected`) are read from the objects that own them.

/** Counters of one connection, or summed over the connections of a link or a listener. */
export interface TransportCounters {
  /** Frames handed to the socket, handshake frames included. */
  framesSent: number;
  /** Bytes handed to the socket, length prefixes and MAC tags included. */
  bytesSent: number;
  framesReceived: number;
  /** Bytes read from the socket, length prefixes and MAC tags included. */
  bytesReceived: number;
  /** Frames refused because the send queue was full or the link closed. */
  framesDropped: number;
  bytesDropped: number;
  /** Frames that were queued but never written because their connection closed. */
  framesDiscarded: number;
  /** socket.write() calls: framesSent ÷ socketWrites is the coalescing factor. */
  socketWrites: number;
  /** Frames whose MAC tag failed (each closes its connection with "bad-mac"). */
  framesBadMac: number;
}

export function newTransportCounters(): TransportCounters {
  return {
    framesSent: 0,
    bytesSent: 0,
    framesReceived: 0,
    bytesReceived: 0,
    framesDropped: 0,
    bytesDropped: 0,
    framesDiscarded: 0,
    socketWrites: 0,
    framesBadMac: 0,
  };
}

/** Counters of an outgoing peer link, over all its connections. */
export interface PeerLinkCounters extends TransportCounters {
  /** Whether a connection is open (handshake done) right now. */
  connected: boolean;
  connectAttempts: number;
  /** Attempts that ended before the handshake finished. */
  connectFailures: number;
  /** Connections opened after the first one. */
  reconnects: number;
}

export function newPeerLinkCounters(): PeerLinkCounters {
  return { ...newTransportCounters(), connected: false, connectAttempts: 0, connectFailures: 0, reconnects: 0 };
}

/** Counters of a listener; the transport counters are summed over its connections. */
export interface ListenerCounters extends TransportCounters {
  connectionsAccepted: number;
  /** Connections refused because `connectionsMax` were open. */
  connectionsRefused: number;
  /** Connections closed for a malformed frame, a failed handshake or a protocol error. */
  connectionsFailed: number;
}

export function newListenerCounters(): ListenerCounters {
  return { ...newTransportCounters(), connectionsAccepted: 0, connectionsRefused: 0, connectionsFailed: 0 };
}
