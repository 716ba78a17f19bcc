// The bounded queue of frames waiting for a socket. One per connection, or one per outgoing
// peer link that outlives each of the link's connections, so frames sent while a peer is away
// wait for it (up to the bounds) rather than vanish.
//
// Both a byte bound and a frame bound: bytes bound the payload memory, frames bound the per-entry
// overhead when payloads are tiny. A full queue refuses the frame (tail drop). Dropping the
// newest rather than the oldest keeps what is queued in send order, and under overload newer
// consensus messages are no more urgent than older ones: PBFT re-sends whatever a peer still
// lacks (retransmission on STATUS, view-change timers), so a dropped frame costs latency, never
// safety.

import { FRAME_HEADER_BYTES } from "./frame.js";

export interface SendQueueLimits {
  /** Bound on queued frame bytes, length prefixes included. */
  readonly bytesMax: number;
  /** Bound on queued frames. */
  readonly framesMax: number;
}

/** 32 MiB: two frames of the largest default size, so one large frame never starves the next. */
export const SEND_QUEUE_BYTES_MAX_DEFAULT = 32 * 1024 * 1024;
/** 65,536 frames: about a second of small consensus messages at full speed. */
export const SEND_QUEUE_FRAMES_MAX_DEFAULT = 65_536;

const RING_SLOTS_INITIAL = 64;

export class SendQueue {
  readonly limits: SendQueueLimits;
  // A ring that doubles when full (up to the frame bound), so an idle connection costs a few
  // hundred bytes and a busy one never shifts an array.
  private slots: (Uint8Array | undefined)[];
  private head = 0;
  private count = 0;
  private queuedBytes = 0;

  constructor(limits: SendQueueLimits) {
    if (!Number.isSafeInteger(limits.bytesMax) || limits.bytesMax < FRAME_HEADER_BYTES) {
      throw new RangeError(`send queue bytesMax must be an integer of at least ${FRAME_HEADER_BYTES}; got ${limits.bytesMax}`);
    }
    if (!Number.isSafeInteger(limits.framesMax) || limits.framesMax < 1) {
      throw new RangeError(`send queue framesMax must be a positive integer; got ${limits.framesMax}`);
    }
    this.limits = limits;
    this.slots = new Array<Uint8Array | undefined>(Math.min(RING_SLOTS_INITIAL, limits.framesMax));
  }

  /** Frames queued. */
  get frames(): number {
    return this.count;
  }

  /** Bytes queued, length prefixes included. */
  get bytes(): number {
    return this.queuedBytes;
  }

  /** Queues `payload` unless that would pass a bound; returns whether it was queued. */
  offer(payload: Uint8Array): boolean {
    const frameBytes = FRAME_HEADER_BYTES + payload.length;
    if (this.count >= this.limits.framesMax || this.queuedBytes + frameBytes > this.limits.bytesMax) return false;
    if (this.count === this.slots.length) this.grow();
    this.slots[(this.head + this.count) % this.slots.length] = payload;
    this.count += 1;
    this.queuedBytes += frameBytes;
    return true;
  }

  /** The payload `index` places behind the oldest, left in the queue. */
  at(index: number): Uint8Array | undefined {
    return index < 0 || index >= this.count ? undefined : this.slots[(this.head + index) % this.slots.length];
  }

  /** Removes and returns the oldest payload. */
  shift(): Uint8Array | undefined {
    if (this.count === 0) return undefined;
    const payload = this.slots[this.head];
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) % this.slots.length;
    this.count -= 1;
    this.queuedBytes -= FRAME_HEADER_BYTES + (payload?.length ?? 0);
    return payload;
  }

  /** Empties the queue; returns what it held. */
  clear(): { readonly frames: number; readonly bytes: number } {
    const cleared = { frames: this.count, bytes: this.queuedBytes };
    this.slots = new Array<Uint8Array | undefined>(Math.min(RING_SLOTS_INITIAL, this.limits.framesMax));
    this.head = 0;
    this.count = 0;
    this.queuedBytes = 0;
    return cleared;
  }

  private grow(): void {
    const capacity = Math.min(this.limits.framesMax, this.slots.length * 2);
    const grown = new Array<Uint8Array | undefined>(capacity);
    for (let index = 0; index < this.count; index++) grown[index] = this.slots[(this.head + index) % this.slots.length];
    this.slots = grown;
    this.head = 0;
  }
}
