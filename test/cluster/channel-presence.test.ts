import { afterAll, describe, expect, it } from 'vitest';
import { slotOf } from '../../src/cluster/redis-slot.js';
import { topicChannel } from '../../src/core/targeting.js';
import { pushData } from '../helpers/grpc-client.js';
import { unique } from '../helpers/names.js';
import { NodeProcess } from '../helpers/node-process.js';
import { waitFor } from '../helpers/ports.js';
import { TestRedisCluster } from '../helpers/redis-cluster.js';
import { V1Client, type V1Format } from '../helpers/v1-client.js';
import { Cluster } from './support.js';

const CHANNELS = JSON.stringify({ namespaces: { room: { presence: true, joinLeave: true }, events: { joinLeave: true } } });

/** The clients a presence answer lists, as "client user". */
const listed = (r: Record<string, any>): string[] => ((r.presence?.clients ?? []) as Array<{ client: string; user?: string }>).map((i) => `${i.client} ${i.user ?? ''}`.trimEnd()).sort();

const v1: V1Client[] = [];
async function connect(cluster: Cluster, node: NodeProcess, uid?: string, format: V1Format = 'json'): Promise<{ c: V1Client; cid: string }> {
  const c = await V1Client.open(node.wsUrl, format);
  v1.push(c);
  const r = await c.command({ connect: { token: uid === undefined ? '' : await cluster.token(uid) } });
  return { c, cid: r.connect.client as string };
}

/**
 * Protocol v1 channel presence and join/leave across two CLI nodes on one real Redis: the
 * store is shared (a presence answer on either node lists both nodes' subscribers), join/leave
 * cross nodes through the bus, and a SIGKILLed node's members expire after --presence-ttl, with
 * one leave each, published by the Redis script of the surviving node's refresh that prunes them.
 */
describe('channel presence and join/leave across two nodes and Redis', () => {
  const cluster = new Cluster('channel-presence-secret-0123456789');
  afterAll(async () => {
    await Promise.allSettled(v1.map((c) => c.close()));
    await cluster.cleanup();
  });

  it('presence lists both nodes, join/leave reach the other node, a killed node drops out within the TTL', async () => {
    const redis = await cluster.startRedis();
    const args = ['--redis', redis.url, '--jwt-secret', cluster.secret, '--channels', CHANNELS, '--presence-ttl', '3s'];
    // Generous start timeouts: the box is shared (2 cores).
    const [a, b] = (await Promise.all([NodeProcess.start(args, {}, 60_000), NodeProcess.start(args, {}, 60_000)])) as [NodeProcess, NodeProcess];
    cluster.nodes.push(a, b);
    const channel = `room:${unique('x')}`;
    const a1 = await connect(cluster, a, 'alice', 'json');
    const a2 = await connect(cluster, a, undefined, 'proto');
    const b1 = await connect(cluster, b, 'bob', 'proto');
    await a1.c.subscribe(channel);
    await b1.c.subscribe(channel);
    // B's join reaches A's subscriber through Redis, and B's own.
    for (const c of [a1.c, b1.c]) expect((await c.next((m) => m.join?.info.client === b1.cid)).join).toMatchObject({ channel, info: { client: b1.cid, user: 'bob' } });
    // A's next join reaches B (protobuf) and both subscribers on A (JSON and protobuf).
    await a2.c.subscribe(channel);
    for (const c of [a1.c, a2.c, b1.c]) expect((await c.next((m) => m.join?.info.client === a2.cid)).join).toMatchObject({ channel, info: { client: a2.cid } });
    expect(b1.c.messages.filter((m) => m.join).map((m) => m.join.info.client)).toEqual([b1.cid, a2.cid]);

    const everyone = [`${a1.cid} alice`, a2.cid, `${b1.cid} bob`].sort();
    expect(listed(await a2.c.command({ presence: { channel } }))).toEqual(everyone);
    expect(listed(await b1.c.command({ presence: { channel } }))).toEqual(everyone);
    // The members live in one hash-tagged pair of keys, with a key TTL their nodes push back.
    const r = cluster.redisClient(redis);
    const core = topicChannel('default', channel);
    expect((await r.hkeys(`pushwire:cp:{${core}}:m`)).sort()).toEqual([a1.cid, a2.cid, b1.cid].sort());
    expect(await r.zcard(`pushwire:cp:{${core}}:x`)).toBe(3);
    const pttl = await r.pttl(`pushwire:cp:{${core}}:m`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(6000);

    // Unsubscribe on A: B hears the leave; presence on B forgets it.
    await a2.c.command({ unsubscribe: { channel } });
    await b1.c.next((m) => m.leave?.info.client === a2.cid);
    expect(listed(await b1.c.command({ presence: { channel } }))).toEqual([`${a1.cid} alice`, `${b1.cid} bob`].sort());
    // Disconnect on B: A hears the leave.
    const b2 = await connect(cluster, b, 'bob');
    await b2.c.subscribe(channel);
    await a1.c.next((m) => m.join?.info.client === b2.cid);
    await b2.c.close();
    await a1.c.next((m) => m.leave?.info.client === b2.cid);

    // The members outlive several refresh periods (ttl/3) while their nodes live.
    await new Promise((resolve) => setTimeout(resolve, 4000));
    expect(listed(await a1.c.command({ presence: { channel } }))).toEqual([`${a1.cid} alice`, `${b1.cid} bob`].sort());

    // B dies without cleaning up: A's refresh (every ttl/3) prunes its member once expired
    // (within ttl + ttl/3) and its script publishes the leave; A's member stays.
    await b.stop('SIGKILL');
    expect((await a1.c.next((m) => m.leave?.info.client === b1.cid, 20_000)).leave).toMatchObject({ channel, info: { client: b1.cid, user: 'bob' } });
    expect(listed(await a1.c.command({ presence: { channel } }))).toEqual([`${a1.cid} alice`]);
    expect(await r.hkeys(`pushwire:cp:{${core}}:m`)).toEqual([a1.cid]);
    expect(await a.metric('pushwire_channel_presence_expired_total')).toBe(1);
    // Publications still flow to the survivor, after the leave (one bus channel, in order): the leave came once.
    await pushData(cluster.grpcClient(a), { topic: channel, data: Buffer.from('still here') });
    await a1.c.next((m) => m.pub?.channel === channel);
    expect(a1.c.messages.filter((m) => m.leave?.info.client === b1.cid)).toHaveLength(1);
  }, 60_000);
});

/**
 * A dead node's members leave once even when several live nodes prune at once: three CLI nodes
 * on one Redis, C is SIGKILLed, and both survivors' refreshes race to prune its members. Here
 * the namespace has joinLeave without presence (its members are stored for their leave only),
 * and one channel is private (the leave names it as the client did, `private: true`).
 */
describe('leaves of a killed node, pruned by two live nodes', () => {
  const cluster = new Cluster('channel-presence-dead-node-secret');
  afterAll(async () => {
    await Promise.allSettled(v1.map((c) => c.close()));
    await cluster.cleanup();
  });

  it('every subscriber on every live node gets exactly one leave per member of the killed node', async () => {
    const redis = await cluster.startRedis();
    const args = ['--redis', redis.url, '--jwt-secret', cluster.secret, '--channels', CHANNELS, '--presence-ttl', '3s'];
    const [a, b, c] = (await Promise.all([0, 1, 2].map(() => NodeProcess.start(args, {}, 60_000)))) as [NodeProcess, NodeProcess, NodeProcess];
    cluster.nodes.push(a, b, c);
    const channel = `events:${unique('x')}`;
    const inbox = `events:${unique('inbox')}`;
    const onA = await connect(cluster, a, 'alice', 'json');
    const onB = await connect(cluster, b, 'bob', 'proto');
    const bobOnA = await connect(cluster, a, 'bob', 'json');
    await onA.c.subscribe(channel);
    await onB.c.subscribe(channel);
    await bobOnA.c.subscribe(inbox, { private: true });
    const dying = [await connect(cluster, c, 'carol'), await connect(cluster, c)];
    const bobOnC = await connect(cluster, c, 'bob', 'proto');
    for (const d of dying) await d.c.subscribe(channel);
    await bobOnC.c.subscribe(inbox, { private: true });
    for (const d of dying) for (const x of [onA, onB]) await x.c.next((m) => m.join?.info.client === d.cid);
    await bobOnA.c.next((m) => m.join?.info.client === bobOnC.cid);
    // joinLeave alone: no presence answer, but the members are in the store, for their leaves.
    expect((await onA.c.command({ presence: { channel } })).error).toMatchObject({ code: 30009 });
    expect((await cluster.redisClient(redis).hkeys(`pushwire:cp:{${topicChannel('default', channel)}}:m`)).length).toBe(4);

    await c.stop('SIGKILL');
    for (const x of [onA, onB]) for (const d of dying) expect((await x.c.next((m) => m.leave?.info.client === d.cid, 20_000)).leave).toMatchObject({ channel, info: { client: d.cid } });
    const leave = (await bobOnA.c.next((m) => m.leave?.info.client === bobOnC.cid, 20_000)).leave;
    expect(leave).toMatchObject({ channel: inbox, private: true, info: { client: bobOnC.cid, user: 'bob' } });
    // Publications after the leaves (same bus channel, in order) prove nothing else was on its way.
    await pushData(cluster.grpcClient(a), { topic: channel, data: Buffer.from('after') });
    for (const x of [onA, onB]) await x.c.next((m) => m.pub?.channel === channel);
    for (const x of [onA, onB]) expect(x.c.messages.filter((m) => m.leave).map((m) => m.leave.info.client).sort()).toEqual(dying.map((d) => d.cid).sort());
    expect(bobOnA.c.messages.filter((m) => m.leave)).toHaveLength(1);
    // A and B pruned the three between them, each member once.
    expect((await a.metric('pushwire_channel_presence_expired_total')) + (await b.metric('pushwire_channel_presence_expired_total'))).toBe(3);
  }, 90_000);
});

/**
 * The same on a Redis Cluster (3 masters): each channel's presence keys share its hash tag, so
 * every script runs on one slot, the slot of the channel's bus channel; one channel per master.
 */
describe('channel presence on a Redis Cluster', () => {
  const cluster = new Cluster('channel-presence-cluster-secret');
  let rc: TestRedisCluster | undefined;
  afterAll(async () => {
    await Promise.allSettled(v1.map((c) => c.close()));
    await cluster.cleanup();
    await rc?.stop();
  });

  it('presence and join/leave across two nodes, on every master', async () => {
    rc = await TestRedisCluster.start(3, 0);
    const masters = await rc.masters();
    const args = ['--redis', rc.url, '--jwt-secret', cluster.secret, '--channels', CHANNELS, '--presence-ttl', '3s'];
    const [a, b] = await Promise.all([NodeProcess.start(args, {}, 60_000), NodeProcess.start(args, {}, 60_000)]);
    cluster.nodes.push(a!, b!);
    const prefix = unique('room');
    for (const m of masters) {
      let channel = '';
      for (let i = 0; ; i++) {
        channel = `room:${prefix}-${i}`;
        const slot = slotOf(`pushwire:cp:{${topicChannel('default', channel)}}`);
        if (m.slots.some(([lo, hi]) => slot >= lo && slot <= hi)) break;
      }
      const x = await connect(cluster, a!, 'xena');
      const y = await connect(cluster, b!, undefined, 'proto');
      await x.c.subscribe(channel);
      await y.c.subscribe(channel);
      await x.c.next((msg) => msg.join?.info.client === y.cid, 30_000);
      // A write that failed while a fresh cluster's slot map settled is repaired by the next refresh (ttl/3).
      await waitFor(async () => listed(await y.c.command({ presence: { channel } })).length === 2, 10_000, 'both members listed');
      expect(listed(await y.c.command({ presence: { channel } }))).toEqual([`${x.cid} xena`, y.cid].sort());
      const core = topicChannel('default', channel);
      expect((await rc.client(m.port, (r) => r.hkeys(`pushwire:cp:{${core}}:m`))).sort()).toEqual([x.cid, y.cid].sort());
      await y.c.close();
      await x.c.next((msg) => msg.leave?.info.client === y.cid, 30_000);
      expect(listed(await x.c.command({ presence: { channel } }))).toEqual([`${x.cid} xena`]);
    }
  }, 120_000);
});
