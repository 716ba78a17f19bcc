// Length-prefixed frames: a 4-byte big-endian length, then the payload, then a trailer of a fixed
// size agreed by both ends (0 bytes, or a MAC tag on an authenticated connection: frame-mac.ts).
// The length counts payload and trailer. Every message between replicas and from clients travels
// in one frame; the codec (codec.ts) fills the payload.
//
// The decoder is the first code that touches a peer's bytes, so it must hold three properties
// whatever the peer sends:
//   - Bounded memory. A length above `frameBytesMax` plus the trailer, or below the trailer, is
//     refused as soon as its 4 bytes are read, before any of the payload is buffered. A payload
//     that arrives in pieces is assembled in a buffer that grows with the bytes actually received
//     (at most twice them), so announcing a 16 MiB frame and then trickling bytes costs the
//     sender as much as the receiver.
//   - Linear work. Each received byte is copied at most a few times whatever the chunk
//     boundaries: one byte per chunk or a thousand frames per chunk cost the same per byte. A
//     frame that lies wholly inside one chunk is not copied at all.
//   - No exceptions. Decoding returns a `FrameError`; nothing throws for any input.

/** Bytes of the length prefix. */
export const FRAME_HEADER_BYTES = 4;

/**
 * Default largest payload accepted. It must hold the largest message the protocol sends (a
 * NEW-VIEW carrying many prepared certificates); 16 MiB leaves room and still bounds what one
 * connection can make a replica allocate.
 */
export const FRAME_BYTES_MAX_DEFAULT = 16 * 1024 * 1024;

/** The largest length the 4-byte prefix can carry. */
export const FRAME_BYTES_LIMIT = 0xffff_ffff;

// First capacity of the buffer that assembles a payload split across chunks; it then doubles up
// to the announced length. Small enough that an idle half-frame costs little.
const PARTIAL_PAYLOAD_BYTES_INITIAL = 64 * 1024;

/** A length prefix above the limit; both figures count the trailer, as the prefix does. */
export interface FrameTooLarge {
  readonly kind: "frame-too-large";
  readonly frameBytes: number;
  readonly frameBytesMax: number;
}

/** A length prefix too small to hold the trailer (a frame with no room for its MAC tag). */
export interface FrameTooShort {
  readonly kind: "frame-too-short";
  readonly frameBytes: number;
  readonly trailerBytes: number;
}

export type FrameError = FrameTooLarge | FrameTooShort;

/**
 * Called for each complete frame, in order, with its payload and where its trailer is: the
 * `trailerBytes` at `source[trailerOffset]` (when there is a trailer; `source` is the buffer the
 * payload lies in). An offset rather than a view of the trailer, so no second view is made per
 * frame. Return false to stop decoding the rest of the chunk (the connection is closing). A
 * payload is usually a view into the received chunk: a consumer that keeps it beyond the call
 * keeps that chunk (at most 64 KiB) alive too, and must copy it if that matters.
 */
export type FrameSink = (payload: Uint8Array, source: Uint8Array, trailerOffset: number) => boolean;

export function assertFrameBytesMax(frameBytesMax: number): void {
  if (!Number.isSafeInteger(frameBytesMax) || frameBytesMax < 0 || frameBytesMax > FRAME_BYTES_LIMIT) {
    throw new RangeError(`frameBytesMax must be an integer in [0, ${FRAME_BYTES_LIMIT}]; got ${frameBytesMax}`);
  }
}

export class FrameDecoder {
  // The largest payload, and the trailer after every payload: a length prefix must lie in
  // [trailerBytes, frameBytesMax + trailerBytes].
  private frameBytesMax: number;
  private trailerBytes = 0;
  // The length prefix when it arrives split across chunks.
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerBytes = 0;
  // Payload length of the frame being read, or -1 while its prefix is still being read.
  private frameBytes = -1;
  // A payload that arrived split across chunks, assembled here.
  private partial: Buffer | undefined;
  private partialBytes = 0;
  private failure: FrameError | undefined;

  constructor(frameBytesMax: number = FRAME_BYTES_MAX_DEFAULT) {
    assertFrameBytesMax(frameBytesMax);
    this.frameBytesMax = frameBytesMax;
  }

  /**
   * Changes the largest payload and the trailer from the next length prefix on: a connection
   * starts at its handshake's small limit and no trailer, and raises them when the handshake is
   * done (the trailer to the MAC tag's size, if the frames carry tags from then on).
   */
  setLimits(frameBytesMax: number, trailerBytes: number): void {
    assertFrameBytesMax(frameBytesMax);
    if (!Number.isSafeInteger(trailerBytes) || trailerBytes < 0 || frameBytesMax + trailerBytes > FRAME_BYTES_LIMIT) {
      throw new RangeError(`a frame trailer must be a non-negative integer that leaves frameBytesMax (${frameBytesMax}) within ${FRAME_BYTES_LIMIT}; got ${trailerBytes}`);
    }
    this.frameBytesMax = frameBytesMax;
    this.trailerBytes = trailerBytes;
  }

  /** Bytes held for an incomplete frame (prefix and payload): what a stalled peer costs us. */
  get bufferedBytes(): number {
    return this.headerBytes + this.partialBytes;
  }

  /**
   * Decodes `chunk`, calling `sink` for every frame it completes. Returns the error that makes
   * the stream unusable, if any; after an error every later call returns the same error.
   */
  push(chunk: Uint8Array, sink: FrameSink): FrameError | undefined {
    if (this.failure !== undefined) return this.failure;
    const data = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const end = data.length;
    let offset = 0;
    // Every pass consumes at least one byte or completes a frame whose prefix it consumed, so the
    // loop runs at most 2 × chunk length times.
    while (offset < end) {
      if (this.frameBytes < 0) {
        if (this.headerBytes === 0 && end - offset >= FRAME_HEADER_BYTES) {
          this.frameBytes = data.readUInt32BE(offset);
          offset += FRAME_HEADER_BYTES;
        } else {
          const taken = Math.min(FRAME_HEADER_BYTES - this.headerBytes, end - offset);
          data.copy(this.header, this.headerBytes, offset, offset + taken);
          this.headerBytes += taken;
          offset += taken;
          if (this.headerBytes < FRAME_HEADER_BYTES) return undefined;
          this.headerBytes = 0;
          this.frameBytes = this.header.readUInt32BE(0);
        }
        if (this.frameBytes > this.frameBytesMax + this.trailerBytes) {
          this.failure = { kind: "frame-too-large", frameBytes: this.frameBytes, frameBytesMax: this.frameBytesMax + this.trailerBytes };
          return this.failure;
        }
        if (this.frameBytes < this.trailerBytes) {
          this.failure = { kind: "frame-too-short", frameBytes: this.frameBytes, trailerBytes: this.trailerBytes };
          return this.failure;
        }
        if (end - offset >= this.frameBytes) {
          // The whole frame is in this chunk: hand out a view of the payload, no copy.
          const payloadBytes = this.frameBytes - this.trailerBytes;
          const payload = data.subarray(offset, offset + payloadBytes);
          offset += this.frameBytes;
          this.frameBytes = -1;
          if (!sink(payload, data, offset - this.trailerBytes)) return undefined;
          continue;
        }
        this.partial = Buffer.allocUnsafe(Math.min(this.frameBytes, Math.max(PARTIAL_PAYLOAD_BYTES_INITIAL, end - offset)));
        this.partialBytes = 0;
      }
      const partial = this.growPartial(Math.min(this.frameBytes, this.partialBytes + (end - offset)));
      const taken = Math.min(this.frameBytes - this.partialBytes, end - offset);
      data.copy(partial, this.partialBytes, offset, offset + taken);
      this.partialBytes += taken;
      offset += taken;
      if (this.partialBytes === this.frameBytes) {
        const payloadBytes = this.frameBytes - this.trailerBytes;
        this.partial = undefined;
        this.partialBytes = 0;
        this.frameBytes = -1;
        // The buffer is exactly the frame's size (growPartial never passes it); a view only when a
        // trailer must be cut off.
        if (!sink(payloadBytes === partial.length ? partial : partial.subarray(0, payloadBytes), partial, payloadBytes)) return undefined;
      }
    }
    return undefined;
  }

  // The partial-payload buffer with room for `bytesNeeded`, doubled as often as needed (never past
  // the announced length), so assembling a payload copies each byte O(1) times on average.
  private growPartial(bytesNeeded: number): Buffer {
    const partial = this.partial;
    if (partial === undefined) throw new Error("frame decoder: no partial payload to grow");
    if (bytesNeeded <= partial.length) return partial;
    let capacity = partial.length;
    while (capacity < bytesNeeded) capacity = Math.min(this.frameBytes, capacity * 2);
    const grown = Buffer.allocUnsafe(capacity);
    partial.copy(grown, 0, 0, this.partialBytes);
    this.partial = grown;
    return grown;
  }
}

/**
 * Writes `payload` as a frame at `offset` of `target`; returns the offset after the payload. With
 * `trailerBytes`, the length prefix also counts that many bytes after the payload (a frame's MAC
 * tag), which the caller writes at the returned offset.
 */
export function writeFrame(target: Buffer, offset: number, payload: Uint8Array, trailerBytes = 0): number {
  target.writeUInt32BE(payload.length + trailerBytes, offset);
  target.set(payload, offset + FRAME_HEADER_BYTES);
  return offset + FRAME_HEADER_BYTES + payload.length;
}

/** One frame in a fresh buffer. For handshakes and tests; the send path gathers frames instead. */
export function encodeFrame(payload: Uint8Array): Buffer {
  if (payload.length > FRAME_BYTES_LIMIT) throw new RangeError(`a frame payload is at most ${FRAME_BYTES_LIMIT} bytes; got ${payload.length}`);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  writeFrame(frame, 0, payload);
  return frame;
}
