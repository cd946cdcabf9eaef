import { Redis, type Cluster } from 'ioredis';
import type { Logger } from 'pino';
import type { ShardObserver } from './redis-connection.js';
import { SLOTS, slotOf } from './redis-slot.js';

export interface ShardedSubscriberOptions {
  /** The command client: its slot map (refreshed on MOVED, on errors and periodically) says who owns a channel. */
  cluster: Cluster;
  /** connectionName of the per-master connections. */
  name: string;
  logger: Logger;
  observer: ShardObserver;
  onMessage: (channel: Buffer, payload: Buffer) => void;
  /** Channels that may have lost messages: resubscribed after a reconnect or moved to a new master. */
  onLost: (channels: string[]) => void;
}

/** SSUBSCRIBE takes several channels only when they share a slot; each command carries at most this many. */
const CHUNK = 500;

/** One master's subscriber connection and the channels it carries. */
class Shard {
  readonly channels = new Set<string>();
  /** Channels the server confirmed on the current connection. */
  readonly sent = new Set<string>();
  /** Channels that may have missed messages (connection dropped, or moved here): reported once resubscribed. */
  readonly lost = new Set<string>();
  ready = false;
  closed = false;
  running = false;
  again = false;
  /** Bumped whenever the server may have dropped channels (connection closed, unsolicited SUNSUBSCRIBE). */
  generation = 0;

  constructor(
    readonly key: string,
    readonly conn: Redis,
  ) {}
}

/**
 * Redis 7 sharded pub/sub on a cluster: one subscriber connection per master that owns a
 * wanted channel, each channel SSUBSCRIBEd on the master of its slot, so a master carries
 * (and a node hears) only the channels hashed to it. Follows the topology by itself: when the
 * command client's slot map changes (failover, resharding, an unsolicited SUNSUBSCRIBE on slot
 * migration), channels move to their new master and are reported lost, since messages
 * published there before the move were not received.
 */
export class ShardedSubscriber {
  /** Every wanted channel → the shard (master "host:port") it is assigned to, if the slot map knows one. */
  private readonly wanted = new Map<string, Shard | undefined>();
  private readonly shards = new Map<string, Shard>();
  /** The slot → master map as of the last rebalance: a refresh that changed nothing costs 16384 comparisons, not a pass over every channel. */
  private owners: Array<string | undefined> = [];
  private closing = false;

  constructor(private readonly o: ShardedSubscriberOptions) {
    o.cluster.on('refresh', () => this.rebalance());
  }

  /** Resolves once the channel is subscribed, or at once when its master is unreachable now (it is subscribed on reconnect). */
  async add(channel: string): Promise<void> {
    if (this.wanted.has(channel)) return;
    const shard = this.shardFor(channel);
    this.wanted.set(channel, shard);
    if (shard === undefined) return;
    shard.channels.add(channel);
    if (!shard.ready) return;
    try {
      await shard.conn.ssubscribe(channel);
      shard.sent.add(channel);
    } catch {
      // The connection dropped mid-command; its resubscribe replays `channels`.
    }
  }

  async remove(channel: string): Promise<void> {
    if (!this.wanted.has(channel)) return;
    const shard = this.wanted.get(channel);
    this.wanted.delete(channel);
    if (shard === undefined) return;
    shard.channels.delete(channel);
    if (shard.channels.size === 0) return this.drop(shard);
    if (!shard.ready) return;
    try {
      await shard.conn.sunsubscribe(channel);
      shard.sent.delete(channel);
    } catch {
      // A reconnect starts from `channels`, which no longer has it.
    }
  }

  /** Every wanted channel is assigned to a master and confirmed there. */
  isReady(): boolean {
    for (const shard of this.wanted.values()) if (shard === undefined || !shard.ready) return false;
    return true;
  }

  /** Whether messages published on the channel from now on reach this subscriber. */
  isSubscribed(channel: string): boolean {
    const shard = this.wanted.get(channel);
    return shard !== undefined && shard.sent.has(channel);
  }

  get size(): number {
    return this.wanted.size;
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.shards.values()].map((s) => this.drop(s)));
  }

  private shardFor(channel: string): Shard | undefined {
    const key = this.o.cluster.slots[slotOf(channel)]?.[0];
    if (key === undefined) return undefined;
    return this.shards.get(key) ?? this.open(key);
  }

  /** After every slot-map refresh: channels whose slot has a new master move there. */
  private rebalance(): void {
    if (this.closing) return;
    const slots = this.o.cluster.slots;
    let changed = this.owners.length === 0;
    for (let i = 0; i < SLOTS && !changed; i++) changed = slots[i]?.[0] !== this.owners[i];
    if (!changed) return;
    this.owners = Array.from({ length: SLOTS }, (_, i) => slots[i]?.[0]);
    let moved = 0;
    const kick = new Set<Shard>();
    for (const [channel, current] of this.wanted) {
      const key = this.o.cluster.slots[slotOf(channel)]?.[0];
      if (key === current?.key) continue;
      const next = key === undefined ? undefined : (this.shards.get(key) ?? this.open(key));
      this.wanted.set(channel, next);
      if (current !== undefined) {
        moved += 1;
        current.channels.delete(channel);
        current.lost.delete(channel);
        if (current.ready && current.sent.has(channel)) kick.add(current);
        next?.lost.add(channel);
      }
      if (next === undefined) continue;
      next.channels.add(channel);
      kick.add(next);
    }
    for (const shard of [...this.shards.values()]) {
      if (shard.channels.size === 0) void this.drop(shard);
      else if (kick.has(shard) && shard.conn.status === 'ready') void this.resubscribe(shard);
    }
    if (moved > 0) this.o.logger.info({ channels: moved }, 'redis cluster topology changed; sharded subscriptions moved');
  }

  private open(key: string): Shard {
    const colon = key.lastIndexOf(':');
    const redisOptions = this.o.cluster.options.redisOptions ?? {};
    const conn = new Redis({
      ...redisOptions,
      host: key.slice(0, colon),
      port: Number(key.slice(colon + 1)),
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResubscribe: false,
      maxRetriesPerRequest: 0,
      connectionName: this.o.name,
      // While reconnecting, ask the cluster who owns the slots now, every few hundred ms
      // (a CLUSTER SLOTS each): after a failover the channels move to the promoted replica
      // and this shard is dropped. Publishers hold off a new master for TAKEOVER_SETTLE_MS
      // (redis-cluster-bus.ts) on the assumption that subscribers follow this fast.
      retryStrategy: (times: number) => {
        this.o.cluster.refreshSlotsCache();
        return Math.min(100 * times, 300);
      },
    });
    const shard = new Shard(key, conn);
    this.shards.set(key, shard);
    let down = false;
    conn.on('ready', () => {
      if (down) this.o.logger.info({ shard: key }, 'redis shard subscriber restored');
      down = false;
      void this.resubscribe(shard);
    });
    conn.on('error', (err: Error) => {
      if (!down && !this.closing && !shard.closed) this.o.logger.warn({ shard: key, err: err.message }, 'redis shard subscriber error');
      down = true;
    });
    conn.on('close', () => {
      shard.generation += 1;
      for (const c of shard.sent) shard.lost.add(c);
      shard.ready = false;
      shard.sent.clear();
      this.o.observer.state(key, false);
      if (!down && !this.closing && !shard.closed) this.o.logger.warn({ shard: key }, 'redis shard subscriber lost');
      down = true;
    });
    // An unsolicited SUNSUBSCRIBE (its slot migrated, or a SETSLOT on the owner dropped the slot's subscribers),
    // or a MOVED answer to SSUBSCRIBE: the channels the server no longer has are lost; re-read the slot map, then
    // subscribe them again wherever they now live.
    conn.on('moved', () => {
      shard.generation += 1;
      const live = liveChannels(conn);
      for (const c of [...shard.sent]) {
        if (live?.has(c) === true) continue;
        shard.lost.add(c);
        shard.sent.delete(c);
      }
      this.o.cluster.refreshSlotsCache(() => {
        if (!shard.closed && shard.conn.status === 'ready') void this.resubscribe(shard);
      });
    });
    conn.on('smessageBuffer', (channel: Buffer, payload: Buffer) => this.o.onMessage(channel, payload));
    conn.connect().catch(() => {});
    return shard;
  }

  /**
   * Subscribes the shard's channels (grouped by slot, as SSUBSCRIBE requires) and
   * unsubscribes the ones let go meanwhile; `ready` flips only when a pass finds nothing left.
   */
  private async resubscribe(shard: Shard): Promise<void> {
    if (shard.running) {
      shard.again = true;
      return;
    }
    shard.running = true;
    shard.ready = false;
    try {
      for (;;) {
        if (shard.closed) return;
        const todo = [...shard.channels].filter((c) => !shard.sent.has(c));
        const stale = [...shard.sent].filter((c) => !shard.channels.has(c));
        if (todo.length === 0 && stale.length === 0) break;
        await Promise.all([
          ...bySlot(todo).map((chunk) => {
            const generation = shard.generation;
            // A confirmation parsed in the same read as an unsolicited SUNSUBSCRIBE arrives after it: trust it only
            // if nothing was dropped meanwhile, or the connection still lists the channel.
            return shard.conn.ssubscribe(...chunk).then(() => {
              const live = shard.generation === generation ? undefined : liveChannels(shard.conn);
              for (const c of chunk) if (shard.generation === generation || live?.has(c) === true) shard.sent.add(c);
            });
          }),
          ...bySlot(stale).map((chunk) => shard.conn.sunsubscribe(...chunk).then(() => chunk.forEach((c) => shard.sent.delete(c)))),
        ]);
      }
      shard.ready = true;
      this.o.observer.state(shard.key, true);
      const lost = [...shard.lost].filter((c) => shard.sent.has(c));
      shard.lost.clear();
      if (lost.length > 0) {
        this.o.logger.info({ shard: shard.key, channels: lost.length }, 'redis sharded subscriptions restored');
        this.o.onLost(lost);
      }
    } catch (err) {
      if (!shard.closed) this.o.logger.warn({ shard: shard.key, err: (err as Error).message }, 'redis sharded resubscribe failed; retrying on next reconnect');
    } finally {
      shard.running = false;
    }
    if (shard.again && !shard.closed) {
      shard.again = false;
      if (shard.conn.status === 'ready') void this.resubscribe(shard);
    }
  }

  private async drop(shard: Shard): Promise<void> {
    if (shard.closed) return;
    shard.closed = true;
    this.shards.delete(shard.key);
    this.o.observer.state(shard.key, undefined);
    for (const channel of shard.channels) if (this.wanted.get(channel) === shard) this.wanted.set(channel, undefined);
    try {
      if (shard.conn.status === 'ready') await shard.conn.quit();
      else shard.conn.disconnect();
    } catch {
      shard.conn.disconnect();
    }
  }
}

/**
 * The shard channels ioredis's own subscription set lists (it follows every SSUBSCRIBE / SUNSUBSCRIBE reply,
 * solicited or not); undefined if that set is not reachable (an ioredis without it), and callers then assume every
 * channel was dropped. Internal to ioredis: pinned by test/cluster/redis-reshard.test.ts.
 */
export function liveChannels(conn: Redis): Set<string> | undefined {
  const set = (conn as unknown as { condition?: { subscriber?: unknown } }).condition?.subscriber;
  if (set === false) return new Set(); // the last channel was dropped: the connection left subscriber mode
  const channels = (set as { channels?: (kind: string) => string[] } | undefined)?.channels;
  return typeof channels === 'function' ? new Set(channels.call(set, 'ssubscribe')) : undefined;
}

function bySlot(channels: string[]): string[][] {
  const groups = new Map<number, string[]>();
  for (const c of channels) {
    const slot = slotOf(c);
    const g = groups.get(slot);
    if (g === undefined) groups.set(slot, [c]);
    else g.push(c);
  }
  const out: string[][] = [];
  for (const g of groups.values()) for (let i = 0; i < g.length; i += CHUNK) out.push(g.slice(i, i + CHUNK));
  return out;
}
