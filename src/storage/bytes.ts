// A byte writer and reader for the storage layer's small canonical encodings (consensus records,
// the applied-state metadata). One encoding per value, so equal values give equal bytes:
//
//   uint    unsigned LEB128 of a safe integer (0 .. 2^53 - 1); the reader rejects overlong forms
//   bool    one byte, 0 or 1
//   bytes   uint length | the bytes
//   string  one form byte | uint byte length | the bytes. Form 0 is UTF-8 and is used for every
//           well-formed string; form 1 holds the UTF-16 code units (little-endian) and is used
//           only for strings with a lone surrogate, which UTF-8 cannot represent. Without it such
//           a string (a peer controls digests and client names) would come back altered.
//
// The reader trusts nothing: every length is checked against the bytes that remain before it is
// used, so a damaged or hostile length costs nothing and raises `RecordDecodeError`.

import { RecordDecodeError } from "./errors.js";

/** A uint never takes more than 8 bytes: 8 × 7 bits covers 2^53 - 1. */
const UINT_BYTES_MAX = 8;
const STRING_FORM_UTF8 = 0;
const STRING_FORM_UTF16 = 1;
const INITIAL_CAPACITY_BYTES = 256;

const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** True when `text` has no lone surrogate, i.e. survives a UTF-8 round trip. */
function isWellFormed(text: string): boolean {
  for (let index = 0; index < text.length; index++) {
    const unit = text.charCodeAt(index);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    if (unit > 0xdbff) return false;
    const next = text.charCodeAt(index + 1);
    if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
    index++;
  }
  return true;
}

/** Any surrogate code unit; only strings that have one need the pairing check. */
const SURROGATE = /[\ud800-\udfff]/;

/**
 * Allocating a typed array costs about as much as encoding a small record, so encodings are
 * written into one reused scratch array and copied out once. `encodeWith` lends it out; a nested
 * call gets an array of its own.
 */
const SCRATCH_BYTES = 64 * 1024;
const scratch = new Uint8Array(SCRATCH_BYTES);
let scratchLent = false;

/** Runs `write` on a fresh writer and returns what it wrote, as an array of exactly that length. */
export function encodeWith(write: (writer: ByteWriter) => void): Uint8Array {
  const borrowed = !scratchLent;
  scratchLent = true;
  try {
    const writer = new ByteWriter(borrowed ? scratch : new Uint8Array(INITIAL_CAPACITY_BYTES));
    write(writer);
    return writer.finish();
  } finally {
    if (borrowed) scratchLent = false;
  }
}

export class ByteWriter {
  private length = 0;

  constructor(private bytes: Uint8Array = new Uint8Array(INITIAL_CAPACITY_BYTES)) {}

  private reserve(byteCount: number): void {
    const needed = this.length + byteCount;
    if (needed <= this.bytes.length) return;
    let capacity = this.bytes.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  u8(value: number): void {
    if (!Number.isInteger(value) || value < 0 || value > 0xff) throw new RangeError(`ByteWriter.u8: ${value} is not a byte`);
    this.reserve(1);
    this.bytes[this.length++] = value;
  }

  uint(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`ByteWriter.uint: ${value} is not a safe non-negative integer`);
    this.reserve(UINT_BYTES_MAX);
    let rest = value;
    while (rest >= 0x80) {
      this.bytes[this.length++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    this.bytes[this.length++] = rest;
  }

  bool(value: boolean): void {
    this.u8(value ? 1 : 0);
  }

  bytesField(value: Uint8Array): void {
    if (!(value instanceof Uint8Array)) throw new TypeError("ByteWriter.bytesField: expected a Uint8Array");
    this.uint(value.length);
    this.reserve(value.length);
    this.bytes.set(value, this.length);
    this.length += value.length;
  }

  string(value: string): void {
    if (typeof value !== "string") throw new TypeError("ByteWriter.string: expected a string");
    if (this.asciiString(value)) return;
    if (!SURROGATE.test(value) || isWellFormed(value)) {
      const byteLength = Buffer.byteLength(value, "utf8");
      this.u8(STRING_FORM_UTF8);
      this.uint(byteLength);
      this.reserve(byteLength);
      this.length += Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.length).write(value, this.length, byteLength, "utf8");
      return;
    }
    this.u8(STRING_FORM_UTF16);
    this.uint(value.length * 2);
    this.reserve(value.length * 2);
    for (let index = 0; index < value.length; index++) {
      const unit = value.charCodeAt(index);
      this.bytes[this.length++] = unit & 0xff;
      this.bytes[this.length++] = unit >>> 8;
    }
  }

  /**
   * Writes `value` in form 0 when it is ASCII (digests, signatures, client ids), one byte per
   * code unit, and returns true; returns false, having written nothing, otherwise. A plain loop
   * beats the native UTF-8 writer's call overhead at these lengths.
   */
  private asciiString(value: string): boolean {
    const length = value.length;
    this.reserve(2 + UINT_BYTES_MAX + length);
    const start = this.length;
    this.bytes[this.length++] = STRING_FORM_UTF8;
    this.uint(length);
    const bytes = this.bytes;
    let offset = this.length;
    for (let index = 0; index < length; index++) {
      const unit = value.charCodeAt(index);
      if (unit >= 0x80) {
        this.length = start;
        return false;
      }
      bytes[offset++] = unit;
    }
    this.length = offset;
    return true;
  }

  /** The bytes written so far, as a fresh plain Uint8Array of exactly that length. */
  finish(): Uint8Array {
    const copy = new Uint8Array(this.length);
    copy.set(this.bytes.subarray(0, this.length));
    return copy;
  }
}

export class ByteReader {
  private offset = 0;
  private owned: Uint8Array | undefined = undefined;

  constructor(private readonly bytes: Uint8Array) {}

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  u8(): number {
    if (this.offset >= this.bytes.length) throw new RecordDecodeError("truncated: expected a byte");
    return this.bytes[this.offset++]!;
  }

  uint(): number {
    let value = 0;
    let scale = 1;
    for (let index = 0; index < UINT_BYTES_MAX; index++) {
      const byte = this.u8();
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (byte === 0 && index > 0) throw new RecordDecodeError("overlong integer encoding");
        if (!Number.isSafeInteger(value)) throw new RecordDecodeError("integer above 2^53 - 1");
        return value;
      }
      scale *= 0x80;
    }
    throw new RecordDecodeError("integer longer than 8 bytes");
  }

  bool(): boolean {
    const byte = this.u8();
    if (byte > 1) throw new RecordDecodeError(`boolean byte ${byte}`);
    return byte === 1;
  }

  /** A count of items that each take at least `itemBytesMin` bytes, checked against what remains. */
  count(itemBytesMin: number): number {
    const count = this.uint();
    if (count * itemBytesMin > this.remaining) throw new RecordDecodeError(`count ${count} exceeds the ${this.remaining} bytes left`);
    return count;
  }

  /**
   * A length-prefixed byte string. It is a view into one private copy of the whole input, made on
   * the first call: allocating a typed array costs about 0.3 µs, so one copy per record beats one
   * per field (a pre-prepare has one per request), and the caller may reuse its input buffer.
   */
  bytesField(): Uint8Array {
    const length = this.uint();
    if (length > this.remaining) throw new RecordDecodeError(`byte string of ${length} bytes exceeds the ${this.remaining} bytes left`);
    if (this.owned === undefined) {
      this.owned = new Uint8Array(this.bytes.length);
      this.owned.set(this.bytes);
    }
    const value = new Uint8Array(this.owned.buffer, this.offset, length);
    this.offset += length;
    return value;
  }

  string(): string {
    const form = this.u8();
    const length = this.uint();
    if (length > this.remaining) throw new RecordDecodeError(`string of ${length} bytes exceeds the ${this.remaining} bytes left`);
    const raw = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    if (form === STRING_FORM_UTF8) {
      try {
        return utf8Decoder.decode(raw);
      } catch (error) {
        throw new RecordDecodeError("string is not valid UTF-8", { cause: error });
      }
    }
    if (form !== STRING_FORM_UTF16) throw new RecordDecodeError(`string form ${form}`);
    if (length % 2 !== 0) throw new RecordDecodeError("UTF-16 string of odd byte length");
    let value = "";
    for (let index = 0; index < length; index += 2) value += String.fromCharCode(raw[index]! | (raw[index + 1]! << 8));
    if (isWellFormed(value)) throw new RecordDecodeError("well-formed string in the UTF-16 form (not canonical)");
    return value;
  }

  /** Asserts that every byte was consumed: trailing bytes mean the value is not what was written. */
  end(): void {
    if (this.remaining !== 0) throw new RecordDecodeError(`${this.remaining} trailing bytes`);
  }
}
