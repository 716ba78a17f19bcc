// Serves a replica's Prometheus metrics (replica-metrics.ts) at GET /metrics over plain HTTP.
// node:http is enough for one route; the default host is loopback, so exposing the metrics to
// the network is an explicit choice (--metrics-host).

import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";

import type { ReplicaMetrics } from "./replica-metrics.js";

export interface MetricsServerOptions {
  readonly metrics: ReplicaMetrics;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** 0 picks a free port; `url` tells which. */
  readonly port: number;
}

export interface MetricsServer {
  /** http://host:port/metrics, with the port actually bound. */
  readonly url: string;
  close(): Promise<void>;
}

export const METRICS_HOST_DEFAULT = "127.0.0.1";

export class MetricsServerError extends Error {
  override readonly name = "MetricsServerError";
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const host = options.host ?? METRICS_HOST_DEFAULT;
  const server = createServer((request, response) => void answer(options.metrics, request, response));
  // A scraper that keeps its connection open must not hold up a graceful stop.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => reject(new MetricsServerError(`could not serve metrics on ${host}:${options.port}: ${error.message}`, { cause: error }));
    server.once("error", onError);
    server.listen(options.port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return { url: `http://${shownHost}:${address.port}/metrics`, close: () => closeServer(server) };
}

async function answer(metrics: ReplicaMetrics, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = (request.url ?? "").split("?")[0];
  if (path !== "/metrics") {
    response.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found: the metrics are at /metrics\n");
    return;
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    response.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }).end("use GET\n");
    return;
  }
  try {
    const text = await metrics.render();
    response.writeHead(200, { "content-type": metrics.contentType });
    response.end(request.method === "HEAD" ? undefined : text);
  } catch (error) {
    response.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end(`metrics failed: ${error instanceof Error ? error.message : String(error)}\n`);
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}
