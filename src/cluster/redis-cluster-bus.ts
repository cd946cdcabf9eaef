import type { Cluster } from 'ioredis';
import type { Logger } from 'pino';
import type { Bus, OnceKey } from './bus.js';
import { logOutages, quit, redisClusterConnection, type ShardObserver } from './redis-connection.js';
import { RedisKeys } from './redis-keys.js';
import { ShardedSubscriber } from './redis-sharded-subscriber.js';
import { slotOf } from './redis-slot.js';
import type { RedisTarget } from './redis-target.js';

// As RedisBus's PUBLISH_ONCE, with the claim key in the channel's slot (RedisKeys.onceKey) so
// the script and its SPUBLISH run on one master. KEYS: claim key, channel. ARGV: value, ttl ms, payload.
const PUBLISH_ONCE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('SPUBLISH', KEYS[2], ARGV[3])
  return false
end
return redis.call('GET', KEYS[1])`;

export interface RedisClusterBusOptions {
  target: Extract<RedisTarget, { mode: 'cluster' }>;
  prefix: string;
  commandTimeoutMs: number;
  logger: Logger;
  observer: ShardObserver;
}

/**
 * The bus on a Redis Cluster, with Redis 7 sharded pub/sub: a channel `<prefix>{<channel>}`
 * lives on the master of its slot; SPUBLISH goes there (the cluster client follows MOVED and
 * ASK), and the ShardedSubscriber SSUBSCRIBEs it there, so bus capacity grows with the
 * masters and a master carries only its channels. Interest is unchanged (Interest decides
 * what is subscribed). Nothing queues while a master is unreachable: a push to its slots
 * fails (UNAVAILABLE) until the cluster has promoted a replica and the client re-read the map.
 */
export class RedisClusterBus implements Bus {
  private readonly pub: Cluster;
  private readonly sub: ShardedSubscriber;
  private readonly keys: RedisKeys;
  private closing = false;
  private handler: (channel: string, payload: Buffer) => void = () => {};
  private gap: (channels: readonly string[]) => void = () => {};

  constructor(private readonly o: RedisClusterBusOptions) {
    this.keys = new RedisKeys(o.prefix, true);
    this.pub = redisClusterConnection(o.target, 'pushwire-pub', { commandTimeout: o.commandTimeoutMs });
    logOutages(this.pub, 'publisher', o.logger, () => this.closing);
    this.sub = new ShardedSubscriber({
      cluster: this.pub,
      name: 'pushwire-sub',
      logger: o.logger,
      observer: o.observer,
      onMessage: (channel, payload) => this.handler(this.keys.channelOfBus(channel), payload),
      onLost: (channels) => this.gap(channels.map((c) => this.keys.channelOfBus(Buffer.from(c)))),
    });
  }

  publish(channel: string, payload: Buffer): Promise<void> {
    if (this.pub.status !== 'ready') return Promise.reject(new Error(`redis cluster publisher is ${this.pub.status}`));
    const redisChannel = this.keys.busChannel(channel);
    return this.pub.spublish(redisChannel, payload).then(
      () => undefined,
      (err: unknown) => this.failed(redisChannel, err),
    );
  }

  async publishOnce(channel: string, payload: Buffer, once: OnceKey): Promise<string | undefined> {
    if (this.pub.status !== 'ready') throw new Error(`redis cluster publisher is ${this.pub.status}`);
    const redisChannel = this.keys.busChannel(channel);
    const prior = (await this.pub
      .eval(PUBLISH_ONCE, 2, this.keys.onceKey(channel, once.key), redisChannel, once.value, String(once.ttlMs), payload)
      .catch((err: unknown) => this.failed(redisChannel, err))) as string | null;
    return prior ?? undefined;
  }

  subscribe(channel: string): Promise<void> {
    return this.sub.add(this.keys.busChannel(channel));
  }

  unsubscribe(channel: string): Promise<void> {
    return this.sub.remove(this.keys.busChannel(channel));
  }

  onMessage(handler: (channel: string, payload: Buffer) => void): void {
    this.handler = handler;
  }

  onGap(handler: (channels: readonly string[]) => void): void {
    this.gap = handler;
  }

  isReady(): boolean {
    return this.pub.status === 'ready' && this.sub.isReady();
  }

  async start(): Promise<void> {
    // Like the standalone bus, a node starts with the cluster down and keeps trying.
    await this.pub.connect().catch(() => {});
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.sub.close();
    await quit(this.pub);
  }

  private failed(redisChannel: string, err: unknown): never {
    this.o.observer.publishError(this.pub.slots[slotOf(redisChannel)]?.[0] ?? 'unknown');
    throw err;
  }
}
