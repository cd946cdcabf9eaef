import { ReplyError, type Cluster } from 'ioredis';
import type { Logger } from 'pino';
import { BusRefusedError } from './bus.js';
import { CONSUMER_FRAME, type ConsumerDirectory, type ConsumerEntry } from './consumers.js';
import { PublishWindow } from './publish-window.js';
import { NOT_CONNECTED, logOutages, noShardObserver, quit, redisClient, type RedisClient, type ShardObserver } from './redis-connection.js';
import { RedisKeys } from './redis-keys.js';
import { ShardedSubscriber } from './redis-sharded-subscriber.js';
import type { RedisTarget } from './redis-target.js';

// Keys: <prefix>be:{<pid>}:groups (SET of group names) and <prefix>be:{<pid>}:g:<group> (ZSET
// of "node|consumer-id" scored by expiry ms); one hash tag per project, so each script runs
// on one slot of a cluster. KEYS[1] is the groups set; the group keys are built from it.
// Nothing is ever scanned: a dispatch reads one set and one sorted set per group of the project.

// Scores are Redis's clock (not the nodes'), so skewed node clocks cannot expire live consumers.
// Both keys expire with their last registration, so a project whose consumers' nodes all
// died leaves nothing behind even if no event ever comes again.
// KEYS: groups set. ARGV: ttl, then group/member pairs.
const REGISTER = `
local base = string.sub(KEYS[1], 1, -8)
local t = redis.call('TIME')
local expires = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  local zkey = base .. ':g:' .. ARGV[i]
  redis.call('SADD', KEYS[1], ARGV[i])
  redis.call('ZADD', zkey, expires, ARGV[i + 1])
  redis.call('PEXPIRE', zkey, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 0`;

// KEYS: groups set, group zset. ARGV: member, group.
const UNREGISTER = `
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('SREM', KEYS[1], ARGV[2])
  redis.call('DEL', KEYS[2] .. ':rr')
end
return 0`;

// One consumer per group, picked and published to atomically. A member whose node hears
// nothing (PUBLISH reached no subscriber) is skipped and the next one tried, so a dead node
// never swallows an event. It is also dropped once it has missed a refresh (less than half
// its ttl left): a fresh registration is kept, since its node may only be resubscribing
// after a Redis restart.
// KEYS: groups set. ARGV: sticky ('' = rotate), frame channel prefix (the
// node id follows; RedisKeys.consumerFramePrefix), marker byte, event, ttl, only group ('' =
// every group). Time is Redis's, like the registrations'.
const DISPATCH = `
local base = string.sub(KEYS[1], 1, -8)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local reached = 0
local groups
if ARGV[6] == '' then groups = redis.call('SMEMBERS', KEYS[1]) else groups = { ARGV[6] } end
local function u16(s) return string.char(math.floor(#s / 256), #s % 256) .. s end
for _, g in ipairs(groups) do
  local zkey = base .. ':g:' .. g
  redis.call('ZREMRANGEBYSCORE', zkey, '-inf', now)
  local flat = redis.call('ZRANGE', zkey, 0, -1, 'WITHSCORES')
  local members, expiry = {}, {}
  for i = 1, #flat, 2 do
    members[#members + 1] = flat[i]
    expiry[flat[i]] = tonumber(flat[i + 1])
  end
  table.sort(members)
  local n = #members
  if n > 0 then
    local start
    if ARGV[1] == '' then
      start = redis.call('INCR', zkey .. ':rr')
      redis.call('PEXPIRE', zkey .. ':rr', ARGV[5])
    else
      start = tonumber(ARGV[1])
    end
    for i = 0, n - 1 do
      local m = members[((start + i) % n) + 1]
      local sep = string.find(m, '|', 1, true)
      local id = string.sub(m, sep + 1)
      local frame = ARGV[3] .. u16(id) .. u16(g) .. ARGV[4]
      if redis.call('$PUBLISH', ARGV[2] .. string.sub(m, 1, sep - 1), frame) > 0 then
        reached = reached + 1
        break
      end
      if expiry[m] - now < tonumber(ARGV[5]) / 2 then redis.call('ZREM', zkey, m) end
    end
  end
  if redis.call('ZCARD', zkey) == 0 then
    redis.call('SREM', KEYS[1], g)
    redis.call('DEL', zkey .. ':rr')
  end
end
return reached`;

export interface RedisConsumersOptions {
  target: RedisTarget;
  /** The bus's key/channel prefix: consumer frames go to the channels the bus subscribes. */
  prefix: string;
  /** The bus channel of a node, without the prefix (the core's naming). */
  nodeChannel: (node: string) => string;
  commandTimeoutMs: number;
  /** Most dispatches sent and not yet answered; over it a dispatch is refused at once. */
  maxInFlight: number;
  /** The registrations' ttl (--consumer-ttl, the same on every node). */
  ttlMs: number;
  logger: Logger;
  observer?: ShardObserver;
}

/**
 * Backend consumer directory in Redis. Its own connection, failing fast like the bus
 * publisher (no offline queue): a client request that cannot be dispatched is an error to
 * the client at once. Commands on one connection run in order, which keeps one node's events
 * for one client connection in order (on a cluster: one project's commands go to one master).
 * On a cluster, frames come on per-project channels in the directory's slot
 * (RedisKeys.consumerFramePrefix), which this node SSUBSCRIBEs while it has consumers of the project.
 */
export class RedisConsumers implements ConsumerDirectory {
  private readonly redis: RedisClient;
  private readonly keys: RedisKeys;
  private readonly nodePrefix: string;
  private readonly frames: ShardedSubscriber | undefined;
  /** Cluster mode: this node's registered members per project, whose frame channels it subscribes. */
  private readonly local = new Map<string, Set<string>>();
  private frameHandler: (frame: Buffer) => void = () => {};
  private reconnected: () => void = () => {};
  private closing = false;
  /** Dispatches publish: the same truthful outcomes and bound as the bus's publishes. */
  private readonly dispatches: PublishWindow;

  constructor(private readonly o: RedisConsumersOptions) {
    this.keys = new RedisKeys(o.prefix, o.target.mode === 'cluster');
    this.dispatches = new PublishWindow({ maxInFlight: o.maxInFlight, timeoutMs: o.commandTimeoutMs, refusedByServer: (err) => err instanceof ReplyError });
    this.nodePrefix = o.nodeChannel('');
    this.redis = redisClient(o.target, 'pushwire-consumers', { commandTimeout: o.commandTimeoutMs, enableAutoPipelining: true }, { enableAutoPipelining: true });
    for (const [name, lua] of Object.entries({ pwRegister: REGISTER, pwUnregister: UNREGISTER, pwDispatch: DISPATCH.replaceAll('$PUBLISH', this.keys.publish) })) {
      this.redis.defineCommand(name, { numberOfKeys: name === 'pwUnregister' ? 2 : 1, lua });
    }
    logOutages(this.redis, 'consumers', o.logger, () => this.closing);
    if (this.keys.cluster) {
      this.frames = new ShardedSubscriber({
        cluster: this.redis as Cluster,
        name: 'pushwire-consumers-sub',
        logger: o.logger,
        observer: o.observer ?? noShardObserver,
        onMessage: (_channel, frame) => this.frameHandler(frame),
        // A frame lost in a failover is an event its consumer never gets: the directory's
        // reconnect handling (register again) is all that can be done, as after a Redis restart.
        onLost: () => this.reconnected(),
      });
    }
    let connected = false;
    this.redis.on('ready', () => {
      if (connected) this.reconnected();
      connected = true;
    });
    this.redis.connect().catch(() => {});
  }

  async register(entries: readonly ConsumerEntry[], ttlMs: number): Promise<void> {
    const byPid = new Map<string, ConsumerEntry[]>();
    for (const e of entries) byPid.set(e.pid, [...(byPid.get(e.pid) ?? []), e]);
    await Promise.all(
      [...byPid].map(async ([pid, list]) => {
        if (this.frames !== undefined) {
          let members = this.local.get(pid);
          if (members === undefined) this.local.set(pid, (members = new Set()));
          for (const e of list) members.add(`${e.node}|${e.id}`);
          // Subscribed before the registration is visible, so no dispatch to it finds nobody listening.
          for (const node of new Set(list.map((e) => e.node))) await this.frames.add(this.framePrefix(pid) + node);
        }
        await this.call('pwRegister', this.groupsKey(pid), String(ttlMs), ...list.flatMap((e) => [e.group, `${e.node}|${e.id}`]));
      }),
    );
  }

  async unregister(e: ConsumerEntry): Promise<void> {
    const member = `${e.node}|${e.id}`;
    try {
      await this.call('pwUnregister', this.groupsKey(e.pid), `${this.keys.consumers(e.pid)}:g:${e.group}`, member, e.group);
    } finally {
      const members = this.local.get(e.pid);
      if (members?.delete(member) && members.size === 0) {
        this.local.delete(e.pid);
        await this.frames?.remove(this.framePrefix(e.pid) + e.node);
      }
    }
  }

  async dispatch(pid: string, event: Buffer, sticky: number | undefined, group?: string): Promise<number> {
    const reached = await this.dispatches.run(() => {
      if (this.redis.status !== 'ready') throw new BusRefusedError(NOT_CONNECTED);
      return this.call(
        'pwDispatch',
        this.groupsKey(pid),
        sticky === undefined ? '' : String(sticky),
        this.framePrefix(pid),
        Buffer.from([CONSUMER_FRAME]),
        event,
        String(this.o.ttlMs),
        group ?? '',
      );
    });
    return Number(reached);
  }

  onFrame(handler: (frame: Buffer) => void): void {
    this.frameHandler = handler;
  }

  onReconnect(handler: () => void): void {
    this.reconnected = handler;
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.frames?.close();
    await quit(this.redis);
    this.dispatches.close();
  }

  private framePrefix(pid: string): string {
    return this.keys.consumerFramePrefix(pid, this.nodePrefix);
  }

  private groupsKey(pid: string): string {
    return `${this.keys.consumers(pid)}:groups`;
  }

  private call(script: 'pwRegister' | 'pwUnregister' | 'pwDispatch', ...args: Array<string | Buffer>): Promise<unknown> {
    return (this.redis as unknown as Record<string, (...a: Array<string | Buffer>) => Promise<unknown>>)[script]!(...args);
  }
}
