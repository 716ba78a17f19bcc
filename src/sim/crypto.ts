// Cheap stand-ins for signatures and digests (DESIGN.md: "the simulator uses cheap stand-ins").
//
// A replica's or client's signature over a payload is hash(secret, payload); verifying recomputes
// it from the keyring, which models everyone knowing everyone's public key. Each replica's
// `SimCrypto` can sign only with its own secret, so a Byzantine replica can sign its own
// messages but cannot produce a valid signature of another replica or of a client.

import type { ClientId, ClientRequest, Digest, PbftCrypto, ReplicaId, Signature } from "../consensus/pbft/types.js";
import { hashText } from "./hash.js";
import type { Random } from "./random.js";

/** Two hex digits for each byte value. */
const HEX_OF_BYTE: readonly string[] = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

export function bytesToHexFast(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i++) text += HEX_OF_BYTE[bytes[i] as number] as string;
  return text;
}

/** Requests are immutable and pass through the simulation by reference, so identities are cached. */
const identities = new WeakMap<ClientRequest, string>();

/** The signed content of a request: who, when, what (everything but the signature). */
export function requestIdentity(request: ClientRequest): string {
  let identity = identities.get(request);
  if (identity === undefined) {
    identity = requestPayload(request.client, request.timestamp, request.operation);
    identities.set(request, identity);
  }
  return identity;
}

export function requestPayload(client: ClientId, timestamp: number, operation: Uint8Array): string {
  return `${client}|${timestamp}|${bytesToHexFast(operation)}`;
}

function signWith(secret: string, payload: string): Signature {
  return hashText(`${secret}\u0000${payload}`);
}

/** Every identity's secret. Only the simulator holds it; replicas get a `SimCrypto`. */
export class SimKeyring {
  private readonly replicaSecrets: string[] = [];
  private readonly clientSecrets = new Map<ClientId, string>();
  private readonly random: Random;

  constructor(random: Random, replicaCount: number) {
    this.random = random;
    for (let id = 0; id < replicaCount; id++) this.replicaSecrets.push(`r${id}:${random.nextUint32().toString(36)}`);
  }

  addClient(client: ClientId): void {
    if (!this.clientSecrets.has(client)) this.clientSecrets.set(client, `${client}:${this.random.nextUint32().toString(36)}`);
  }

  /** The crypto handed to replica `id`'s core: signs as `id` only. */
  cryptoFor(id: ReplicaId): SimCrypto {
    const secret = this.replicaSecrets[id];
    if (secret === undefined) throw new Error(`keyring: no replica ${id}`);
    return new SimCrypto(this, secret);
  }

  signRequest(client: ClientId, timestamp: number, operation: Uint8Array): ClientRequest {
    const secret = this.clientSecrets.get(client);
    if (secret === undefined) throw new Error(`keyring: no client ${client}`);
    const signature = signWith(secret, requestPayload(client, timestamp, operation));
    return { client, timestamp, operation, signature };
  }

  verifyReplica(replica: ReplicaId, payload: string, signature: Signature): boolean {
    const secret = this.replicaSecrets[replica];
    return secret !== undefined && signWith(secret, payload) === signature;
  }

  verifyRequest(request: ClientRequest): boolean {
    const secret = this.clientSecrets.get(request.client);
    return secret !== undefined && signWith(secret, requestIdentity(request)) === request.signature;
  }
}

export class SimCrypto implements PbftCrypto {
  private readonly keyring: SimKeyring;
  private readonly secret: string;

  constructor(keyring: SimKeyring, secret: string) {
    this.keyring = keyring;
    this.secret = secret;
  }

  batchDigest(requests: readonly ClientRequest[]): Digest {
    let text = "batch";
    // The signature too: equal digests must mean equal requests in every field (PbftCrypto).
    for (const request of requests) text += `;${requestIdentity(request)}|${request.signature}`;
    return hashText(text);
  }

  sign(payload: string): Signature {
    return signWith(this.secret, payload);
  }

  verify(replica: ReplicaId, payload: string, signature: Signature): boolean {
    return this.keyring.verifyReplica(replica, payload, signature);
  }

  verifyRequest(request: ClientRequest): boolean {
    return this.keyring.verifyRequest(request);
  }
}
