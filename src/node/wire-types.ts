// The frames a replica's TCP port carries once a connection's handshake is done (handshake.ts
// proves who the peer is; wire.ts encodes these). One port serves both peers and clients; the
// connection's session says which, and a frame a peer of the wrong kind sends is a protocol error.
//
//   replica <-> replica: consensus, block-signature, state-request / state-chunk / state-unavailable,
//                        blocks-request / blocks, signatures-request (answered with block-signature)
//   client   -> replica: client-request, status-request, read-request, blocks-request
//   replica  -> client:  client-reply, status, read-proof / read-unavailable, blocks
//
// Every frame is a version byte, a tag byte and a body; integers are big-endian, byte strings are
// length-prefixed (wire.ts has the layout).
// The decoder trusts nothing (lengths are checked before allocation; counts are bounded).

import type { ReplicaMessage } from "../consensus/pbft/types.js";
import { STATE_PROOF_BYTES_MAX } from "../ledger/state-tree-proof.js";

/** Who the other end of a connection proved to be. */
export type PeerSession =
  /** Replica `id` of the cluster: it signed the handshake with that replica's key. */
  | { readonly kind: "replica"; readonly id: number; readonly binding?: Uint8Array }
  /** A client: it signed the handshake with `key` (raw 32-byte Ed25519 public key). */
  | { readonly kind: "client"; readonly key: Uint8Array; readonly binding?: Uint8Array };
// `binding`: SHA-256 of the handshake transcript, which holds both sides' ephemeral keys, so it
// names this one connection; both ends know it, and a session attachment signs it. Set by the
// handshakes in handshake.ts.

/** One stored block, as state transfer and block backfill move it. */
export interface WireBlock {
  readonly height: number;
  /** Canonical header bytes (ledger/block-header.ts). */
  readonly header: Uint8Array;
  /** Canonical body bytes (ledger/block.ts); absent when the server pruned it. */
  readonly body?: Uint8Array;
  /** Canonical certificate bytes (ledger/certificate.ts); absent when not (yet) certified. */
  readonly certificate?: Uint8Array;
}

export type WireFrame =
  /** A PBFT message for the core (net/codec.ts encodes it). */
  | { readonly kind: "consensus"; readonly message: ReplicaMessage }
  /**
   * The sender's Ed25519 signature over block `height` (ledger/certificate.ts `blockSigningMessage`
   * of the header hash the sender computed). The sender is the connection's replica.
   */
  | { readonly kind: "block-signature"; readonly height: number; readonly signature: Uint8Array }
  /** Ask for the state at stable checkpoint `seq`, entries after `after` (store key order). */
  | { readonly kind: "state-request"; readonly requestId: number; readonly seq: number; readonly after?: Uint8Array }
  /**
   * Part of the state at `seq`: `header` is the block header at height `seq` (its hash is the
   * checkpoint's digest), `entries` the next state entries in ascending byte order of their keys
   * after the request's `after`. `done` marks the last chunk.
   */
  | {
      readonly kind: "state-chunk";
      readonly requestId: number;
      readonly seq: number;
      readonly header: Uint8Array;
      readonly entries: readonly (readonly [key: Uint8Array, value: Uint8Array])[];
      readonly done: boolean;
    }
  /** The server cannot serve the state at `seq` (it holds no snapshot there). */
  | { readonly kind: "state-unavailable"; readonly requestId: number; readonly seq: number }
  /** Ask for the stored blocks `from` .. `to` (inclusive; the server may answer fewer). */
  | { readonly kind: "blocks-request"; readonly requestId: number; readonly from: number; readonly to: number }
  /** Stored blocks in ascending height (possibly none). */
  | { readonly kind: "blocks"; readonly requestId: number; readonly blocks: readonly WireBlock[] }
  /**
   * Ask the peer to send its block-signature for each block `from` .. `to` it stores (a bounded
   * range): how a replica that missed the signatures of its blocks (it was down, or every replica
   * restarted) still gathers their certificates.
   */
  | { readonly kind: "signatures-request"; readonly from: number; readonly to: number }
  /** A signed transaction envelope (app/transaction.ts) to order and execute. */
  | { readonly kind: "client-request"; readonly transaction: Uint8Array }
  /**
   * Client → replica: session requests (format version 2, no signature) of `key` are accepted on
   * this connection from now on. `signature` is `key`'s over the connection's binding
   * (session-attach.ts).
   */
  | { readonly kind: "session-attach"; readonly key: Uint8Array; readonly signature: Uint8Array }
  /**
   * A replica's answer to one transaction: `client` (raw public key) and `nonce` name it; `result`
   * is its encoded result (app/result.ts). `height` is the block that holds the transaction, or 0
   * when the replica answers from its reply cache and does not know it.
   */
  | {
      readonly kind: "client-reply";
      readonly replica: number;
      readonly view: number;
      readonly height: number;
      readonly client: Uint8Array;
      readonly nonce: number;
      readonly result: Uint8Array;
    }
  /** A client asks how the replica is doing (answered with `status`). */
  | { readonly kind: "status-request"; readonly requestId: number }
  /**
   * What the replica says about itself: nothing here is certified, a faulty replica can claim
   * anything. `executedHeight` is its last executed block, `stableCheckpoint` its stable
   * checkpoint's sequence number, `certifiedHeight` the highest block it holds a commit
   * certificate for (0: none known), `normal` false while it takes part in a view change.
   */
  | {
      readonly kind: "status";
      readonly requestId: number;
      readonly replica: number;
      readonly view: number;
      readonly primary: number;
      readonly normal: boolean;
      readonly executedHeight: number;
      readonly stableCheckpoint: number;
      readonly certifiedHeight: number;
    }
  /** A client asks for a state tree key's value with a proof (answered with `read-proof` or `read-unavailable`). */
  | { readonly kind: "read-request"; readonly requestId: number; readonly key: Uint8Array }
  /**
   * The key's value (absent: the key has none) in the state after block `height`, with that
   * block's canonical header and commit certificate and the canonical state proof
   * (ledger/state-tree-proof.ts) against the header's stateRoot. At height 0 (nothing executed)
   * header and certificate are empty: the genesis state, which is empty (client-services.ts).
   */
  | {
      readonly kind: "read-proof";
      readonly requestId: number;
      readonly height: number;
      readonly header: Uint8Array;
      readonly certificate: Uint8Array;
      readonly value?: Uint8Array;
      readonly proof: Uint8Array;
    }
  /** The replica cannot prove the read now (see ReadUnavailableReason); the client asks another. */
  | { readonly kind: "read-unavailable"; readonly requestId: number; readonly reason: ReadUnavailableReason };

/**
 * Why a replica did not answer a read with a proof: "uncertified" (its executed block's commit
 * certificate did not arrive in time), "overloaded" (too many reads waiting, or the client's rate
 * was exceeded), "stopping" (the replica is shutting down).
 */
export type ReadUnavailableReason = "uncertified" | "overloaded" | "stopping";
export const READ_UNAVAILABLE_REASONS: readonly ReadUnavailableReason[] = ["uncertified", "overloaded", "stopping"];

export type WireFrameKind = WireFrame["kind"];

/** Most entries in one state chunk, and most blocks in one `blocks` frame. */
export const WIRE_STATE_ENTRIES_MAX = 65_536;
export const WIRE_BLOCKS_MAX = 1_024;
/** Longest key of a read-request: above the longest state key (a 1,024-byte kv key and its prefix). */
export const WIRE_READ_KEY_BYTES_MAX = 2_048;
/** Longest proof of a read-proof: the largest canonical state proof. */
export const WIRE_READ_PROOF_BYTES_MAX = STATE_PROOF_BYTES_MAX;
