// The `noop` workload: empty operations, so a run measures consensus, the transport and the
// per-transaction bookkeeping of execution (nonce, reply record) and nothing of an application.
// Each client has a key of its own and uses its nonces in turn.

import type { Operation } from "../app/transaction.js";
import { BenchKey } from "./bench-keys.js";
import { type Draft, PreparedWorkload } from "./prepared-workload.js";
import type { AuthMode } from "./types.js";

const NOOP: Operation = { type: "noop" };

export interface NoopWorkloadOptions {
  readonly auth: AuthMode;
  readonly clients: number;
  /** Seeds the clients' keys (BenchKey.derive). */
  readonly keySeed: Uint8Array;
}

export class NoopWorkload extends PreparedWorkload {
  readonly name = "noop";
  private readonly keys: readonly BenchKey[];
  private readonly nonces: Float64Array;

  constructor(options: NoopWorkloadOptions) {
    super(options.auth, options.clients);
    this.keys = Array.from({ length: options.clients }, (_, client) => BenchKey.derive(options.keySeed, "noop-client", client));
    this.nonces = new Float64Array(options.clients).fill(1);
  }

  keysOfClient(client: number): readonly BenchKey[] {
    return [this.keys[client]!];
  }

  setupRounds(): Iterable<readonly Uint8Array[]> {
    return [];
  }

  protected draw(client: number): Draft {
    const nonce = this.nonces[client]!;
    this.nonces[client] = nonce + 1;
    return { key: this.keys[client]!, nonce, operation: NOOP };
  }
}
