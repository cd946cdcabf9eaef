import type { Logger } from 'pino';
import { byClient, type ChannelEventHeads, type ChannelMember, type ChannelMembership, type ChannelPresence } from './channel-presence.js';
import { channelPresenceScripts } from './redis-channel-presence-scripts.js';
import { NOT_CONNECTED, logOutages, quit, redisClient, type RedisClient } from './redis-connection.js';
import { RedisKeys } from './redis-keys.js';
import type { RedisTarget } from './redis-target.js';

export interface RedisChannelPresenceOptions {
  target: RedisTarget;
  /** The bus's key prefix (--redis-prefix). */
  prefix: string;
  /** A member not refreshed for this long is gone (--presence-ttl). */
  ttlMs: number;
  commandTimeoutMs: number;
  logger: Logger;
  /** Expired members (a dead node's) that this node's calls pruned (pushwire_channel_presence_expired_total). */
  onExpired?: (members: number) => void;
}

/** Members per PUT call on refresh: bounded work per Redis round trip. */
const REFRESH_CHUNK = 500;

type Script = keyof ReturnType<typeof channelPresenceScripts>;

/**
 * Channel presence in Redis, one standalone server or a Redis Cluster (each channel's keys in
 * the slot of its hash tag; see redis-channel-presence-scripts.ts, which also publishes the
 * leaves of a dead node's members as it prunes them). One command connection without offline
 * queue: a write that cannot go now fails (counted by the caller), and the next refresh
 * re-asserts it.
 */
export class RedisChannelPresence implements ChannelPresence {
  private readonly cmd: RedisClient;
  private readonly keys: RedisKeys;
  private closing = false;

  constructor(private readonly o: RedisChannelPresenceOptions) {
    this.keys = new RedisKeys(o.prefix, o.target.mode === 'cluster');
    this.cmd = redisClient(o.target, 'pushwire-channel-presence', { commandTimeout: o.commandTimeoutMs });
    for (const [name, lua] of Object.entries(channelPresenceScripts(this.keys.publish))) this.cmd.defineCommand(name, { numberOfKeys: 1, lua });
    logOutages(this.cmd, 'channel-presence', o.logger, () => this.closing);
  }

  async start(): Promise<void> {
    await this.cmd.connect().catch(() => {});
  }

  async close(): Promise<void> {
    this.closing = true;
    await quit(this.cmd);
  }

  async add(m: ChannelMembership): Promise<void> {
    this.counted(await this.call('pwChanPut', m.channel, ...this.common(m.channel, m.heads), this.o.ttlMs, 'a', m.member.client, m.member.user, m.joinLeave ? '1' : '0'));
  }

  async remove(channel: string, client: string): Promise<void> {
    await this.call('pwChanRemove', channel, client);
  }

  async refresh(memberships: readonly ChannelMembership[]): Promise<void> {
    const byChannel = new Map<string, ChannelMembership[]>();
    for (const m of memberships) {
      const list = byChannel.get(m.channel);
      if (list === undefined) byChannel.set(m.channel, [m]);
      else list.push(m);
    }
    // All issued in this turn, so each lands after any add/remove sent before the snapshot was
    // taken and before any sent after it: a refresh never revives a removed member.
    const puts: Promise<void>[] = [];
    for (const [channel, list] of byChannel) {
      const common = this.common(channel, list[0]!.heads);
      for (let i = 0; i < list.length; i += REFRESH_CHUNK) {
        const args = list.slice(i, i + REFRESH_CHUNK).flatMap((m) => [m.member.client, m.member.user, m.joinLeave ? '1' : '0']);
        puts.push(this.call('pwChanPut', channel, ...common, this.o.ttlMs, 'r', ...args).then((r) => this.pruneRest(channel, common, this.counted(r))));
      }
    }
    await Promise.all(puts);
  }

  async list(channel: string, heads: ChannelEventHeads): Promise<ChannelMember[]> {
    const [pruned, flat] = (await this.call('pwChanList', channel, ...this.common(channel, heads))) as [number, string[]];
    if (pruned > 0) this.o.onExpired?.(pruned);
    const members: ChannelMember[] = [];
    for (let i = 0; i < flat.length; i += 2) members.push({ client: flat[i]!, user: flat[i + 1]! });
    return byClient(members);
  }

  /**
   * A PUT prunes at most 100; a dead node may have left thousands in the channel. The refresh
   * that saw them goes on, 1000 per call, until none is left, so every dead member is pruned
   * (and its leave sent) within one refresh period of its expiry, however many there are.
   */
  private async pruneRest(channel: string, common: [string, Buffer, Buffer], left: number): Promise<void> {
    while (left > 0) left = this.counted(await this.call('pwChanPrune', channel, ...common));
  }

  /** Counts a {pruned, left} answer's pruned members; returns how many expired ones are left. */
  private counted(reply: unknown): number {
    const [pruned, left] = reply as [number, number];
    if (pruned > 0) this.o.onExpired?.(pruned);
    return left;
  }

  /** The scripts' first three arguments: where and what they publish for a member they prune. */
  private common(channel: string, heads: ChannelEventHeads): [string, Buffer, Buffer] {
    return [this.keys.busChannel(channel), heads.join, heads.leave];
  }

  private call(script: Script, channel: string, ...args: Array<string | number | Buffer>): Promise<unknown> {
    if (this.cmd.status !== 'ready') return Promise.reject(new Error(NOT_CONNECTED));
    return (this.cmd as unknown as Record<Script, (...a: Array<string | number | Buffer>) => Promise<unknown>>)[script](this.keys.channelPresence(channel), ...args);
  }
}
