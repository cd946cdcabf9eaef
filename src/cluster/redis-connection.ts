import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

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
 * Logs the first error of each outage and the recovery (ioredis emits an error per failed
 * reconnect attempt). Nothing is logged once `closing()` says the owner is shutting down.
 */
export function logOutages(conn: Redis, role: string, logger: Logger, closing: () => boolean): void {
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
export async function quit(conn: Redis): Promise<void> {
  try {
    if (conn.status === 'ready') await conn.quit();
    else conn.disconnect();
  } catch {
    conn.disconnect();
  }
}
