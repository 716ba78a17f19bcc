// Headers whose commit certificates this client already verified, by height. Verifying a
// certificate is 2f + 1 Ed25519 checks on the event loop, and proof reads mostly name the same few
// recent heights, so a read whose header is byte for byte one already verified need not verify
// its certificate again: only its state proof. Bounded; the oldest entry goes first.

import { bytesEqual } from "../ledger/codec.js";

/** Headers remembered; a proof read names a height near the tip, so a few suffice. */
export const CERTIFIED_HEADERS_MAX = 64;

export class CertifiedHeaders {
  /** Encoded header by height, in insertion order (Map order), so the first entry is the oldest. */
  private readonly headers = new Map<number, Uint8Array>();

  constructor(private readonly capacity = CERTIFIED_HEADERS_MAX) {}

  /** Whether `header` (encoded) is the header of `height` whose certificate verified. */
  holds(height: number, header: Uint8Array): boolean {
    const known = this.headers.get(height);
    return known !== undefined && bytesEqual(known, header);
  }

  /** Records the encoded header of `height`, after its certificate verified. */
  remember(height: number, header: Uint8Array): void {
    this.headers.delete(height);
    // A copy: the bytes may be a view into a frame buffer.
    this.headers.set(height, header.slice());
    if (this.headers.size > this.capacity) this.headers.delete(this.headers.keys().next().value!);
  }
}
