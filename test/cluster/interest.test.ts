import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PushServiceClient } from '../../gen/pushwire/v1/push.js';
import { b64, pushData, restPush } from '../helpers/grpc-client.js';
import type { NodeProcess } from '../helpers/node-process.js';
import { sleep, waitFor } from '../helpers/ports.js';
import type { TestRedis } from '../helpers/redis-server.js';
import { Cluster, channels, numsub, waitNumsub } from './support.js';

/**
 * Interest-based subscriptions, checked in Redis itself (PUBSUB NUMSUB / CHANNELS) and in the
 * nodes' bus metrics: a node subscribes only to channels its own clients hold, plus "b".
 */
describe('interest-based Redis subscriptions', () => {
  const cluster = new Cluster('interest-secret');
  let redis: TestRedis;
  let r: Redis;
  let A: NodeProcess;
  let B: NodeProcess;
  let grpcA: PushServiceClient;

  const received = (node: NodeProcess): Promise<number> => node.metric('pushwire_bus_received_total');

  beforeAll(async () => {
    redis = await cluster.startRedis();
    r = cluster.redisClient(redis);
    // Sequential, so that A's Redis connections are the older ones (see the CLIENT LIST test).
    A = await cluster.node(redis);
    B = await cluster.node(redis);
    grpcA = cluster.grpcClient(A);
  });

  afterAll(async () => {
    await cluster.cleanup();
  });

  it("a node without connections holds only its own channel; with connections, its project's broadcast channel", async () => {
    expect(await channels(r)).toEqual([]);
    for (const node of [A, B]) expect(await numsub(r, `n:${node.nodeId}`)).toBe(1);
    const a = await cluster.connect(A);
    // The connected frame waits for the broadcast subscription.
    expect(await numsub(r, 'b')).toBe(1);
    const b = await cluster.connect(B);
    expect(await numsub(r, 'b')).toBe(2);
    expect(await channels(r)).toEqual(['pushwire:b']);
    await Promise.all([a.close(), b.close()]);
    await waitFor(async () => (await channels(r)).length === 0, 5000, 'no channel left');
  });

  it('a topic held only on node A has exactly one Redis subscriber, and node B never receives its traffic', async () => {
    // B has a connection (so it hears broadcasts, used as fences below), but none on topic X.
    const idleOnB = await cluster.connect(B);
    const a = await cluster.connect(A);
    expect((await a.subscribe('x-only-a')).code).toBe(20001);
    // The 20001 reply waits for Redis to confirm the subscription.
    expect(await numsub(r, 't:x-only-a')).toBe(1);
    expect(await channels(r)).toEqual(['pushwire:b', 'pushwire:t:x-only-a']);

    // The one subscriber is node A's subscriber connection (the older one): sub=4 (its node channel,
    // the consumer signal channel, "b" and the topic); B's holds its node channel, the signal and "b".
    const subs = String(await r.call('CLIENT', 'LIST'))
      .split('\n')
      .filter((l) => l.includes('name=pushwire-sub'))
      .map((l) => ({ id: Number(/\bid=(\d+)/.exec(l)![1]), sub: Number(/\bsub=(\d+)/.exec(l)![1]) }))
      .sort((x, y) => x.id - y.id);
    expect(subs.map((s) => s.sub)).toEqual([4, 3]);

    const beforeA = await received(A);
    const beforeB = await received(B);
    const n = 50;
    // Pushed through both nodes: publishing through B does not make B hear it either.
    for (let i = 0; i < n; i++) {
      if (i % 2 === 0) await pushData(grpcA, { topic: 'x-only-a', data: Buffer.from(`x-${i}`) });
      else expect((await restPush(B.httpUrl, { topic: 'x-only-a', data: b64(`x-${i}`) })).status).toBe(200);
    }
    await a.next((f) => f.text === `x-${n - 1}`);
    await waitFor(async () => (await received(A)) >= beforeA + n, 5000, 'A received every x push');
    expect(a.deliveries().filter((d) => d.startsWith('x-'))).toHaveLength(n);

    // Fence: a broadcast published after the x pushes, by both publishers, reaches B after
    // anything those publishers sent before it. B counts exactly the two broadcasts.
    await pushData(grpcA, { data: Buffer.from('fence-1') });
    expect((await restPush(B.httpUrl, { data: b64('fence-2') })).status).toBe(200);
    await waitFor(async () => (await received(B)) >= beforeB + 2, 5000, 'B received the fences');
    await a.next((f) => f.text === 'fence-2');
    expect(await received(B)).toBe(beforeB + 2);
    expect(await received(A)).toBe(beforeA + n + 2);

    // Broadcasts do make B's counter grow, one per push.
    const m = 20;
    const beforeB2 = await received(B);
    for (let i = 0; i < m; i++) await pushData(grpcA, { data: Buffer.from(`bc-${i}`) });
    await waitFor(async () => (await received(B)) >= beforeB2 + m, 5000, 'B received the broadcasts');
    await a.next((f) => f.text === `bc-${m - 1}`);
    expect(await received(B)).toBe(beforeB2 + m);

    await Promise.all([a.close(), idleOnB.close()]);
    await waitNumsub(r, 't:x-only-a', 0);
  });

  it('the last local unsubscribe drops the channel from Redis, after the delay', async () => {
    const a = await cluster.connect(A);
    expect((await a.subscribe('drop-me')).code).toBe(20001);
    expect(await numsub(r, 't:drop-me')).toBe(1);
    expect((await a.unsubscribe('drop-me')).code).toBe(20002);
    // Unsubscribing is delayed (~500 ms) so churn costs nothing; then it is gone.
    await waitNumsub(r, 't:drop-me', 0);
    expect(await channels(r)).not.toContain('pushwire:t:drop-me');
    await a.close();
  });

  it('a disconnect releases every channel the connection held', async () => {
    const a = await cluster.connect(A);
    expect((await a.subscribe('gone-1')).code).toBe(20001);
    expect((await a.subscribe('gone-2')).code).toBe(20001);
    expect((await a.login(await cluster.token('gone-user'))).code).toBe(20003);
    expect((await a.subscribePrivate('gone-3')).code).toBe(20001);
    expect(await channels(r)).toEqual(
      ['pushwire:b', 'pushwire:p:9:gone-user:gone-3', 'pushwire:t:gone-1', 'pushwire:t:gone-2', 'pushwire:u:gone-user'].sort(),
    );
    a.ws.terminate(); // abrupt: no close handshake
    await waitFor(async () => (await channels(r)).length === 0, 5000, 'no channel left');
    expect(await channels(r)).toEqual([]);
  });

  it('two clients on the same node share one Redis subscription until the last one leaves', async () => {
    const [a1, a2] = await Promise.all([cluster.connect(A), cluster.connect(A)]);
    expect((await a1.subscribe('shared')).code).toBe(20001);
    expect((await a2.subscribe('shared')).code).toBe(20001);
    expect(await numsub(r, 't:shared')).toBe(1);

    expect((await a1.unsubscribe('shared')).code).toBe(20002);
    await sleep(900); // past the unsubscribe delay: a2 still holds it
    expect(await numsub(r, 't:shared')).toBe(1);
    await pushData(grpcA, { topic: 'shared', data: Buffer.from('still-shared') });
    await a2.next((f) => f.text === 'still-shared');

    await a2.close();
    await waitNumsub(r, 't:shared', 0);
    await a1.close();
  });

  it('a client on each node makes two Redis subscriptions, one per node', async () => {
    const [a, b] = await Promise.all([cluster.connect(A), cluster.connect(B)]);
    expect((await a.subscribe('both')).code).toBe(20001);
    expect(await numsub(r, 't:both')).toBe(1);
    expect((await b.subscribe('both')).code).toBe(20001);
    expect(await numsub(r, 't:both')).toBe(2);
    await b.close();
    await waitNumsub(r, 't:both', 1);
    await a.close();
    await waitNumsub(r, 't:both', 0);
  });

  it('subscribing twice on one connection holds one reference: one unsubscribe releases it', async () => {
    const a = await cluster.connect(A);
    expect((await a.subscribe('twice')).code).toBe(20001);
    expect((await a.subscribe('twice')).code).toBe(20001);
    expect(await numsub(r, 't:twice')).toBe(1);
    expect((await a.unsubscribe('twice')).code).toBe(20002);
    await waitNumsub(r, 't:twice', 0);
    // Unsubscribing again (nothing held) must not disturb another client's reference.
    const other = await cluster.connect(A);
    expect((await other.subscribe('twice')).code).toBe(20001);
    expect((await a.unsubscribe('twice')).code).toBe(20002);
    await sleep(900);
    expect(await numsub(r, 't:twice')).toBe(1);
    await Promise.all([a.close(), other.close()]);
    await waitNumsub(r, 't:twice', 0);
  });

  it('resubscribing within the delay keeps the subscription and delivery', async () => {
    const a = await cluster.connect(A);
    expect((await a.subscribe('churn')).code).toBe(20001);
    for (let i = 0; i < 5; i++) {
      expect((await a.unsubscribe('churn')).code).toBe(20002);
      expect((await a.subscribe('churn')).code).toBe(20001);
    }
    await sleep(900);
    expect(await numsub(r, 't:churn')).toBe(1);
    expect((await restPush(B.httpUrl, { topic: 'churn', data: b64('after-churn') })).status).toBe(200);
    await a.next((f) => f.text === 'after-churn');
    // Resubscribing after the channel was dropped subscribes it again.
    expect((await a.unsubscribe('churn')).code).toBe(20002);
    await waitNumsub(r, 't:churn', 0);
    expect((await a.subscribe('churn')).code).toBe(20001);
    expect(await numsub(r, 't:churn')).toBe(1);
    expect((await restPush(B.httpUrl, { topic: 'churn', data: b64('after-drop') })).status).toBe(200);
    await a.next((f) => f.text === 'after-drop');
    await a.close();
    await waitNumsub(r, 't:churn', 0);
  });

  it('user channels appear on login and vanish on logout; private topics go with them', async () => {
    const [a1, a2, b] = await Promise.all([cluster.connect(A), cluster.connect(A), cluster.connect(B)]);
    expect(await numsub(r, 'u:alice')).toBe(0);

    expect((await a1.login(await cluster.token('alice'))).code).toBe(20003);
    expect(await numsub(r, 'u:alice')).toBe(1);
    expect((await a2.login(await cluster.token('alice'))).code).toBe(20003);
    expect(await numsub(r, 'u:alice')).toBe(1); // same node: still one
    expect((await b.login(await cluster.token('alice'))).code).toBe(20003);
    expect(await numsub(r, 'u:alice')).toBe(2);

    expect((await a1.subscribePrivate('inbox')).code).toBe(20001);
    expect(await numsub(r, 'p:5:alice:inbox')).toBe(1);

    expect((await a1.logout()).code).toBe(20004);
    await waitNumsub(r, 'p:5:alice:inbox', 0);
    await sleep(600);
    expect(await numsub(r, 'u:alice')).toBe(2); // a2 still holds it on A

    expect((await a2.logout()).code).toBe(20004);
    await waitNumsub(r, 'u:alice', 1);
    expect((await b.logout()).code).toBe(20004);
    await waitNumsub(r, 'u:alice', 0);

    // Logging in as another user swaps the user channel.
    expect((await a1.login(await cluster.token('alice'))).code).toBe(20003);
    expect(await numsub(r, 'u:alice')).toBe(1);
    expect((await a1.login(await cluster.token('bob'))).code).toBe(20003);
    expect(await numsub(r, 'u:bob')).toBe(1);
    await waitNumsub(r, 'u:alice', 0);

    await Promise.all([a1.close(), a2.close(), b.close()]);
    await waitFor(async () => (await channels(r)).length === 0, 5000, 'no channel left');
    expect(await channels(r)).toEqual([]);
  });
});
