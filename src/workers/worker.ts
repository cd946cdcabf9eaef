import cluster from 'node:cluster';
import { IpcLink, type IpcPort } from '../cluster/ipc-link.js';

/** Set by the primary in each worker's environment (not options: nobody sets them by hand). */
export const WORKER_INDEX_ENV = 'PUSHWIRE_WORKER_INDEX';
export const WORKER_NODE_ID_ENV = 'PUSHWIRE_WORKER_NODE_ID';

/** What a `serve --workers` worker knows about its place: its index, node id and pipe to the primary. */
export interface WorkerContext {
  index: number;
  nodeId: string;
  link: IpcLink;
}

/** The worker context when this process is a `serve --workers` worker, else undefined. */
export function workerContext(env: NodeJS.ProcessEnv = process.env): WorkerContext | undefined {
  if (!cluster.isWorker) return undefined;
  const index = Number(env[WORKER_INDEX_ENV]);
  const nodeId = env[WORKER_NODE_ID_ENV];
  if (!Number.isInteger(index) || nodeId === undefined) return undefined;
  // The primary owns the listening sockets and the in-machine stores: without it a worker can
  // neither accept connections nor publish, so it goes too (a killed primary leaves no orphans).
  process.once('disconnect', () => process.exit(1));
  return { index, nodeId, link: new IpcLink(process as unknown as IpcPort) };
}

/** A worker's node id: the machine's node id (given or random) and the worker's index. */
export const workerNodeId = (base: string, index: number): string => `${base}-${index}`;
