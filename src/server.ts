import type { Config } from './config.js';
import { PushNode } from './core/node.js';
import type { ProjectRegistry } from './core/projects/registry.js';
import type { Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { startHeartbeat } from './startup/heartbeat.js';
import { startListeners } from './startup/listeners.js';
import { openProjects, projectsReloader, watchProjects } from './startup/projects-source.js';
import { watchReadiness } from './startup/readiness.js';
import { createStores, type Stores } from './startup/stores.js';

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

/**
 * Builds one node from its config and starts all three listeners, in order: projects, stores
 * (bus, consumers, presence), the core node, the listeners, then the node's announcements
 * (heartbeat, readiness) and the projects file watch. Signals are the CLI's (commands/serve.ts).
 */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const metrics = new Metrics(config.nodeId);
  const projects = openProjects(config, logger);
  const node = await startNode(config, createStores(config, logger), projects, metrics, logger);

  let draining = false;
  const isReady = (): boolean => !draining && node.isBusReady();

  let listeners;
  try {
    listeners = await startListeners(config, { node, projects, metrics, logger, isReady });
  } catch (err) {
    // A half-started node must not keep its Redis connections either.
    await node.close();
    throw err;
  }
  const { ports, grpc } = listeners;

  startHeartbeat(config, node, ports);
  const stopReadiness = watchReadiness(node, grpc, metrics, isReady);

  logger.info(
    { nodeId: config.nodeId, host: config.host, wsPort: ports.ws, httpPort: ports.http, grpcPort: ports.grpc, redis: config.redis !== undefined },
    'pushwire node listening',
  );

  const reloadProjects = projectsReloader(config, projects, logger);
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
      stopReadiness();
      const half = Math.max(100, config.shutdownTimeoutMs / 2);
      // Backends on this node stop taking events first, so the disconnects of the clients
      // closed below go to consumers on other nodes.
      await Promise.race([node.backends.detachAll(), new Promise((r) => setTimeout(r, half).unref())]);
      await listeners.shutdown(half);
      await node.close();
    },
  };
}

/** The transport-agnostic core on the stores, subscribed to its own bus channel. */
async function startNode(config: Config, stores: Stores, projects: ProjectRegistry, metrics: Metrics, logger: Logger): Promise<PushNode> {
  const node = new PushNode({
    nodeId: config.nodeId,
    ...stores,
    consumerTtlMs: config.consumerTtlMs,
    projects,
    metrics,
    logger,
    maxPushBytes: config.maxPushBytes,
    idempotencyWindowMs: config.idempotencyWindowMs,
    unsubscribeDelayMs: UNSUBSCRIBE_DELAY_MS,
    presenceTtlMs: config.presenceTtlMs,
  });
  await node.start();
  return node;
}
