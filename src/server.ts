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
import type { WorkerContext } from './workers/worker.js';

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
 * A `serve --workers` worker passes its context: without --redis its stores are the primary's
 * (over IPC), and /metrics answers for every worker of the machine.
 */
export async function startServer(config: Config, logger: Logger, worker?: WorkerContext): Promise<RunningServer> {
  const metrics = new Metrics(config.nodeId);
  if (worker !== undefined) answerMetricsCollection(worker, metrics);
  const projects = openProjects(config, logger);
  const stores = createStores(config, logger, metrics, worker);
  metrics.busInFlightSource = stores.busInFlight;
  const node = await startNode(config, stores, projects, metrics, logger);

  let draining = false;
  const isReady = (): boolean => !draining && node.isBusReady();

  let listeners;
  try {
    const metricsText = worker === undefined ? undefined : () => worker.link.request('metrics', []) as Promise<string>;
    listeners = await startListeners(config, { node, projects, metrics, logger, isReady, metricsText });
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
  void worker?.link.send({ pw: 'ready', ports }).catch(() => {});

  const reloadProjects = projectsReloader(config, projects, logger, metrics);
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

/** A worker's series carry its index; the primary collects every worker's registry for /metrics. */
function answerMetricsCollection(worker: WorkerContext, metrics: Metrics): void {
  metrics.registry.setDefaultLabels({ node: worker.nodeId, worker: String(worker.index) });
  worker.link.on('collect', (m) => {
    void metrics.registry.getMetricsAsJSON().then((json) => worker.link.send({ pw: 'collected', id: m.id, metrics: json }).catch(() => {}));
  });
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
