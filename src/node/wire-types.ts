// The frames a replica's TCP port carries once a connection's handshake is done (handshake.ts
// proves who the peer is; wire.ts encodes these). One port serves both peers and clients; the
// connection's session says which, and a frame a peer of the wrong kind sends is a protocol error.
//
//   replica <-> replica: consensus, block-signature, state-request / state-chunk / state-unavailable,
//                        blocks-request / blocks, signatures-request (answered with block-signature)
//   client   -> replica: client-request
//   replica  -> client:  client-reply
//
// Every frame is a version byte, a tag byte and a body; integers are big-endian, byte strings are
// length-prefixed (wire.ts has the layout).
// The decoder trusts nothing (lengths are checked before allocation; counts are bounded).

import type { ReplicaMessage } from "../consensus/pbft/types.js";

/** Who the other end of a connection proved to be. */
export type PeerSession =
  /** Replica `id` of the cluster: it signed the handshake with that replica's key. */
  | { readonly kind: "replica"; readonly id: number }
  /** A client: it signed the handshake with `key` (raw 32-byte Ed25519 public key). */
  | { readonly kind: "client"; readonly key: Uint8Array };

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
    };

export type WireFrameKind = WireFrame["kind"];

/** Most entries in one state chunk, and most blocks in one `blocks` frame. */
export const WIRE_STATE_ENTRIES_MAX = 65_536;
export const WIRE_BLOCKS_MAX = 1_024;
