import { test } from "node:test";
import assert from "node:assert/strict";

import { bytesToHex, isHexOf } from "../../src/app/bytes.js";

test("isHexOf: true exactly for the lowercase hex bytesToHex gives, for every byte value", () => {
  const bytes = Uint8Array.from({ length: 256 }, (_, index) => index);
  assert.equal(isHexOf(bytesToHex(bytes), bytes), true);
  assert.equal(isHexOf("", new Uint8Array(0)), true);
});

test("isHexOf: false for another byte, uppercase, a wrong length or non-hex text", () => {
  const bytes = Uint8Array.from([0x00, 0xab, 0xff]);
  assert.equal(isHexOf("00abfe", bytes), false);
  assert.equal(isHexOf("00ABff", bytes), false, "uppercase is not the canonical form");
  assert.equal(isHexOf("00abff00", bytes), false);
  assert.equal(isHexOf("00ab", bytes), false);
  assert.equal(isHexOf("00abfg", bytes), false);
});
