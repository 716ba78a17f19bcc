// The byte reader, byte writer and error types behind every canonical encoding of the ledger
// (block headers, block bodies, commit certificates, inclusion proofs). One reader for all of
// them means one place where a length is checked against what is left before it is trusted, and
// one error type that a storage layer or client can catch for any ledger structure.
//
// Integers are big-endian. A u64 is read into a JavaScript number and must be a safe integer
// (below 2^53): heights and views stay numbers in memory, as PBFT's sequence numbers do, and a
// cluster committing a million blocks a second would need 285 years to reach 2^53. The wire field
// is a full u64, so widening later changes no encoding.

/** Which structure a decode or encode error is about, for messages and metrics. */
export type LedgerStructure = "block header" | "block body" | "block" | "commit certificate" | "inclusion proof";

export type LedgerDecodeErrorCode =
  | "not-bytes"
  | "truncated"
  | "trailing-bytes"
  | "unsupported-version"
  | "out-of-range"
  | "non-canonical";

/** Bytes that are not the canonical encoding of the structure they were read as. */
export class LedgerDecodeError extends Error {
  override readonly name = "LedgerDecodeError";

  constructor(
    readonly structure: LedgerStructure,
    readonly code: LedgerDecodeErrorCode,
    detail: string,
  ) {
    super(`${structure}: ${detail}`);
  }
}

/**
 * A value that cannot be encoded because a field breaks the format's rules. Encoders check every
 * rule the decoder enforces, so whatever encodes also decodes.
 */
export class LedgerEncodeError extends Error {
  override readonly name = "LedgerEncodeError";

  constructor(
    readonly structure: LedgerStructure,
    detail: string,
  ) {
    super(`${structure}: ${detail}`);
  }
}

const TWO_TO_THE_32 = 0x1_0000_0000;

/** Reads fields from a byte string, throwing `LedgerDecodeError` instead of reading past its end. */
export class ByteReader {
  private offset = 0;

  constructor(
    private readonly bytes: Uint8Array,
    readonly structure: LedgerStructure,
  ) {}

  get position(): number {
    return this.offset;
  }

  remaining(): number {
    return this.bytes.length - this.offset;
  }

  fail(code: LedgerDecodeErrorCode, detail: string): never {
    throw new LedgerDecodeError(this.structure, code, detail);
  }

  u8(what: string): number {
    this.require(1, what);
    const value = this.bytes[this.offset] as number;
    this.offset += 1;
    return value;
  }

  u16(what: string): number {
    this.require(2, what);
    const value = ((this.bytes[this.offset] as number) << 8) | (this.bytes[this.offset + 1] as number);
    this.offset += 2;
    return value;
  }

  u32(what: string): number {
    this.require(4, what);
    const b = this.bytes;
    const o = this.offset;
    // Multiplication rather than `<< 24`, which would make values from 2^31 up negative.
    const value = (b[o] as number) * 0x100_0000 + (((b[o + 1] as number) << 16) | ((b[o + 2] as number) << 8) | (b[o + 3] as number));
    this.offset += 4;
    return value;
  }

  /** A u64 that must be a safe integer; a larger value is `out-of-range`. */
  u64(what: string): number {
    const high = this.u32(what);
    const low = this.u32(what);
    // 2^53 = 2^21 × 2^32, so the value is safe exactly when the high word is below 2^21.
    if (high >= 0x20_0000) this.fail("out-of-range", `${what} is 2^53 or more`);
    return high * TWO_TO_THE_32 + low;
  }

  /** `length` bytes as a view into the input; callers that keep it must own the input. */
  bytesView(length: number, what: string): Uint8Array {
    this.require(length, what);
    const view = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return view;
  }

  /** `length` bytes as a fresh plain Uint8Array (not `.slice()`: on a Buffer that is a view). */
  bytesCopy(length: number, what: string): Uint8Array {
    return new Uint8Array(this.bytesView(length, what));
  }

  /** Throws `trailing-bytes` unless the whole input was read. */
  end(): void {
    if (this.offset !== this.bytes.length) {
      this.fail("trailing-bytes", `${this.bytes.length - this.offset} bytes follow the end of the encoding`);
    }
  }

  private require(length: number, what: string): void {
    if (length > this.bytes.length - this.offset) {
      this.fail("truncated", `the input ends inside ${what} (needs ${length} bytes at offset ${this.offset}, ${this.remaining()} left)`);
    }
  }
}

/** Writes fields into a buffer of a size computed in advance; writing past it is a bug. */
export class ByteWriter {
  private offset = 0;
  readonly bytes: Uint8Array;

  constructor(length: number) {
    this.bytes = new Uint8Array(length);
  }

  u8(value: number): this {
    this.bytes[this.offset] = value;
    this.offset += 1;
    return this;
  }

  u16(value: number): this {
    this.bytes[this.offset] = value >>> 8;
    this.bytes[this.offset + 1] = value & 0xff;
    this.offset += 2;
    return this;
  }

  u32(value: number): this {
    this.bytes[this.offset] = Math.floor(value / 0x100_0000) & 0xff;
    this.bytes[this.offset + 1] = (value >>> 16) & 0xff;
    this.bytes[this.offset + 2] = (value >>> 8) & 0xff;
    this.bytes[this.offset + 3] = value & 0xff;
    this.offset += 4;
    return this;
  }

  /** `value` must be a safe non-negative integer (the caller checks). */
  u64(value: number): this {
    return this.u32(Math.floor(value / TWO_TO_THE_32)).u32(value % TWO_TO_THE_32);
  }

  raw(bytes: Uint8Array): this {
    this.bytes.set(bytes, this.offset);
    this.offset += bytes.length;
    return this;
  }

  /** The finished encoding; asserts that the precomputed length was exact. */
  finish(): Uint8Array {
    if (this.offset !== this.bytes.length) {
      throw new Error(`ByteWriter: wrote ${this.offset} of ${this.bytes.length} precomputed bytes`);
    }
    return this.bytes;
  }
}

/** Whether `value` is an integer from 0 to 2^53 - 1, the range of every u64 field. */
export function isUint64Number(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

export function isBytes(value: unknown, length?: number): value is Uint8Array {
  return value instanceof Uint8Array && (length === undefined || value.length === length);
}

export function bytesEqual(left: Uint8Array, right: Uint8Array): boolean {
  if (left.length !== right.length) return false;
  for (let index = 0; index < left.length; index += 1) {
    if (left[index] !== right[index]) return false;
  }
  return true;
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex");
}

/**
 * A plain Uint8Array copy of `bytes` that shares no memory with it (`.slice()` will not do:
 * callers may pass Buffers, and `Buffer.prototype.slice` returns a view).
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** Hex for a message: the first 32 bytes of `bytes`, with "..." when there are more. */
export function describeBytes(bytes: Uint8Array): string {
  return bytes.length <= 32 ? toHex(bytes) : `${toHex(bytes.subarray(0, 32))}...`;
}
