// How bytes cross the HTTP boundary: keys as URL path segments (their UTF-8 bytes), values as
// UTF-8 text when they are valid UTF-8 and as base64 otherwise, accounts as lowercase hex, and
// the choice between a JSON answer and the raw value (`Accept`).

import { isUtf8 } from "node:buffer";

import { TRANSACTION_KEY_BYTES_MAX, TRANSACTION_VALUE_BYTES_MAX } from "../app/transaction.js";
import { ED25519_PUBLIC_KEY_BYTES } from "../crypto/ed25519.js";
import { GatewayError } from "./errors.js";

export type ValueEncoding = "utf8" | "base64";

export const VALUE_ENCODINGS: readonly ValueEncoding[] = ["utf8", "base64"];

/** A value as JSON carries it: text when the bytes are UTF-8, so `put a 1` reads back as "1". */
export interface EncodedValue {
  readonly value: string;
  readonly encoding: ValueEncoding;
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Canonical, padded standard base64; Buffer's own decoder would skip any character it does not know. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HEX_ACCOUNT = new RegExp(`^[0-9a-fA-F]{${2 * ED25519_PUBLIC_KEY_BYTES}}$`);

export function encodeValue(bytes: Uint8Array): EncodedValue {
  // ignoreBOM keeps a leading byte-order mark in the text, so the text's UTF-8 is the value exactly.
  if (isUtf8(bytes)) return { value: utf8Decoder.decode(bytes), encoding: "utf8" };
  return { value: base64(bytes), encoding: "base64" };
}

/** The bytes of a value given in a JSON body; `what` names the field in the error. */
export function decodeValue(text: string, encoding: ValueEncoding, what: string): Uint8Array {
  const bytes = encoding === "utf8" ? utf8Encoder.encode(text) : base64Bytes(text, what);
  if (bytes.length > TRANSACTION_VALUE_BYTES_MAX) {
    throw new GatewayError(413, "too-large", `${what} is ${bytes.length} bytes; values are at most ${TRANSACTION_VALUE_BYTES_MAX} bytes`);
  }
  return bytes;
}

/** The key named by a URL path segment (already percent-decoded by the router): its UTF-8 bytes. */
export function keyBytes(segment: string): Uint8Array {
  const bytes = utf8Encoder.encode(segment);
  if (bytes.length === 0) throw new GatewayError(400, "invalid-key", "the key is empty; keys are 1 to 1024 bytes of UTF-8 (percent-encode / and other reserved characters)");
  if (bytes.length > TRANSACTION_KEY_BYTES_MAX) {
    throw new GatewayError(400, "invalid-key", `the key is ${bytes.length} bytes of UTF-8; keys are at most ${TRANSACTION_KEY_BYTES_MAX} bytes`);
  }
  return bytes;
}

/** An account id: its 32-byte public key as 64 hex digits (either case). */
export function accountBytes(text: string): Uint8Array {
  if (!HEX_ACCOUNT.test(text)) throw new GatewayError(400, "invalid-account", `an account id is its ${ED25519_PUBLIC_KEY_BYTES}-byte public key as ${2 * ED25519_PUBLIC_KEY_BYTES} hex digits`);
  return Uint8Array.from(Buffer.from(text, "hex"));
}

export function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

export function base64Bytes(text: string, what: string): Uint8Array {
  if (!BASE64.test(text)) throw new GatewayError(400, "invalid-request", `${what} is not canonical base64 (A-Z, a-z, 0-9, +, /, padded with =)`);
  return Uint8Array.from(Buffer.from(text, "base64"));
}

/**
 * Whether the client asked for the raw value rather than JSON: `application/octet-stream` is
 * listed with a quality above zero and at least that of `application/json`. Wildcards do not
 * count, so `curl` (whose default Accept is the any-type wildcard) gets JSON.
 */
export function prefersOctetStream(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  let octetQuality = 0;
  let jsonQuality = 0;
  // The header is bounded by Node's header size limit, so splitting it is bounded work.
  for (const part of accept.split(",")) {
    const [type = "", ...parameters] = part.split(";").map((piece) => piece.trim().toLowerCase());
    let quality = 1;
    for (const parameter of parameters) {
      const match = /^q=([01](?:\.\d{0,3})?)$/.exec(parameter);
      if (match !== null) quality = Number(match[1]);
    }
    if (type === "application/octet-stream") octetQuality = Math.max(octetQuality, quality);
    else if (type === "application/json") jsonQuality = Math.max(jsonQuality, quality);
  }
  return octetQuality > 0 && octetQuality >= jsonQuality;
}
