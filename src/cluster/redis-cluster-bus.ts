import { ReplyError, type Cluster, type Redis } from 'ioredis';
import type { Logger } from 'pino';
import { BusRefusedError, BusUnconfirmedError, type AppendGroup, type AppendOptions, type AppendResult, type Bus, type OnceKey, type Position, type RangeQuery, type StoredRange } from './bus.js';
import { READ_RANGE, appendAndPublish, appendManyAndPublish, appendManyArgs, parsePositions, parseRange } from './redis-history-scripts.js';
import { PublishWindow } from './publish-window.js';
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

/**
 * How long a master that newly took over slots (a promoted replica, or resharding) is refused
 * publishes: the other nodes' subscribers notice the new topology on their own (their
 * reconnect attempts re-read the slot map every few hundred ms) and SSUBSCRIBE there, and a
 * publish that reached the new master before they did would be answered OK and heard by no
 * one. Refused pushes are UNAVAILABLE (nothing sent), so the client retries instead.
 */
export const TAKEOVER_SETTLE_MS = 1500;

export interface RedisClusterBusOptions {
  target: Extract<RedisTarget, { mode: 'cluster' }>;
  prefix: string;
  /** A publish not confirmed within this many ms is answered unconfirmed (DEADLINE_EXCEEDED). */
  commandTimeoutMs: number;
  /** Most publishes sent and not yet confirmed; over it a publish is refused at once (UNAVAILABLE). */
  maxInFlight: number;
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
  private readonly gapHandlers: Array<(channels: readonly string[]) => void> = [];
  /** Every publish (plain and once) goes through it: bounded, and answered within the timeout (as RedisBus's). */
  readonly window: PublishWindow;
  /** Master "host:port" → when it was first seen owning slots (0: in the first slot map, settled). */
  private readonly owners = new Map<string, number>();
  /** Master "host:port" → the client's connection to it. */
  private masters = new Map<string, Redis>();

  constructor(private readonly o: RedisClusterBusOptions) {
    this.keys = new RedisKeys(o.prefix, true);
    this.window = new PublishWindow({
      maxInFlight: o.maxInFlight,
      timeoutMs: o.commandTimeoutMs,
      // An error reply (MOVED, CLUSTERDOWN, a failed script) means the master did not run it; with no
      // redirections ioredis hands it back wrapped ("Too many Cluster redirections. Last error: ReplyError: …").
      refusedByServer: (err) => err instanceof ReplyError || /Last error: ReplyError/.test((err as Error).message ?? ''),
    });
    // No redirections: a publish that met a failover (connection closed, MOVED, CLUSTERDOWN)
    // fails instead of being resent by ioredis to a new master that subscribers may not have
    // reached yet (see TAKEOVER_SETTLE_MS); the MOVED still updates the slot map for the next one.
    // No ioredis commandTimeout either: the window times publishes out (see RedisBus).
    this.pub = redisClusterConnection(o.target, 'pushwire-pub', {}, { maxRedirections: 0 });
    logOutages(this.pub, 'publisher', o.logger, () => this.closing);
    this.pub.on('refresh', () => this.noteOwners());
    for (const event of ['refresh', '+node', '-node']) this.pub.on(event, () => this.noteMasters());
    this.sub = new ShardedSubscriber({
      cluster: this.pub,
      name: 'pushwire-sub',
      logger: o.logger,
      observer: o.observer,
      onMessage: (channel, payload) => this.handler(this.keys.channelOfBus(channel), payload),
      onLost: (channels) => {
        const lost = channels.map((c) => this.keys.channelOfBus(Buffer.from(c)));
        for (const h of this.gapHandlers) h(lost);
      },
    });
  }

  publish(channel: string, payload: Buffer): Promise<void> {
    const redisChannel = this.keys.busChannel(channel);
    return this.window.run(() => {
      const refusal = this.refusal(redisChannel);
      if (refusal !== undefined) throw new BusRefusedError(refusal);
      return this.pub.spublish(redisChannel, payload).then(
        () => undefined,
        (err: unknown) => this.failed(redisChannel, err),
      );
    });
  }

  async publishOnce(channel: string, payload: Buffer, once: OnceKey): Promise<string | undefined> {
    const redisChannel = this.keys.busChannel(channel);
    const prior = (await this.window.run(() => {
      const refusal = this.refusal(redisChannel);
      if (refusal !== undefined) throw new BusRefusedError(refusal);
      return this.pub
        .eval(PUBLISH_ONCE, 2, this.keys.onceKey(channel, once.key), redisChannel, once.value, String(once.ttlMs), payload)
        .catch((err: unknown) => this.failed(redisChannel, err));
    })) as string | null;
    return prior ?? undefined;
  }

  /** History keys of a channel, in its bus channel's slot: `<p>h:{<channel>}`, `<p>hm:{<channel>}`. */
  private historyKeys(channel: string): [string, string] {
    return [`${this.o.prefix}h:{${channel}}`, `${this.o.prefix}hm:{${channel}}`];
  }

  private get scripts(): {
    pwAppend(...a: (string | Buffer | number)[]): Promise<unknown>;
    pwAppendMany(...a: (string | Buffer)[]): Promise<unknown>;
    pwReadBuffer(...a: string[]): Promise<unknown>;
  } {
    const pub = this.pub as unknown as Record<string, unknown>;
    if (pub.pwAppend === undefined) {
      this.pub.defineCommand('pwAppend', { lua: appendAndPublish('SPUBLISH') });
      this.pub.defineCommand('pwAppendMany', { lua: appendManyAndPublish('SPUBLISH') });
      this.pub.defineCommand('pwRead', { lua: READ_RANGE, numberOfKeys: 2 });
    }
    return this.pub as never;
  }

  async publishPositioned(channel: string, payload: Buffer, o: AppendOptions): Promise<AppendResult> {
    const redisChannel = this.keys.busChannel(channel);
    const [stream, meta] = this.historyKeys(channel);
    const keys = [stream, meta];
    const args: (string | Buffer)[] = [redisChannel, payload, String(o.size), String(o.ttlMs), String(o.metaTtlMs), String(o.messageTtlMs)];
    if (o.once !== undefined) {
      keys.push(this.keys.onceKey(channel, o.once.key));
      args.push(o.once.value, String(o.once.ttlMs));
    }
    const [offset, epoch] = (await this.window.run(() => {
      const refusal = this.refusal(redisChannel);
      if (refusal !== undefined) throw new BusRefusedError(refusal);
      return this.scripts.pwAppend(keys.length, ...keys, ...args).catch((err: unknown) => this.failed(redisChannel, err));
    })) as [number, string];
    return offset === 0 ? { duplicate: true, earlier: epoch } : { duplicate: false, offset, epoch };
  }

  /** One script call per slot (a script's keys and SPUBLISH channels must share one slot). */
  publishPositionedMany(groups: readonly AppendGroup[]): Promise<Position>[] {
    const bySlot = new Map<number, number[]>();
    groups.forEach((g, i) => {
      const slot = slotOf(this.keys.busChannel(g.channel));
      const list = bySlot.get(slot);
      if (list === undefined) bySlot.set(slot, [i]);
      else list.push(i);
    });
    const out: Promise<Position>[] = new Array(groups.length);
    for (const indexes of bySlot.values()) {
      const part = indexes.map((i) => groups[i]!);
      const redisChannel = this.keys.busChannel(part[0]!.channel);
      const call = this.window
        .run(() => {
          const refusal = this.refusal(redisChannel);
          if (refusal !== undefined) throw new BusRefusedError(refusal);
          return this.scripts
            .pwAppendMany(...appendManyArgs(part, (c) => this.historyKeys(c), (c) => this.keys.busChannel(c)))
            .catch((err: unknown) => this.failed(redisChannel, err));
        })
        .then((reply) => {
          try {
            return parsePositions(reply, part.length);
          } catch (err) {
            throw new BusUnconfirmedError((err as Error).message);
          }
        });
      indexes.forEach((i, k) => (out[i] = call.then((positions) => positions[k]!)));
    }
    return out;
  }

  async readHistory(channel: string, q: RangeQuery): Promise<StoredRange> {
    const [stream, meta] = this.historyKeys(channel);
    return parseRange((await this.scripts.pwReadBuffer(stream, meta, String(q.after), String(q.count), q.reverse ? '1' : '0')) as (Buffer | number)[]);
  }

  async removeHistory(channel: string): Promise<void> {
    await this.pub.del(this.historyKeys(channel)[0]);
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
    this.gapHandlers.push(handler);
  }

  /**
   * The cluster is reachable. A master that is down does not make the node unready: pushes to
   * the other masters' channels go on, its own are refused one by one (publish), and
   * pushwire_redis_shard_up shows it.
   */
  isReady(): boolean {
    return this.pub.status === 'ready';
  }

  async start(): Promise<void> {
    // Like the standalone bus, a node starts with the cluster down and keeps trying.
    await this.pub.connect().catch(() => {});
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.sub.close();
    await quit(this.pub);
    this.window.close();
  }

  /** Why a publish on this channel is not sent now, or undefined. */
  private refusal(redisChannel: string): string | undefined {
    if (this.pub.status !== 'ready') return 'redis cluster is not connected';
    const owner = this.pub.slots[slotOf(redisChannel)]?.[0];
    if (owner === undefined) return 'redis cluster has no master for this channel';
    // A master's connection queues while it reconnects; nothing is handed to it then. (One not
    // used yet, 'wait', connects on this first command.)
    const status = this.masters.get(owner)?.status;
    if (status === 'reconnecting' || status === 'close' || status === 'end') return `redis cluster master ${owner} is not connected`;
    let since = this.owners.get(owner);
    // A MOVED reply updates the client's map without a refresh: a new owner seen here first.
    if (since === undefined) this.owners.set(owner, (since = Date.now()));
    if (since > 0 && Date.now() - since < TAKEOVER_SETTLE_MS) {
      return `redis cluster master ${owner} took over this channel's slot ${Date.now() - since} ms ago; subscribers are moving to it`;
    }
    return undefined;
  }

  private noteMasters(): void {
    this.masters = new Map(this.pub.nodes('master').map((r) => [`${r.options.host}:${r.options.port}`, r]));
  }

  private noteOwners(): void {
    const first = this.owners.size === 0;
    const now = Date.now();
    for (const nodes of this.pub.slots) {
      const owner = nodes?.[0];
      if (owner !== undefined && !this.owners.has(owner)) this.owners.set(owner, first ? 0 : now);
    }
  }

  private failed(redisChannel: string, err: unknown): never {
    const slot = slotOf(redisChannel);
    this.o.observer.publishError(this.pub.slots[slot]?.[0] ?? 'unknown');
    // With no redirections ioredis leaves its map as it was on a MOVED: applied here (as its
    // own redirect handler would), and the whole map re-read, so the next push goes to the new owner.
    const moved = / MOVED (\d+) (\S+)/.exec((err as Error).message ?? '');
    if (moved !== null && Number(moved[1]) === slot) {
      this.pub.slots[slot] = [moved[2]!];
      this.pub.refreshSlotsCache();
    }
    throw err;
  }
}
