import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { NodeRecord, OnlineUserCount, Presence, PresenceEntry, PresenceEvent, UserConnections, WatchHandlers } from './presence.js';
import { NOT_CONNECTED, logOutages, noShardObserver, quit, redisClient, redisConnection, type RedisClient, type ShardObserver } from './redis-connection.js';
import { RedisKeys } from './redis-keys.js';
import { presenceScripts } from './redis-presence-scripts.js';
import { PresenceWrites } from './redis-presence-writes.js';
import { ShardedSubscriber } from './redis-sharded-subscriber.js';
import type { RedisTarget } from './redis-target.js';

export interface RedisPresenceOptions {
  target: RedisTarget;
  /** The bus's key prefix (--redis-prefix), so clusters sharing a Redis stay apart. */
  prefix: string;
  /** An entry or node record not refreshed for this long is gone. */
  ttlMs: number;
  commandTimeoutMs: number;
  logger: Logger;
  observer?: ShardObserver;
}

/** Expired entries removed per EXPIRE call; callers loop until fewer come back. */
const EXPIRE_CHUNK = 1000;

type Script = keyof ReturnType<typeof presenceScripts>;

/**
 * Presence in Redis, without key scans. Per project (`<prefix>presence:{<pid>}:`, one hash
 * tag, so one slot on a cluster):
 *   conns   HASH cid → [uid, node, connectedAt]     cids    ZSET (score 0) cid, paged by lex
 *   users   ZSET (score 0) uid, paged by lex       counts  HASH uid → connections
 *   user:<uid>  SET of cids                        node:<id>  SET of the node's cids
 *   nodes   ZSET node → expires-at ms              ver     HASH node → version of its last write
 *   seq     event counter; events are published on `<prefix>presence:{<pid>}`, a list per script call
 * plus `<prefix>presence:pids` (projects with entries, for cleanup; written outside the
 * scripts, since it lives in another slot) and the node registry (`<prefix>{nodes}` ZSET
 * id → expires-at, `<prefix>{nodes}:info` HASH id → record).
 * Writes are batched per project and refreshed per node (PresenceWrites). One command
 * connection (no offline queue: a write that cannot go now fails, and the next refresh re-sends
 * the project), and a subscriber opened on the first watch.
 */
export class RedisPresence implements Presence {
  private readonly cmd: RedisClient;
  private readonly keys: RedisKeys;
  private sub: Redis | undefined;
  private sharded: ShardedSubscriber | undefined;
  /** The subscriber's first connection attempt, shared by every watch that arrives meanwhile. */
  private subConnecting: Promise<void> | undefined;
  private readonly watchers = new Map<string, Set<WatchHandlers>>();
  private nodeId: string | undefined;
  private readonly writes: PresenceWrites;
  private closing = false;

  constructor(private readonly o: RedisPresenceOptions) {
    this.keys = new RedisKeys(o.prefix, o.target.mode === 'cluster');
    this.cmd = redisClient(o.target, 'pushwire-presence', { commandTimeout: o.commandTimeoutMs });
    for (const [name, lua] of Object.entries(presenceScripts(this.keys.publish))) this.cmd.defineCommand(name, { numberOfKeys: 1, lua });
    logOutages(this.cmd, 'presence', this.o.logger, () => this.closing);
    this.writes = new PresenceWrites(
      (script, pid, ...args) => this.run(script, pid, ...args),
      o.ttlMs,
      (pid) => this.ready().then(async () => void (await this.cmd.sadd(this.keys.presencePids, pid))),
    );
  }

  async start(): Promise<void> {
    await this.cmd.connect().catch(() => {});
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.writes.close();
    if (this.nodeId !== undefined && this.cmd.status === 'ready') {
      // One slot ({nodes}), so a MULTI is allowed on a cluster too.
      await this.cmd.multi().zrem(this.keys.nodes, this.nodeId).hdel(this.keys.nodesInfo, this.nodeId).exec().catch(() => {});
    }
    await Promise.all([quit(this.cmd), this.sub ? quit(this.sub) : undefined, this.sharded?.close()]);
  }

  add(e: PresenceEntry): Promise<void> {
    return this.writes.add(e);
  }

  remove(pid: string, cid: string): Promise<void> {
    return this.writes.remove(pid, cid);
  }

  async refresh(entries: readonly PresenceEntry[], node: NodeRecord): Promise<void> {
    this.nodeId = node.id;
    const pids = new Set(entries.map((e) => e.pid));
    const puts: Promise<unknown>[] = [this.writes.refresh(entries, node.id)];
    // Re-listed every refresh too, whatever the sweep below did meanwhile on another node.
    if (pids.size > 0) puts.push(this.ready().then(() => this.cmd.sadd(this.keys.presencePids, ...pids)));
    const { heartbeatAt: _, ...record } = node;
    puts.push(this.runNodes('pwNodeBeat', this.o.ttlMs, node.id, JSON.stringify(record)));
    await Promise.all(puts);
  }

  async sweep(): Promise<void> {
    await this.ready();
    const listed = await this.cmd.smembers(this.keys.presencePids);
    await Promise.all(listed.map((pid) => this.sweepProject(pid)));
  }

  async listUsers(pid: string, limit: number, after: string | undefined): Promise<{ users: OnlineUserCount[]; total: number }> {
    await this.expire(pid);
    const [uids, counts, total] = (await this.run('pwListUsers', pid, limit, after ?? '')) as [string[], (string | null)[], number];
    return { users: uids.map((uid, i) => ({ uid, connections: Number(counts[i] ?? 0) })), total };
  }

  async listConnections(pid: string, limit: number, after: string | undefined): Promise<PresenceEntry[]> {
    await this.expire(pid);
    const [cids, values] = (await this.run('pwListConns', pid, limit, after ?? '')) as [string[], (string | null)[]];
    return cids.flatMap((cid, i) => (values[i] ? [entryOf(pid, cid, values[i])] : []));
  }

  async users(pid: string, uids: readonly string[]): Promise<UserConnections[]> {
    await this.expire(pid);
    if (uids.length === 0) return [];
    const rows = (await this.run('pwUsers', pid, ...uids)) as string[][];
    return uids.map((uid, i) => {
      const flat = rows[i] ?? [];
      const connections: PresenceEntry[] = [];
      for (let j = 0; j < flat.length; j += 2) connections.push(entryOf(pid, flat[j]!, flat[j + 1]!));
      connections.sort((a, b) => (a.cid < b.cid ? -1 : 1));
      return { uid, connections };
    });
  }

  async count(pid: string): Promise<{ users: number; connections: number }> {
    await this.expire(pid);
    const [users, connections] = (await this.run('pwCount', pid)) as [number, number, number];
    return { users, connections };
  }

  async sequence(pid: string): Promise<number> {
    const [, , seq] = (await this.run('pwCount', pid)) as [number, number, number];
    return seq;
  }

  async watch(pid: string, handlers: WatchHandlers): Promise<() => void> {
    let set = this.watchers.get(pid);
    if (set === undefined) {
      set = new Set();
      this.watchers.set(pid, set);
    }
    set.add(handlers);
    const channel = this.keys.presence(pid);
    const unwatch = (): void => {
      const s = this.watchers.get(pid);
      if (!s?.delete(handlers) || s.size > 0) return;
      this.watchers.delete(pid);
      if (this.sharded) void this.sharded.remove(channel);
      else this.sub?.unsubscribe(channel).catch(() => {});
    };
    try {
      // Idempotent in Redis; resolves once events published from now on will reach us.
      if (this.keys.cluster) {
        const sharded = this.shardedSubscriber();
        await sharded.add(channel);
        if (!sharded.isSubscribed(channel)) throw new Error('redis presence subscriber is not connected to the shard of this project');
      } else {
        await (await this.subscriber()).subscribe(channel);
      }
    } catch (err) {
      unwatch();
      throw err;
    }
    return unwatch;
  }

  async nodes(): Promise<NodeRecord[]> {
    const values = (await this.runNodes('pwNodes')) as string[];
    return values.map((v) => {
      const space = v.indexOf(' ');
      return { ...(JSON.parse(v.slice(space + 1)) as Omit<NodeRecord, 'heartbeatAt'>), heartbeatAt: Number(v.slice(0, space)) };
    });
  }

  /** Removes the project's expired entries (dead nodes'), emitting their leaves; returns how many are left. */
  private async expire(pid: string): Promise<number> {
    for (;;) {
      const [removed, left] = (await this.run('pwExpire', pid, EXPIRE_CHUNK)) as [number, number];
      if (removed < EXPIRE_CHUNK) return left;
    }
  }

  /**
   * expire(), and a project left empty leaves presence:pids. The SREM comes first and the
   * emptiness is checked again after it: an entry PUT meanwhile either is seen by that check
   * (listed again here) or was PUT after it, and its own SADD follows the SREM.
   */
  private async sweepProject(pid: string): Promise<void> {
    if ((await this.expire(pid)) > 0) return;
    await this.cmd.srem(this.keys.presencePids, pid);
    const [, connections] = (await this.run('pwCount', pid)) as [number, number, number];
    if (connections > 0) await this.cmd.sadd(this.keys.presencePids, pid);
  }

  private run(script: Script, pid: string, ...args: Array<string | number>): Promise<unknown> {
    return this.call(script, this.keys.presence(pid), ...args);
  }

  private runNodes(script: Script, ...args: Array<string | number>): Promise<unknown> {
    return this.call(script, this.keys.nodes, ...args);
  }

  private ready(): Promise<void> {
    return this.cmd.status === 'ready' ? Promise.resolve() : Promise.reject(new Error(NOT_CONNECTED));
  }

  private call(script: Script, ...args: Array<string | number>): Promise<unknown> {
    if (this.cmd.status !== 'ready') return Promise.reject(new Error(NOT_CONNECTED));
    return (this.cmd as unknown as Record<Script, (...a: Array<string | number>) => Promise<unknown>>)[script](...args);
  }

  private deliver(channel: string, message: string): void {
    const pid = channel.slice(this.keys.presence('').length - 1, -1);
    const set = this.watchers.get(pid);
    if (set === undefined) return;
    // A list of events per script call (a single event from a node of a version before batching).
    type Row = [number, 'join' | 'leave', string, string, string, number];
    const parsed = JSON.parse(message) as Row | Row[];
    for (const [seq, kind, uid, cid, node, at] of Array.isArray(parsed[0]) ? (parsed as Row[]) : [parsed as Row]) {
      const event: PresenceEvent = { seq, kind, uid, cid, node, at };
      for (const w of set) w.event(event);
    }
  }

  /** Cluster mode: the sharded subscriber, opened on first use; a project whose shard reconnected or moved is told events may be lost. */
  private shardedSubscriber(): ShardedSubscriber {
    this.sharded ??= new ShardedSubscriber({
      cluster: this.cmd as Cluster,
      name: 'pushwire-presence-sub',
      logger: this.o.logger,
      observer: this.o.observer ?? noShardObserver,
      onMessage: (channel, payload) => this.deliver(channel.toString(), payload.toString()),
      onLost: (channels) => {
        for (const channel of channels) for (const w of this.watchers.get(channel.slice(this.keys.presence('').length - 1, -1)) ?? []) w.lost();
      },
    });
    return this.sharded;
  }

  /**
   * Standalone: the event subscriber, opened on first use. Every watch arriving before its
   * first connection settles waits for it (not only the one that opened it), so concurrent
   * first watchers on a healthy cluster all succeed. After a reconnect every watcher is told
   * events may be lost.
   */
  private async subscriber(): Promise<Redis> {
    if (this.o.target.mode !== 'standalone') throw new Error('unreachable: standalone subscriber in cluster mode');
    if (this.sub === undefined) {
      // Resubscribing is left to ioredis: watchers re-snapshot after any reconnect anyway.
      const sub = redisConnection(this.o.target.url, 'pushwire-presence-sub');
      this.sub = sub;
      logOutages(sub, 'presence-subscriber', this.o.logger, () => this.closing);
      let connectedBefore = false;
      sub.on('ready', () => {
        if (connectedBefore) for (const set of this.watchers.values()) for (const w of set) w.lost();
        connectedBefore = true;
      });
      sub.on('message', (channel: string, message: string) => this.deliver(channel, message));
      this.subConnecting = sub.connect().catch(() => {});
    }
    await this.subConnecting;
    if (this.sub.status !== 'ready') throw new Error(NOT_CONNECTED);
    return this.sub;
  }
}

function entryOf(pid: string, cid: string, json: string): PresenceEntry {
  const [uid, node, connectedAt] = JSON.parse(json) as [string, string, number];
  return { pid, cid, uid, node, connectedAt };
}
