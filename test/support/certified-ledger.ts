// A small certified ledger held in memory, for tests of what replicas serve clients: a state tree,
// and a chain of blocks whose stateRoot is that tree's root after each block, each certified by
// the first 2f + 1 replicas of a test cluster (test/ledger/fixtures.ts). It can answer a proof
// read and a blocks request as an honest replica would, so a test can serve that, or a forgery of it.

import { accountStateKey, encodeAccount, kvStateKey } from "../../src/app/ledger-state.js";
import { type Block, buildBlock, encodeBlockBody } from "../../src/ledger/block.js";
import { type BlockHeader, GENESIS_PREV_HASH, blockHeaderHash, encodeBlockHeader } from "../../src/ledger/block-header.js";
import { type CommitCertificate, encodeCertificate } from "../../src/ledger/certificate.js";
import { StateTree } from "../../src/ledger/state-tree.js";
import { encodeStateProof } from "../../src/ledger/state-tree-proof.js";
import type { WireBlock, WireFrame } from "../../src/node/wire-types.js";
import { type TestCluster, certify } from "../ledger/fixtures.js";

export type ReadProof = Extract<WireFrame, { kind: "read-proof" }>;

const utf8 = new TextEncoder();

export class CertifiedLedger {
  readonly tree = new StateTree();
  readonly chain: { readonly block: Block; readonly certificate: CommitCertificate }[] = [];

  constructor(readonly cluster: TestCluster) {}

  get height(): number {
    return this.chain.length;
  }

  header(height: number): BlockHeader {
    return this.chain[height - 1]!.block.header;
  }

  /** Applies `writes` (value null: delete) and appends their certified block, with `transactions` as its body. */
  commit(writes: readonly (readonly [key: Uint8Array, value: Uint8Array | null])[], transactions: readonly Uint8Array[] = [utf8.encode(`tx ${this.height + 1}`)]): Block {
    for (const [key, value] of writes) {
      if (value === null) this.tree.delete(key);
      else this.tree.put(key, value);
    }
    const previous = this.chain[this.chain.length - 1];
    const block = buildBlock({
      clusterId: this.cluster.config.clusterId,
      height: this.height + 1,
      prevHash: previous === undefined ? GENESIS_PREV_HASH : blockHeaderHash(previous.block.header),
      stateRoot: this.tree.root(),
      transactions,
      results: transactions.map((_, index) => Uint8Array.of(index)),
    });
    this.chain.push({ block, certificate: certify(this.cluster, block) });
    return block;
  }

  /** Puts kv `key` = `value` (UTF-8) in a new block. */
  put(key: string, value: string): Block {
    return this.commit([[kvStateKey(utf8.encode(key)), utf8.encode(value)]]);
  }

  /** Sets account `publicKey`'s record in a new block. */
  setAccount(publicKey: Uint8Array, balance: bigint, nextNonce: number): Block {
    return this.commit([[accountStateKey(publicKey), encodeAccount({ balance, nextNonce })]]);
  }

  /** An honest replica's answer to a read of state key `key` at the tip. */
  readProof(requestId: number, key: Uint8Array): ReadProof {
    const value = this.tree.get(key);
    const tip = this.chain[this.chain.length - 1];
    return {
      kind: "read-proof",
      requestId,
      height: this.height,
      header: tip === undefined ? new Uint8Array(0) : encodeBlockHeader(tip.block.header),
      certificate: tip === undefined ? new Uint8Array(0) : encodeCertificate(tip.certificate),
      ...(value === undefined ? {} : { value: value.slice() }),
      proof: encodeStateProof(this.tree.prove(key)),
    };
  }

  /** Block `height` as a replica stores it (body left out when `body` is false). */
  wireBlock(height: number, options: { readonly body?: boolean; readonly certificate?: boolean } = {}): WireBlock {
    const { block, certificate } = this.chain[height - 1]!;
    return {
      height,
      header: encodeBlockHeader(block.header),
      ...(options.body === false ? {} : { body: encodeBlockBody(block.transactions, block.results) }),
      ...(options.certificate === false ? {} : { certificate: encodeCertificate(certificate) }),
    };
  }

  /** An honest replica's stored blocks `from` .. `to` (within the chain). */
  wireBlocks(from: number, to: number): WireBlock[] {
    const blocks: WireBlock[] = [];
    for (let height = Math.max(1, from); height <= Math.min(to, this.height); height++) blocks.push(this.wireBlock(height));
    return blocks;
  }
}
