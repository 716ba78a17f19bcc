import { test } from "node:test";
import assert from "node:assert/strict";
import { FRAME_HEADER_BYTES, FrameDecoder, encodeFrame } from "../../src/net/frame.js";
import { SendQueue } from "../../src/net/send-queue.js";
import { backoffDelayMs } from "../../src/net/backoff.js";
import { RateLimitedLog } from "../../src/net/log.js";
import { Random } from "../../src/sim/random.js";
import { randomBytes } from "../support/random-bytes.js";
import { RecordingLogger } from "./transport-support.js";

/** Decodes `stream` fed in the given chunk sizes (cycled); returns copies of the payloads. */
function decodeInChunks(decoder: FrameDecoder, stream: Uint8Array, chunkBytes: (index: number) => number): Uint8Array[] {
  const payloads: Uint8Array[] = [];
  let offset = 0;
  for (let index = 0; offset < stream.length; index++) {
    const end = Math.min(stream.length, offset + Math.max(1, chunkBytes(index)));
    const error = decoder.push(stream.subarray(offset, end), (payload) => {
      payloads.push(Uint8Array.from(payload));
      return true;
    });
    assert.equal(error, undefined);
    offset = end;
  }
  return payloads;
}

function concatFrames(payloads: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(payloads.map((payload) => encodeFrame(payload))));
}

test("frames round-trip through the decoder whatever the chunk boundaries", () => {
  const random = new Random(7);
  const sizes = [0, 1, 3, 4, 5, 100, 1000, 70_000, 0, 200_000];
  for (let index = 0; index < 200; index++) sizes.push(random.below(300));
  const payloads = sizes.map((size) => randomBytes(random, size));
  const stream = concatFrames(payloads);
  const chunkings: Record<string, (index: number) => number> = {
    "one byte": () => 1,
    "three bytes": () => 3,
    "random up to 16": () => random.between(1, 16),
    "random up to 64 KiB": () => random.between(1, 65_536),
    "the whole stream": () => stream.length,
  };
  for (const [name, chunkBytes] of Object.entries(chunkings)) {
    const decoded = decodeInChunks(new FrameDecoder(), stream, chunkBytes);
    assert.equal(decoded.length, payloads.length, name);
    decoded.forEach((payload, index) => assert.deepEqual(payload, payloads[index], `${name}: frame ${index}`));
  }
});

test("frames wholly inside one chunk come out as views of it, not copies", () => {
  const chunk = encodeFrame(Uint8Array.of(1, 2, 3));
  const stream = Buffer.concat([chunk, chunk, chunk]);
  const seen: Uint8Array[] = [];
  new FrameDecoder().push(stream, (payload) => {
    seen.push(payload);
    return true;
  });
  assert.equal(seen.length, 3);
  for (const payload of seen) assert.equal(payload.buffer, stream.buffer);
});

test("a large frame fed one byte at a time is assembled in linear time and bounded memory", () => {
  const random = new Random(11);
  const payload = randomBytes(random, 512 * 1024);
  const stream = encodeFrame(payload);
  const decoder = new FrameDecoder();
  let decoded: Uint8Array | undefined;
  const started = process.hrtime.bigint();
  for (let offset = 0; offset < stream.length; offset++) {
    decoder.push(stream.subarray(offset, offset + 1), (frame) => {
      decoded = Uint8Array.from(frame);
      return true;
    });
    // What a stalled peer costs: never more than twice what it sent, plus the first 64 KiB.
    if (offset % 4096 === 0) assert.ok(decoder.bufferedBytes <= 2 * (offset + 1) + 64 * 1024);
  }
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  assert.deepEqual(decoded, payload);
  assert.equal(decoder.bufferedBytes, 0);
  // Quadratic copying of 512 KiB one byte at a time would move ~137 GB; linear takes milliseconds.
  assert.ok(elapsedMs < 2_000, `took ${elapsedMs} ms`);
});

test("an announced length above the maximum fails as soon as the prefix is read, before buffering", () => {
  const decoder = new FrameDecoder(1024);
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32BE(1025);
  let frames = 0;
  const sink = (): boolean => {
    frames += 1;
    return true;
  };
  // The prefix split across two chunks still fails at its last byte.
  assert.equal(decoder.push(header.subarray(0, 2), sink), undefined);
  assert.deepEqual(decoder.push(header.subarray(2), sink), { kind: "frame-too-large", frameBytes: 1025, frameBytesMax: 1024 });
  assert.equal(decoder.bufferedBytes, 0);
  // The stream is unusable from then on.
  assert.equal(decoder.push(encodeFrame(Uint8Array.of(1)), sink)?.kind, "frame-too-large");
  assert.equal(frames, 0);

  const maximal = new FrameDecoder(1024);
  assert.equal(maximal.push(encodeFrame(new Uint8Array(1024)), sink), undefined, "a frame of exactly the maximum is accepted");
  assert.equal(frames, 1);
  assert.equal(new FrameDecoder(1024).push(Buffer.from([0xff, 0xff, 0xff, 0xff]), sink)?.kind, "frame-too-large");
});

test("with a trailer, the sink gets the payload and where the trailer lies, whatever the chunk boundaries", () => {
  const random = new Random(13);
  const trailerBytes = 16;
  const bodies = [0, 1, 100, 70_000, 5].map((size) => randomBytes(random, size + trailerBytes));
  const stream = concatFrames(bodies);
  for (const chunkBytes of [1, 7, 4096, stream.length]) {
    const decoder = new FrameDecoder(100_000);
    decoder.setLimits(100_000, trailerBytes);
    const seen: { payload: Uint8Array; trailer: Uint8Array }[] = [];
    for (let offset = 0; offset < stream.length; offset += chunkBytes) {
      const error = decoder.push(stream.subarray(offset, offset + chunkBytes), (payload, source, trailerOffset) => {
        seen.push({ payload: Uint8Array.from(payload), trailer: Uint8Array.from(source.subarray(trailerOffset, trailerOffset + trailerBytes)) });
        return true;
      });
      assert.equal(error, undefined);
    }
    assert.deepEqual(
      seen,
      bodies.map((body) => ({ payload: body.subarray(0, body.length - trailerBytes), trailer: body.subarray(body.length - trailerBytes) })),
      `${chunkBytes}-byte chunks`,
    );
  }
});

test("with a trailer, a length too short to hold it fails at the prefix, and the upper limit counts it", () => {
  const sink = (): boolean => assert.fail("no frame should come out");
  const decoder = new FrameDecoder(1024);
  decoder.setLimits(1024, 16);
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32BE(15);
  assert.deepEqual(decoder.push(header, sink), { kind: "frame-too-short", frameBytes: 15, trailerBytes: 16 });
  assert.equal(decoder.push(encodeFrame(new Uint8Array(16)), sink)?.kind, "frame-too-short", "the stream stays unusable");

  const limited = new FrameDecoder(1024);
  limited.setLimits(1024, 16);
  header.writeUInt32BE(1024 + 16 + 1);
  assert.deepEqual(limited.push(header, sink), { kind: "frame-too-large", frameBytes: 1041, frameBytesMax: 1040 });
  assert.throws(() => limited.setLimits(0xffff_fff0, 16), /frame trailer/);
});

test("a sink that returns false stops decoding the rest of the chunk", () => {
  const stream = concatFrames([Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)]);
  let frames = 0;
  new FrameDecoder().push(stream, () => {
    frames += 1;
    return false;
  });
  assert.equal(frames, 1);
});

test("the send queue keeps order across growth and refuses frames past either bound", () => {
  const byFrames = new SendQueue({ bytesMax: 1 << 20, framesMax: 100 });
  for (let index = 0; index < 100; index++) assert.ok(byFrames.offer(Uint8Array.of(index)));
  assert.equal(byFrames.offer(Uint8Array.of(100)), false, "the 101st frame is refused");
  for (let index = 0; index < 50; index++) assert.deepEqual(byFrames.shift(), Uint8Array.of(index));
  // Wrap around the ring, then check order and the byte count.
  for (let index = 100; index < 150; index++) assert.ok(byFrames.offer(Uint8Array.of(index & 0xff)));
  assert.equal(byFrames.frames, 100);
  assert.equal(byFrames.bytes, 100 * (FRAME_HEADER_BYTES + 1));
  for (let index = 50; index < 150; index++) assert.deepEqual(byFrames.at(index - 50), Uint8Array.of(index & 0xff));

  const byBytes = new SendQueue({ bytesMax: 3 * (FRAME_HEADER_BYTES + 10), framesMax: 100 });
  for (let index = 0; index < 3; index++) assert.ok(byBytes.offer(new Uint8Array(10)));
  assert.equal(byBytes.offer(new Uint8Array(1)), false, "one more byte would pass the byte bound");
  assert.deepEqual(byBytes.clear(), { frames: 3, bytes: 3 * (FRAME_HEADER_BYTES + 10) });
  assert.equal(byBytes.bytes, 0);
});

test("reconnection delays grow exponentially with jitter, never above the cap", () => {
  const options = { initialMs: 100, maxMs: 5_000 };
  const random = new Random(3);
  for (let attempt = 0; attempt < 40; attempt++) {
    const ceilingMs = Math.min(5_000, 100 * 2 ** attempt);
    for (let draw = 0; draw < 20; draw++) {
      const delayMs = backoffDelayMs(attempt, options, () => random.float());
      assert.ok(delayMs >= Math.floor(ceilingMs / 2) && delayMs <= ceilingMs, `attempt ${attempt}: ${delayMs} ms`);
    }
  }
  assert.equal(backoffDelayMs(0, options, () => 0), 50);
  assert.equal(backoffDelayMs(3, options, () => 0.999_999), 800);
  assert.equal(backoffDelayMs(1000, options, () => 0.999_999), 5_000);
  // The same seed gives the same delays.
  const first = new Random(9);
  const second = new Random(9);
  for (let attempt = 0; attempt < 10; attempt++) {
    assert.equal(backoffDelayMs(attempt, options, () => first.float()), backoffDelayMs(attempt, options, () => second.float()));
  }
});

test("the rate-limited log writes one line per reason per interval and counts the rest", () => {
  const logger = new RecordingLogger();
  let nowMs = 0;
  const log = new RateLimitedLog({ logger, intervalMs: 1_000, nowMs: () => nowMs });
  for (let index = 0; index < 100; index++) log.log("warn", "frame-too-large", { reason: "frame-too-large" }, "closed");
  log.log("warn", "protocol-error", { reason: "protocol-error" }, "closed");
  assert.equal(logger.lines.length, 2, "one line per reason");
  nowMs = 999;
  assert.equal(log.log("warn", "frame-too-large", { reason: "frame-too-large" }, "closed"), false);
  nowMs = 1_000;
  assert.equal(log.log("warn", "frame-too-large", { reason: "frame-too-large" }, "closed"), true);
  assert.deepEqual(logger.lines[2]?.fields, { reason: "frame-too-large", suppressed: 100 });
});
