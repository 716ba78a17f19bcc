// State transfer (src/node/state-transfer.ts): a StateServer over a real ReplicaStore serves the
// state of a pinned checkpoint in chunks, and a StateFetch accepts it only if the header hashes
// to the checkpoint digest, the entries ascend strictly, and the rebuilt tree's root is the
// header's state root. A lying peer costs a retry, never a wrong state.

import { type TestContext, describe, it } from "node:test";
import assert from "node:assert/strict";

import { type BlockHeader, GENESIS_PREV_HASH, blockHeaderHash, encodeBlockHeader } from "../../src/ledger/block-header.js";
import { buildBlock, encodeBlockBody } from "../../src/ledger/block.js";
import { StateTree } from "../../src/ledger/state-tree.js";
import { type ChunkVerdict, type FetchedState, STATE_CHUNK_ENTRIES, STATE_PINS_MAX, StateFetch, StateServer } from "../../src/node/state-transfer.js";
import type { WireFrame } from "../../src/node/wire-types.js";
import { type PinnedState, ReplicaStore, STATE_KEY_BYTES_MAX, type StateWrite } from "../../src/storage/index.js";
import { flipByte } from "../ledger/fixtures.js";
import { CLUSTER_ID, temporaryDirectory, utf8 } from "../storage/helpers.js";
import { hex } from "../support/random-bytes.js";

type StateRequest = Extract<WireFrame, { kind: "state-request" }>;
type StateChunk = Extract<WireFrame, { kind: "state-chunk" }>;
type Entry = readonly [Uint8Array, Uint8Array];

/** More entries than two full chunks: a transfer of this state takes three chunks. */
const ENTRY_COUNT = 2 * STATE_CHUNK_ENTRIES + 57;

/**
 * Keys whose byte order is easy to get wrong: the empty key, a key that is a prefix of thousands
 * of others ("k"), bytes 0x00 and 0xff, and keys longer than their neighbours.
 */
const AWKWARD_KEYS: readonly Uint8Array[] = [
  new Uint8Array([]),
  new Uint8Array([0x00]),
  new Uint8Array([0x6b]),
  new Uint8Array([0x6b, 0x00]),
  new Uint8Array([0x6b, 0xff]),
  new Uint8Array([0xff]),
  new Uint8Array([0xff, 0xff, 0x00]),
];

/** `count` state writes: the awkward keys, then "k00000", "k00001", ... */
function manyWrites(count: number): StateWrite[] {
  const writes: StateWrite[] = AWKWARD_KEYS.map((key, index) => [key, index === 0 ? new Uint8Array([]) : utf8(`awkward ${index}`)]);
  for (let index = 0; writes.length < count; index++) writes.push([utf8(`k${String(index).padStart(5, "0")}`), utf8(`value ${index}`)]);
  return writes;
}

const show = ([key, value]: Entry): string => `${hex(key)}=${hex(value)}`;

/**
 * A replica store whose blocks are real, chained headers (empty bodies) naming the state root
 * after them, so a checkpoint's digest and state root mean what they mean on a replica. Remembers
 * the state after each height to compare what a transfer delivers.
 */
class CheckpointChain {
  readonly headers: BlockHeader[] = [];
  private readonly tree = new StateTree();
  private readonly state = new Map<string, Entry>();
  private readonly snapshots: Entry[][] = [];

  constructor(readonly store: ReplicaStore) {}

  async commit(writes: readonly StateWrite[]): Promise<BlockHeader> {
    for (const [key, value] of writes) {
      if (value === null) {
        this.tree.delete(key);
        this.state.delete(hex(key));
      } else {
        this.tree.put(key, value);
        this.state.set(hex(key), [key, value]);
      }
    }
    const height = this.headers.length + 1;
    const previous = this.headers[height - 2];
    const { header } = buildBlock({
      clusterId: CLUSTER_ID,
      height,
      prevHash: previous === undefined ? GENESIS_PREV_HASH : blockHeaderHash(previous),
      stateRoot: this.tree.root(),
      transactions: [],
      results: [],
    });
    await this.store.commitBlock({ height, header: encodeBlockHeader(header), body: encodeBlockBody([], []), stateWrites: writes, meta: { seq: height, stateDigest: header.stateRoot } });
    this.headers.push(header);
    this.snapshots.push([...this.state.values()].sort(([left], [right]) => Buffer.compare(left, right)));
    return header;
  }

  header(height: number): BlockHeader {
    const header = this.headers[height - 1];
    assert.ok(header !== undefined, `block ${height} was committed`);
    return header;
  }

  /** The checkpoint digest at `height`: the hex hash of its header. */
  digest(height: number): string {
    return hex(blockHeaderHash(this.header(height)));
  }

  /** The state after `height`, in key order, as "key=value" hex strings. */
  entriesAt(height: number): string[] {
    const entries = this.snapshots[height - 1];
    assert.ok(entries !== undefined, `block ${height} was committed`);
    return entries.map(show);
  }
}

/** A store in a temporary directory with a server over it; the server is closed before the store. */
async function openServing(t: TestContext): Promise<{ chain: CheckpointChain; server: StateServer }> {
  const store = await ReplicaStore.open({ directory: temporaryDirectory(t, "bulwark-state-transfer-"), clusterId: CLUSTER_ID, replicaId: 0, sync: "none" });
  const server = new StateServer(store);
  t.after(async () => {
    server.close();
    await store.close();
  });
  return { chain: new CheckpointChain(store), server };
}

/** A server whose store holds the ENTRY_COUNT-entry state at checkpoint 1, pinned. */
async function bigCheckpoint(t: TestContext): Promise<{ chain: CheckpointChain; server: StateServer }> {
  const serving = await openServing(t);
  await serving.chain.commit(manyWrites(ENTRY_COUNT));
  serving.server.pinCheckpoint(1);
  return serving;
}

interface Drive {
  readonly requests: StateRequest[];
  readonly answers: WireFrame[];
  readonly verdict: ChunkVerdict;
}

/**
 * Requests until a verdict other than `continue`, answering request number `index` (from 0) with
 * `answer`; every answer is checked to be the awaited one first, as the runtime does.
 */
function drive(fetch: StateFetch, answer: (request: StateRequest, index: number) => WireFrame): Drive {
  const requests: StateRequest[] = [];
  const answers: WireFrame[] = [];
  for (let index = 0; index < 100; index++) {
    const request = fetch.request();
    requests.push(request);
    const frame = answer(request, index);
    answers.push(frame);
    let verdict: ChunkVerdict;
    if (frame.kind === "state-chunk") {
      assert.ok(fetch.awaits(frame.requestId), "the answer is to the outstanding request");
      verdict = fetch.onChunk(frame);
    } else if (frame.kind === "state-unavailable") {
      assert.ok(fetch.awaits(frame.requestId), "the answer is to the outstanding request");
      verdict = fetch.onUnavailable();
    } else {
      assert.fail(`a server answered a state request with ${frame.kind}`);
    }
    assert.equal(fetch.awaits(request.requestId), false, "an answered request is no longer awaited");
    if (verdict.kind !== "continue") return { requests, answers, verdict };
  }
  assert.fail("the transfer ends");
}

function completed(verdict: ChunkVerdict): FetchedState {
  assert.equal(verdict.kind, "complete", verdict.kind === "peer-failed" ? verdict.reason : undefined);
  return verdict.state;
}

function asChunk(frame: WireFrame): StateChunk {
  assert.equal(frame.kind, "state-chunk");
  return frame;
}

/** Checks a completed state is exactly the chain's at `seq`, with the header the digest names. */
function assertStateOf(state: FetchedState, chain: CheckpointChain, seq: number): void {
  assert.equal(state.seq, seq);
  assert.deepEqual(state.entries.map(show), chain.entriesAt(seq));
  assert.equal(hex(blockHeaderHash(state.header)), chain.digest(seq));
  assert.equal(hex(state.headerBytes), hex(encodeBlockHeader(chain.header(seq))));
}

/** Wraps `store.pinState` to record each pin taken and whether it was released. */
function recordPins(store: ReplicaStore): Array<{ readonly appliedHeight: number | undefined; released: boolean }> {
  const taken: Array<{ readonly appliedHeight: number | undefined; released: boolean }> = [];
  const pinState = store.pinState.bind(store);
  store.pinState = (): PinnedState => {
    const pin = pinState();
    const record = { appliedHeight: pin.appliedHeight, released: false };
    taken.push(record);
    return {
      appliedHeight: pin.appliedHeight,
      readChunk: (options) => pin.readChunk(options),
      release: () => {
        record.released = true;
        pin.release();
      },
    };
  };
  return taken;
}

describe("StateServer and StateFetch over a real store", () => {
  it("a full fetch from a server that pinned the checkpoint completes with exactly its entries, in chunks, while the store executes on", async (t) => {
    const { chain, server } = await bigCheckpoint(t);
    // Execution moves past the checkpoint: changes, a delete and a new key the pin must not show.
    await chain.commit([[AWKWARD_KEYS[2]!, utf8("changed")], [utf8("k00005"), null], [utf8("zz new"), utf8("new")]]);
    assert.notDeepEqual(chain.entriesAt(2), chain.entriesAt(1));

    const fetch = new StateFetch(1, chain.digest(1), 1);
    const { answers, verdict } = drive(fetch, (request) => server.serve(request));
    const state = completed(verdict);
    assertStateOf(state, chain, 1);
    assert.equal(state.entries.length, ENTRY_COUNT);
    assert.deepEqual(
      answers.map((answer) => asChunk(answer).entries.length),
      [STATE_CHUNK_ENTRIES, STATE_CHUNK_ENTRIES, ENTRY_COUNT - 2 * STATE_CHUNK_ENTRIES],
    );
    assert.deepEqual(fetch.counters, { chunksReceived: 3, entriesReceived: ENTRY_COUNT, peerFailures: 0, restarts: 0 });
  });

  it("each request after the first resumes after the last key received, with the same server or another", async (t) => {
    // Two replicas that executed the same block hold the same state and header at checkpoint 1.
    const first = await bigCheckpoint(t);
    const second = await bigCheckpoint(t);
    assert.equal(first.chain.digest(1), second.chain.digest(1));
    const fetch = new StateFetch(1, first.chain.digest(1), 10);

    const chunks: StateChunk[] = [];
    const requests: StateRequest[] = [];
    let verdict: ChunkVerdict = { kind: "continue" };
    // Chunk 1 from the first server; its next answer is lost; the rest comes from the second.
    for (const server of [first.server, first.server, second.server, second.server]) {
      const request = fetch.request();
      requests.push(request);
      if (requests.length === 2) {
        fetch.onPeerLost();
        continue;
      }
      const chunk = asChunk(server.serve(request));
      chunks.push(chunk);
      verdict = fetch.onChunk(chunk);
    }
    assertStateOf(completed(verdict), first.chain, 1);
    assert.deepEqual(
      requests.map((request) => [request.requestId, request.after === undefined ? undefined : hex(request.after)]),
      [
        [10, undefined],
        [11, hex(chunks[0]!.entries.at(-1)![0])],
        [12, hex(chunks[0]!.entries.at(-1)![0])],
        [13, hex(chunks[1]!.entries.at(-1)![0])],
      ],
      "the lost request's cursor is asked again; each later one starts after the previous chunk's last key",
    );
    // No gap and no overlap at the boundaries: each chunk starts with the key after the cursor.
    const expected = first.chain.entriesAt(1);
    assert.equal(show(chunks[1]!.entries[0]!), expected[STATE_CHUNK_ENTRIES]);
    assert.equal(show(chunks[2]!.entries[0]!), expected[2 * STATE_CHUNK_ENTRIES]);
    assert.deepEqual(fetch.counters, { chunksReceived: 3, entriesReceived: ENTRY_COUNT, peerFailures: 1, restarts: 0 });
  });

  it("the state of a checkpoint with no entries is one empty, final chunk that completes", async (t) => {
    const { chain, server } = await openServing(t);
    await chain.commit([]);
    server.pinCheckpoint(1);
    const fetch = new StateFetch(1, chain.digest(1), 1);
    const { answers, verdict } = drive(fetch, (request) => server.serve(request));
    assert.equal(answers.length, 1);
    assertStateOf(completed(verdict), chain, 1);
    assert.deepEqual(completed(verdict).entries, []);
  });

  it("a server without a pin at the checkpoint answers state-unavailable, and the fetch asks the next peer from the same cursor", async (t) => {
    const { chain, server } = await bigCheckpoint(t);
    await chain.commit([[utf8("after"), utf8("2")]]);
    const empty = await openServing(t);

    assert.deepEqual(server.serve({ kind: "state-request", requestId: 5, seq: 2 }), { kind: "state-unavailable", requestId: 5, seq: 2 }, "checkpoint 2 was never pinned");
    server.pinCheckpoint(3);
    assert.deepEqual(server.pinnedSeqs, [1], "the store's applied state is not checkpoint 3's: nothing is pinned");
    assert.deepEqual(server.serve({ kind: "state-request", requestId: 6, seq: 3 }), { kind: "state-unavailable", requestId: 6, seq: 3 });
    const longCursor = new Uint8Array(STATE_KEY_BYTES_MAX + 1);
    assert.deepEqual(
      server.serve({ kind: "state-request", requestId: 7, seq: 1, after: longCursor }),
      { kind: "state-unavailable", requestId: 7, seq: 1 },
      "a cursor longer than any key is answered, not thrown at the connection",
    );

    const fetch = new StateFetch(1, chain.digest(1), 1);
    // The first chunk from the server with the pin, the second request to a peer without one.
    const { requests, verdict } = drive(fetch, (request, index) => (index === 1 ? empty.server : server).serve(request));
    assert.deepEqual(verdict, { kind: "peer-failed", reason: "the peer holds no snapshot at this checkpoint", restart: false });
    assert.equal(requests.length, 2);
    assert.equal(fetch.counters.peerFailures, 1);
    assert.equal(fetch.counters.restarts, 0);
    const rest = drive(fetch, (request) => server.serve(request));
    assert.equal(hex(rest.requests[0]!.after!), hex(requests[1]!.after!), "nothing received is discarded");
    assertStateOf(completed(rest.verdict), chain, 1);
  });

  it(`a server keeps the newest ${STATE_PINS_MAX} checkpoint pins and releases older ones, and all on close`, async (t) => {
    const { chain, server } = await openServing(t);
    const pins = recordPins(chain.store);
    const top = STATE_PINS_MAX + 2;
    for (let height = 1; height <= top; height++) {
      await chain.commit([[utf8("height"), utf8(`${height}`)], [utf8(`only at ${height}`), utf8("x")], [utf8(`only at ${height - 1}`), null]]);
      server.pinCheckpoint(height);
      const newest = Array.from({ length: Math.min(height, STATE_PINS_MAX) }, (_, index) => height - Math.min(height, STATE_PINS_MAX) + 1 + index);
      assert.deepEqual(server.pinnedSeqs, newest, `after pinning ${height}`);
    }
    assert.deepEqual(
      pins.map(({ appliedHeight, released }) => [appliedHeight, released]),
      Array.from({ length: top }, (_, index) => [index + 1, index + 1 <= top - STATE_PINS_MAX]),
      "exactly the pins that fell out of the newest were released",
    );

    server.pinCheckpoint(top);
    assert.equal(pins.length, top, "pinning a pinned checkpoint again takes no second pin");
    server.pinCheckpoint(1);
    assert.deepEqual(pins.at(-1), { appliedHeight: top, released: true }, "a pin of a state that is not the checkpoint's is released at once");
    assert.equal(server.pinnedSeqs.length, STATE_PINS_MAX);

    assert.equal(server.serve({ kind: "state-request", requestId: 1, seq: top - STATE_PINS_MAX }).kind, "state-unavailable", "an evicted checkpoint");
    // The oldest kept pin still serves its own moment, not the store's current state.
    const oldest = top - STATE_PINS_MAX + 1;
    const fetch = new StateFetch(oldest, chain.digest(oldest), 1);
    assertStateOf(completed(drive(fetch, (request) => server.serve(request)).verdict), chain, oldest);
    assert.notDeepEqual(chain.entriesAt(oldest), chain.entriesAt(top));

    server.close();
    assert.ok(pins.every(({ released }) => released), "close releases every pin");
    assert.deepEqual(server.pinnedSeqs, []);
    assert.equal(server.serve({ kind: "state-request", requestId: 2, seq: top }).kind, "state-unavailable");
  });

  it("a chunk whose header is not the checkpoint's fails the peer without restarting, and a later chunk must repeat the first chunk's header", async (t) => {
    const { chain, server } = await bigCheckpoint(t);
    const otherHeader = encodeBlockHeader(await chain.commit([[utf8("after"), utf8("2")]]));
    const fetch = new StateFetch(1, chain.digest(1), 1);
    const wrongHeaders: ReadonlyArray<readonly [string, (chunk: StateChunk) => StateChunk]> = [
      ["a header whose hash is not the checkpoint's digest", (chunk) => ({ ...chunk, header: flipByte(chunk.header, chunk.header.length - 1) })],
      ["a header whose hash is not the checkpoint's digest", (chunk) => ({ ...chunk, header: otherHeader })],
      ["a header that does not decode", (chunk) => ({ ...chunk, header: flipByte(chunk.header, 0) })],
      ["a header that does not decode", (chunk) => ({ ...chunk, header: chunk.header.subarray(1) })],
      ["a chunk for another checkpoint", (chunk) => ({ ...chunk, seq: 2 })],
    ];
    for (const [reason, tamper] of wrongHeaders) {
      const request = fetch.request();
      assert.equal(request.after, undefined, "nothing was accepted yet");
      assert.deepEqual(fetch.onChunk(tamper(asChunk(server.serve(request)))), { kind: "peer-failed", reason, restart: false });
    }
    assert.deepEqual(fetch.counters, { chunksReceived: 0, entriesReceived: 0, peerFailures: wrongHeaders.length, restarts: 0 });

    // The first chunk is honest; the second carries another header than the first.
    const { requests, verdict } = drive(fetch, (request, index) => {
      const chunk = asChunk(server.serve(request));
      return index === 1 ? { ...chunk, header: flipByte(chunk.header, chunk.header.length - 1) } : chunk;
    });
    assert.deepEqual(verdict, { kind: "peer-failed", reason: "a different header than earlier chunks", restart: false });
    const rest = drive(fetch, (request) => server.serve(request));
    assert.equal(hex(rest.requests[0]!.after!), hex(requests[1]!.after!), "the first chunk's entries are kept");
    assertStateOf(completed(rest.verdict), chain, 1);
  });

  it("entries out of key order or repeated fail the peer and restart the transfer from scratch", async (t) => {
    const { chain, server } = await bigCheckpoint(t);
    type Entries = StateChunk["entries"];
    const disorders: ReadonlyArray<readonly [string, number, (entries: Entries, previous: Entries) => Entries]> = [
      ["two entries swapped", 0, (entries) => [entries[0]!, entries[2]!, entries[1]!, ...entries.slice(3)]],
      ["an entry repeated", 0, (entries) => [...entries.slice(0, 10), entries[9]!, ...entries.slice(10)]],
      ["a chunk that starts with the previous chunk's last key", 1, (entries, previous) => [previous.at(-1)!, ...entries]],
      ["a chunk that goes back before the cursor", 1, (entries, previous) => [previous[0]!, ...entries.slice(1)]],
      ["a chunk that ends out of order", 2, (entries) => [...entries.slice(0, -1), entries[0]!]],
    ];
    for (const [name, chunkIndex, disorder] of disorders) {
      const fetch = new StateFetch(1, chain.digest(1), 1);
      let previous: Entries = [];
      const { answers, verdict } = drive(fetch, (request, index) => {
        const chunk = asChunk(server.serve(request));
        const entries = index === chunkIndex ? disorder(chunk.entries, previous) : chunk.entries;
        previous = chunk.entries;
        return { ...chunk, entries };
      });
      assert.deepEqual(verdict, { kind: "peer-failed", reason: "entries out of key order", restart: true }, name);
      assert.equal(answers.length, chunkIndex + 1, `${name}: detected in the chunk that broke the order`);
      assert.equal(fetch.counters.restarts, 1, name);
      // An honest transfer after the restart holds exactly the state: nothing from before it is left.
      const rest = drive(fetch, (request) => server.serve(request));
      assert.equal(rest.requests[0]!.after, undefined, `${name}: the next request starts from the first key`);
      assertStateOf(completed(rest.verdict), chain, 1);
    }
  });

  it("a final state whose root is not the header's state root fails the peer and restarts from scratch", async (t) => {
    const { chain, server } = await bigCheckpoint(t);
    type Entries = StateChunk["entries"];
    const lies: ReadonlyArray<readonly [string, number, (entries: Entries) => Entries]> = [
      ["a value changed in the first chunk", 0, (entries) => [entries[0]!, [entries[1]![0], utf8("forged")], ...entries.slice(2)]],
      ["an entry left out of the middle chunk", 1, (entries) => [...entries.slice(0, 100), ...entries.slice(101)]],
      ["an entry added at the end", 2, (entries) => [...entries, [new Uint8Array([0xff, 0xff, 0xff]), utf8("extra")]]],
      ["the last entry left out", 2, (entries) => entries.slice(0, -1)],
    ];
    for (const [name, chunkIndex, lie] of lies) {
      const fetch = new StateFetch(1, chain.digest(1), 1);
      const { answers, verdict } = drive(fetch, (request, index) => {
        const chunk = asChunk(server.serve(request));
        return index === chunkIndex ? { ...chunk, entries: lie(chunk.entries) } : chunk;
      });
      assert.deepEqual(verdict, { kind: "peer-failed", reason: "entries whose state root is not the header's", restart: true }, name);
      assert.equal(answers.length, 3, `${name}: found at the last chunk`);
      assert.deepEqual({ peerFailures: fetch.counters.peerFailures, restarts: fetch.counters.restarts }, { peerFailures: 1, restarts: 1 }, name);
      const rest = drive(fetch, (request) => server.serve(request));
      assert.equal(rest.requests[0]!.after, undefined, `${name}: the next request starts from the first key`);
      assertStateOf(completed(rest.verdict), chain, 1);
    }
  });

  it("an empty chunk that is not the last fails the peer and keeps the cursor", async (t) => {
    const { chain, server } = await bigCheckpoint(t);
    const fetch = new StateFetch(1, chain.digest(1), 1);
    const { requests, verdict } = drive(fetch, (request, index) => {
      const chunk = asChunk(server.serve(request));
      return index === 1 ? { ...chunk, entries: [], done: false } : chunk;
    });
    assert.deepEqual(verdict, { kind: "peer-failed", reason: "an empty chunk that is not the last", restart: false });
    assert.equal(hex(fetch.request().after!), hex(requests[1]!.after!));
  });

  it("only the outstanding request id is awaited: older ids, and any id once answered or lost, are not", async (t) => {
    const { chain, server } = await bigCheckpoint(t);
    const fetch = new StateFetch(1, chain.digest(1), 40);
    assert.equal(fetch.awaits(40), false, "nothing was asked yet");
    const first = fetch.request();
    assert.equal(first.requestId, 40);
    assert.ok(fetch.awaits(40));
    const second = fetch.request();
    assert.equal(second.requestId, 41);
    assert.equal(fetch.awaits(40), false, "a timed-out request's late answer is not awaited");
    assert.ok(fetch.awaits(41));
    assert.equal(fetch.awaits(42), false);
    const late = asChunk(server.serve(first));
    assert.equal(late.requestId, 40, "the server echoes the id it was asked with");
    assert.equal(fetch.awaits(late.requestId), false);

    assert.deepEqual(fetch.onChunk(asChunk(server.serve(second))), { kind: "continue" });
    assert.equal(fetch.awaits(41), false, "an answered request is not awaited twice");
    const third = fetch.request();
    fetch.onPeerLost();
    assert.equal(fetch.awaits(third.requestId), false, "a lost request is not awaited");
    const fourth = fetch.request();
    fetch.onUnavailable();
    assert.equal(fetch.awaits(fourth.requestId), false);
    assert.equal(fetch.counters.peerFailures, 2);
  });
});
