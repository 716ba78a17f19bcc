// The PBFT core's crypto for a real replica (consensus/pbft/types.ts, `PbftCrypto`): SHA-256
// batch digests, Ed25519 signatures by the replica's key over the core's signing payloads, and
// client requests checked as signed transaction envelopes (app/request.ts).
//
// Verification uses the faster library ("auto": sodium-native when it loads, else node:crypto;
// see crypto/verify-pool.ts for the figures); both apply one verdict policy, so replicas on
// either agree. Client requests are checked with a PrecomputedVerifier: a running replica passes
// the one its verification stage (request-verification.ts) fills from the worker pool, so the
// core's synchronous `verifyRequest` mostly answers from a verdict computed off the event loop,
// and verifies inline whatever the stage did not see. Each request object is checked once: the
// runtime asks before routing a client's replies and the core asks again when it takes the
// request, and the second answer comes from the first (`verdictOf`).
//
// Digests and signatures are lowercase hex strings in the core's types; the core compares them as
// strings, so this module only ever produces the canonical form and refuses any other before it
// decodes (Buffer.from(…, "hex") silently stops at the first bad character).

import { type Hash, createHash } from "node:crypto";

import { admitRequest, requestVerifier } from "../app/request.js";
import type { ClientRequest, Digest, PbftCrypto, ReplicaId, Signature } from "../consensus/pbft/types.js";
import { ED25519_SIGNATURE_BYTES, type Ed25519PrivateKey, type Ed25519Verifier, ed25519Sign } from "../crypto/ed25519.js";
import { type Ed25519VerifyBackend, createEd25519VerifyBackend } from "../crypto/verify-pool.js";
import type { ClusterConfig } from "../ledger/cluster.js";
import { type SessionRequests, isSessionRequest } from "./session-requests.js";
import { PrecomputedVerifier } from "./signature-pool.js";

const BATCH_DOMAIN = "bulwark/batch/v2\0";
const SIGNATURE_HEX = new RegExp(`^[0-9a-f]{${2 * ED25519_SIGNATURE_BYTES}}$`);

export interface ReplicaCryptoOptions {
  /** Checks client requests' signatures; default: a PrecomputedVerifier without verdicts, which verifies inline with the "auto" backend. */
  readonly requestVerifier?: Ed25519Verifier;
  /** The session-authenticated requests this replica received; without it, session requests are accepted only when vouched for. */
  readonly sessions?: SessionRequests;
}

export class ReplicaCrypto implements PbftCrypto {
  private readonly cluster: ClusterConfig;
  private readonly privateKey: Ed25519PrivateKey;
  private readonly backend: Ed25519VerifyBackend = createEd25519VerifyBackend("auto");
  private readonly checkRequest: (request: ClientRequest) => boolean;
  private readonly sessions: SessionRequests | undefined;
  /** The verdict on each request object checked so far; an object is forgotten with its request. */
  private readonly requestVerdicts = new WeakMap<ClientRequest, boolean>();
  private readonly lengthBytes = Buffer.alloc(4);
  private readonly timestampBytes = Buffer.alloc(8);

  /** An Ed25519 verdict from the replica's fastest backend (sodium-native when it loads), for peers' block signatures. */
  readonly checkSignature = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean => this.backend.verify(publicKey, message, signature);

  constructor(cluster: ClusterConfig, privateKey: Ed25519PrivateKey, options: ReplicaCryptoOptions = {}) {
    this.cluster = cluster;
    this.privateKey = privateKey;
    this.checkRequest = requestVerifier(options.requestVerifier ?? new PrecomputedVerifier({ fallback: this.backend }));
    this.sessions = options.sessions;
  }

  /**
   * SHA-256 over a domain prefix, the request count and, for each request, every field the core
   * carries: client key, timestamp, signature and envelope, the variable ones length-prefixed. So
   * equal digests mean equal requests, field for field: the core remembers a fully validated
   * batch by its digest (certificates.ts `validPrePrepare`), and a copy whose client, timestamp or
   * signature field was altered must not pass as the batch that was checked. The envelope alone
   * would not do: the other fields are bound to it only by `verifyRequest`.
   */
  batchDigest(requests: readonly ClientRequest[]): Digest {
    const hash = createHash("sha256").update(BATCH_DOMAIN);
    this.lengthBytes.writeUInt32BE(requests.length);
    hash.update(this.lengthBytes);
    for (const request of requests) {
      this.field(hash, Buffer.from(request.client, "utf8"));
      this.timestampBytes.writeDoubleBE(request.timestamp);
      hash.update(this.timestampBytes);
      this.field(hash, Buffer.from(request.signature, "utf8"));
      this.field(hash, request.operation);
    }
    return hash.digest("hex");
  }

  private field(hash: Hash, bytes: Uint8Array): void {
    this.lengthBytes.writeUInt32BE(bytes.length);
    hash.update(this.lengthBytes).update(bytes);
  }

  sign(payload: string): Signature {
    return Buffer.from(ed25519Sign(this.privateKey, Buffer.from(payload, "utf8"))).toString("hex");
  }

  verify(replica: ReplicaId, payload: string, signature: Signature): boolean {
    const publicKey = this.cluster.replicas[replica]?.publicKey;
    if (publicKey === undefined || typeof signature !== "string" || !SIGNATURE_HEX.test(signature)) return false;
    return this.backend.verify(publicKey, Buffer.from(payload, "utf8"), Buffer.from(signature, "hex"));
  }

  verifyRequest(request: ClientRequest, vouched = false): boolean {
    if (typeof request !== "object" || request === null) return false;
    let valid = this.requestVerdicts.get(request);
    if (valid !== undefined) return valid;
    if (isSessionRequest(request)) {
      // A session request (session-requests.ts) is this replica's own to vouch for once it arrived
      // over an attached session, or 2f + 1 replicas' (then only its form is checked). A "no" is
      // not remembered: the client's copy may still arrive.
      valid = vouched ? admitRequest(request, { acceptSessions: true }).ok : this.sessions?.has(request) === true;
      if (valid) this.requestVerdicts.set(request, true);
      return valid;
    }
    valid = this.checkRequest(request);
    this.requestVerdicts.set(request, valid);
    return valid;
  }

  /** The verdict `verifyRequest` gave on this very object; undefined when it was not asked. */
  verdictOf(request: ClientRequest): boolean | undefined {
    return this.requestVerdicts.get(request);
  }
}
