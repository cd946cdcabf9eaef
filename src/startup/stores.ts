import type { Bus } from '../cluster/bus.js';
import type { ConsumerDirectory } from '../cluster/consumers.js';
import { MemoryBus } from '../cluster/memory-bus.js';
import { MemoryConsumers } from '../cluster/memory-consumers.js';
import { MemoryPresence } from '../cluster/memory-presence.js';
import type { Presence } from '../cluster/presence.js';
import type { ChannelPresence } from '../cluster/channel-presence.js';
import { IpcChannelPresence } from '../cluster/ipc-channel-presence.js';
import { MemoryChannelPresence } from '../cluster/memory-channel-presence.js';
import { RedisChannelPresence } from '../cluster/redis-channel-presence.js';
import { IpcBus } from '../cluster/ipc-bus.js';
import { IpcConsumers } from '../cluster/ipc-consumers.js';
import { IpcPresence } from '../cluster/ipc-presence.js';
import { RedisBus } from '../cluster/redis-bus.js';
import { RedisClusterBus } from '../cluster/redis-cluster-bus.js';
import type { ShardObserver } from '../cluster/redis-connection.js';
import { RedisConsumers } from '../cluster/redis-consumers.js';
import { RedisPresence } from '../cluster/redis-presence.js';
import { parseRedisTarget } from '../cluster/redis-target.js';
import type { Config } from '../config.js';
import { nodeChannel } from '../core/targeting.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { WorkerContext } from '../workers/worker.js';

/** The node's shared state: the bus, the backend consumer registry and presence. */
export interface Stores {
  bus: Bus;
  consumers: ConsumerDirectory;
  presence: Presence;
  /** Protocol v1 channel presence (namespace options presence and joinLeave). */
  channelPresence: ChannelPresence;
  /** Bus publishes sent and not yet answered (pushwire_bus_in_flight). */
  busInFlight: () => number;
}

/**
 * Redis implementations with --redis (one Redis, or a Redis Cluster with sharded pub/sub);
 * without it, the `serve --workers` primary's over IPC for a worker (the workers of one
 * machine), in-process ones for a single node.
 */
export function createStores(config: Config, logger: Logger, metrics: Metrics, worker?: WorkerContext): Stores {
  if (config.redis === undefined && worker !== undefined) {
    return {
      bus: new IpcBus(worker.link),
      consumers: new IpcConsumers(worker.link),
      presence: new IpcPresence(worker.link),
      channelPresence: new IpcChannelPresence(worker.link),
      busInFlight: () => 0,
    };
  }
  if (config.redis === undefined) {
    const bus = new MemoryBus();
    return { bus, consumers: new MemoryConsumers(bus, nodeChannel), presence: new MemoryPresence(), channelPresence: new MemoryChannelPresence(), busInFlight: () => 0 };
  }
  const target = parseRedisTarget(config.redis);
  // --bus-timeout bounds every Redis command's wait; publishes and dispatches are also bounded in number.
  const redis = { target, prefix: config.redisPrefix, commandTimeoutMs: config.busTimeoutMs, logger };
  const bus =
    target.mode === 'cluster'
      ? new RedisClusterBus({ ...redis, target, maxInFlight: config.busMaxInFlight, observer: shardMetrics(metrics, 'bus') })
      : new RedisBus({ ...redis, url: target.url, maxInFlight: config.busMaxInFlight });
  return {
    bus,
    consumers: new RedisConsumers({ ...redis, maxInFlight: config.busMaxInFlight, nodeChannel, ttlMs: config.consumerTtlMs, observer: shardMetrics(metrics, 'consumers') }),
    presence: new RedisPresence({ ...redis, ttlMs: config.presenceTtlMs, observer: shardMetrics(metrics, 'presence') }),
    channelPresence: new RedisChannelPresence({ ...redis, ttlMs: config.presenceTtlMs, onExpired: (n) => metrics.channelPresenceExpired.inc(n) }),
    busInFlight: () => bus.window.size,
  };
}

/** Per-master state for an operator (cluster mode): subscriber connection up/down, publish errors. */
function shardMetrics(metrics: Metrics, role: string): ShardObserver {
  return {
    state: (shard, up) => {
      if (up === undefined) metrics.redisShardUp.remove({ shard, role });
      else metrics.redisShardUp.set({ shard, role }, up ? 1 : 0);
    },
    publishError: (shard) => metrics.redisShardPublishErrors.inc({ shard }),
  };
}
