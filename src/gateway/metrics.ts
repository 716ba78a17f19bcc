// The gateway's Prometheus metrics, served at GET /metrics: the process (prom-client's default
// metrics), every HTTP request by route and status, and the state of the clients it talks to the
// cluster through. Each gateway has its own registry, so two gateways in one process (tests) do
// not share counts. The SDK's counters are plain numbers on each client; they are read when
// Prometheus scrapes, as gauges, rather than mirrored on every change.

import { Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

import type { ClientCounters } from "../client/types.js";
import type { LedgerPool } from "./ledger-pool.js";
import type { GatewayLedger } from "./types.js";

type HttpLabel = "method" | "route" | "status_code";

/** Seconds: from a cached answer (sub-millisecond) to a call that waits out the SDK's 30 s deadline. */
const DURATION_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly durations: Histogram<HttpLabel>;

  constructor(pool: LedgerPool) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.durations = new Histogram({
      name: "bulwark_gateway_http_request_duration_seconds",
      help: "Time from receiving an HTTP request to answering it, by method, route pattern and status code (its _count is the number of requests answered).",
      labelNames: ["method", "route", "status_code"],
      buckets: DURATION_BUCKETS_SECONDS,
      registers,
    });
    new Gauge({
      name: "bulwark_gateway_cluster_calls_pending",
      help: "Calls into the cluster the gateway is waiting on.",
      registers,
      collect() {
        this.set(pool.pending);
      },
    });
    new Gauge({
      name: "bulwark_gateway_cluster_calls_overloaded",
      help: "Calls refused with 503 because the gateway already waited on its maximum (a count since start).",
      registers,
      collect() {
        this.set(pool.overloaded);
      },
    });
    const clients: readonly (readonly [string, GatewayLedger])[] = [["reader", pool.reader], ...pool.writers.map((writer, index) => [`writer-${index}`, writer] as const)];
    this.clientGauge("in_flight_requests", "Requests in flight in the client, by client.", clients, (client) => client.inFlight);
    this.clientGauge("connected_replicas", "Replicas the client has an open, authenticated connection to, by client.", clients, (client) => client.connectedReplicas);
    for (const field of Object.keys(pool.reader.counters) as (keyof ClientCounters)[]) {
      this.clientGauge(snakeCase(field), `The client's ${field} counter (a count since it connected), by client.`, clients, (client) => client.counters[field]);
    }
  }

  /** Records one answered request; `route` is the route's pattern, so URLs with different keys share a series. */
  observe(method: string, route: string, statusCode: number, seconds: number): void {
    const labels = { method, route, status_code: String(statusCode) };
    this.durations.observe(labels, seconds);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private clientGauge(name: string, help: string, clients: readonly (readonly [string, GatewayLedger])[], read: (client: GatewayLedger) => number): void {
    new Gauge({
      name: `bulwark_gateway_client_${name}`,
      help,
      labelNames: ["client"],
      registers: [this.registry],
      collect() {
        for (const [label, client] of clients) this.set({ client: label }, read(client));
      },
    });
  }
}

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}
