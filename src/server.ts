import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RedisBus } from './cluster/redis-bus.js';
import { MemoryBus } from './cluster/memory-bus.js';
import { MemoryConsumers } from './cluster/memory-consumers.js';
import { RedisConsumers } from './cluster/redis-consumers.js';
import { MemoryPresence } from './cluster/memory-presence.js';
import { RedisPresence } from './cluster/redis-presence.js';
import type { Config } from './config.js';
import { ProjectRegistry, type ProjectSet } from './core/projects/registry.js';
import { PushNode } from './core/node.js';
import { nodeChannel } from './core/targeting.js';
import { protoRoot } from './ingress/grpc/proto-files.js';
import { GrpcIngress } from './ingress/grpc/server.js';
import { createHttpHandler } from './ingress/http/app.js';
import { WsEdge } from './ingress/ws/edge.js';
import type { Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { defaultProjects, hasLogin, loadProjectsFile } from './projects.js';

export interface RunningServer {
  nodeId: string;
  ports: { ws: number; http: number; grpc: number };
  metrics: Metrics;
  isReady(): boolean;
  /** Re-reads --projects (SIGHUP does this); false when the file is invalid and nothing changed. */
  reloadProjects(): boolean;
  /** Graceful: stop accepting, close clients with 1012, finish in-flight pushes, close the bus. */
  shutdown(): Promise<void>;
}

/** How long a channel's bus subscription outlives its last local holder. */
const UNSUBSCRIBE_DELAY_MS = 500;
/** A Redis publish unanswered for this long fails the push with UNAVAILABLE. */
const BUS_COMMAND_TIMEOUT_MS = 5000;

/** Builds one node from its config and starts all three listeners. */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const metrics = new Metrics(config.nodeId);
  const projects = new ProjectRegistry(loadProjects(config));
  if (projects.open) {
    logger.warn('server API is OPEN: no API keys configured, any caller can push to any project (configure keys with --projects)');
  }
  if (config.projects === undefined && !hasLogin(config)) {
    logger.warn('no login method configured: WebSocket logins (code 3) will fail with 30003');
  }
  const bus = config.redis
    ? new RedisBus({ url: config.redis, prefix: config.redisPrefix, commandTimeoutMs: BUS_COMMAND_TIMEOUT_MS, logger })
    : new MemoryBus();
  const consumers = config.redis
    ? new RedisConsumers({
        url: config.redis,
        prefix: config.redisPrefix,
        nodeChannel,
        commandTimeoutMs: BUS_COMMAND_TIMEOUT_MS,
        ttlMs: config.consumerTtlMs,
        logger,
      })
    : new MemoryConsumers(bus, nodeChannel);
  const presence = config.redis
    ? new RedisPresence({ url: config.redis, prefix: config.redisPrefix, ttlMs: config.presenceTtlMs, commandTimeoutMs: BUS_COMMAND_TIMEOUT_MS, logger })
    : new MemoryPresence();
  const node = new PushNode({
    nodeId: config.nodeId,
    bus,
    consumers,
    consumerTtlMs: config.consumerTtlMs,
    projects,
    metrics,
    logger,
    maxPushBytes: config.maxPushBytes,
    idempotencyWindowMs: config.idempotencyWindowMs,
    unsubscribeDelayMs: UNSUBSCRIBE_DELAY_MS,
    presence,
    presenceTtlMs: config.presenceTtlMs,
  });
  await node.start();

  let draining = false;
  const isReady = (): boolean => !draining && node.isBusReady();

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
    history: node.history,
    v1PingIntervalMs: config.v1PingIntervalMs,
    v1PongTimeoutMs: config.v1PongTimeoutMs,
  });
  const grpc = new GrpcIngress({
    publisher: node.publisher,
    backends: node.backends,
    projects,
    metrics,
    logger,
    maxPushBytes: config.maxPushBytes,
    node,
    maxQueueBytes: config.maxQueueBytes,
  });
  const app = createHttpHandler({
    publisher: node.publisher,
    projects,
    metrics,
    logger,
    maxPushBytes: config.maxPushBytes,
    isReady,
    node,
    maxQueueBytes: config.maxQueueBytes,
  });

  const ports = { ws: 0, http: 0, grpc: 0 };
  let http: Server;
  try {
    ports.ws = await ws.listen(config.host, config.wsPort);
    ports.grpc = await grpc.listen(config.host, config.grpcPort);
    http = await listen(app, config.host, config.httpPort);
    ports.http = (http.address() as AddressInfo).port;
  } catch (err) {
    // A half-started node must not keep the ports it did get (or its Redis connections).
    await Promise.all([ws.shutdown(0), grpc.shutdown(0)]);
    await node.close();
    throw err;
  }

  const startedAt = Date.now();
  const version = packageVersion();
  // Wildcard binds say nothing about where to reach the node; the hostname does.
  const host = config.host === '0.0.0.0' || config.host === '::' ? hostname() : config.host;
  const address = (port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
  node.startHeartbeat(() => ({
    id: config.nodeId,
    wsAddress: address(ports.ws),
    httpAddress: address(ports.http),
    grpcAddress: address(ports.grpc),
    version,
    startedAt,
    connections: node.hub.connectionCount,
    subscriptions: node.hub.channelCount,
  }));

  // Readiness feeds gRPC health and the gauges; polled, since the bus reconnects on its own.
  let lastReady = isReady();
  grpc.setServing(lastReady);
  const watch = setInterval(() => {
    const ready = isReady();
    metrics.busReady.set(node.isBusReady() ? 1 : 0);
    metrics.channels.set(node.hub.channelCount);
    if (ready !== lastReady) grpc.setServing(ready);
    lastReady = ready;
  }, 250);
  watch.unref();

  logger.info(
    { nodeId: config.nodeId, host: config.host, wsPort: ports.ws, httpPort: ports.http, grpcPort: ports.grpc, redis: config.redis !== undefined },
    'pushwire node listening',
  );

  const reloadProjects = (): boolean => {
    try {
      const set = loadProjects(config);
      projects.replace(set);
      logger.info({ pids: projects.pids, apiKeys: set.apiKeys.size }, 'projects reloaded');
      if (projects.open) logger.warn('server API is OPEN after the reload: no API keys configured');
      return true;
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'projects reload failed; keeping the previous projects');
      return false;
    }
  };
  const watcher = watchProjects(config, reloadProjects);

  return {
    nodeId: config.nodeId,
    ports,
    metrics,
    isReady,
    reloadProjects,
    async shutdown() {
      draining = true;
      watcher?.close();
      grpc.setServing(false);
      clearInterval(watch);
      const half = Math.max(100, config.shutdownTimeoutMs / 2);
      // Backends on this node stop taking events first, so the disconnects of the clients
      // closed below go to consumers on other nodes.
      await Promise.race([node.backends.detachAll(), new Promise((r) => setTimeout(r, half).unref())]);
      await Promise.all([ws.shutdown(half), grpc.shutdown(half), closeHttp(http, half)]);
      await node.close();
    },
  };
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(protoRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

function loadProjects(config: Config): ProjectSet {
  return config.projects === undefined ? defaultProjects(config) : loadProjectsFile(config.projects, config.authTimeoutMs);
}

/**
 * Re-reads the projects file on change. A broken edit is logged and ignored: the node keeps
 * serving the last good set. The folder is watched, not the file: editors and config tools
 * save by renaming a new file over the old one, which a watch on the file's inode loses.
 * They also write in several steps, hence the short debounce.
 */
function watchProjects(config: Config, apply: () => void): FSWatcher | undefined {
  if (config.projects === undefined) return undefined;
  const file = basename(config.projects);
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(dirname(resolve(config.projects)), (_event, name) => {
    if (name !== null && name !== file) return;
    clearTimeout(timer);
    timer = setTimeout(apply, 200);
  });
  watcher.unref();
  return watcher;
}

function listen(app: RequestListener, host: string, port: number): Promise<Server> {
  const server = createServer(app);
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
