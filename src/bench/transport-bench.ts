// Throughput of small frames through one loopback TCP connection, by write strategy. A script,
// not a test: `node dist/src/bench/transport-bench.js [--payload-bytes 100] [--frames 1000000]
// [--runs 3] [--strategies connection,connection-mac,raw-gather,raw-cork,raw-write]`. It prints one
// JSON line per strategy and run, and a table of medians.
//
// The receiver runs in a worker thread (its own core on a 2-vCPU machine), decodes with
// FrameDecoder and reports when all frames arrived; the sender runs on the main thread. Every
// strategy is fed by the same producer: bursts of BURST_FRAMES payloads per event-loop turn,
// pausing while its sender reports it is full. Strategies:
//   connection        Connection.send(): gathered into ≤ 64 KiB buffers, one write() each
//   connection-mac    the same with a frame authenticator (frame-mac.ts): every frame tagged by
//                     the sender, every tag checked by the receiver, as after a real handshake
//   raw-gather        the same gathering inline on a bare socket (Connection's overhead shows
//                     as the gap to this one)
//   raw-cork          cork(); one write() per frame; uncork() per burst: one writev per burst
//   raw-write         one write() per frame: what coalescing saves

import { type AddressInfo, type Socket, connect, createServer } from "node:net";
import { Worker, isMainThread, parentPort } from "node:worker_threads";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { Connection, connectionSettings } from "../net/connection.js";
import { FRAME_HEADER_BYTES, FrameDecoder, encodeFrame, writeFrame } from "../net/frame.js";
import { FRAME_MAC_KEY_BYTES, frameMac } from "../net/frame-mac.js";
import { type FrameAuthenticator, type HandshakeFactory, noHandshake } from "../net/handshake.js";

const BURST_FRAMES = 256;
// Pause the producer for a Connection once this many frames wait, well inside the queue bound.
const CONNECTION_QUEUE_FRAMES_PAUSE = 16_384;

type ReceiverMessage = { kind: "listening"; port: number } | { kind: "ready" } | { kind: "received"; frames: number; bytes: number; badTags: number };
/** Before each run: whether the next connection's frames carry tags. Then "stop" at the end. */
type ReceiverCommand = { kind: "expect"; tagged: boolean } | { kind: "stop" };

// Fixed keys: the bench measures tagging, not key agreement; the receiver holds the other end.
const BENCH_KEY_SENDER_TO_RECEIVER = new Uint8Array(FRAME_MAC_KEY_BYTES).fill(0x5a);
const BENCH_KEY_RECEIVER_TO_SENDER = new Uint8Array(FRAME_MAC_KEY_BYTES).fill(0xa5);

function runReceiver(): void {
  const port = parentPort;
  if (port === null) throw new Error("transport-bench: the receiver must run in a worker");
  let tagged = false;
  const server = createServer({ noDelay: true }, (socket) => {
    const decoder = new FrameDecoder();
    // Checks tags as Connection does: the payload is the frame without its last tagBytes.
    const authenticator: FrameAuthenticator | undefined = tagged
      ? frameMac({ sendKey: BENCH_KEY_RECEIVER_TO_SENDER, receiveKey: BENCH_KEY_SENDER_TO_RECEIVER })
      : undefined;
    let frames = 0;
    let bytes = 0;
    let badTags = 0;
    socket.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      decoder.push(chunk, (frame) => {
        if (authenticator !== undefined) {
          const payloadBytes = frame.length - authenticator.tagBytes;
          if (!authenticator.open(frame.subarray(0, payloadBytes), frame, payloadBytes)) badTags += 1;
        }
        frames += 1;
        return true;
      });
    });
    socket.on("close", () => port.postMessage({ kind: "received", frames, bytes, badTags } satisfies ReceiverMessage));
  });
  server.listen(0, "127.0.0.1", () => port.postMessage({ kind: "listening", port: (server.address() as AddressInfo).port } satisfies ReceiverMessage));
  port.on("message", (command: ReceiverCommand) => {
    if (command.kind === "stop") {
      server.close();
      return;
    }
    tagged = command.tagged;
    port.postMessage({ kind: "ready" } satisfies ReceiverMessage);
  });
}

interface Sender {
  send(payload: Uint8Array): void;
  /** Called after each burst. */
  endBurst(): void;
  full(): boolean;
  /** Resolves when `full()` may have become false. */
  ready(): Promise<void>;
  /** Everything handed over; resolves once it is all written and the socket is closed. */
  finish(): Promise<void>;
  writes(): number;
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => socket.once("drain", () => resolve()));
}

function endSocket(socket: Socket): Promise<void> {
  return new Promise((resolve) => socket.end(() => resolve()));
}

function rawSender(socket: Socket, strategy: "raw-gather" | "raw-cork" | "raw-write"): Sender {
  let writes = 0;
  let pending: Uint8Array[] = [];
  let corked = false;
  return {
    send(payload) {
      if (strategy === "raw-gather") {
        pending.push(payload);
        return;
      }
      if (strategy === "raw-cork" && !corked) {
        socket.cork();
        corked = true;
      }
      socket.write(encodeFrame(payload));
      if (strategy === "raw-write") writes += 1;
    },
    endBurst() {
      if (strategy === "raw-cork" && corked) {
        socket.uncork();
        corked = false;
        writes += 1;
      }
      if (strategy !== "raw-gather" || pending.length === 0) return;
      let bytes = 0;
      for (const payload of pending) bytes += FRAME_HEADER_BYTES + payload.length;
      const batch = Buffer.allocUnsafe(bytes);
      let offset = 0;
      for (const payload of pending) offset = writeFrame(batch, offset, payload);
      socket.write(batch);
      writes += 1;
      pending = [];
    },
    full: () => socket.writableNeedDrain,
    ready: () => drained(socket),
    finish: () => endSocket(socket),
    writes: () => writes,
  };
}

/** A handshake that is done at once, handing the connection the sender's end of the fixed keys. */
const taggingHandshake: HandshakeFactory<null> = () => ({
  frameBytesMax: 0,
  start: () => ({ kind: "done", session: null, authenticator: frameMac({ sendKey: BENCH_KEY_SENDER_TO_RECEIVER, receiveKey: BENCH_KEY_RECEIVER_TO_SENDER }) }),
  receive: () => ({ kind: "fail", detail: "no handshake expected" }),
});

function connectionSender(socket: Socket, tagged: boolean): Sender {
  const handshake = tagged ? taggingHandshake : noHandshake;
  const connection = new Connection<null>(
    socket,
    { settings: connectionSettings({ sendQueueFramesMax: 4 * CONNECTION_QUEUE_FRAMES_PAUSE }), handshake: handshake("initiator"), label: "bench" },
    { onFrame: () => undefined },
  );
  connection.start();
  return {
    send(payload) {
      if (!connection.send(payload)) throw new Error("transport-bench: the connection dropped a frame");
    },
    endBurst: () => undefined,
    full: () => connection.sendQueueFrames >= CONNECTION_QUEUE_FRAMES_PAUSE,
    // Waiting for the socket's 'drain' (Connection refills the socket in its own 'drain' listener,
    // which runs first) rather than polling each turn, which would count idle turns as busy.
    ready: () => (socket.writableNeedDrain ? drained(socket) : nextTurn()),
    async finish() {
      while (connection.sendQueueFrames > 0) await nextTurn();
      await endSocket(socket);
      connection.close();
    },
    writes: () => connection.counters.socketWrites,
  };
}

const STRATEGIES = ["connection", "connection-mac", "raw-gather", "raw-cork", "raw-write"] as const;
type Strategy = (typeof STRATEGIES)[number];

interface RunResult {
  readonly strategy: Strategy;
  readonly frames: number;
  readonly seconds: number;
  readonly framesPerSecond: number;
  readonly megabytesPerSecond: number;
  readonly framesPerWrite: number;
  /** Main-thread event-loop busy time per frame: the sender's CPU cost, receiver excluded. */
  readonly senderBusyMicrosecondsPerFrame: number;
}

async function runOnce(worker: Worker, port: number, strategy: Strategy, frames: number, payloadBytes: number): Promise<RunResult> {
  const tagged = strategy === "connection-mac";
  const ready = new Promise<ReceiverMessage>((resolve) => worker.once("message", resolve));
  worker.postMessage({ kind: "expect", tagged } satisfies ReceiverCommand);
  if ((await ready).kind !== "ready") throw new Error("transport-bench: the receiver did not acknowledge the run");
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port, noDelay: true }, () => resolve(s));
    s.once("error", reject);
  });
  const sender = strategy === "connection" || strategy === "connection-mac" ? connectionSender(socket, tagged) : rawSender(socket, strategy);
  // Distinct payload objects, as an application would produce; made before the clock starts.
  const payloads: Uint8Array[] = [];
  for (let index = 0; index < 1024; index++) payloads.push(Buffer.alloc(payloadBytes, index & 0xff));
  const received = new Promise<ReceiverMessage>((resolve) => worker.once("message", resolve));
  const utilizationBefore = performance.eventLoopUtilization();
  const started = process.hrtime.bigint();
  let sent = 0;
  while (sent < frames) {
    while (sender.full()) await sender.ready();
    const burstEnd = Math.min(frames, sent + BURST_FRAMES);
    for (; sent < burstEnd; sent++) sender.send(payloads[sent & 1023] as Uint8Array);
    sender.endBurst();
    await nextTurn();
  }
  await sender.finish();
  const report = await received;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const busyMs = performance.eventLoopUtilization(utilizationBefore).active;
  if (report.kind !== "received" || report.frames !== frames || report.badTags !== 0) {
    throw new Error(`transport-bench: ${strategy} delivered ${JSON.stringify(report)} of ${frames} frames`);
  }
  return {
    strategy,
    frames,
    seconds: Number(seconds.toFixed(3)),
    framesPerSecond: Math.round(frames / seconds),
    // Application bytes (payload and prefix), so tagged and untagged runs compare like for like.
    megabytesPerSecond: Number(((frames * (payloadBytes + FRAME_HEADER_BYTES)) / seconds / 1e6).toFixed(1)),
    framesPerWrite: Number((frames / Math.max(1, sender.writes())).toFixed(1)),
    senderBusyMicrosecondsPerFrame: Number(((busyMs * 1000) / frames).toFixed(3)),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "payload-bytes": { type: "string", default: "100" },
      frames: { type: "string", default: "1000000" },
      runs: { type: "string", default: "3" },
      strategies: { type: "string", default: STRATEGIES.join(",") },
    },
  });
  const strategies = values.strategies.split(",").map((name) => {
    const strategy = STRATEGIES.find((known) => known === name);
    if (strategy === undefined) throw new Error(`transport-bench: unknown strategy ${name}; known: ${STRATEGIES.join(", ")}`);
    return strategy;
  });
  const payloadBytes = Number(values["payload-bytes"]);
  const frames = Number(values.frames);
  const runs = Number(values.runs);
  const worker = new Worker(new URL(import.meta.url));
  const listening = await new Promise<ReceiverMessage>((resolve) => worker.once("message", resolve));
  if (listening.kind !== "listening") throw new Error("transport-bench: the receiver did not start");
  const results: RunResult[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      // Interleave strategies so drift in machine speed hits them all alike.
      for (const strategy of strategies) {
        // One write per frame is ~30× slower; a tenth of the frames measures it as well.
        const count = strategy === "raw-write" ? Math.max(1, Math.floor(frames / 10)) : frames;
        const result = await runOnce(worker, listening.port, strategy, count, payloadBytes);
        results.push(result);
        console.log(JSON.stringify(result));
      }
    }
  } finally {
    worker.postMessage({ kind: "stop" } satisfies ReceiverCommand);
    await worker.terminate();
  }
  console.log(`\nmedian of ${runs} runs, ${payloadBytes}-byte payloads, one loopback connection:`);
  for (const strategy of strategies) {
    const mine = results.filter((r) => r.strategy === strategy).sort((a, b) => a.framesPerSecond - b.framesPerSecond);
    const median = mine[Math.floor(mine.length / 2)] as RunResult;
    console.log(
      `${strategy.padEnd(15)} ${(median.framesPerSecond / 1e6).toFixed(2).padStart(6)} M frames/s ${median.megabytesPerSecond.toFixed(0).padStart(5)} MB/s ${median.framesPerWrite.toFixed(0).padStart(6)} frames/write ${median.senderBusyMicrosecondsPerFrame.toFixed(2).padStart(6)} µs sender busy/frame`,
    );
  }
}

if (isMainThread) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
} else {
  runReceiver();
}
