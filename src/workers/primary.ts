import cluster, { type Worker } from 'node:cluster';
import { IpcHost, type HostedWorker } from '../cluster/ipc-host.js';
import type { IpcMessage } from '../cluster/ipc-link.js';
import type { Config } from '../config.js';
import { nodeChannel } from '../core/targeting.js';
import type { Logger } from '../observability/logger.js';
import { listeningLine } from '../startup/listening-line.js';
import { WORKER_INDEX_ENV, WORKER_NODE_ID_ENV, workerNodeId } from './worker.js';

/** A worker that crashes is started again after this, doubling while it keeps crashing soon after start. */
const RESTART_DELAY_MS = 250;
const MAX_RESTART_DELAY_MS = 10_000;
/** A worker that ran this long before crashing restarts after the base delay again. */
const STABLE_AFTER_MS = 10_000;

interface Slot {
  index: number;
  nodeId: string;
  worker: Worker | undefined;
  hosted: HostedWorker | undefined;
  ready: boolean;
  everReady: boolean;
  startedAt: number;
  failures: number;
}

/**
 * `pushwire serve --workers N`: this process only supervises. It forks N workers (node:cluster,
 * which shares the three listening ports between them; connections are handed out round-robin),
 * each a full node with node id `<node-id>-<index>`. It restarts a worker that dies, forwards
 * SIGHUP (reload projects) and SIGTERM/SIGINT (drain, as a single node does) to all of them, and
 * exits once they are gone. Without --redis it is also the machine's bus, presence store and
 * consumer directory (IpcHost); with it, workers join the cluster through Redis like any node.
 * A worker that fails before it ever listened (bad option, port taken) stops the whole machine
 * with that worker's exit code: restarting it would fail the same way.
 */
export function runPrimary(config: Config, logger: Logger): void {
  cluster.setupPrimary({ serialization: 'advanced' });
  const host = new IpcHost(logger, nodeChannel);
  const slots: Slot[] = Array.from({ length: config.workers }, (_, index) => ({
    index,
    nodeId: workerNodeId(config.nodeId, index),
    worker: undefined,
    hosted: undefined,
    ready: false,
    everReady: false,
    startedAt: 0,
    failures: 0,
  }));
  let stopping = false;
  let exitCode = 0;
  let announced = false;

  const fork = (slot: Slot): void => {
    const worker = cluster.fork({ [WORKER_INDEX_ENV]: String(slot.index), [WORKER_NODE_ID_ENV]: slot.nodeId });
    const hosted: HostedWorker = {
      index: slot.index,
      nodeId: slot.nodeId,
      send: (m: IpcMessage) => {
        // A worker that is exiting may have closed its end already; its exit handler cleans up.
        if (worker.isConnected()) worker.send(m, undefined, () => {});
      },
    };
    Object.assign(slot, { worker, hosted, ready: false, startedAt: Date.now() });
    host.attach(hosted);
    worker.on('message', (m: unknown) => {
      const msg = m as IpcMessage;
      if (typeof msg !== 'object' || msg === null || typeof msg.pw !== 'string') return;
      if (msg.pw === 'ready') return onReady(slot, msg.ports as Record<string, number>);
      host.handle(hosted, msg);
    });
    worker.on('exit', (code, signal) => onExit(slot, worker, code, signal));
    logger.info({ worker: slot.index, nodeId: slot.nodeId, pid: worker.process.pid }, 'worker started');
  };

  const onReady = (slot: Slot, ports: Record<string, number>): void => {
    slot.ready = true;
    slot.everReady = true;
    logger.info({ worker: slot.index, nodeId: slot.nodeId, pid: slot.worker?.process.pid }, 'worker ready');
    if (!announced && slots.every((s) => s.ready)) {
      announced = true;
      logger.info(
        { nodeId: config.nodeId, workers: config.workers, wsPort: ports.ws, httpPort: ports.http, grpcPort: ports.grpc, redis: config.redis !== undefined },
        'pushwire workers listening',
      );
      process.stderr.write(`${listeningLine(config, `${config.nodeId} (${config.workers} workers)`, { ws: ports.ws!, http: ports.http!, grpc: ports.grpc! })}\n`);
    }
  };

  const onExit = (slot: Slot, worker: Worker, code: number | null, signal: string | null): void => {
    if (slot.worker !== worker) return;
    host.detach(slot.hosted!);
    slot.worker = undefined;
    slot.ready = false;
    if (stopping) {
      if (code !== 0) exitCode = 1;
      logger.info({ worker: slot.index, code, signal }, 'worker stopped');
      if (slots.every((s) => s.worker === undefined)) {
        logger.info('shutdown complete');
        process.exit(exitCode);
      }
      return;
    }
    if (!slot.everReady) {
      logger.fatal({ worker: slot.index, code, signal }, 'worker failed to start; stopping all workers');
      stop('worker failure', code === 2 ? 2 : 1);
      return;
    }
    slot.failures = Date.now() - slot.startedAt > STABLE_AFTER_MS ? 1 : slot.failures + 1;
    const delay = Math.min(MAX_RESTART_DELAY_MS, RESTART_DELAY_MS * 2 ** (slot.failures - 1));
    logger.error({ worker: slot.index, nodeId: slot.nodeId, code, signal, restartInMs: delay }, 'worker died; restarting it');
    setTimeout(() => {
      if (!stopping) fork(slot);
    }, delay);
  };

  const stop = (reason: string, code = 0): void => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    logger.info({ reason }, 'shutting down workers');
    // Each worker drains within --shutdown-timeout (+1 s, its own hard bound); this is the bound on them all.
    setTimeout(() => {
      logger.error('workers did not stop in time; killing them');
      for (const s of slots) s.worker?.process.kill('SIGKILL');
      process.exit(1);
    }, config.shutdownTimeoutMs + 3000).unref();
    for (const s of slots) s.worker?.process.kill('SIGTERM');
    if (slots.every((s) => s.worker === undefined)) process.exit(exitCode);
  };

  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: reloading projects in every worker');
    for (const s of slots) s.worker?.process.kill('SIGHUP');
  });

  logger.info({ workers: config.workers, nodeId: config.nodeId, redis: config.redis !== undefined }, 'starting workers');
  for (const slot of slots) fork(slot);
}
