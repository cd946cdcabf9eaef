import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config.js';
import type { PushNode } from '../core/node.js';
import type { ProjectRegistry } from '../core/projects/registry.js';
import { GrpcIngress } from '../ingress/grpc/server.js';
import { createHttpHandler } from '../ingress/http/app.js';
import { WsEdge } from '../ingress/ws/edge.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { defaultMaxConnections, openFileLimit } from './fd-limit.js';

export interface ListenerDeps {
  node: PushNode;
  projects: ProjectRegistry;
  metrics: Metrics;
  logger: Logger;
  /** Whether the node should take traffic (bus up, not draining): /readyz. */
  isReady: () => boolean;
  /** `serve --workers`: /metrics answers for every worker of the machine. */
  metricsText?: () => Promise<string>;
}

/** The three ingresses, bound. */
export interface Listeners {
  ports: { ws: number; http: number; grpc: number };
  grpc: GrpcIngress;
  /** Stops all three: new connections at once, in-flight work within `timeoutMs`. */
  shutdown(timeoutMs: number): Promise<void>;
}

/** Builds the WebSocket edge, the gRPC ingress and the HTTP app, and binds their ports. */
export async function startListeners(config: Config, d: ListenerDeps): Promise<Listeners> {
  const { node, projects, metrics, logger } = d;
  const ws = new WsEdge({
    nodeId: config.nodeId,
    hub: node.hub,
    backends: node.backends,
    publisher: node.publisher,
    projects,
    metrics,
    logger,
    pingTimeoutMs: config.pingTimeoutMs,
    maxMessageBytes: config.maxMessageBytes,
    maxQueueBytes: config.maxQueueBytes,
    nextCid: () => node.cids.next(),
    online: node.online,
    onlineReportIntervalMs: config.onlineReportIntervalMs,
    maxConnections: config.maxConnections ?? defaultMaxConnections(openFileLimit()),
    maxSubscriptions: config.maxSubscriptions,
    allowedOrigins: config.allowedOrigins,
    headerTimeoutMs: config.headerTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    history: node.history,
    members: node.members,
    v1PingIntervalMs: config.v1PingIntervalMs,
    v1PongTimeoutMs: config.v1PongTimeoutMs,
  });
  // Bus messages wait while the WebSocket flush is behind, so socket queues do not grow past what it writes.
  node.holdDeliveriesWhile(() => ws.writing);
  const grpc = new GrpcIngress({
    publisher: node.publisher,
    backends: node.backends,
    projects,
    metrics,
    logger,
    maxPushBytes: config.maxPushBytes,
    node,
    maxQueueBytes: config.maxQueueBytes,
    fastPath: config.grpcFastPath,
  });
  const ports = { ws: 0, http: 0, grpc: 0 };
  const app = createHttpHandler({
    publisher: node.publisher,
    projects,
    metrics,
    logger,
    maxPushBytes: config.maxPushBytes,
    isReady: d.isReady,
    node,
    maxQueueBytes: config.maxQueueBytes,
    ...(config.demo && { demo: { wsPort: () => ports.ws } }),
    corsOrigins: config.corsOrigins,
    adminKey: config.adminKey,
    metricsText: d.metricsText,
  });

  let http: Server;
  const { host } = config;
  try {
    ports.ws = await bind('WebSocket', '--ws-port', host, config.wsPort, () => ws.listen(host, config.wsPort));
    ports.grpc = await bind('gRPC', '--grpc-port', host, config.grpcPort, () => grpc.listen(host, config.grpcPort));
    http = await bind('HTTP', '--http-port', host, config.httpPort, () => listenHttp(app, config, host, config.httpPort));
    ports.http = (http.address() as AddressInfo).port;
  } catch (err) {
    // A half-started node must not keep the ports it did get.
    await Promise.all([ws.shutdown(0), grpc.shutdown(0)]);
    throw err;
  }
  return {
    ports,
    grpc,
    async shutdown(timeoutMs) {
      await Promise.all([ws.shutdown(timeoutMs), grpc.shutdown(timeoutMs), closeHttp(http, timeoutMs)]);
    },
  };
}

/**
 * A listener that could not bind: the operator's to fix (another process on the port, a --host
 * this machine does not have), so the CLI prints the message alone and exits 2.
 */
export class ListenError extends Error {
  override name = 'ListenError';
}

/** Why a bind failed, in words: node:net errors carry a code, grpc-js only a message that contains one. */
function reason(err: unknown): string {
  const { code, message } = err as { code?: unknown; message?: string };
  const text = String(message ?? err);
  const errno = typeof code === 'string' ? code : /\b(E[A-Z]{3,})\b/.exec(text)?.[1];
  switch (errno) {
    case 'EADDRINUSE':
      return 'the port is already in use';
    case 'EADDRNOTAVAIL':
      return 'this machine has no such address (check --host)';
    case 'EACCES':
      return 'permission denied (ports below 1024 need privileges)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unknown host (check --host)';
  }
  if (/Name resolution failed/i.test(text)) return 'unknown host (check --host)';
  return text;
}

async function bind<T>(what: string, flag: string, host: string, port: number, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen();
  } catch (err) {
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    throw new ListenError(`cannot listen for ${what} on ${address} (--host, ${flag}): ${reason(err)}`);
  }
}

/** The REST/health/metrics server; slow senders (slowloris) are cut off by the two timeouts. */
function listenHttp(app: RequestListener, config: Config, host: string, port: number): Promise<Server> {
  // Checked every second instead of node's 30 s, so the timeouts hold to about a second.
  const server = createServer({ connectionsCheckingInterval: 1000 }, app);
  server.headersTimeout = config.headerTimeoutMs;
  server.requestTimeout = config.requestTimeoutMs;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

function closeHttp(server: Server, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.closeAllConnections();
    }, timeoutMs);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
