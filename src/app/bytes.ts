// Small byte-string helpers of the application layer: hex text (the form in which keys and
// signatures travel in consensus requests, `ClientRequest.client` and `.signature`) and equality.

export function bytesToHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/**
 * The bytes of `text` if it is exactly `byteCount` bytes in lowercase hex (the one form
 * `bytesToHex` produces), otherwise undefined. Requiring the canonical form means one key or
 * signature has one text, so a client's identity cannot be spelled two ways.
 */
export function canonicalHexToBytes(text: string, byteCount: number): Uint8Array | undefined {
  if (typeof text !== "string" || text.length !== 2 * byteCount || !LOWER_HEX.test(text)) return undefined;
  return Uint8Array.from(Buffer.from(text, "hex"));
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

const LOWER_HEX = /^[0-9a-f]*$/;
