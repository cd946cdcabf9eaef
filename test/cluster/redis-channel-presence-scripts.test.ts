import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChannelMembership } from '../../src/cluster/channel-presence.js';
import { RedisChannelPresence } from '../../src/cluster/redis-channel-presence.js';
import { RedisKeys } from '../../src/cluster/redis-keys.js';
import { slotOf } from '../../src/cluster/redis-slot.js';
import { parseRedisTarget } from '../../src/cluster/redis-target.js';
import { channelEventHeads, decodeChannelEvent, isChannelEventFrame, type ChannelEventData } from '../../src/core/channel-events.js';
import { privateChannel, topicChannel } from '../../src/core/targeting.js';
import { createLogger } from '../../src/observability/logger.js';
import { unique } from '../helpers/names.js';
import { waitFor } from '../helpers/ports.js';
import { TestRedisCluster } from '../helpers/redis-cluster.js';
import { TestRedis } from '../helpers/redis-server.js';

/** Short enough that waiting for an expiry is cheap; every wait below is for Redis's clock to pass one. */
const TTL = 400;
const SENTINEL = Buffer.from('sentinel');

/**
 * The channel presence scripts on a real Redis and a real Redis Cluster, through stores that
 * stand for nodes: a "dead" node is a store that stops refreshing. The leave of each pruned
 * joinLeave member is published by the script that prunes it, once, however many nodes prune
 * at once and however many members the dead node left; a presence-only member goes silently;
 * a member pruned while its node lived is announced again (join) when its node re-asserts it.
 */
describe.each([{ kind: 'standalone' }, { kind: 'cluster' }])('channel presence scripts ($kind)', ({ kind }) => {
  const prefix = `${kind}:`;
  const keys = new RedisKeys(prefix, kind === 'cluster');
  const stop: Array<() => Promise<unknown>> = [];
  let url = '';
  /** A plain connection to the master of a channel's slot (the one Redis when standalone). */
  let connectionFor: (channel: string) => Promise<Redis>;
  let expired = 0;

  beforeAll(async () => {
    if (kind === 'standalone') {
      const redis = await TestRedis.start();
      stop.push(() => redis.kill());
      url = redis.url;
      connectionFor = async () => new Redis(redis.port, '127.0.0.1');
    } else {
      const rc = await TestRedisCluster.start(3, 0);
      stop.push(() => rc.stop());
      url = rc.url;
      const masters = await rc.masters();
      connectionFor = async (channel) => {
        const slot = slotOf(keys.channelPresence(channel));
        return new Redis(masters.find((m) => m.slots.some(([lo, hi]) => slot >= lo && slot <= hi))!.port, '127.0.0.1');
      };
    }
  }, 60_000);

  afterAll(async () => {
    for (const s of stop.reverse()) await s();
  });

  const node = async (ttlMs = TTL): Promise<RedisChannelPresence> => {
    const store = new RedisChannelPresence({ target: parseRedisTarget(url), prefix, ttlMs, commandTimeoutMs: 5000, logger: createLogger('silent'), onExpired: (n) => (expired += n) });
    stop.unshift(() => store.close());
    await store.start();
    await waitFor(() => store.list('warm-up', channelEventHeads('warm-up', 'w', false)).then(() => true, () => false), 20_000, 'the store connected');
    return store;
  };

  /** Subscribes to the channel's bus channel as a node's bus would; `drain` returns the channel events since, up to a sentinel publish. */
  const listen = async (channel: string): Promise<{ drain: () => Promise<ChannelEventData[]> }> => {
    const sub = await connectionFor(channel);
    const pub = await connectionFor(channel);
    stop.unshift(async () => (sub.disconnect(), pub.disconnect()));
    const bus = keys.busChannel(channel);
    let frames: Buffer[] = [];
    let sentinels = 0;
    const take = (c: Buffer, p: Buffer): void => {
      if (c.toString() !== bus) return;
      if (p.equals(SENTINEL)) sentinels++;
      else frames.push(p);
    };
    sub.on('messageBuffer', take);
    sub.on('smessageBuffer', take);
    await (kind === 'cluster' ? sub.ssubscribe(bus) : sub.subscribe(bus));
    return {
      // Redis delivers a connection's messages in the order the commands ran: once the sentinel
      // (published after the calls under test returned) is in, so is everything they published.
      drain: async () => {
        const want = sentinels + 1;
        await (kind === 'cluster' ? pub.spublish(bus, SENTINEL) : pub.publish(bus, SENTINEL));
        await waitFor(() => sentinels >= want, 10_000, 'the sentinel');
        const out = frames.map((f) => (expect(isChannelEventFrame(f)).toBe(true), decodeChannelEvent(f)));
        frames = [];
        return out;
      },
    };
  };

  /**
   * The live nodes' refresh beat (every ttl/3 in a node; here as fast as the loop goes) until the
   * store no longer holds `clients`: one of those refreshes pruned them. A wait for a condition.
   */
  const beatUntilGone = async (channel: string, clients: string[], live: Array<[RedisChannelPresence, ChannelMembership[]]>): Promise<void> => {
    const r = await connectionFor(channel);
    try {
      await waitFor(async () => {
        await Promise.all(live.map(([store, ms]) => store.refresh(ms)));
        const scores = await Promise.all(clients.map((c) => r.zscore(`${keys.channelPresence(channel)}:x`, c)));
        return scores.every((s) => s === null);
      }, 20_000, 'the dead members to be pruned');
    } finally {
      r.disconnect();
    }
  };

  /** Waits until Redis's clock has passed the members' expiries (a wait for a condition). */
  const expire = async (channel: string, clients: string[]): Promise<void> => {
    const r = await connectionFor(channel);
    try {
      const scores = await Promise.all(clients.map((c) => r.zscore(`${keys.channelPresence(channel)}:x`, c)));
      const top = Math.max(...scores.map(Number));
      await waitFor(async () => {
        const [sec, usec] = await r.time();
        return Number(sec) * 1000 + Math.floor(Number(usec) / 1000) > top;
      }, 10_000, 'the members to expire');
    } finally {
      r.disconnect();
    }
  };

  const membership = (channel: string, name: string, priv: boolean, client: string, user: string, joinLeave = true): ChannelMembership => ({
    channel,
    member: { client, user },
    heads: channelEventHeads(channel, name, priv),
    joinLeave,
  });

  it("a dead node's joinLeave members leave once, as its own leave frame would say; a presence-only member goes silently", async () => {
    const [a, b] = [await node(), await node()];
    const name = unique('room:é');
    const channel = topicChannel('default', name);
    const bus = await listen(channel);
    const alive = membership(channel, name, false, 'a-1', 'ann');
    await a.add(alive);
    await b.add(membership(channel, name, false, 'b-1', 'zoë'));
    await b.add(membership(channel, name, false, 'b-2', '', false));
    expect(await bus.drain()).toEqual([]);
    // B stops refreshing (it died); A goes on.
    const before = expired;
    await beatUntilGone(channel, ['b-1', 'b-2'], [[a, [alive]]]);
    expect(await bus.drain()).toEqual([{ kind: 'leave', hubChannel: channel, channel: name, private: false, member: { client: 'b-1', user: 'zoë' } }]);
    expect(expired - before).toBe(2);
    expect(await a.list(channel, alive.heads)).toEqual([{ client: 'a-1', user: 'ann' }]);
    // Nothing is left to announce twice.
    await a.refresh([alive]);
    expect(await a.list(channel, alive.heads)).toHaveLength(1);
    expect(await bus.drain()).toEqual([]);
  });

  it('a private channel keeps its name and flag in the leave', async () => {
    const [a, b] = [await node(), await node()];
    const topic = unique('inbox');
    const channel = privateChannel('default', 'ann', topic);
    const bus = await listen(channel);
    const alive = membership(channel, topic, true, 'a-1', 'ann');
    await b.add(membership(channel, topic, true, 'b-1', 'ann'));
    // A presence read prunes too (here the only call once B stopped).
    await waitFor(async () => (await a.list(channel, alive.heads)).length === 0, 20_000, 'the dead member to be pruned');
    expect(await bus.drain()).toEqual([{ kind: 'leave', hubChannel: channel, channel: topic, private: true, member: { client: 'b-1', user: 'ann' } }]);
  });

  it('two live nodes pruning thousands of dead members at once send exactly one leave per member', async () => {
    // The live nodes' members (and the keys' TTL) outlast the wait for the dead node's to expire.
    const [a, c, dead] = [await node(20 * TTL), await node(20 * TTL), await node()];
    const name = unique('room');
    const channel = topicChannel('default', name);
    const bus = await listen(channel);
    const many = Array.from({ length: 2500 }, (_, i) => membership(channel, name, false, `d-${String(i).padStart(4, '0')}`, `u${i}`));
    await dead.refresh(many);
    const [ma, mc] = [membership(channel, name, false, 'a-1', 'ann'), membership(channel, name, false, 'c-1', 'cat')];
    await Promise.all([a.add(ma), c.add(mc)]);
    await expire(channel, many.map((m) => m.member.client));
    // One refresh round of both live nodes, twice each: their PUTs (100 each) and follow-up
    // PRUNEs (1000 each) interleave on Redis, and the round leaves no expired member behind.
    const before = expired;
    await Promise.all([a.refresh([ma]), c.refresh([mc]), a.refresh([ma]), c.refresh([mc])]);
    expect(expired - before).toBe(2500);
    const leaves = await bus.drain();
    expect(leaves.every((e) => e.kind === 'leave')).toBe(true);
    expect(leaves.map((e) => e.member.client).sort()).toEqual(many.map((m) => m.member.client));
    expect(leaves.find((e) => e.member.client === 'd-0042')?.member.user).toBe('u42');
    expect((await a.list(channel, ma.heads)).map((m) => m.client)).toEqual(['a-1', 'c-1']);
  });

  it('a member pruned while its node lived is announced with a join when the node re-asserts it; a removed one is not', async () => {
    const [a, b] = [await node(), await node()];
    const name = unique('room');
    const channel = topicChannel('default', name);
    const bus = await listen(channel);
    const alive = membership(channel, name, false, 'a-1', 'ann');
    const [stalled, gone] = [membership(channel, name, false, 'b-1', 'bob'), membership(channel, name, false, 'b-2', 'bea')];
    await a.add(alive);
    await b.refresh([stalled, gone]);
    await beatUntilGone(channel, ['b-1', 'b-2'], [[a, [alive]]]);
    expect((await bus.drain()).map((e) => `${e.kind} ${e.member.client}`).sort()).toEqual(['leave b-1', 'leave b-2']);
    // B comes back: b-2 unsubscribed meanwhile (its node sends that leave itself), b-1 is re-asserted.
    await b.remove(channel, 'b-2');
    await b.refresh([stalled]);
    expect(await bus.drain()).toEqual([{ kind: 'join', hubChannel: channel, channel: name, private: false, member: { client: 'b-1', user: 'bob' } }]);
    await b.refresh([stalled]);
    expect(await bus.drain()).toEqual([]);
    expect((await a.list(channel, alive.heads)).map((m) => m.client)).toEqual(['a-1', 'b-1']);
    // An add (a subscribe: its node publishes the join) never announces.
    await b.remove(channel, 'b-1');
    await b.add(membership(channel, name, false, 'b-3', 'bo'));
    expect(await bus.drain()).toEqual([]);
  });
});
