// Byte strings from the simulator's seeded generator, so property-style tests replay exactly
// (tests never use Math.random).

import type { Random } from "../../src/sim/random.js";

export function randomBytes(random: Random, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let index = 0; index < length; index += 4) {
    const word = random.nextUint32();
    for (let byte = 0; byte < 4 && index + byte < length; byte += 1) {
      bytes[index + byte] = (word >>> (8 * byte)) & 0xff;
    }
  }
  return bytes;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex");
}

export function fromHex(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text, "hex"));
}
