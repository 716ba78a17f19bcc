// How bytes cross the HTTP boundary: values as text or base64, and the choice of the raw answer.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { decodeValue, encodeValue, prefersOctetStream } from "../../src/gateway/encoding.js";
import { GatewayError } from "../../src/gateway/errors.js";

describe("values", () => {
  it("are text when they are UTF-8, byte for byte (a byte-order mark included), and base64 otherwise", () => {
    assert.deepEqual(encodeValue(Buffer.from("héllo")), { value: "héllo", encoding: "utf8" });
    const bom = Buffer.from([0xef, 0xbb, 0xbf, 0x41]);
    const encoded = encodeValue(bom);
    assert.equal(encoded.encoding, "utf8");
    assert.deepEqual(Buffer.from(encoded.value, "utf8"), bom);
    // A lone surrogate's encoding and an overlong form are not UTF-8.
    assert.equal(encodeValue(Buffer.from([0xed, 0xa0, 0x80])).encoding, "base64");
    assert.equal(encodeValue(Buffer.from([0xc0, 0x80])).encoding, "base64");
  });

  it("round-trip through their JSON form", () => {
    for (const bytes of [Buffer.from(""), Buffer.from("plain"), Buffer.from([0, 255, 128, 10]), Buffer.from([0xf0, 0x9f, 0x98, 0x80])]) {
      const { value, encoding } = encodeValue(bytes);
      assert.deepEqual(Buffer.from(decodeValue(value, encoding, "value")), bytes);
    }
  });

  it("refuse base64 that Buffer would silently bend: bad characters, missing padding, whitespace", () => {
    for (const text of ["a", "ab=", "abc", "a b=", "ab==\n", "@@@@", "ab==ab=="]) {
      assert.throws(() => decodeValue(text, "base64", "value"), (error: unknown) => error instanceof GatewayError && error.statusCode === 400, JSON.stringify(text));
    }
    assert.deepEqual(Buffer.from(decodeValue("/+8=", "base64", "value")), Buffer.from([0xff, 0xef]));
  });

  it("above 64 KiB are a 413", () => {
    assert.throws(
      () => decodeValue("x".repeat(64 * 1024 + 1), "utf8", "value"),
      (error: unknown) => error instanceof GatewayError && error.statusCode === 413,
    );
  });
});

describe("Accept", () => {
  it("selects the raw value only when octet-stream is asked for at least as strongly as JSON", () => {
    assert.equal(prefersOctetStream(undefined), false);
    assert.equal(prefersOctetStream("*/*"), false);
    assert.equal(prefersOctetStream("application/octet-stream"), true);
    assert.equal(prefersOctetStream("Application/Octet-Stream"), true);
    assert.equal(prefersOctetStream("application/json, application/octet-stream"), true);
    assert.equal(prefersOctetStream("application/json, application/octet-stream;q=0.9"), false);
    assert.equal(prefersOctetStream("application/octet-stream;q=0"), false);
    assert.equal(prefersOctetStream("text/html, application/octet-stream;q=0.2, */*;q=0.1"), true);
    assert.equal(prefersOctetStream(";;,,=q"), false);
  });
});
