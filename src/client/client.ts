// The Bulwark client: signs transactions, sends them to the replicas and accepts a result once
// f + 1 distinct replicas sent byte-equal results for it (PBFT §4.1; reply-tally.ts).
//
// Sending (PBFT §4.1). A request goes to the replica the client believes is the primary
// (view-estimate.ts); when an attempt times out it goes to every replica, which relay it to the
// primary and, if it still does not commit, start a view change. Retries send the same signed
// envelope: the replicas treat (client key, nonce) as the request's identity and answer a
// retransmission from their reply cache, so retrying is idempotent. Replicas send a reply to the
// connection that last sent them a request of that client key (node/replica-runtime.ts), so a
// replica that never received one from this connection could not answer at all; the client
// therefore also sends its request to every replica whose current connection has not carried
// one of its requests yet, and its request in flight to each newly opened connection.
//
// One request per key at a time. A replica keeps one pending request per client key, and a newer
// one replaces the older before the primary proposes it (consensus/pbft/normal-case.ts; PBFT §4.1
// lets a client have one outstanding request). Requests of one key sent together would mostly be
// ordered out of turn and refused, so the client keeps a lane per key: a key's next request goes
// out only once the previous one settled. Requests of different keys (pre-signed envelopes) run
// side by side, up to `inFlightMax`. Throughput therefore comes from many keys, not from one.
//
// Nonces. `submit` signs each transaction with the key's next nonce, starting at `firstNonce`.
// The account accepts nonces strictly in turn and the replicas answer nonce errors as results:
//
//   stale-nonce (nonce k is below the account's next nonce m): the client signs the operation
//     again with nonce m (at most NONCE_RESIGNS_MAX times). Safe because a stale nonce refuses
//     the transaction without effect, and nonces never go back: the old envelope can never
//     execute later. (The tally keeps a replica's real result over a later stale-nonce, so an
//     envelope that did execute is not mistaken for one that did not.) This result is rare:
//     replicas drop, unanswered, a request whose nonce is at or below the key's last executed one
//     (consensus/pbft/normal-case.ts), so a nonce known to be used is never answered at all. A
//     client must therefore not start below the account's next nonce; `discoverNonce` reads it
//     at a height f + 1 replicas vouch for.
//   nonce-gap (k is beyond m): firstNonce was too high. The call fails with a NonceError naming
//     m. The client does not re-sign: a gapped envelope is refused only for now and becomes valid
//     when the account reaches k, so anyone holding it (a faulty replica, a reader of the block
//     that recorded the refusal) could have it execute then, after a re-signed copy ran already.
//
// A request whose caller stopped waiting (deadline, AbortSignal) keeps its lane and its retries
// until it settles: the client does not know whether it committed, and the key's next nonce
// depends on it. Its result is discarded. Pre-signed envelopes (`submitEnvelope`) are sent as
// they are, never re-signed, and their nonce errors are returned as results; one whose caller
// stopped waiting frees its lane at once (its signer owns its nonces, not this client).
//
// Bounded memory: at most inFlightMax requests in flight, each holding its envelope and one reply
// per replica. Calls waiting for their lane or a slot are the callers' own promises.
//
// Reads. A linearizable read is a read transaction like any other. A proof read, a block and a
// status go to one replica at a time and are verified here (cluster-reads.ts): a replica's proof
// need not be trusted, only the cluster's keys. The client remembers the highest height it has
// seen committed or proven and refuses proofs of older state, so its reads never go back in time
// and always see its own writes.

import { bytesToHex } from "../app/bytes.js";
import { EMPTY_ACCOUNT, accountStateKey, decodeAccount, kvStateKey } from "../app/ledger-state.js";
import {
  type Operation,
  TRANSACTION_KEY_BYTES_MAX,
  TRANSACTION_NONCE_MAX,
  type Transaction,
  decodeTransaction,
  encodeTransaction,
  isSessionEnvelope,
  signTransaction,
} from "../app/transaction.js";
import { ED25519_PUBLIC_KEY_BYTES, type Ed25519PrivateKey, ed25519PublicKeyOf } from "../crypto/ed25519.js";
import { certificateQuorum } from "../ledger/cluster.js";
import { SESSION_KEYS_PER_CONNECTION_MAX, sessionAttachFrame } from "../node/session-attach.js";
import { encodeWireFrame } from "../node/wire.js";
import { BLOCKS_LIMIT_MAX, ClusterReads, STATUS_TIMEOUT_MS_DEFAULT } from "./cluster-reads.js";
import { ClientClosedError, NonceError, ReplicasFailedError, RequestAbortedError, TimeoutError, TooFewReplicasError } from "./errors.js";
import { bytesOf, okResult } from "./operations.js";
import { type ClientReply, ReplicaLinks } from "./replica-links.js";
import { ReplicaQueries } from "./replica-queries.js";
import { type Agreement, ReplyTally, decodeReplyResult } from "./reply-tally.js";
import { vouched } from "./status-summary.js";
import {
  type AccountState,
  type ClientCounters,
  type ClientOptions,
  type Committed,
  DEADLINE_MS_DEFAULT,
  IN_FLIGHT_MAX_DEFAULT,
  IN_FLIGHT_MAX_LIMIT,
  type ReadOptions,
  type ReadResult,
  REQUEST_TIMEOUT_MS_DEFAULT,
  type ReplicaStatus,
  type StatusOptions,
  type SubmitEnvelopeOptions,
  type SubmitOptions,
  type VerifiedBlock,
} from "./types.js";
import { ViewEstimate } from "./view-estimate.js";

/** How often one `submit` signs its operation again after stale-nonce results before giving up. */
export const NONCE_RESIGNS_MAX = 3;

/** One caller's wait for a result. */
interface Waiter {
  readonly resolve: (committed: Committed) => void;
  readonly reject: (error: Error) => void;
  readonly deadlineTimer: NodeJS.Timeout;
  readonly detachAbort: () => void;
}

/** One call: a `submit` (the client signs, and may sign again) or a `submitEnvelope` (sent as it is). */
interface Call {
  /** The key whose lane the call waits in, as hex. */
  readonly keyHex: string;
  /** The operation to sign (`submit`), or undefined for a pre-signed envelope. */
  readonly operation: Operation | undefined;
  /** The pre-signed envelope (`submitEnvelope`): its bytes, sent as they are, and its nonce. */
  readonly envelope: { readonly bytes: Uint8Array; readonly nonce: number } | undefined;
  resignsLeft: number;
  /** The envelope in flight; undefined while the call waits for its lane or a slot. */
  request: Request | undefined;
  /** Undefined once the caller stopped waiting. */
  waiter: Waiter | undefined;
}

/** One signed envelope in flight. */
interface Request {
  readonly id: string;
  readonly call: Call;
  readonly nonce: number;
  /** Whether it is this client's own key: its replies are routed per connection, see "Sending". */
  readonly own: boolean;
  /**
   * Whether every attempt goes to every replica: envelopes of other keys (their routes are not
   * tracked) and session envelopes (each replica must receive its own copy to authenticate it).
   */
  readonly broadcast: boolean;
  /** The encoded client-request frame, built once and sent as often as needed. */
  readonly frame: Uint8Array;
  readonly tally: ReplyTally;
  attemptTimer: NodeJS.Timeout | undefined;
  attempts: number;
}

/** The calls of one key: at most one in flight, the rest waiting in order. */
interface Lane {
  readonly keyHex: string;
  active: Request | undefined;
  readonly queue: Call[];
  /** Whether the lane waits in `slotWaiters` for the in-flight count to drop. */
  waitingForSlot: boolean;
}

export class BulwarkClient {
  readonly publicKey: Uint8Array;
  readonly counters: ClientCounters = {
    repliesReceived: 0,
    repliesMisattributed: 0,
    repliesUnmatched: 0,
    repliesInvalid: 0,
    framesRejected: 0,
    rebroadcasts: 0,
    resigned: 0,
    answersReceived: 0,
    answersUnmatched: 0,
    answersRejected: 0,
    answersStale: 0,
  };
  private readonly options: ClientOptions;
  private readonly requestTimeoutMs: number;
  private readonly deadlineMs: number;
  private readonly inFlightMax: number;
  private readonly replicaCount: number;
  private readonly matchesNeeded: number;
  private readonly publicKeyHex: string;
  private readonly links: ReplicaLinks;
  private readonly queries: ReplicaQueries;
  private readonly reads: ClusterReads;
  private readonly view: ViewEstimate;
  /** The highest block height seen in a committed result (named by f + 1 replicas) or a verified proof. */
  private heightSeen = 0;
  /** Every request in flight, by (client key, nonce). */
  private readonly pending = new Map<string, Request>();
  /** Keys attached to every connection for session requests (`addSessionKey`), in order, and their hex. */
  private readonly sessionKeys: Ed25519PrivateKey[] = [];
  private readonly sessionKeyHexes = new Set<string>();
  /** The lanes with a request in flight or calls waiting, by key. */
  private readonly lanes = new Map<string, Lane>();
  /** Lanes whose next call waits for the in-flight count to drop below inFlightMax, first come first served. */
  private readonly slotWaiters: Lane[] = [];
  /** Calls whose caller still waits (for `close`). */
  private readonly waiting = new Set<Call>();
  /** Whether replica r's current connection carried one of this client's own requests, so r can route replies back. */
  private readonly routed: boolean[];
  /** The nonce the next `submit` signs with. */
  private nextNonce: number;
  private closed = false;
  /** Called when a link opens and on close: the waits of `whenOpen`. */
  private readonly openWaiters = new Set<() => void>();

  private constructor(options: ClientOptions) {
    this.options = options;
    this.requestTimeoutMs = positiveMs(options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS_DEFAULT, "requestTimeoutMs");
    this.deadlineMs = positiveMs(options.deadlineMs ?? DEADLINE_MS_DEFAULT, "deadlineMs");
    this.inFlightMax = options.inFlightMax ?? IN_FLIGHT_MAX_DEFAULT;
    if (!(Number.isSafeInteger(this.inFlightMax) && this.inFlightMax >= 1 && this.inFlightMax <= IN_FLIGHT_MAX_LIMIT)) {
      throw new RangeError(`inFlightMax must be an integer from 1 to ${IN_FLIGHT_MAX_LIMIT}; got ${this.inFlightMax}`);
    }
    this.nextNonce = options.firstNonce ?? 1;
    if (!(Number.isSafeInteger(this.nextNonce) && this.nextNonce >= 1 && this.nextNonce <= TRANSACTION_NONCE_MAX)) {
      throw new RangeError(`firstNonce must be an integer from 1 to ${TRANSACTION_NONCE_MAX}; got ${this.nextNonce}`);
    }
    const { cluster } = options;
    this.replicaCount = cluster.replicas.length;
    this.matchesNeeded = cluster.f + 1;
    this.publicKey = ed25519PublicKeyOf(options.privateKey);
    this.publicKeyHex = bytesToHex(this.publicKey);
    this.view = new ViewEstimate(this.replicaCount, cluster.f);
    this.routed = new Array<boolean>(this.replicaCount).fill(false);
    this.links = new ReplicaLinks(cluster, options.privateKey, options.transport ?? {}, this.counters, {
      onReply: (replica, reply) => this.onReply(replica, reply),
      onAnswer: (replica, answer) => this.queries.onAnswer(replica, answer),
      onOpen: (replica) => this.onLinkOpen(replica),
    });
    this.queries = new ReplicaQueries(this.links, this.counters, encodeWireFrame);
    this.reads = new ClusterReads({
      cluster,
      queries: this.queries,
      counters: this.counters,
      isOpen: (replica) => this.links.isOpen(replica),
      deadlineMs: this.deadlineMs,
      random: options.transport?.random ?? Math.random,
    });
  }

  /**
   * Opens a link to every replica and resolves once f + 1 of them are connected (enough to accept
   * results; the others keep dialling). Rejects with ClusterUnavailableError after `deadlineMs`,
   * and with RequestAbortedError when `signal` fires; either way nothing is left running.
   */
  static async connect(options: ClientOptions, { signal }: SubmitOptions = {}): Promise<BulwarkClient> {
    const client = new BulwarkClient(options);
    client.links.start();
    try {
      await client.whenConnected(signal);
    } catch (error) {
      await client.close();
      throw error;
    }
    return client;
  }

  /** Replicas with an open, authenticated connection. */
  get connectedReplicas(): number {
    return this.links.openCount;
  }

  /** Requests in flight, including those whose callers stopped waiting. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** The nonce the next `submit` will sign with (after the calls already waiting). */
  get nonce(): number {
    return this.nextNonce;
  }

  /** The highest block height this client has seen committed or proven; proof reads return nothing older. */
  get height(): number {
    return this.heightSeen;
  }

  /**
   * Signs `operation` with the key's next nonce and sends it once the key's previous request
   * settled; resolves with the result f + 1 replicas agreed on. A failed transaction (insufficient
   * balance, ...) resolves too: its result is final. Rejects with TimeoutError after `deadlineMs`,
   * RequestAbortedError when `signal` fires, ClientClosedError on `close()`, NonceError when no
   * nonce fits (see "Nonces"), and TransactionEncodeError for an operation that breaks the
   * format's limits. After a timeout, abort or close the transaction may still commit.
   */
  submit(operation: Operation, options: SubmitOptions = {}): Promise<Committed> {
    return this.startCall({ keyHex: this.publicKeyHex, operation, envelope: undefined, resignsLeft: NONCE_RESIGNS_MAX, request: undefined, waiter: undefined }, options);
  }

  /**
   * Sends a pre-signed transaction (of any key) as it is; it is decoded only to learn its client key
   * and nonce (not at all when `options.decoded` gives them). Its result, nonce errors included, is
   * returned as committed. Rejects as `submit` does, and with TransactionDecodeError for bytes that
   * are not a transaction.
   */
  /**
   * Session authentication (issue 5, `--auth session`; node/session-attach.ts): attaches
   * `privateKey`'s public key to every connection, one signed attachment per connection and again
   * on each reconnect. From then on the replicas take that key's session envelopes
   * (`sessionTransaction`, format version 2, no signature) on these connections, authenticated by
   * the connections' frame MACs: submit them with `submitEnvelope`. They go to every replica, as
   * each must receive its own copy. Adding a key twice does nothing; at most
   * SESSION_KEYS_PER_CONNECTION_MAX keys.
   */
  addSessionKey(privateKey: Ed25519PrivateKey): void {
    const keyHex = bytesToHex(ed25519PublicKeyOf(privateKey));
    if (this.sessionKeyHexes.has(keyHex)) return;
    if (this.sessionKeys.length >= SESSION_KEYS_PER_CONNECTION_MAX) {
      throw new RangeError(`a client attaches at most ${SESSION_KEYS_PER_CONNECTION_MAX} session keys`);
    }
    this.sessionKeyHexes.add(keyHex);
    this.sessionKeys.push(privateKey);
    for (let replica = 0; replica < this.replicaCount; replica++) if (this.links.isOpen(replica)) this.attachSessionKeys(replica, [privateKey]);
  }

  /** Sends the attachments of `keys` on `replica`'s current connection (bound to its handshake). */
  private attachSessionKeys(replica: number, keys: readonly Ed25519PrivateKey[]): void {
    const binding = this.links.binding(replica);
    if (binding === undefined) return;
    for (const key of keys) this.links.send(replica, encodeWireFrame(sessionAttachFrame(key, binding)));
  }

  submitEnvelope(envelope: Uint8Array, options: SubmitEnvelopeOptions = {}): Promise<Committed> {
    let transaction: Pick<Transaction, "clientKey" | "nonce">;
    try {
      transaction = options.decoded ?? decodeTransaction(envelope);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const call: Call = { keyHex: bytesToHex(transaction.clientKey), operation: undefined, envelope: { bytes: envelope, nonce: transaction.nonce }, resignsLeft: 0, request: undefined, waiter: undefined };
    return this.startCall(call, options);
  }

  // ---------------------------------------------------------------------------------------------
  // Wrappers: each returns the operation's value, or the Committed record for operations without
  // one, and throws RejectedError when the transaction failed.

  async put(key: Uint8Array | string, value: Uint8Array | string, options?: SubmitOptions): Promise<Committed> {
    const committed = await this.submit({ type: "put", key: bytesOf(key), value: bytesOf(value) }, options);
    okResult(committed, "put", ["done"]);
    return committed;
  }

  /** The key's value, or undefined when it is absent (see `read` for `consistency`). */
  async get(key: Uint8Array | string, options?: ReadOptions): Promise<Uint8Array | undefined> {
    return (await this.read(key, options)).value;
  }

  /** Whether the key was present. */
  async delete(key: Uint8Array | string, options?: SubmitOptions): Promise<boolean> {
    return okResult(await this.submit({ type: "delete", key: bytesOf(key) }, options), "delete", ["flag"]).flag;
  }

  /** Sets `key` to `next` if its value is `expected` (null: if it is absent); whether it did. */
  async cas(key: Uint8Array | string, expected: Uint8Array | string | null, next: Uint8Array | string, options?: SubmitOptions): Promise<boolean> {
    const operation: Operation = { type: "cas", key: bytesOf(key), expected: expected === null ? null : bytesOf(expected), value: bytesOf(next) };
    return okResult(await this.submit(operation, options), "cas", ["flag"]).flag;
  }

  async mint(to: Uint8Array, amount: bigint, options?: SubmitOptions): Promise<Committed> {
    const committed = await this.submit({ type: "mint", to, amount }, options);
    okResult(committed, "mint", ["done"]);
    return committed;
  }

  async transfer(to: Uint8Array, amount: bigint, options?: SubmitOptions): Promise<Committed> {
    const committed = await this.submit({ type: "transfer", to, amount }, options);
    okResult(committed, "transfer", ["done"]);
    return committed;
  }

  /** The balance of `account` (default: this client's own). */
  async balance(account: Uint8Array = this.publicKey, options?: SubmitOptions): Promise<bigint> {
    return okResult(await this.submit({ type: "balance", account }, options), "balance", ["amount"]).amount;
  }

  // ---------------------------------------------------------------------------------------------
  // Reads (see "Reads"; types.ts, `Consistency`)

  /**
   * The key's value and the height it was read at. "linearizable" (default) orders a get through
   * consensus; "proof" asks one replica for a proof and verifies it, asking the next replica when
   * it does not verify. Rejects with ClusterUnavailableError when no replica served a proof that
   * verified, and as `submit` does for a linearizable read.
   */
  async read(key: Uint8Array | string, options: ReadOptions = {}): Promise<ReadResult> {
    const keyBytes = bytesOf(key);
    if (options.consistency === "proof") {
      if (keyBytes.length < 1 || keyBytes.length > TRANSACTION_KEY_BYTES_MAX) throw new RangeError(`a key is 1 to ${TRANSACTION_KEY_BYTES_MAX} bytes; got ${keyBytes.length}`);
      return this.proven(kvStateKey(keyBytes), options);
    }
    const committed = await this.submit({ type: "get", key: keyBytes }, options);
    const result = okResult(committed, "get", ["value", "absent"]);
    return { value: result.kind === "value" ? result.value : undefined, height: committed.height };
  }

  /**
   * The token account `id` (a raw public key): balance and next nonce, always from a verified
   * proof. "linearizable" (default) first orders a balance transaction through consensus and then
   * accepts only a proof at its height or above; "proof" skips the transaction.
   */
  async account(id: Uint8Array, options: ReadOptions = {}): Promise<AccountState> {
    if (!(id instanceof Uint8Array) || id.length !== ED25519_PUBLIC_KEY_BYTES) throw new RangeError(`an account id is a ${ED25519_PUBLIC_KEY_BYTES}-byte public key`);
    // The transaction's height (agreed by f + 1 replicas) becomes the lowest height a proof may have.
    if (options.consistency !== "proof") okResult(await this.submit({ type: "balance", account: id }, options), "balance", ["amount"]);
    const proven = await this.proven(accountStateKey(id), options);
    const account = proven.value === undefined ? EMPTY_ACCOUNT : decodeAccount(proven.value);
    return { balance: account.balance, nextNonce: account.nextNonce, height: proven.height };
  }

  /**
   * Reads this key's account by proof and moves the next nonce `submit` signs with up to the
   * account's (never down); returns it. `connect` does this for `firstNonce: "discover"`.
   *
   * The proof must be at least as recent as the executed height f + 1 replicas report (their
   * statuses; executed, not certified: a block's certificate lags its execution, and the key's
   * last transaction is often in the newest block), so one lagging or faulty replica cannot pass
   * off an old state of the account: a
   * nonce too low would never be corrected, since replicas drop a request whose nonce is at or
   * below the key's last executed one without answering it (consensus/pbft/normal-case.ts), and
   * every call of the key would time out. Rejects with ClusterUnavailableError when fewer than
   * f + 1 replicas answer their status.
   */
  async discoverNonce(options: SubmitOptions = {}): Promise<number> {
    if (this.closed) throw new ClientClosedError();
    // `connect` returns with f + 1 links open. The more replicas answer, the better the figure
    // (with 2f + 1, lagging replicas alone cannot pull it below the account's last change), and
    // a working cluster has 2f + 1 replicas up, so wait a little for their links.
    await this.whenOpen(certificateQuorum(this.options.cluster), STATUS_TIMEOUT_MS_DEFAULT, options.signal);
    if (this.closed) throw new ClientClosedError();
    const statuses = await this.reads.status(STATUS_TIMEOUT_MS_DEFAULT, options.signal);
    const minHeight = vouched(statuses.map((status) => status.executedHeight), this.options.cluster.f);
    if (minHeight === null) {
      const failures = statuses.filter((status) => !status.reachable).map((status) => ({ replica: status.replica, reason: `no status within ${STATUS_TIMEOUT_MS_DEFAULT} ms` }));
      throw new ReplicasFailedError(`the executed height f + 1 = ${this.matchesNeeded} replicas vouch for (needed to discover the nonce)`, failures);
    }
    const { nextNonce } = await this.account(this.publicKey, { ...options, consistency: "proof", minHeight });
    this.nextNonce = Math.max(this.nextNonce, nextNonce);
    return this.nextNonce;
  }

  /** What each replica says about itself (unverified); one entry per replica, unreachable ones included. */
  async status(options: StatusOptions = {}): Promise<ReplicaStatus[]> {
    if (this.closed) throw new ClientClosedError();
    return this.reads.status(positiveMs(options.timeoutMs ?? STATUS_TIMEOUT_MS_DEFAULT, "timeoutMs"), options.signal);
  }

  /**
   * Block `height`, verified; undefined when f + 1 replicas say they do not have it certified
   * (yet). Rejects with ClusterUnavailableError when no replica served it and fewer than f + 1
   * said they lack it within `deadlineMs`.
   */
  async block(height: number, options: SubmitOptions = {}): Promise<VerifiedBlock | undefined> {
    if (!(Number.isSafeInteger(height) && height >= 1)) throw new RangeError(`a block height is an integer from 1; got ${height}`);
    return this.reads.block(height, options.signal);
  }

  /**
   * Up to `limit` (at most 100) verified blocks from `from`, ascending and contiguous; fewer at
   * the certified tip, none when f + 1 replicas lack block `from`. Rejects with
   * ClusterUnavailableError when no replica served and fewer than f + 1 said they lack it within
   * `deadlineMs`.
   */
  async blocks(from: number, limit: number, options: SubmitOptions = {}): Promise<VerifiedBlock[]> {
    if (!(Number.isSafeInteger(from) && from >= 1)) throw new RangeError(`a block height is an integer from 1; got ${from}`);
    if (!(Number.isSafeInteger(limit) && limit >= 1 && limit <= BLOCKS_LIMIT_MAX)) throw new RangeError(`limit must be an integer from 1 to ${BLOCKS_LIMIT_MAX}; got ${limit}`);
    return this.reads.blocks(from, Math.min(limit, Number.MAX_SAFE_INTEGER - from + 1), options.signal);
  }

  private async proven(stateKey: Uint8Array, options: ReadOptions): Promise<ReadResult> {
    if (this.closed) throw new ClientClosedError();
    const minHeight = options.minHeight ?? 0;
    if (!(Number.isSafeInteger(minHeight) && minHeight >= 0)) throw new RangeError(`minHeight must be a block height, an integer from 0; got ${minHeight}`);
    const proven = await this.reads.proofRead(stateKey, Math.max(this.heightSeen, minHeight), options.signal);
    this.heightSeen = Math.max(this.heightSeen, proven.height);
    return proven;
  }

  /**
   * Closes every link and rejects every waiting call with ClientClosedError. Requests already sent
   * may still commit.
   */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const call of [...this.waiting]) this.reject(call, new ClientClosedError());
    for (const request of this.pending.values()) clearTimeout(request.attemptTimer);
    this.pending.clear();
    this.lanes.clear();
    this.slotWaiters.length = 0;
    this.queries.close();
    this.links.close();
    for (const waiter of [...this.openWaiters]) waiter();
    return Promise.resolve();
  }

  // ---------------------------------------------------------------------------------------------
  // Calls and lanes

  private startCall(call: Call, options: SubmitOptions): Promise<Committed> {
    if (this.closed) return Promise.reject(new ClientClosedError());
    const { signal } = options;
    if (signal?.aborted === true) return Promise.reject(new RequestAbortedError(signal.reason));
    return new Promise<Committed>((resolve, reject) => {
      const onAbort = (): void => this.stopWaiting(call, new RequestAbortedError(signal?.reason));
      signal?.addEventListener("abort", onAbort, { once: true });
      call.waiter = {
        resolve,
        reject,
        deadlineTimer: setTimeout(() => this.stopWaiting(call, this.timeoutError(call)), this.deadlineMs),
        detachAbort: () => signal?.removeEventListener("abort", onAbort),
      };
      this.waiting.add(call);
      const lane = this.laneOf(call.keyHex);
      lane.queue.push(call);
      this.pump(lane);
    });
  }

  private laneOf(keyHex: string): Lane {
    let lane = this.lanes.get(keyHex);
    if (lane === undefined) {
      lane = { keyHex, active: undefined, queue: [], waitingForSlot: false };
      this.lanes.set(keyHex, lane);
    }
    return lane;
  }

  /** Starts the lane's next call if nothing of its key is in flight and a slot is free. */
  private pump(lane: Lane): void {
    while (!this.closed && lane.active === undefined && lane.queue.length > 0) {
      if (this.pending.size >= this.inFlightMax) {
        if (!lane.waitingForSlot) {
          lane.waitingForSlot = true;
          this.slotWaiters.push(lane);
        }
        return;
      }
      this.begin(lane, lane.queue.shift()!);
    }
    if (lane.active === undefined && lane.queue.length === 0 && !lane.waitingForSlot && this.lanes.get(lane.keyHex) === lane) this.lanes.delete(lane.keyHex);
  }

  /** A request settled: its lane may go on, and a slot is free for a lane that waited for one. */
  private afterSettle(lane: Lane): void {
    this.pump(lane);
    while (!this.closed && this.slotWaiters.length > 0 && this.pending.size < this.inFlightMax) {
      const waiter = this.slotWaiters.shift()!;
      waiter.waitingForSlot = false;
      this.pump(waiter);
    }
  }

  /** Gives the call its envelope (signing a fresh one for `submit`) and sends it. */
  private begin(lane: Lane, call: Call): void {
    let request: Request;
    try {
      request = call.envelope === undefined ? this.signedRequest(call, this.nextNonce) : this.track(call, call.envelope.nonce, call.envelope.bytes);
    } catch (error) {
      this.reject(call, error instanceof Error ? error : new Error(String(error)));
      return;
    }
    lane.active = request;
    this.transmit(request, false);
  }

  private signedRequest(call: Call, nonce: number): Request {
    const transaction = signTransaction(this.options.privateKey, { clientKey: this.publicKey, nonce, operation: call.operation! });
    return this.track(call, nonce, encodeTransaction(transaction));
  }

  private track(call: Call, nonce: number, envelope: Uint8Array): Request {
    const request: Request = {
      id: requestId(call.keyHex, nonce),
      call,
      nonce,
      own: call.keyHex === this.publicKeyHex,
      broadcast: call.keyHex !== this.publicKeyHex || isSessionEnvelope(envelope),
      frame: encodeWireFrame({ kind: "client-request", transaction: envelope }),
      tally: new ReplyTally(this.replicaCount, this.matchesNeeded),
      attemptTimer: undefined,
      attempts: 0,
    };
    call.request = request;
    this.pending.set(request.id, request);
    return request;
  }

  /** Takes the request out of flight and frees its lane. */
  private retire(request: Request): Lane | undefined {
    clearTimeout(request.attemptTimer);
    request.attemptTimer = undefined;
    if (this.pending.get(request.id) !== request) return undefined;
    this.pending.delete(request.id);
    const lane = this.lanes.get(request.call.keyHex);
    if (lane?.active === request) lane.active = undefined;
    return lane;
  }

  private resolve(call: Call, committed: Committed): void {
    this.detach(call)?.resolve(committed);
  }

  private reject(call: Call, error: Error): void {
    this.detach(call)?.reject(error);
  }

  private detach(call: Call): Waiter | undefined {
    const waiter = call.waiter;
    if (waiter === undefined) return undefined;
    call.waiter = undefined;
    clearTimeout(waiter.deadlineTimer);
    waiter.detachAbort();
    this.waiting.delete(call);
    return waiter;
  }

  /** The caller stops waiting (deadline, abort); see "Nonces" for why a `submit` stays in flight. */
  private stopWaiting(call: Call, error: Error): void {
    if (call.waiter === undefined) return;
    this.reject(call, error);
    const lane = this.lanes.get(call.keyHex);
    if (lane === undefined) return;
    const queuedAt = lane.queue.indexOf(call);
    if (queuedAt >= 0) {
      lane.queue.splice(queuedAt, 1);
      if (lane.queue.length === 0 && lane.waitingForSlot) {
        // Nothing left to wait for a slot: out of the slot queue, so lanes do not pile up there
        // while the cluster is unreachable.
        this.slotWaiters.splice(this.slotWaiters.indexOf(lane), 1);
        lane.waitingForSlot = false;
      }
      this.pump(lane);
      return;
    }
    const request = call.request;
    if (call.envelope !== undefined && request !== undefined) {
      this.retire(request);
      this.afterSettle(lane);
    }
  }

  private timeoutError(call: Call): TimeoutError {
    const request = call.request;
    if (request === undefined) {
      return new TimeoutError(this.deadlineMs, undefined, this.matchesNeeded, [], `waiting behind ${this.lanes.get(call.keyHex)?.active === undefined ? "other keys' requests" : "the key's previous request"}; ${this.pending.size} requests in flight`);
    }
    const links = this.links.openCount === this.replicaCount ? "all replicas connected" : `connections: ${this.links.describe()}`;
    return new TimeoutError(this.deadlineMs, request.nonce, this.matchesNeeded, request.tally.groups(), `sent ${request.attempts} times, ${links}`);
  }

  // ---------------------------------------------------------------------------------------------
  // Sending

  /**
   * Sends the request to the presumed primary, and to every replica whose connection has not yet
   * carried this client's key (see "Sending"), or to every replica; then arms the attempt timer.
   * Envelopes of other keys always go to every replica (the client does not track their routes), and so do session envelopes (each replica authenticates its own copy).
   */
  private transmit(request: Request, everyone: boolean): void {
    request.attempts += 1;
    const primary = this.view.primary;
    for (let replica = 0; replica < this.replicaCount; replica++) {
      const unrouted = request.own && !this.routed[replica];
      if (!(everyone || request.broadcast || replica === primary || unrouted)) continue;
      // A link that is down would queue a copy per attempt; `onLinkOpen` sends what is in flight
      // once it is back.
      if (!this.links.isOpen(replica)) continue;
      if (this.links.send(replica, request.frame) && request.own) this.routed[replica] = true;
    }
    clearTimeout(request.attemptTimer);
    request.attemptTimer = setTimeout(() => this.onAttemptTimeout(request), this.requestTimeoutMs);
  }

  private onAttemptTimeout(request: Request): void {
    request.attemptTimer = undefined;
    if (this.closed || this.pending.get(request.id) !== request) return;
    this.counters.rebroadcasts += 1;
    this.transmit(request, true);
  }

  private onLinkOpen(replica: number): void {
    // A new connection: the replica routes replies by connection, so it knows nothing of this one.
    // Every request in flight goes to it, so its reply can come back this way.
    this.routed[replica] = false;
    // Attachments first: the replica takes session requests only from keys attached before them.
    if (this.sessionKeys.length > 0) this.attachSessionKeys(replica, this.sessionKeys);
    for (const request of this.pending.values()) {
      if (this.links.send(replica, request.frame) && request.own) this.routed[replica] = true;
    }
    for (const waiter of [...this.openWaiters]) waiter();
  }

  private async whenConnected(signal: AbortSignal | undefined): Promise<void> {
    if (await this.whenOpen(this.matchesNeeded, this.deadlineMs, signal)) return;
    if (this.closed) throw new ClientClosedError();
    throw new TooFewReplicasError(this.links.openCount, this.matchesNeeded, `after ${this.deadlineMs} ms: ${this.links.describe()}`);
  }

  /**
   * Resolves true once `count` links are open, false after `timeoutMs` or when the client closes;
   * rejects with RequestAbortedError when `signal` fires.
   */
  private whenOpen(count: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<boolean> {
    if (signal?.aborted === true) return Promise.reject(new RequestAbortedError(signal.reason));
    return new Promise((resolve, reject) => {
      const finish = (open: boolean | RequestAbortedError): void => {
        clearTimeout(timer);
        this.openWaiters.delete(check);
        signal?.removeEventListener("abort", onAbort);
        if (open instanceof RequestAbortedError) reject(open);
        else resolve(open);
      };
      const check = (): void => {
        if (this.closed) finish(false);
        else if (this.links.openCount >= count) finish(true);
      };
      const onAbort = (): void => finish(new RequestAbortedError(signal?.reason));
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.openWaiters.add(check);
      signal?.addEventListener("abort", onAbort, { once: true });
      check();
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Replies

  private onReply(replica: number, reply: ClientReply): void {
    if (this.closed) return;
    this.view.record(replica, reply.view);
    const request = this.pending.get(requestId(bytesToHex(reply.client), reply.nonce));
    if (request === undefined) {
      this.counters.repliesUnmatched += 1;
      return;
    }
    const result = decodeReplyResult(reply.result);
    if (result === undefined) {
      this.counters.repliesInvalid += 1;
      return;
    }
    const agreement = request.tally.record(replica, reply.result, result, reply.height);
    if (agreement !== undefined) this.onAgreement(request, agreement);
  }

  private onAgreement(request: Request, agreement: Agreement): void {
    const { result } = agreement;
    const { call, nonce } = request;
    const committed: Committed = { result, height: agreement.height, nonce, replicas: agreement.replicas };
    this.heightSeen = Math.max(this.heightSeen, agreement.height);
    const lane = this.retire(request);
    const nonceError = !result.ok && (result.error === "stale-nonce" || result.error === "nonce-gap") ? result : undefined;
    if (request.own) {
      if (nonceError === undefined) {
        // Every other result leaves the account's next nonce above this one (consumed, or refused
        // at admission, which a correctly signed envelope of ours never is).
        this.nextNonce = Math.max(this.nextNonce, nonce + 1);
      } else if (nonceError.error === "stale-nonce" && nonceError.nextNonce > nonce) {
        this.nextNonce = Math.max(this.nextNonce, nonceError.nextNonce);
      }
    }
    if (call.envelope !== undefined || nonceError === undefined) {
      this.resolve(call, committed);
    } else if (nonceError.error === "stale-nonce") {
      this.onStaleNonce(call, nonce, nonceError.nextNonce);
    } else {
      this.reject(
        call,
        new NonceError(
          "nonce-gap",
          nonce,
          nonceError.nextNonce,
          `this client's nonces run ahead of the account (was firstNonce too high?); connect with firstNonce ${nonceError.nextNonce}. The signed transaction stays valid and would execute if the account reached nonce ${nonce}`,
        ),
      );
    }
    if (lane !== undefined) this.afterSettle(lane);
  }

  /** A stale nonce refused the transaction without effect: sign it again with the account's next nonce. */
  private onStaleNonce(call: Call, nonce: number, nextNonce: number): void {
    // Nobody waits for an abandoned call: its operation did not run, and need not.
    if (call.waiter === undefined) return;
    if (nextNonce <= nonce) {
      return this.reject(call, new NonceError("stale-nonce", nonce, nextNonce, "the replicas agreed on a stale-nonce result that names no later nonce; they may run a different version"));
    }
    if (call.resignsLeft === 0) {
      const tried = NONCE_RESIGNS_MAX + 1;
      return this.reject(call, new NonceError("stale-nonce", nonce, nextNonce, `tried ${tried} nonces and each was already used; another process seems to be using this key`));
    }
    call.resignsLeft -= 1;
    this.counters.resigned += 1;
    // Back to the front of its lane, so it keeps its place before the key's later calls.
    call.request = undefined;
    this.laneOf(call.keyHex).queue.unshift(call);
  }
}

function requestId(clientKeyHex: string, nonce: number): string {
  return `${clientKeyHex}/${nonce}`;
}

function positiveMs(value: number, name: string): number {
  if (!(Number.isFinite(value) && value > 0 && value <= 2 ** 31 - 1)) throw new RangeError(`${name} must be a positive number of milliseconds (at most 2^31 - 1); got ${value}`);
  return value;
}
