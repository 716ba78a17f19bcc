// The signed handshake that opens every connection to a replica's port (issue 4 §2): before any
// application frame flows, each end proves which key it holds, the two agree fresh keys that
// authenticate every later frame, and the connection's session (wire-types.ts `PeerSession`)
// says who the peer is: replica `id` of the cluster, or a client named by its public key. It
// plugs into the transport as a `Handshake` (net/handshake.ts), a small state machine with no I/O.
//
// Three frames: an ephemeral X25519 Diffie-Hellman in which each side signs a transcript holding
// both ephemeral public keys (the SIGMA pattern: sign the key exchange, so nobody can stand in it):
//
//   1. initiator -> responder  HELLO      version, cluster id, initiator role, initiator ephemeral
//                                         key, the replica id the initiator means to reach
//   2. responder -> initiator  CHALLENGE  responder id, responder ephemeral key, responder signature
//   3. initiator -> responder  PROOF      initiator signature
//
// The responder signs first because the initiator's signature must cover the responder's
// ephemeral key, which the responder has to send anyway; its signature rides in the same frame,
// so the whole exchange is one and a half round trips. Each side draws a fresh ephemeral key pair
// for every handshake, so its public key also serves as that side's nonce (version 1 sent 32-byte
// random nonces in the same places).
//
// Keys. Each side, once the other's signature checked out, computes the X25519 shared secret of
// the two ephemeral keys (crypto/x25519.ts) and derives 64 bytes with HKDF-SHA256 (RFC 5869),
// salted with the SHA-256 of the transcript, so the keys belong to this cluster, these two
// identities and these two ephemeral keys; the first 32 bytes key one direction, the last 32 the
// other:
//
//   HKDF(shared secret, SHA-256(transcript body), "bulwark/handshake/v2/mac", 64 bytes)
//     = initiator -> responder key (32) || responder -> initiator key (32)
//
// They seed the connection's frame authenticator (net/frame-mac.ts), which the `done` step hands
// to the transport: every frame after the PROOF carries a 16-byte tag over the frame and an
// implicit per-direction frame counter. The ephemeral secret scalars are zeroed once used, and
// when a handshake is abandoned (the connection timed out or closed first).
//
// What it proves. When the initiator is done, the other end held the private key the cluster
// config lists for the replica it dialled and signed this handshake's two ephemeral keys (so an
// old CHALLENGE cannot be replayed: it holds another initiator key). When the responder is done,
// the other end held the private key of the replica id it claimed (or of the client key it
// presented) and signed the responder's fresh ephemeral key, so an old PROOF cannot be replayed.
// Both signatures cover the cluster id and the responder id, so a handshake with one cluster or
// replica cannot be passed off as one with another, and the two directions use different domain
// strings, so a responder's signature is never accepted as an initiator's (no reflection). A man
// in the middle who swaps either ephemeral key for his own breaks a signature; one who relays the
// handshake unchanged cannot compute the shared secret, so every frame he later injects, alters,
// replays, reorders or drops fails the receiver's MAC check and closes the connection. The two
// directions' keys differ, so a frame reflected back to its sender fails too.
//
// What it does NOT do. Nothing is encrypted: someone on the path reads every frame, and sees
// which client key connects. Messages that must convince third parties (view changes,
// checkpoints, commit signatures, client transactions) still carry their own signatures, since a
// MAC convinces only the two ends of one connection. A responder draws a key pair and signs a
// CHALLENGE for whoever connects, before the initiator has proved anything; the listener's
// connection bound and the handshake timeout bound that cost, and the key agreement (a shared
// secret and an HKDF) waits for a valid PROOF, so a peer that never sends one costs no more. It
// follows that the responder signs a transcript holding whatever initiator key the HELLO carried,
// small-order ones included, and refuses such a key only after the PROOF. That is harmless: the
// signature convinces only an initiator whose key is in it, the initiator's own signature covers
// the key (so a small-order one is that proven initiator's own doing), and no keys are agreed.
//
// Frames (integers big-endian). Every frame is at most HANDSHAKE_FRAME_BYTES_MAX bytes, the
// `frameBytesMax` of both state machines, so until the handshake is done the transport refuses a
// larger one at its length prefix: an unauthenticated peer cannot make a replica buffer more.
//
//   HELLO      u8 0x01 | u8 version (2) | u8 c (1..64) | c bytes cluster id (ASCII)
//              | role | 32 bytes initiator ephemeral X25519 key | u16 expected responder id
//   CHALLENGE  u8 0x02 | u16 responder id | 32 bytes responder ephemeral X25519 key | 64 bytes signature
//   PROOF      u8 0x03 | 64 bytes signature
//
//   role       u8 0x00 | u16 replica id           an initiator that is a replica
//              u8 0x01 | 32 bytes public key      an initiator that is a client
//
// Transcript each side signs with Ed25519 (the responder with domain "responder", the initiator
// with "initiator"), and whose body's SHA-256 salts the key derivation:
//
//   "bulwark/handshake/v2/<responder|initiator>\0" || body
//   body = u8 c || cluster id || role || initiator ephemeral key (32) || responder ephemeral key (32)
//          || u16 responder id
//
// Every field is fixed-size or length-prefixed, so one transcript has one reading. Decoding trusts
// nothing: a malformed, truncated, oversized or unexpected frame, or an ephemeral key of small
// order, makes the handshake fail with a one-line reason (the transport closes the connection and
// logs it); it never throws.

import { hkdfSync } from "node:crypto";
import { equalBytes } from "../app/bytes.js";
import {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  type Ed25519PrivateKey,
  ed25519PublicKeyOf,
  ed25519PublicKeyProblem,
  ed25519Sign,
  ed25519Verify,
} from "../crypto/ed25519.js";
import { sha256 } from "../crypto/sha256.js";
import { X25519_PUBLIC_KEY_BYTES, type X25519KeyPair, x25519KeyPair, x25519SharedSecret } from "../crypto/x25519.js";
import { CLUSTER_ID_PATTERN, type ClusterConfig, replicaPublicKey } from "../ledger/cluster.js";
import { FRAME_MAC_KEY_BYTES, frameMac } from "../net/frame-mac.js";
import type { Handshake, HandshakeFactory, HandshakeRole, HandshakeStep } from "../net/handshake.js";
import type { PeerSession } from "./wire-types.js";

export const HANDSHAKE_VERSION = 2;
/** An ephemeral X25519 public key, which is also its sender's nonce. */
export const HANDSHAKE_EPHEMERAL_KEY_BYTES = X25519_PUBLIC_KEY_BYTES;
/** Every handshake frame is far smaller (a HELLO is at most 134 bytes); anything larger is refused. */
export const HANDSHAKE_FRAME_BYTES_MAX = 256;

export interface ReplicaIdentity {
  readonly cluster: ClusterConfig;
  readonly id: number;
  /**
   * The key the cluster config lists for `id`. Not checked here: a replica started with the wrong
   * key fails every handshake, and its peers log why.
   */
  readonly privateKey: Ed25519PrivateKey;
}

export interface ClientIdentity {
  readonly cluster: ClusterConfig;
  readonly privateKey: Ed25519PrivateKey;
}

/** A replica's listener: accepts replicas of the cluster and any client. */
export function replicaListenerHandshake(self: ReplicaIdentity): HandshakeFactory<PeerSession> {
  assertReplicaId(self.cluster, self.id, "the listening replica");
  ed25519PublicKeyOf(self.privateKey); // asserts it is an Ed25519 private key
  return (role) => {
    requireRole(role, "responder", "a replica's listener");
    return new ResponderHandshake(self);
  };
}

/** A replica dialling replica `peer`: succeeds only if the other end proves it is that replica. */
export function replicaDialHandshake(self: ReplicaIdentity, peer: number): HandshakeFactory<PeerSession> {
  assertReplicaId(self.cluster, self.id, "the dialling replica");
  assertReplicaId(self.cluster, peer, "the dialled replica");
  if (peer === self.id) throw new RangeError(`replica ${peer} cannot dial itself`);
  ed25519PublicKeyOf(self.privateKey);
  return (role) => {
    requireRole(role, "initiator", "a replica's dial to a peer");
    return new InitiatorHandshake(self.cluster, { kind: "replica", id: self.id }, self.privateKey, peer);
  };
}

/** A client dialling replica `peer`. */
export function clientDialHandshake(self: ClientIdentity, peer: number): HandshakeFactory<PeerSession> {
  assertReplicaId(self.cluster, peer, "the dialled replica");
  const key = ed25519PublicKeyOf(self.privateKey);
  return (role) => {
    requireRole(role, "initiator", "a client's dial to a replica");
    return new InitiatorHandshake(self.cluster, { kind: "client", key }, self.privateKey, peer);
  };
}

// ------------------------------------------------------------------------------------------
// State machines

type Step = HandshakeStep<PeerSession>;

const fail = (detail: string): Step => ({ kind: "fail", detail });

class InitiatorHandshake implements Handshake<PeerSession> {
  readonly frameBytesMax = HANDSHAKE_FRAME_BYTES_MAX;
  private phase: "new" | "awaiting-challenge" | "finished" = "new";
  // Drawn in start(), when the connection exists, and zeroed when the CHALLENGE is answered or the
  // handshake is abandoned.
  private ephemeral: X25519KeyPair | undefined;
  private readonly clusterId: Uint8Array;

  constructor(
    private readonly cluster: ClusterConfig,
    private readonly role: PeerSession,
    private readonly privateKey: Ed25519PrivateKey,
    private readonly peer: number,
  ) {
    this.clusterId = ascii(cluster.clusterId);
  }

  start(): Step {
    if (this.phase !== "new") return this.finish(fail("the handshake was started twice"));
    this.phase = "awaiting-challenge";
    const ephemeral = x25519KeyPair();
    this.ephemeral = ephemeral;
    return { kind: "continue", send: [encodeHello({ clusterId: this.clusterId, role: this.role, ephemeralKey: ephemeral.publicKey, expectedResponder: this.peer })] };
  }

  receive(payload: Uint8Array): Step {
    if (this.phase !== "awaiting-challenge") return this.finish(fail(unexpectedFrame(this.phase)));
    const ephemeral = this.ephemeral;
    if (ephemeral === undefined) throw new Error("handshake initiator: awaiting a CHALLENGE without an ephemeral key");
    this.phase = "finished";
    try {
      return this.receiveChallenge(payload, ephemeral);
    } finally {
      this.abandon(); // used or refused: either way the scalar is never needed again
    }
  }

  abandon(): void {
    this.phase = "finished";
    this.ephemeral?.secretKey.fill(0);
    this.ephemeral = undefined;
  }

  private receiveChallenge(payload: Uint8Array, ephemeral: X25519KeyPair): Step {
    const challenge = decodeChallenge(payload);
    if (typeof challenge === "string") return fail(challenge);
    if (challenge.responderId !== this.peer) {
      return fail(`expected replica ${this.peer}, reached a peer that answered as replica ${challenge.responderId}`);
    }
    const fields: TranscriptFields = {
      clusterId: this.clusterId,
      role: this.role,
      initiatorEphemeralKey: ephemeral.publicKey,
      responderEphemeralKey: challenge.ephemeralKey,
      responderId: this.peer,
    };
    const body = transcriptBody(fields);
    if (!ed25519Verify(replicaKey(this.cluster, this.peer), signedTranscript(RESPONDER_DOMAIN, body), challenge.signature)) {
      return fail(`expected replica ${this.peer}, reached a peer that could not prove it`);
    }
    // The responder signed this key, so a small-order one is its own doing, not an attacker's.
    const keys = agreeKeys(ephemeral.secretKey, challenge.ephemeralKey, body);
    if (keys === undefined) return fail(`replica ${this.peer} sent an ephemeral key of small order`);
    const proof = encodeProof(ed25519Sign(this.privateKey, signedTranscript(INITIATOR_DOMAIN, body)));
    const authenticator = frameMac({ sendKey: keys.initiatorToResponder, receiveKey: keys.responderToInitiator });
    zeroKeys(keys); // the authenticator holds its own copies
    return { kind: "done", session: { kind: "replica", id: this.peer, binding: sha256(body) }, send: [proof], authenticator };
  }

  private finish(step: Step): Step {
    this.phase = "finished";
    return step;
  }
}

/** What a responder keeps between the HELLO it accepted and the PROOF. */
interface AcceptedHello {
  readonly fields: TranscriptFields;
  /** The transcript both signatures cover. */
  readonly body: Uint8Array;
  /** The responder's ephemeral scalar, kept for the key agreement after the PROOF; zeroed after it. */
  readonly secretKey: Uint8Array;
}

class ResponderHandshake implements Handshake<PeerSession> {
  readonly frameBytesMax = HANDSHAKE_FRAME_BYTES_MAX;
  private phase: "new" | "awaiting-hello" | "awaiting-proof" | "finished" = "new";
  private readonly clusterId: Uint8Array;
  private accepted: AcceptedHello | undefined;

  constructor(private readonly self: ReplicaIdentity) {
    this.clusterId = ascii(self.cluster.clusterId);
  }

  start(): Step {
    if (this.phase !== "new") return this.finish(fail("the handshake was started twice"));
    this.phase = "awaiting-hello";
    return { kind: "continue" };
  }

  receive(payload: Uint8Array): Step {
    if (this.phase === "awaiting-hello") return this.receiveHello(payload);
    if (this.phase === "awaiting-proof") return this.receiveProof(payload);
    return this.finish(fail(unexpectedFrame(this.phase)));
  }

  abandon(): void {
    this.phase = "finished";
    this.accepted?.secretKey.fill(0);
    this.accepted = undefined;
  }

  // Costs one key pair and one signature, which the CHALLENGE must carry; the key agreement waits
  // for the PROOF, so a peer that never proves anything costs no more.
  private receiveHello(payload: Uint8Array): Step {
    this.phase = "finished"; // until the HELLO is accepted
    const hello = decodeHello(payload);
    if (typeof hello === "string") return fail(hello);
    const { cluster, id } = this.self;
    if (!equalBytes(hello.clusterId, this.clusterId)) {
      return fail(`the peer is in ${describeClusterId(hello.clusterId)}, not in cluster "${cluster.clusterId}"`);
    }
    if (hello.expectedResponder !== id) return fail(`the peer expected replica ${hello.expectedResponder}, but this is replica ${id}`);
    const role = hello.role;
    if (role.kind === "replica" && role.id >= cluster.n) return fail(`the peer claims to be replica ${role.id}, but the cluster has ${cluster.n} replicas`);
    if (role.kind === "replica" && role.id === id) return fail(`the peer claims to be replica ${id}, which is this replica`);
    if (role.kind === "client") {
      const problem = ed25519PublicKeyProblem(role.key);
      if (problem !== null) return fail(`the client's public key is refused (${problem})`);
    }
    // The key pair is drawn only now, so a peer that sends garbage costs no key generation.
    const ephemeral = x25519KeyPair();
    const fields: TranscriptFields = { clusterId: this.clusterId, role, initiatorEphemeralKey: hello.ephemeralKey, responderEphemeralKey: ephemeral.publicKey, responderId: id };
    const body = transcriptBody(fields);
    this.accepted = { fields, body, secretKey: ephemeral.secretKey };
    this.phase = "awaiting-proof";
    const signature = ed25519Sign(this.self.privateKey, signedTranscript(RESPONDER_DOMAIN, body));
    return { kind: "continue", send: [encodeChallenge({ responderId: id, ephemeralKey: ephemeral.publicKey, signature })] };
  }

  private receiveProof(payload: Uint8Array): Step {
    const accepted = this.accepted;
    if (accepted === undefined) throw new Error("handshake responder: awaiting a PROOF without an accepted HELLO");
    try {
      const signature = decodeProof(payload);
      if (typeof signature === "string") return fail(signature);
      const { role, initiatorEphemeralKey } = accepted.fields;
      const key = role.kind === "replica" ? replicaKey(this.self.cluster, role.id) : role.key;
      if (!ed25519Verify(key, signedTranscript(INITIATOR_DOMAIN, accepted.body), signature)) {
        return fail(role.kind === "replica" ? `the peer claimed to be replica ${role.id} but could not prove it` : "the client could not prove it holds its key");
      }
      // The initiator signed its own key, so a small-order one is its own doing; nothing is agreed with it.
      const keys = agreeKeys(accepted.secretKey, initiatorEphemeralKey, accepted.body);
      if (keys === undefined) return fail("the peer's ephemeral key is of small order");
      const authenticator = frameMac({ sendKey: keys.responderToInitiator, receiveKey: keys.initiatorToResponder });
      zeroKeys(keys); // the authenticator holds its own copies
      return { kind: "done", session: { ...role, binding: sha256(accepted.body) }, authenticator };
    } finally {
      this.abandon(); // accepted or refused, the scalar is never needed again
    }
  }

  private finish(step: Step): Step {
    this.phase = "finished";
    return step;
  }
}

// ------------------------------------------------------------------------------------------
// Transcript

const RESPONDER_DOMAIN = ascii("bulwark/handshake/v2/responder\0");
const INITIATOR_DOMAIN = ascii("bulwark/handshake/v2/initiator\0");
const FRAME_MAC_INFO = ascii("bulwark/handshake/v2/mac");

interface TranscriptFields {
  readonly clusterId: Uint8Array;
  readonly role: PeerSession;
  readonly initiatorEphemeralKey: Uint8Array;
  readonly responderEphemeralKey: Uint8Array;
  readonly responderId: number;
}

/** The transcript without its domain: what both signatures cover and what salts the keys. */
function transcriptBody(fields: TranscriptFields): Uint8Array {
  const writer = new Writer(1 + fields.clusterId.length + roleBytes(fields.role) + 2 * HANDSHAKE_EPHEMERAL_KEY_BYTES + 2);
  writer.u8(fields.clusterId.length);
  writer.bytes(fields.clusterId);
  writeRole(writer, fields.role);
  writer.bytes(fields.initiatorEphemeralKey);
  writer.bytes(fields.responderEphemeralKey);
  writer.u16(fields.responderId);
  return writer.finish();
}

function signedTranscript(domain: Uint8Array, body: Uint8Array): Uint8Array {
  const signed = new Uint8Array(domain.length + body.length);
  signed.set(domain);
  signed.set(body, domain.length);
  return signed;
}

// ------------------------------------------------------------------------------------------
// Keys

/** One frame MAC key per direction of a connection. */
export interface FrameMacDirectionKeys {
  readonly initiatorToResponder: Uint8Array;
  readonly responderToInitiator: Uint8Array;
}

/**
 * The two directions' keys from an X25519 shared secret and the transcript body (see the header).
 * Exported for tests; the handshake is its only other caller.
 */
export function deriveFrameMacKeys(sharedSecret: Uint8Array, transcriptBodyBytes: Uint8Array): FrameMacDirectionKeys {
  // One HKDF (one Extract, one Expand to both keys) rather than one per key, which would Extract twice.
  const okm = new Uint8Array(hkdfSync("sha256", sharedSecret, sha256(transcriptBodyBytes), FRAME_MAC_INFO, 2 * FRAME_MAC_KEY_BYTES));
  try {
    return { initiatorToResponder: okm.slice(0, FRAME_MAC_KEY_BYTES), responderToInitiator: okm.slice(FRAME_MAC_KEY_BYTES) };
  } finally {
    okm.fill(0);
  }
}

/** The keys of this handshake, or undefined when the peer's ephemeral key is of small order. */
function agreeKeys(ownSecretKey: Uint8Array, peerEphemeralKey: Uint8Array, body: Uint8Array): FrameMacDirectionKeys | undefined {
  const shared = x25519SharedSecret(ownSecretKey, peerEphemeralKey);
  if (shared === undefined) return undefined;
  try {
    return deriveFrameMacKeys(shared, body);
  } finally {
    shared.fill(0);
  }
}

function zeroKeys(keys: FrameMacDirectionKeys): void {
  keys.initiatorToResponder.fill(0);
  keys.responderToInitiator.fill(0);
}

// ------------------------------------------------------------------------------------------
// Frames

const TAG_HELLO = 0x01;
const TAG_CHALLENGE = 0x02;
const TAG_PROOF = 0x03;
const ROLE_REPLICA = 0x00;
const ROLE_CLIENT = 0x01;
const CLUSTER_ID_BYTES_MAX = 64;

interface Hello {
  readonly clusterId: Uint8Array;
  readonly role: PeerSession;
  readonly ephemeralKey: Uint8Array;
  readonly expectedResponder: number;
}

interface Challenge {
  readonly responderId: number;
  readonly ephemeralKey: Uint8Array;
  readonly signature: Uint8Array;
}

function encodeHello(hello: Hello): Uint8Array {
  const writer = new Writer(3 + hello.clusterId.length + roleBytes(hello.role) + HANDSHAKE_EPHEMERAL_KEY_BYTES + 2);
  writer.u8(TAG_HELLO);
  writer.u8(HANDSHAKE_VERSION);
  writer.u8(hello.clusterId.length);
  writer.bytes(hello.clusterId);
  writeRole(writer, hello.role);
  writer.bytes(hello.ephemeralKey);
  writer.u16(hello.expectedResponder);
  return writer.finish();
}

function encodeChallenge(challenge: Challenge): Uint8Array {
  const writer = new Writer(3 + HANDSHAKE_EPHEMERAL_KEY_BYTES + ED25519_SIGNATURE_BYTES);
  writer.u8(TAG_CHALLENGE);
  writer.u16(challenge.responderId);
  writer.bytes(challenge.ephemeralKey);
  writer.bytes(challenge.signature);
  return writer.finish();
}

function encodeProof(signature: Uint8Array): Uint8Array {
  const writer = new Writer(1 + ED25519_SIGNATURE_BYTES);
  writer.u8(TAG_PROOF);
  writer.bytes(signature);
  return writer.finish();
}

/** The HELLO in `payload`, or why it is not one. Never throws. */
function decodeHello(payload: Uint8Array): Hello | string {
  return decodeFrame(payload, "HELLO", TAG_HELLO, (reader) => {
    const version = reader.u8("version");
    if (version !== HANDSHAKE_VERSION) reader.fail(`unsupported handshake version ${version}; this build speaks version ${HANDSHAKE_VERSION}`);
    const clusterIdBytes = reader.u8("cluster id length");
    if (clusterIdBytes < 1 || clusterIdBytes > CLUSTER_ID_BYTES_MAX) reader.fail(`a cluster id is 1 to ${CLUSTER_ID_BYTES_MAX} bytes, not ${clusterIdBytes}`);
    const clusterId = reader.bytes(clusterIdBytes, "cluster id");
    const roleTag = reader.u8("role");
    let role: PeerSession;
    if (roleTag === ROLE_REPLICA) role = { kind: "replica", id: reader.u16("replica id") };
    else if (roleTag === ROLE_CLIENT) role = { kind: "client", key: reader.bytes(ED25519_PUBLIC_KEY_BYTES, "client key") };
    else return reader.fail(`unknown initiator role ${hexByte(roleTag)}`);
    return { clusterId, role, ephemeralKey: reader.bytes(HANDSHAKE_EPHEMERAL_KEY_BYTES, "ephemeral key"), expectedResponder: reader.u16("expected replica id") };
  });
}

function decodeChallenge(payload: Uint8Array): Challenge | string {
  return decodeFrame(payload, "CHALLENGE", TAG_CHALLENGE, (reader) => ({
    responderId: reader.u16("responder id"),
    ephemeralKey: reader.bytes(HANDSHAKE_EPHEMERAL_KEY_BYTES, "ephemeral key"),
    signature: reader.bytes(ED25519_SIGNATURE_BYTES, "signature"),
  }));
}

function decodeProof(payload: Uint8Array): Uint8Array | string {
  return decodeFrame(payload, "PROOF", TAG_PROOF, (reader) => reader.bytes(ED25519_SIGNATURE_BYTES, "signature"));
}

/** Checks the size and tag, runs `read`, and checks nothing is left; any problem becomes a one-line reason. */
function decodeFrame<T>(payload: Uint8Array, name: string, tag: number, read: (reader: Reader) => T): T | string {
  if (!(payload instanceof Uint8Array)) return "a handshake frame must be bytes";
  if (payload.length > HANDSHAKE_FRAME_BYTES_MAX) return `a ${payload.length}-byte frame is too large for a handshake ${name} (at most ${HANDSHAKE_FRAME_BYTES_MAX})`;
  if (payload.length === 0) return `expected a handshake ${name}, got an empty frame`;
  if (payload[0] !== tag) return `expected a handshake ${name} (tag ${hexByte(tag)}), got a frame with tag ${hexByte(payload[0] as number)}`;
  const reader = new Reader(payload, name);
  try {
    const value = read(reader);
    if (reader.remaining() !== 0) reader.fail(`${reader.remaining()} unexpected bytes after the end`);
    return value;
  } catch (error) {
    if (error instanceof HandshakeFrameError) return error.message;
    throw error; // a bug in this file, not bad input
  }
}

class HandshakeFrameError extends Error {
  override readonly name = "HandshakeFrameError";
}

/** Reads a handshake frame after its tag; fields it returns are copies, never views into the socket's buffer. */
class Reader {
  private offset = 1;

  constructor(
    private readonly payload: Uint8Array,
    private readonly frameName: string,
  ) {}

  remaining(): number {
    return this.payload.length - this.offset;
  }

  fail(detail: string): never {
    throw new HandshakeFrameError(`malformed handshake ${this.frameName}: ${detail}`);
  }

  u8(what: string): number {
    this.require(1, what);
    const value = this.payload[this.offset] as number;
    this.offset += 1;
    return value;
  }

  u16(what: string): number {
    this.require(2, what);
    const value = ((this.payload[this.offset] as number) << 8) | (this.payload[this.offset + 1] as number);
    this.offset += 2;
    return value;
  }

  bytes(length: number, what: string): Uint8Array {
    this.require(length, what);
    // Uint8Array.from copies: `slice` on a Buffer (as the socket delivers) would return a view.
    const value = Uint8Array.from(this.payload.subarray(this.offset, this.offset + length));
    this.offset += length;
    return value;
  }

  private require(length: number, what: string): void {
    if (this.remaining() < length) this.fail(`truncated at the ${what} (${length} bytes needed, ${this.remaining()} left)`);
  }
}

class Writer {
  private readonly buffer: Uint8Array;
  private offset = 0;

  constructor(length: number) {
    this.buffer = new Uint8Array(length);
  }

  u8(value: number): void {
    this.buffer[this.offset] = value;
    this.offset += 1;
  }

  u16(value: number): void {
    this.buffer[this.offset] = value >>> 8;
    this.buffer[this.offset + 1] = value & 0xff;
    this.offset += 2;
  }

  bytes(value: Uint8Array): void {
    this.buffer.set(value, this.offset);
    this.offset += value.length;
  }

  finish(): Uint8Array {
    if (this.offset !== this.buffer.length) throw new Error(`handshake encoder wrote ${this.offset} of ${this.buffer.length} bytes`);
    return this.buffer;
  }
}

function roleBytes(role: PeerSession): number {
  return 1 + (role.kind === "replica" ? 2 : ED25519_PUBLIC_KEY_BYTES);
}

function writeRole(writer: Writer, role: PeerSession): void {
  if (role.kind === "replica") {
    writer.u8(ROLE_REPLICA);
    writer.u16(role.id);
  } else {
    writer.u8(ROLE_CLIENT);
    writer.bytes(role.key);
  }
}

// ------------------------------------------------------------------------------------------
// Helpers

function ascii(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text, "latin1"));
}

/** A peer's cluster id for a log line: quoted if it is a valid id, otherwise not repeated. */
function describeClusterId(clusterId: Uint8Array): string {
  const text = Buffer.from(clusterId).toString("latin1");
  return CLUSTER_ID_PATTERN.test(text) ? `cluster "${text}"` : "a cluster with an invalid id";
}

function hexByte(value: number): string {
  return `0x${value.toString(16).padStart(2, "0")}`;
}

function unexpectedFrame(phase: "new" | "finished"): string {
  return phase === "new" ? "a handshake frame arrived before the handshake started" : "a handshake frame arrived after the handshake ended";
}

/** The cluster's key of replica `id`, which the caller has already checked is in the cluster. */
function replicaKey(cluster: ClusterConfig, id: number): Uint8Array {
  const key = replicaPublicKey(cluster, id);
  if (key === undefined) throw new Error(`handshake: replica ${id} is not in cluster "${cluster.clusterId}"`);
  return key;
}

function assertReplicaId(cluster: ClusterConfig, id: number, what: string): void {
  if (replicaPublicKey(cluster, id) === undefined) {
    throw new RangeError(`${what} must be a replica id of cluster "${cluster.clusterId}" (0 .. ${cluster.n - 1}), not ${id}`);
  }
}

function requireRole(role: HandshakeRole, served: HandshakeRole, what: string): void {
  if (role !== served) throw new Error(`${what} serves only the ${served} side of the handshake, not the ${role}`);
}
