// State proofs: evidence that a key has a given value, or has none, under a state root. A client
// that trusts a block header (through its commit certificate) checks a proof with
// `verifyStateProof` and no other data (issue 3, "Ledger").
//
// A proof is the path from the root towards the key's leaf: for every internal node on the way,
// its child bitmap and the hashes of its other children. The path ends in one of three ways:
//
//   "present"     the key's own leaf: membership. The verifier hashes the claimed value itself.
//   "other-leaf"  a leaf for a different key sits where the key would be. The tree is canonical
//                 (a leaf sits at the shallowest depth where it is alone in its subtree), so that
//                 leaf is the only key under this prefix and the key is absent.
//   "empty-slot"  the deepest internal node has no child in the key's slot: absent. With no
//                 levels at all it claims the whole tree is empty.
//
// Soundness rests on the hash chain alone: a root certified by 2f + 1 replicas was built by the
// canonical algorithm, so without a SHA-256 collision a proof that reproduces it describes that
// tree's real nodes.

import {
  EMPTY_STATE_ROOT,
  STATE_HASH_BYTES,
  STATE_TREE_DEPTH_MAX,
  STATE_TREE_RADIX,
  type HashString,
  InternalNodeHashInput,
  bitCount16,
  hashString,
  leafNodeHash,
  nibbleAt,
  sha256,
} from "./state-tree-hash.js";

/** One internal node on the path: which children it has and the hashes of those off the path. */
export interface StateProofLevel {
  /** Bit n is set when the node has a child for nibble n. */
  readonly childBitmap: number;
  /**
   * Hashes of the node's children in nibble order, leaving out the child on the key's path; the
   * deepest level of an "empty-slot" proof has no such child and lists every child.
   */
  readonly siblingHashes: readonly Uint8Array[];
}

export type StateProofTerminal =
  | { readonly kind: "present" }
  | { readonly kind: "other-leaf"; readonly keyHash: Uint8Array; readonly valueHash: Uint8Array }
  | { readonly kind: "empty-slot" };

export interface StateProof {
  /** Internal nodes from the root (index 0) down; level i branches on nibble i of the key hash. */
  readonly levels: readonly StateProofLevel[];
  readonly terminal: StateProofTerminal;
}

/**
 * Whether `proof` shows that `key` maps to `value` (or, with `value` undefined, to nothing) in the
 * tree whose root is `root`. Returns false, never throws, for any malformed input: proofs come
 * from untrusted replicas.
 */
export function verifyStateProof(
  root: Uint8Array,
  key: Uint8Array,
  value: Uint8Array | undefined,
  proof: StateProof,
): boolean {
  if (!isHash(root) || !(key instanceof Uint8Array)) return false;
  if (value !== undefined && !(value instanceof Uint8Array)) return false;
  if (typeof proof !== "object" || proof === null) return false;
  const levels: unknown = proof.levels;
  const terminal: unknown = proof.terminal;
  if (!Array.isArray(levels) || levels.length > STATE_TREE_DEPTH_MAX) return false;
  if (typeof terminal !== "object" || terminal === null) return false;

  const keyHash = sha256(key);
  const depth = levels.length;
  // The hash of the node at the end of the path, or undefined for an empty slot.
  let current: HashString | undefined;
  const ending = terminal as StateProofTerminal;
  switch (ending.kind) {
    case "present":
      if (value === undefined) return false;
      current = leafNodeHash(keyHash, sha256(value));
      break;
    case "other-leaf": {
      if (value !== undefined || !isHash(ending.keyHash) || !isHash(ending.valueHash)) return false;
      const otherKeyHash = hashString(ending.keyHash);
      // The other leaf must lie in the subtree the path leads to; otherwise its presence there
      // would say nothing about this key.
      if (otherKeyHash === keyHash || !sharesNibblePrefix(otherKeyHash, keyHash, depth)) return false;
      current = leafNodeHash(otherKeyHash, hashString(ending.valueHash));
      break;
    }
    case "empty-slot":
      if (value !== undefined) return false;
      if (depth === 0) return hashString(root) === EMPTY_STATE_ROOT;
      current = undefined;
      break;
    default:
      return false;
  }

  for (let level = depth - 1; level >= 0; level--) {
    const node: unknown = levels[level];
    if (typeof node !== "object" || node === null) return false;
    const { childBitmap, siblingHashes } = node as StateProofLevel;
    if (!Number.isInteger(childBitmap) || childBitmap <= 0 || childBitmap > 0xffff) return false;
    if (!Array.isArray(siblingHashes) || !siblingHashes.every(isHash)) return false;
    const slotBit = 1 << nibbleAt(keyHash, level);
    const input = new InternalNodeHashInput(childBitmap);
    if (current === undefined) {
      if ((childBitmap & slotBit) !== 0 || siblingHashes.length !== input.childCount) return false;
      siblingHashes.forEach((siblingHash, position) => input.setChildHashBytes(position, siblingHash));
    } else {
      if ((childBitmap & slotBit) === 0 || siblingHashes.length !== input.childCount - 1) return false;
      // The path child goes where its nibble ranks among the present children.
      const pathPosition = bitCount16(childBitmap & (slotBit - 1));
      siblingHashes.forEach((siblingHash, index) => input.setChildHashBytes(index < pathPosition ? index : index + 1, siblingHash));
      input.setChildHash(pathPosition, current);
    }
    current = input.hash();
  }
  return current !== undefined && current === hashString(root);
}

/** Thrown by `decodeStateProof` for bytes that are not a well-formed proof. */
export class StateProofDecodeError extends Error {
  override readonly name = "StateProofDecodeError";
}

const PROOF_FORMAT_VERSION = 1;
const TERMINAL_CODES = { present: 0, "other-leaf": 1, "empty-slot": 2 } as const;
const PROOF_HEADER_BYTES = 3;
const LEVEL_HEADER_BYTES = 2;
/** The largest valid encoding: 64 full levels and another leaf. Longer input is rejected unread. */
export const STATE_PROOF_BYTES_MAX =
  PROOF_HEADER_BYTES +
  STATE_TREE_DEPTH_MAX * (LEVEL_HEADER_BYTES + STATE_TREE_RADIX * STATE_HASH_BYTES) +
  2 * STATE_HASH_BYTES;

/**
 * The canonical encoding of a proof:
 *
 *   u8 format version (1) | u8 terminal (0 present, 1 other-leaf, 2 empty-slot) | u8 level count
 *   per level, root first: u16 big-endian child bitmap | the sibling hashes, 32 bytes each
 *   for "other-leaf": the other leaf's key hash | its value hash
 *
 * The number of sibling hashes follows from the bitmap (one fewer than its set bits, or all of
 * them at the deepest level of an "empty-slot" proof), so the format has no redundant counts for
 * a hostile encoder to make inconsistent.
 */
export function encodeStateProof(proof: StateProof): Uint8Array {
  const { levels, terminal } = proof;
  if (levels.length > STATE_TREE_DEPTH_MAX) throw new Error(`encodeStateProof: ${levels.length} levels`);
  let byteCount = PROOF_HEADER_BYTES + (terminal.kind === "other-leaf" ? 2 * STATE_HASH_BYTES : 0);
  for (const level of levels) byteCount += LEVEL_HEADER_BYTES + level.siblingHashes.length * STATE_HASH_BYTES;
  const bytes = new Uint8Array(byteCount);
  bytes[0] = PROOF_FORMAT_VERSION;
  bytes[1] = TERMINAL_CODES[terminal.kind];
  bytes[2] = levels.length;
  let offset = PROOF_HEADER_BYTES;
  levels.forEach((level, index) => {
    const expected = expectedSiblingCount(level.childBitmap, terminal.kind, index === levels.length - 1);
    if (level.siblingHashes.length !== expected) {
      throw new Error(`encodeStateProof: level ${index} has ${level.siblingHashes.length} hashes, expected ${expected}`);
    }
    bytes[offset] = level.childBitmap >>> 8;
    bytes[offset + 1] = level.childBitmap & 0xff;
    offset += LEVEL_HEADER_BYTES;
    for (const siblingHash of level.siblingHashes) {
      bytes.set(siblingHash, offset);
      offset += STATE_HASH_BYTES;
    }
  });
  if (terminal.kind === "other-leaf") {
    bytes.set(terminal.keyHash, offset);
    bytes.set(terminal.valueHash, offset + STATE_HASH_BYTES);
  }
  return bytes;
}

/** Parses `encodeStateProof` output; throws `StateProofDecodeError` on anything else. */
export function decodeStateProof(bytes: Uint8Array): StateProof {
  if (!(bytes instanceof Uint8Array)) throw new StateProofDecodeError("state proof: input is not a byte array");
  if (bytes.length < PROOF_HEADER_BYTES || bytes.length > STATE_PROOF_BYTES_MAX) {
    throw new StateProofDecodeError(`state proof: length ${bytes.length} is outside 3..${STATE_PROOF_BYTES_MAX}`);
  }
  if (bytes[0] !== PROOF_FORMAT_VERSION) {
    throw new StateProofDecodeError(`state proof: unknown format version ${bytes[0]}`);
  }
  const terminalCode = bytes[1]!;
  const kind = (Object.keys(TERMINAL_CODES) as Array<keyof typeof TERMINAL_CODES>).find(
    (name) => TERMINAL_CODES[name] === terminalCode,
  );
  if (kind === undefined) throw new StateProofDecodeError(`state proof: unknown terminal code ${terminalCode}`);
  const levelCount = bytes[2]!;
  if (levelCount > STATE_TREE_DEPTH_MAX) {
    throw new StateProofDecodeError(`state proof: ${levelCount} levels exceed the maximum ${STATE_TREE_DEPTH_MAX}`);
  }

  let offset = PROOF_HEADER_BYTES;
  const take = (length: number, what: string): Uint8Array => {
    if (offset + length > bytes.length) throw new StateProofDecodeError(`state proof: truncated in ${what}`);
    const field = new Uint8Array(bytes.subarray(offset, offset + length));
    offset += length;
    return field;
  };
  const levels: StateProofLevel[] = [];
  for (let index = 0; index < levelCount; index++) {
    const header = take(LEVEL_HEADER_BYTES, `level ${index} bitmap`);
    const childBitmap = (header[0]! << 8) | header[1]!;
    if (childBitmap === 0) throw new StateProofDecodeError(`state proof: level ${index} has no children`);
    const siblingCount = expectedSiblingCount(childBitmap, kind, index === levelCount - 1);
    const siblingHashes: Uint8Array[] = [];
    for (let sibling = 0; sibling < siblingCount; sibling++) {
      siblingHashes.push(take(STATE_HASH_BYTES, `level ${index} sibling ${sibling}`));
    }
    levels.push({ childBitmap, siblingHashes });
  }
  let terminal: StateProofTerminal;
  if (kind === "other-leaf") {
    const keyHash = take(STATE_HASH_BYTES, "other leaf key hash");
    const valueHash = take(STATE_HASH_BYTES, "other leaf value hash");
    terminal = { kind, keyHash, valueHash };
  } else {
    terminal = { kind };
  }
  if (offset !== bytes.length) {
    throw new StateProofDecodeError(`state proof: ${bytes.length - offset} trailing bytes`);
  }
  return { levels, terminal };
}

function expectedSiblingCount(childBitmap: number, kind: StateProofTerminal["kind"], deepest: boolean): number {
  const childCount = bitCount16(childBitmap);
  return kind === "empty-slot" && deepest ? childCount : childCount - 1;
}

function isHash(candidate: unknown): candidate is Uint8Array {
  return candidate instanceof Uint8Array && candidate.length === STATE_HASH_BYTES;
}

function sharesNibblePrefix(left: HashString, right: HashString, nibbleCount: number): boolean {
  for (let depth = 0; depth < nibbleCount; depth++) {
    if (nibbleAt(left, depth) !== nibbleAt(right, depth)) return false;
  }
  return true;
}
