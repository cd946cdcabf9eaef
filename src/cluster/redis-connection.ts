import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisTarget } from './redis-target.js';

/** A command connection: one Redis, or a Redis Cluster client that routes each command to its slot's master. */
export type RedisClient = Redis | Cluster;

/** Reconnect delay: 100 ms doubling to 2 s, for ever. */
export const retryDelay = (times: number): number => Math.min(50 * 2 ** Math.min(times, 6), 2000);

/**
 * Where per-shard state goes (the metrics, in server.ts): a cluster master's subscriber
 * connection going up (true) or down (false), or no longer used (undefined), and a publish
 * that a master failed.
 */
export interface ShardObserver {
  state(shard: string, up: boolean | undefined): void;
  publishError(shard: string): void;
}

export const noShardObserver: ShardObserver = { state: () => {}, publishError: () => {} };

/**
 * Why a command was not sent: the connection is not ready. Callers see it inside UNAVAILABLE
 * messages, so it names the situation, not ioredis's connection states.
 */
export const NOT_CONNECTED = 'redis is not connected';

/**
 * How every pushwire Redis connection behaves: connected on demand, reconnecting for ever
 * (at once, then 200 ms doubling to 2 s), and never queueing commands while disconnected, so a
 * caller fails at once instead of waiting in memory. The first retry is immediate because a
 * connection killed under a live Redis (CLIENT KILL, a proxy or failover dropping it) is back
 * in a round trip, and a subscriber misses every message published until it is.
 */
export function redisConnection(url: string, name: string, extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times: number) => (times === 1 ? 1 : Math.min(50 * 2 ** Math.min(times, 6), 2000)),
    connectionName: name,
    ...extra,
  });
}

/**
 * The cluster counterpart: seed nodes, the rest discovered (CLUSTER SLOTS), commands to the
 * masters only (a replica may lag), MOVED/ASK followed, and the slot map re-read every
 * second so a failover is noticed even by a connection with nothing to send.
 */
export function redisClusterConnection(
  target: Extract<RedisTarget, { mode: 'cluster' }>,
  name: string,
  extra: RedisOptions = {},
  clusterExtra: ClusterOptions = {},
): Cluster {
  const redisOptions: RedisOptions = { connectionName: name, maxRetriesPerRequest: 0, ...extra };
  if (target.username !== undefined) redisOptions.username = target.username;
  if (target.password !== undefined) redisOptions.password = target.password;
  if (target.tls) redisOptions.tls = {};
  return new Cluster(target.seeds, {
    lazyConnect: true,
    enableOfflineQueue: false,
    scaleReads: 'master',
    clusterRetryStrategy: retryDelay,
    slotsRefreshInterval: 1000,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    redisOptions,
    ...clusterExtra,
  });
}

/** A command connection to the target, either kind. */
export function redisClient(target: RedisTarget, name: string, extra: RedisOptions = {}, clusterExtra: ClusterOptions = {}): RedisClient {
  return target.mode === 'standalone' ? redisConnection(target.url, name, extra) : redisClusterConnection(target, name, extra, clusterExtra);
}

/**
 * Logs the first error of each outage and the recovery (ioredis emits an error per failed
 * reconnect attempt). Nothing is logged once `closing()` says the owner is shutting down.
 */
export function logOutages(conn: RedisClient, role: string, logger: Logger, closing: () => boolean): void {
  let down = false;
  conn.on('ready', () => {
    if (down) logger.info({ role }, 'redis connection restored');
    down = false;
  });
  conn.on('error', (err: Error) => {
    if (!down && !closing()) logger.warn({ role, err: err.message }, 'redis connection error');
    down = true;
  });
  conn.on('close', () => {
    if (!down && !closing()) logger.warn({ role }, 'redis connection lost');
    down = true;
  });
}

/** QUIT when connected, else just drop the connection. */
export async function quit(conn: RedisClient): Promise<void> {
  try {
    if (conn.status === 'ready') await conn.quit();
    else conn.disconnect();
  } catch {
    conn.disconnect();
  }
}
