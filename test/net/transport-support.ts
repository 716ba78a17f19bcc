// Helpers for the transport tests: real sockets on 127.0.0.1 with ephemeral ports, bounded waits,
// a logger that records, a toy handshake (no key agreement) to exercise the handshake hook, with
// or without a frame authenticator under fixed keys, and a relay that alters frames in flight.

import { type AddressInfo, type Socket, connect, createServer } from "node:net";
import { FrameDecoder, encodeFrame } from "../../src/net/frame.js";
import { FRAME_MAC_KEY_BYTES, frameMac } from "../../src/net/frame-mac.js";
import type { FrameAuthenticator, Handshake, HandshakeFactory, HandshakeRole, HandshakeStep } from "../../src/net/handshake.js";
import type { LogFields, TransportLogger } from "../../src/net/log.js";

export const HOST = "127.0.0.1";

/** Polls `condition` every few milliseconds; rejects after `timeoutMs` saying what it waited for. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A raw client socket, for sending bytes no correct peer would. */
export function rawConnect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: HOST, port }, () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** Resolves when the socket has closed (the peer hung up or it was destroyed); rejects after `timeoutMs`. */
export function closed(socket: Socket, timeoutMs = 3_000): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for the peer to close the connection`)), timeoutMs);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A port with nothing listening on it (bound once, then released). */
export async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface LogLine {
  readonly level: keyof TransportLogger;
  readonly fields: LogFields;
  readonly message: string;
}

export class RecordingLogger implements TransportLogger {
  readonly lines: LogLine[] = [];
  debug(fields: LogFields, message: string): void {
    this.lines.push({ level: "debug", fields, message });
  }
  info(fields: LogFields, message: string): void {
    this.lines.push({ level: "info", fields, message });
  }
  warn(fields: LogFields, message: string): void {
    this.lines.push({ level: "warn", fields, message });
  }
  warnings(reason: string): LogLine[] {
    return this.lines.filter((line) => line.level === "warn" && line.fields["reason"] === reason);
  }
}

const text = (payload: Uint8Array): string => Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString("latin1");
const bytes = (value: string): Uint8Array => Uint8Array.from(Buffer.from(value, "latin1"));

/** The toy handshake's limit on a frame before it is done: names are short. */
export const HELLO_FRAME_BYTES_MAX = 64;

/**
 * A toy handshake: the initiator sends "hello:<its name>", the responder answers
 * "welcome:<its name>", and each side's session is the other's name. Anything else fails.
 * Stands in for the signed handshake of issue 4 §2.
 */
export function helloHandshake(name: string): HandshakeFactory<string> {
  return (role): Handshake<string> =>
    role === "initiator"
      ? {
          frameBytesMax: HELLO_FRAME_BYTES_MAX,
          start: () => ({ kind: "continue", send: [bytes(`hello:${name}`)] }),
          receive: (payload) =>
            text(payload).startsWith("welcome:") ? { kind: "done", session: text(payload).slice(8) } : { kind: "fail", detail: "expected welcome" },
        }
      : {
          frameBytesMax: HELLO_FRAME_BYTES_MAX,
          start: () => ({ kind: "continue" }),
          receive: (payload) =>
            text(payload).startsWith("hello:")
              ? { kind: "done", session: text(payload).slice(6), send: [bytes(`welcome:${name}`)] }
              : { kind: "fail", detail: "expected hello" },
        };
}

/** Fixed keys for `macHandshake`: tests need tags, not key agreement. */
export const TEST_MAC_KEYS = {
  initiatorToResponder: new Uint8Array(FRAME_MAC_KEY_BYTES).fill(0x11),
  responderToInitiator: new Uint8Array(FRAME_MAC_KEY_BYTES).fill(0x22),
} as const;

/** The frame authenticator of `role`'s end under TEST_MAC_KEYS, counting from frame `firstFrame`. */
export function testFrameMac(role: "initiator" | "responder", firstFrame = 0): FrameAuthenticator {
  const { initiatorToResponder, responderToInitiator } = TEST_MAC_KEYS;
  return role === "initiator"
    ? frameMac({ sendKey: initiatorToResponder, receiveKey: responderToInitiator }, "auto", firstFrame)
    : frameMac({ sendKey: responderToInitiator, receiveKey: initiatorToResponder }, "auto", firstFrame);
}

/**
 * `helloHandshake` whose `done` step also hands the connection an authenticator: by default
 * `testFrameMac(role)`; `authenticator` replaces it (to start at another frame number, or to spy).
 */
export function macHandshake(name: string, authenticator: (role: HandshakeRole) => FrameAuthenticator = testFrameMac): HandshakeFactory<string> {
  const hello = helloHandshake(name);
  return (role): Handshake<string> => {
    const inner = hello(role);
    const withAuthenticator = (step: HandshakeStep<string>): HandshakeStep<string> =>
      step.kind === "done" ? { ...step, authenticator: authenticator(role) } : step;
    return { frameBytesMax: inner.frameBytesMax, start: () => withAuthenticator(inner.start()), receive: (payload) => withAuthenticator(inner.receive(payload)) };
  };
}

export interface FrameRelay {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A man in the middle between whoever connects to it and `targetPort`. It decodes the frames the
 * connecting side sends and forwards, for each, what `edit` returns: the frame (`[frame]`), a
 * changed copy, nothing (dropped) or several (replayed). `index` counts that connection's frames
 * from 0, handshake frames included. Bytes in the other direction pass untouched.
 */
export async function frameRelay(targetPort: number, edit: (index: number, frame: Uint8Array) => readonly Uint8Array[]): Promise<FrameRelay> {
  const sockets = new Set<Socket>();
  const server = createServer((downstream) => {
    const upstream = connect({ host: HOST, port: targetPort });
    for (const socket of [downstream, upstream]) {
      sockets.add(socket);
      socket.on("error", () => undefined); // either end may reset; the other is then destroyed
      socket.on("close", () => {
        sockets.delete(socket);
        downstream.destroy();
        upstream.destroy();
      });
    }
    const decoder = new FrameDecoder();
    let index = 0;
    downstream.on("data", (chunk: Buffer) => {
      decoder.push(chunk, (frame) => {
        for (const forwarded of edit(index, Uint8Array.from(frame))) upstream.write(encodeFrame(forwarded));
        index += 1;
        return true;
      });
    });
    upstream.on("data", (chunk: Buffer) => downstream.write(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** `frame` with bit `bit` (counted from the first byte's lowest bit) flipped, as a copy. */
export function flipBit(frame: Uint8Array, bit: number): Uint8Array {
  const copy = Uint8Array.from(frame);
  copy[bit >>> 3] = (copy[bit >>> 3] as number) ^ (1 << (bit & 7));
  return copy;
}

/** A payload carrying a sequence number, so a receiver can check completeness and order. */
export function numbered(sequence: number, payloadBytes: number): Uint8Array {
  const payload = new Uint8Array(payloadBytes);
  new DataView(payload.buffer).setUint32(0, sequence);
  payload.fill(sequence & 0xff, 4);
  return payload;
}

export function sequenceOf(payload: Uint8Array): number {
  return new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0);
}
