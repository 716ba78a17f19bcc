// Session attachments (issue 5, `--auth session`): a client key authenticates a connection once,
// and the connection's per-frame MAC (net/frame-mac.ts) then authenticates every request of that
// key on it, as PBFT's MAC authenticators do (seed 003, "cryptography"; PBFT §4.1 lets the normal
// case use MACs instead of signatures).
//
// The attachment is the key's Ed25519 signature over ATTACH_DOMAIN || binding, where the binding
// is the SHA-256 of the connection's handshake transcript (handshake.ts): it holds both sides'
// fresh ephemeral keys, so it names this one connection, and an attachment cannot be replayed on
// another. One connection may carry many keys (a gateway, a load generator): each sends its own
// attachment. A connection's handshake key is not attached by itself: the handshake proves who
// opened the connection, not that the key wants its unsigned requests taken.
//
// Cost: one signature check per key per connection, done inline (about 70 µs with sodium); a
// connection may try at most `keysMax` attachments, so a client cannot make a replica verify
// without bound on one handshake.

import { bytesToHex } from "../app/bytes.js";
import type { ClientRequest } from "../consensus/pbft/types.js";
import { ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES, type Ed25519PrivateKey, ed25519PublicKeyOf, ed25519Sign } from "../crypto/ed25519.js";
import { type Ed25519VerifyBackend, createEd25519VerifyBackend } from "../crypto/verify-pool.js";
import type { WireFrame } from "./wire-types.js";

const ATTACH_DOMAIN: Uint8Array = new TextEncoder().encode("bulwark/session-attach/v1\0");
/**
 * Attachments one connection may try (valid or not): a load generator of thousands of keys fits,
 * and a flood costs the replica at most this many inline checks (about 1 s) per handshake.
 */
export const SESSION_KEYS_PER_CONNECTION_MAX = 16_384;

/** The bytes an attachment signs. */
export function sessionAttachMessage(binding: Uint8Array): Uint8Array {
  const message = new Uint8Array(ATTACH_DOMAIN.length + binding.length);
  message.set(ATTACH_DOMAIN, 0);
  message.set(binding, ATTACH_DOMAIN.length);
  return message;
}

/** The frame that attaches `privateKey`'s public key to the connection whose binding is `binding`. */
export function sessionAttachFrame(privateKey: Ed25519PrivateKey, binding: Uint8Array): Extract<WireFrame, { kind: "session-attach" }> {
  return { kind: "session-attach", key: ed25519PublicKeyOf(privateKey), signature: ed25519Sign(privateKey, sessionAttachMessage(binding)) };
}

export type AttachOutcome = "attached" | "bad-signature" | "too-many";

/** The keys attached to each connection; a connection's set goes with the connection. */
export class SessionAttachments<C extends object> {
  private readonly attached = new WeakMap<C, { readonly keys: Set<string>; tries: number }>();
  private readonly backend: Ed25519VerifyBackend;

  constructor(
    private readonly keysMax = SESSION_KEYS_PER_CONNECTION_MAX,
    backend?: Ed25519VerifyBackend,
  ) {
    this.backend = backend ?? createEd25519VerifyBackend("auto");
  }

  /** Checks an attachment that arrived on `connection`, whose handshake binding is `binding`. */
  attach(connection: C, binding: Uint8Array, key: Uint8Array, signature: Uint8Array): AttachOutcome {
    let entry = this.attached.get(connection);
    if (entry === undefined) {
      entry = { keys: new Set(), tries: 0 };
      this.attached.set(connection, entry);
    }
    if (entry.tries >= this.keysMax) return "too-many";
    entry.tries++;
    if (key.length !== ED25519_PUBLIC_KEY_BYTES || signature.length !== ED25519_SIGNATURE_BYTES) return "bad-signature";
    const keyHex = bytesToHex(key);
    // Already attached: nothing to gain by checking again (a repeated frame must not cost a verify).
    if (entry.keys.has(keyHex)) return "attached";
    if (!this.backend.verify(key, sessionAttachMessage(binding), signature)) return "bad-signature";
    entry.keys.add(keyHex);
    return "attached";
  }

  /** Whether `request`'s client key (its `client` field, lowercase hex) is attached to `connection`. */
  carries(connection: C, request: ClientRequest): boolean {
    return this.attached.get(connection)?.keys.has(request.client) === true;
  }
}
