import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientEventType } from '../../gen/pushwire/v1/backend.js';
import type { PushServiceClient } from '../../gen/pushwire/v1/push.js';
import { slotOf } from '../../src/cluster/redis-slot.js';
import { SIGNAL_CHANNEL } from '../../src/core/backend/consumer-signal.js';
import { broadcastChannel, nodeChannel, topicChannel } from '../../src/core/targeting.js';
import { TestConsumer } from '../helpers/backend-client.js';
import { pushData } from '../helpers/grpc-client.js';
import { metric } from '../helpers/metrics.js';
import { NodeProcess } from '../helpers/node-process.js';
import { waitFor } from '../helpers/ports.js';
import { PresenceClients } from '../helpers/presence-client.js';
import { TestRedisCluster, type NodeInfo } from '../helpers/redis-cluster.js';
import type { TestClient } from '../helpers/ws-client.js';
import { Cluster, count } from './support.js';

/**
 * Real CLI nodes on a real Redis Cluster (3 masters, 3 replicas, started by the harness):
 * sharded pub/sub puts each channel on the master of its slot, and only there; pushes,
 * idempotency, presence and backend consumers work with every key family hash-tagged.
 * Bus channels are `pushwire:{<channel>}` (src/cluster/redis-keys.ts).
 */
describe('pushwire on a Redis Cluster', () => {
  const cluster = new Cluster('redis-cluster-secret');
  let rc: TestRedisCluster;
  let masters: NodeInfo[];
  let A: NodeProcess;
  let B: NodeProcess;
  let grpcA: PushServiceClient;
  /** One topic per master: topics[i] hashes to a slot of masters[i]. */
  const topics: string[] = [];
  const subs: TestClient[] = [];

  const busChannel = (channel: string): string => `pushwire:{${channel}}`;
  const ownerOf = (channel: string): NodeInfo => {
    const slot = slotOf(busChannel(channel));
    return masters.find((m) => m.slots.some(([a, b]) => slot >= a && slot <= b))!;
  };
  const shardChannels = (port: number): Promise<string[]> =>
    rc.client(port, async (r) => ((await r.call('PUBSUB', 'SHARDCHANNELS', 'pushwire:*')) as string[]).sort());

  beforeAll(async () => {
    rc = await TestRedisCluster.start(3, 1);
    masters = await rc.masters();
    expect(masters).toHaveLength(3);
    for (const m of masters) {
      for (let i = 0; ; i++) {
        const t = `shard-${m.port}-${i}`;
        if (ownerOf(topicChannel('default', t)) === m) {
          topics.push(t);
          break;
        }
      }
    }
    const node = async (): Promise<NodeProcess> => {
      const n = await NodeProcess.start(['--redis', rc.url, '--jwt-secret', cluster.secret]);
      cluster.nodes.push(n);
      return n;
    };
    [A, B] = await Promise.all([node(), node()]);
    grpcA = cluster.grpcClient(A);
    for (const t of topics) {
      const c = await cluster.connect(B);
      expect((await c.subscribe(t)).code).toBe(20001);
      subs.push(c);
    }
  }, 60_000);

  afterAll(async () => {
    await cluster.cleanup();
    await rc?.stop();
  });

  it('subscribes each channel on the master of its slot, and each master carries only its own channels', async () => {
    const expected = new Map<number, string[]>(masters.map((m) => [m.port, []]));
    // B's clients hear the project's broadcasts and their topics; each node its own channel (pushes to cids) and the consumer signal.
    for (const ch of [...topics.map((t) => topicChannel('default', t)), broadcastChannel('default'), nodeChannel(A.nodeId), nodeChannel(B.nodeId), SIGNAL_CHANNEL]) {
      expected.get(ownerOf(ch).port)!.push(busChannel(ch));
    }
    const actual = async (): Promise<Record<number, string[]>> =>
      Object.fromEntries(
        await Promise.all(masters.map(async (m) => [m.port, (await shardChannels(m.port)).filter((c) => !c.startsWith('pushwire:be:') && !c.startsWith('pushwire:presence:'))])),
      );
    const want = Object.fromEntries([...expected].map(([port, list]) => [port, list.sort()]));
    await waitFor(async () => JSON.stringify(await actual()) === JSON.stringify(want), 10_000, 'every channel on its own master').catch(() => {});
    expect(await actual()).toEqual(want);
    // One subscriber per topic (node B's); A holds none of them. Replicas carry nothing.
    for (const t of topics) {
      const owner = ownerOf(topicChannel('default', t)).port;
      const numsub = await rc.client(owner, (r) => r.call('PUBSUB', 'SHARDNUMSUB', busChannel(topicChannel('default', t))) as Promise<[string, number]>);
      expect(Number(numsub[1])).toBe(1);
    }
    for (const port of rc.ports.filter((p) => !masters.some((m) => m.port === p))) expect(await shardChannels(port)).toEqual([]);
    expect(await metric(B.httpUrl, 'pushwire_redis_shard_up', { role: 'bus' })).toBeGreaterThan(0);
  });

  it('a push on node A reaches the subscribers of each shard on node B, exactly once', async () => {
    for (const [i, t] of topics.entries()) {
      const text = `to ${t}`;
      const res = await pushData(grpcA, { topic: t, data: Buffer.from(text) });
      expect(res.nodeId).toBe(A.nodeId);
      await subs[i]!.next((f) => f.text === text);
    }
    // A broadcast (one channel, one shard) and a push to a cid (node B's channel).
    await pushData(grpcA, { data: Buffer.from('everyone') });
    await Promise.all(subs.map((c) => c.next((f) => f.text === 'everyone')));
    await pushData(grpcA, { cids: [subs[0]!.cid], data: Buffer.from('just you') });
    await subs[0]!.next((f) => f.text === 'just you');
    for (const [i, c] of subs.entries()) expect(count(c, `to ${topics[i]}`)).toBe(1);
  });

  it('idempotency keys work with the claim in the channel slot: the retry is a duplicate, published once', async () => {
    const first = await pushData(grpcA, { topic: topics[1]!, idempotencyKey: 'k-1', data: Buffer.from('once') });
    const again = await pushData(grpcA, { topic: topics[1]!, idempotencyKey: 'k-1', data: Buffer.from('once') });
    expect(first.duplicate).toBe(false);
    expect(again).toMatchObject({ duplicate: true, messageId: first.messageId });
    await subs[1]!.next((f) => f.text === 'once');
    await pushData(grpcA, { topic: topics[1]!, data: Buffer.from('after once') });
    await subs[1]!.next((f) => f.text === 'after once');
    expect(count(subs[1]!, 'once')).toBe(1);
  });

  it('presence: connections on both nodes counted, listed and watched across the cluster', async () => {
    const pa = new PresenceClients(A.grpcAddress);
    cluster.closers.push(() => pa.close());
    const alice = await cluster.connect(A);
    expect((await alice.login(await cluster.token('alice'))).code).toBe(20003);
    const bob = await cluster.connect(B);
    expect((await bob.login(await cluster.token('bob'))).code).toBe(20003);
    await waitFor(async () => (await pa.count({ pid: '' })).users === 2, 10_000, 'two users online');
    const page = await pa.list({ pid: '', pageSize: 10 });
    expect(page.users.map((u) => u.uid).sort()).toEqual(['alice', 'bob']);
    await bob.close();
    await waitFor(async () => (await pa.count({ pid: '' })).users === 1, 10_000, 'bob gone');
    await alice.close();
  });

  it('a backend consumer on node A gets the requests of node B clients on its per-project frame channel', async () => {
    const consumer = await TestConsumer.connect(A.grpcAddress, { group: 'g' });
    cluster.closers.push(() => consumer.close());
    // The frame channel lives in the consumer directory's slot (tag {default}).
    const frameChannel = `pushwire:be:{default}:n:${A.nodeId}`;
    const owner = masters.find((m) => m.slots.some(([a, b]) => slotOf(frameChannel) >= a && slotOf(frameChannel) <= b))!;
    await waitFor(async () => (await shardChannels(owner.port)).includes(frameChannel), 10_000, 'frame channel subscribed');
    const c = await cluster.connect(B);
    expect(await c.request({ code: 7, topic: 'work', data: { n: 1 } })).toMatchObject({ code: 20005 });
    const e = await consumer.next((x) => x.type === ClientEventType.CLIENT_EVENT_TYPE_REQUEST, 10_000);
    expect(e).toMatchObject({ cid: c.cid, nodeId: B.nodeId, topic: 'work' });
  });
});
