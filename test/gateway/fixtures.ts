// A gateway application over fake clients (fake-ledger.ts), driven with Fastify's `inject`: no
// socket, no cluster. The app is closed when the test ends.

import type { TestContext } from "node:test";

import type { FastifyInstance } from "fastify";
import { type Logger, pino } from "pino";

import { buildGatewayApp } from "../../src/gateway/app.js";
import { LedgerPool } from "../../src/gateway/ledger-pool.js";
import { testCluster } from "../ledger/fixtures.js";
import { FakeCluster, FakeLedger } from "./fake-ledger.js";

export interface FakeGateway {
  readonly app: FastifyInstance;
  readonly cluster: FakeCluster;
  readonly reader: FakeLedger;
  readonly writers: readonly FakeLedger[];
  readonly pool: LedgerPool;
}

export interface FakeGatewayOptions {
  readonly writers?: number;
  readonly callsPendingMax?: number;
  readonly bodyLimitBytes?: number;
  /** Default: silent. */
  readonly logger?: Logger;
}

export const CLUSTER = testCluster(4).config;

export async function fakeGateway(t: TestContext, options: FakeGatewayOptions = {}): Promise<FakeGateway> {
  const cluster = new FakeCluster();
  const reader = new FakeLedger(cluster, "reader");
  const writers = Array.from({ length: options.writers ?? 4 }, (_, index) => new FakeLedger(cluster, `writer-${index}`));
  const pool = new LedgerPool(reader, writers, options.callsPendingMax ?? 1_000);
  const app = await buildGatewayApp({ cluster: CLUSTER, pool, logger: options.logger ?? pino({ level: "silent" }), bodyLimitBytes: options.bodyLimitBytes });
  t.after(() => app.close());
  return { app, cluster, reader, writers, pool };
}

/** Every call any fake of the gateway received. */
export function allCalls(gateway: FakeGateway): string[] {
  return [gateway.reader, ...gateway.writers].flatMap((ledger) => ledger.calls);
}

export type Json = Record<string, unknown>;
