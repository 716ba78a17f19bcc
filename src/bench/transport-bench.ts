// Throughput of small frames through one loopback TCP connection, by write strategy. A script,
// not a test: `node dist/src/bench/transport-bench.js [--payload-bytes 100] [--frames 1000000]
// [--runs 3] [--strategies connection,raw-gather,raw-cork,raw-write]`. It prints one JSON line per strategy and run, and a table of medians.
//
// The receiver runs in a worker thread (its own core on a 2-vCPU machine), decodes with
// FrameDecoder and reports when all frames arrived; the sender runs on the main thread. Every
// strategy is fed by the same producer: bursts of BURST_FRAMES payloads per event-loop turn,
// pausing while its sender reports it is full. Strategies:
//   connection        Connection.send(): gathered into ≤ 64 KiB buffers, one write() each
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
import { noHandshake } from "../net/handshake.js";

const BURST_FRAMES = 256;
// Pause the producer for a Connection once this many frames wait, well inside the queue bound.
const CONNECTION_QUEUE_FRAMES_PAUSE = 16_384;

type ReceiverMessage = { kind: "listening"; port: number } | { kind: "received"; frames: number; bytes: number };

function runReceiver(): void {
  const port = parentPort;
  if (port === null) throw new Error("transport-bench: the receiver must run in a worker");
  const server = createServer({ noDelay: true }, (socket) => {
    const decoder = new FrameDecoder();
    let frames = 0;
    let bytes = 0;
    socket.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      decoder.push(chunk, () => {
        frames += 1;
        return true;
      });
    });
    socket.on("close", () => port.postMessage({ kind: "received", frames, bytes } satisfies ReceiverMessage));
  });
  server.listen(0, "127.0.0.1", () => port.postMessage({ kind: "listening", port: (server.address() as AddressInfo).port } satisfies ReceiverMessage));
  port.on("message", () => server.close());
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

function connectionSender(socket: Socket): Sender {
  const connection = new Connection<null>(
    socket,
    { settings: connectionSettings({ sendQueueFramesMax: 4 * CONNECTION_QUEUE_FRAMES_PAUSE }), handshake: noHandshake("initiator"), label: "bench" },
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

const STRATEGIES = ["connection", "raw-gather", "raw-cork", "raw-write"] as const;
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
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port, noDelay: true }, () => resolve(s));
    s.once("error", reject);
  });
  const sender = strategy === "connection" ? connectionSender(socket) : rawSender(socket, strategy);
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
  if (report.kind !== "received" || report.frames !== frames) throw new Error(`transport-bench: ${strategy} delivered ${JSON.stringify(report)} of ${frames} frames`);
  return {
    strategy,
    frames,
    seconds: Number(seconds.toFixed(3)),
    framesPerSecond: Math.round(frames / seconds),
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
    worker.postMessage("stop");
    await worker.terminate();
  }
  console.log(`\nmedian of ${runs} runs, ${payloadBytes}-byte payloads, one loopback connection:`);
  for (const strategy of strategies) {
    const mine = results.filter((r) => r.strategy === strategy).sort((a, b) => a.framesPerSecond - b.framesPerSecond);
    const median = mine[Math.floor(mine.length / 2)] as RunResult;
    console.log(
      `${strategy.padEnd(12)} ${(median.framesPerSecond / 1e6).toFixed(2).padStart(6)} M frames/s ${median.megabytesPerSecond.toFixed(0).padStart(5)} MB/s ${median.framesPerWrite.toFixed(0).padStart(6)} frames/write ${median.senderBusyMicrosecondsPerFrame.toFixed(2).padStart(6)} µs sender busy/frame`,
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
