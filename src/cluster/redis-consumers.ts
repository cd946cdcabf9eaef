import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { CONSUMER_FRAME, type ConsumerDirectory, type ConsumerEntry } from './consumers.js';
import { ReplyError } from 'ioredis';
import { BusRefusedError } from './bus.js';
import { PublishWindow } from './publish-window.js';
import { NOT_CONNECTED, logOutages, quit, redisConnection } from './redis-connection.js';

// Keys: <prefix>be:<pid>:groups (SET of group names) and <prefix>be:<pid>:g:<group> (ZSET of
// "node|consumer-id" scored by expiry ms). Nothing is ever scanned: a dispatch reads one set
// and one sorted set per group of the project.

// Scores are Redis's clock (not the nodes'), so skewed node clocks cannot expire live consumers.
// Both keys expire with their last registration, so a project whose consumers' nodes all
// died leaves nothing behind even if no event ever comes again.
// KEYS: groups set. ARGV: prefix, pid, ttl, then group/member pairs.
const REGISTER = `
local t = redis.call('TIME')
local expires = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
for i = 4, #ARGV, 2 do
  local zkey = ARGV[1] .. 'be:' .. ARGV[2] .. ':g:' .. ARGV[i]
  redis.call('SADD', KEYS[1], ARGV[i])
  redis.call('ZADD', zkey, expires, ARGV[i + 1])
  redis.call('PEXPIRE', zkey, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
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
// KEYS: groups set. ARGV: prefix, pid, sticky ('' = rotate), node channel prefix, marker byte,
// event, ttl, only group ('' = every group). Time is Redis's, like the registrations'.
const DISPATCH = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local reached = 0
local groups
if ARGV[8] == '' then groups = redis.call('SMEMBERS', KEYS[1]) else groups = { ARGV[8] } end
local function u16(s) return string.char(math.floor(#s / 256), #s % 256) .. s end
for _, g in ipairs(groups) do
  local zkey = ARGV[1] .. 'be:' .. ARGV[2] .. ':g:' .. g
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
    if ARGV[3] == '' then
      start = redis.call('INCR', zkey .. ':rr')
      redis.call('PEXPIRE', zkey .. ':rr', ARGV[7])
    else
      start = tonumber(ARGV[3])
    end
    for i = 0, n - 1 do
      local m = members[((start + i) % n) + 1]
      local sep = string.find(m, '|', 1, true)
      local id = string.sub(m, sep + 1)
      local frame = ARGV[5] .. u16(id) .. u16(g) .. ARGV[6]
      if redis.call('PUBLISH', ARGV[1] .. ARGV[4] .. string.sub(m, 1, sep - 1), frame) > 0 then
        reached = reached + 1
        break
      end
      if expiry[m] - now < tonumber(ARGV[7]) / 2 then redis.call('ZREM', zkey, m) end
    end
  end
  if redis.call('ZCARD', zkey) == 0 then
    redis.call('SREM', KEYS[1], g)
    redis.call('DEL', zkey .. ':rr')
  end
end
return reached`;

export interface RedisConsumersOptions {
  url: string;
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
}

/**
 * Backend consumer directory in Redis. Its own connection, failing fast like the bus
 * publisher (no offline queue): a client request that cannot be dispatched is an error to
 * the client at once. Commands on one connection run in order, which keeps one node's events
 * for one client connection in order.
 */
export class RedisConsumers implements ConsumerDirectory {
  private readonly redis: Redis;
  private readonly nodePrefix: string;
  private reconnected: () => void = () => {};
  private closing = false;
  /** Dispatches publish: the same truthful outcomes and bound as the bus's publishes. */
  private readonly dispatches: PublishWindow;

  constructor(private readonly o: RedisConsumersOptions) {
    this.dispatches = new PublishWindow({ maxInFlight: o.maxInFlight, timeoutMs: o.commandTimeoutMs, refusedByServer: (err) => err instanceof ReplyError });
    this.nodePrefix = o.nodeChannel('');
    this.redis = redisConnection(o.url, 'pushwire-consumers', { commandTimeout: o.commandTimeoutMs, enableAutoPipelining: true });
    logOutages(this.redis, 'consumers', o.logger, () => this.closing);
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
      [...byPid].map(([pid, list]) =>
        this.redis.eval(
          REGISTER,
          1,
          this.groupsKey(pid),
          this.o.prefix,
          pid,
          String(ttlMs),
          ...list.flatMap((e) => [e.group, `${e.node}|${e.id}`]),
        ),
      ),
    );
  }

  async unregister(e: ConsumerEntry): Promise<void> {
    const zkey = `${this.o.prefix}be:${e.pid}:g:${e.group}`;
    await this.redis.eval(UNREGISTER, 2, this.groupsKey(e.pid), zkey, `${e.node}|${e.id}`, e.group);
  }

  async dispatch(pid: string, event: Buffer, sticky: number | undefined, group?: string): Promise<number> {
    const reached = await this.dispatches.run(() => {
      if (this.redis.status !== 'ready') throw new BusRefusedError(NOT_CONNECTED);
      return this.redis.eval(
        DISPATCH,
        1,
        this.groupsKey(pid),
        this.o.prefix,
        pid,
        sticky === undefined ? '' : String(sticky),
        this.nodePrefix,
        Buffer.from([CONSUMER_FRAME]),
        event,
        String(this.o.ttlMs),
        group ?? '',
      );
    });
    return Number(reached);
  }

  onReconnect(handler: () => void): void {
    this.reconnected = handler;
  }

  async close(): Promise<void> {
    this.closing = true;
    await quit(this.redis);
    this.dispatches.close();
  }

  private groupsKey(pid: string): string {
    return `${this.o.prefix}be:${pid}:groups`;
  }
}
