import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { NodeRecord, OnlineUserCount, Presence, PresenceEntry, PresenceEvent, UserConnections, WatchHandlers } from './presence.js';
import { NOT_CONNECTED, logOutages, quit, redisConnection } from './redis-connection.js';
import { COUNT, EXPIRE, LIST_CONNECTIONS, LIST_USERS, NODE_BEAT, NODES, PUT, REMOVE, USERS } from './redis-presence-scripts.js';

export interface RedisPresenceOptions {
  url: string;
  /** The bus's key prefix (--redis-prefix), so clusters sharing a Redis stay apart. */
  prefix: string;
  /** An entry or node record not refreshed for this long is gone. */
  ttlMs: number;
  commandTimeoutMs: number;
  logger: Logger;
}

/** Entries per PUT script call on refresh: bounded work per Redis round trip. */
const REFRESH_CHUNK = 500;
/** Expired entries removed per EXPIRE call; callers loop until fewer come back. */
const EXPIRE_CHUNK = 1000;

const SCRIPTS = { pwPut: PUT, pwRemove: REMOVE, pwExpire: EXPIRE, pwListUsers: LIST_USERS, pwListConns: LIST_CONNECTIONS, pwUsers: USERS, pwCount: COUNT, pwNodeBeat: NODE_BEAT, pwNodes: NODES };
type Script = keyof typeof SCRIPTS;

/**
 * Presence in Redis, without key scans. Per project (`<prefix>presence:<pid>:`):
 *   conns   HASH cid → [uid, node, connectedAt]     expiry  ZSET cid → expires-at ms
 *   cids    ZSET (score 0) cid, paged by lex       users   ZSET (score 0) uid, paged by lex
 *   counts  HASH uid → connections                 user:<uid>  SET of cids
 *   seq     event counter; events are PUBLISHed on `<prefix>presence:<pid>`
 * plus `<prefix>presence:pids` (projects with entries, for cleanup) and the node registry
 * (`<prefix>nodes` ZSET id → expires-at, `<prefix>nodes:info` HASH id → record).
 * One command connection (no offline queue: a write that cannot go now fails, and the next
 * refresh re-asserts it), and a subscriber opened on the first watch.
 */
export class RedisPresence implements Presence {
  private readonly cmd: Redis;
  private sub: Redis | undefined;
  /** The subscriber's first connection attempt, shared by every watch that arrives meanwhile. */
  private subConnecting: Promise<void> | undefined;
  private readonly watchers = new Map<string, Set<WatchHandlers>>();
  private nodeId: string | undefined;
  private closing = false;

  constructor(private readonly o: RedisPresenceOptions) {
    this.cmd = redisConnection(o.url, 'pushwire-presence', { commandTimeout: o.commandTimeoutMs });
    for (const [name, lua] of Object.entries(SCRIPTS)) this.cmd.defineCommand(name, { numberOfKeys: 0, lua });
    logOutages(this.cmd, 'presence', this.o.logger, () => this.closing);
  }

  async start(): Promise<void> {
    await this.cmd.connect().catch(() => {});
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.nodeId !== undefined && this.cmd.status === 'ready') {
      await this.cmd.multi().zrem(`${this.o.prefix}nodes`, this.nodeId).hdel(`${this.o.prefix}nodes:info`, this.nodeId).exec().catch(() => {});
    }
    await Promise.all([quit(this.cmd), this.sub ? quit(this.sub) : undefined]);
  }

  async add(e: PresenceEntry): Promise<void> {
    await this.run('pwPut', e.pid, this.o.ttlMs, e.cid, e.uid, e.node, e.connectedAt);
  }

  async remove(pid: string, cid: string): Promise<void> {
    await this.run('pwRemove', pid, cid);
  }

  async refresh(entries: readonly PresenceEntry[], node: NodeRecord): Promise<void> {
    this.nodeId = node.id;
    const byPid = new Map<string, PresenceEntry[]>();
    for (const e of entries) {
      const list = byPid.get(e.pid) ?? [];
      list.push(e);
      byPid.set(e.pid, list);
    }
    // All issued in this turn, so each lands after any add/remove sent before the snapshot
    // was taken and before any sent after it: a refresh never revives a removed entry.
    const puts: Promise<unknown>[] = [];
    for (const [pid, list] of byPid) {
      for (let i = 0; i < list.length; i += REFRESH_CHUNK) {
        const args = list.slice(i, i + REFRESH_CHUNK).flatMap((e) => [e.cid, e.uid, e.node, e.connectedAt]);
        puts.push(this.run('pwPut', pid, this.o.ttlMs, ...args));
      }
    }
    const { heartbeatAt: _, ...record } = node;
    puts.push(this.runNodes('pwNodeBeat', this.o.ttlMs, node.id, JSON.stringify(record)));
    await Promise.all(puts);
    const pids = await this.cmd.smembers(`${this.o.prefix}presence:pids`);
    await Promise.all(pids.map((pid) => this.expire(pid)));
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
    const sub = await this.subscriber();
    let set = this.watchers.get(pid);
    if (set === undefined) {
      set = new Set();
      this.watchers.set(pid, set);
    }
    set.add(handlers);
    const unwatch = (): void => {
      const s = this.watchers.get(pid);
      if (!s?.delete(handlers) || s.size > 0) return;
      this.watchers.delete(pid);
      sub.unsubscribe(this.channel(pid)).catch(() => {});
    };
    try {
      // Idempotent in Redis; resolves once events published from now on will reach us.
      await sub.subscribe(this.channel(pid));
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

  /** Removes the project's expired entries (dead nodes'), emitting their leaves. */
  private async expire(pid: string): Promise<void> {
    while ((await this.run('pwExpire', pid, EXPIRE_CHUNK)) === EXPIRE_CHUNK);
  }

  private run(script: Script, pid: string, ...args: Array<string | number>): Promise<unknown> {
    return this.call(script, this.o.prefix, pid, ...args);
  }

  private runNodes(script: Script, ...args: Array<string | number>): Promise<unknown> {
    return this.call(script, this.o.prefix, ...args);
  }

  private call(script: Script, ...args: Array<string | number>): Promise<unknown> {
    if (this.cmd.status !== 'ready') return Promise.reject(new Error(NOT_CONNECTED));
    return (this.cmd as unknown as Record<Script, (...a: Array<string | number>) => Promise<unknown>>)[script](...args);
  }

  private channel(pid: string): string {
    return `${this.o.prefix}presence:${pid}`;
  }

  /**
   * The event subscriber, opened on first use. Every watch arriving before its first connection
   * settles waits for it (not only the one that opened it), so concurrent first watchers on a
   * healthy cluster all succeed. After a reconnect every watcher is told events may be lost.
   */
  private async subscriber(): Promise<Redis> {
    if (this.sub === undefined) {
      // Resubscribing is left to ioredis: watchers re-snapshot after any reconnect anyway.
      const sub = redisConnection(this.o.url, 'pushwire-presence-sub');
      this.sub = sub;
      logOutages(sub, 'presence-subscriber', this.o.logger, () => this.closing);
      let connectedBefore = false;
      sub.on('ready', () => {
        if (connectedBefore) for (const set of this.watchers.values()) for (const w of set) w.lost();
        connectedBefore = true;
      });
      sub.on('message', (channel: string, message: string) => {
        const pid = channel.slice(`${this.o.prefix}presence:`.length);
        const set = this.watchers.get(pid);
        if (set === undefined) return;
        const [seq, kind, uid, cid, node, at] = JSON.parse(message) as [number, 'join' | 'leave', string, string, string, number];
        const event: PresenceEvent = { seq, kind, uid, cid, node, at };
        for (const w of set) w.event(event);
      });
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

