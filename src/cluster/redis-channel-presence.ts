import type { Logger } from 'pino';
import { byClient, type ChannelMember, type ChannelMembership, type ChannelPresence } from './channel-presence.js';
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
}

/** Members per PUT call on refresh: bounded work per Redis round trip. */
const REFRESH_CHUNK = 500;

type Script = keyof typeof channelPresenceScripts;

/**
 * Channel presence in Redis, one standalone server or a Redis Cluster (each channel's keys in
 * the slot of its hash tag; see redis-channel-presence-scripts.ts). One command connection
 * without offline queue: a write that cannot go now fails (counted by the caller), and the
 * next refresh re-asserts it.
 */
export class RedisChannelPresence implements ChannelPresence {
  private readonly cmd: RedisClient;
  private readonly keys: RedisKeys;
  private closing = false;

  constructor(private readonly o: RedisChannelPresenceOptions) {
    this.keys = new RedisKeys(o.prefix, o.target.mode === 'cluster');
    this.cmd = redisClient(o.target, 'pushwire-channel-presence', { commandTimeout: o.commandTimeoutMs });
    for (const [name, lua] of Object.entries(channelPresenceScripts)) this.cmd.defineCommand(name, { numberOfKeys: 1, lua });
    logOutages(this.cmd, 'channel-presence', o.logger, () => this.closing);
  }

  async start(): Promise<void> {
    await this.cmd.connect().catch(() => {});
  }

  async close(): Promise<void> {
    this.closing = true;
    await quit(this.cmd);
  }

  async add(channel: string, member: ChannelMember): Promise<void> {
    await this.call('pwChanPut', channel, this.o.ttlMs, member.client, member.user);
  }

  async remove(channel: string, client: string): Promise<void> {
    await this.call('pwChanRemove', channel, client);
  }

  async refresh(memberships: readonly ChannelMembership[]): Promise<void> {
    const byChannel = new Map<string, ChannelMember[]>();
    for (const { channel, member } of memberships) {
      const list = byChannel.get(channel);
      if (list === undefined) byChannel.set(channel, [member]);
      else list.push(member);
    }
    // All issued in this turn, so each lands after any add/remove sent before the snapshot was
    // taken and before any sent after it: a refresh never revives a removed member.
    const puts: Promise<unknown>[] = [];
    for (const [channel, list] of byChannel) {
      for (let i = 0; i < list.length; i += REFRESH_CHUNK) {
        puts.push(this.call('pwChanPut', channel, this.o.ttlMs, ...list.slice(i, i + REFRESH_CHUNK).flatMap((m) => [m.client, m.user])));
      }
    }
    await Promise.all(puts);
  }

  async list(channel: string): Promise<ChannelMember[]> {
    const flat = (await this.call('pwChanList', channel)) as string[];
    const members: ChannelMember[] = [];
    for (let i = 0; i < flat.length; i += 2) members.push({ client: flat[i]!, user: flat[i + 1]! });
    return byClient(members);
  }

  private call(script: Script, channel: string, ...args: Array<string | number>): Promise<unknown> {
    if (this.cmd.status !== 'ready') return Promise.reject(new Error(NOT_CONNECTED));
    return (this.cmd as unknown as Record<Script, (...a: Array<string | number>) => Promise<unknown>>)[script](this.keys.channelPresence(channel), ...args);
  }
}
