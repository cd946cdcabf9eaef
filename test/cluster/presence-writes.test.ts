import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unique } from '../helpers/names.js';
import type { NodeProcess } from '../helpers/node-process.js';
import type { TestRedis } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/ports.js';
import { PresenceClients } from '../helpers/presence-client.js';
import type { TestClient } from '../helpers/ws-client.js';
import { Cluster } from './support.js';

/**
 * The presence write path (src/cluster/redis-presence-writes.ts) through CLI nodes on a
 * test-owned Redis: a refresh costs one call per project whatever the connections, state the
 * store lost comes back with the next refresh, and a node restarted under the same id replaces
 * what its previous process left.
 */

const TTL_MS = 1500;
const TTL = ['--presence-ttl', `${TTL_MS}ms`];

async function calls(r: Redis, command: string): Promise<number> {
  const line = (await r.info('commandstats')).split('\n').find((l) => l.startsWith(`cmdstat_${command}:`));
  return Number(/calls=(\d+)/.exec(line ?? '')?.[1] ?? 0);
}

describe('presence writes: batched, refreshed per node, repaired by the refresh', () => {
  const cluster = new Cluster('presence-writes-secret');
  let r: Redis;
  let redis: TestRedis;
  let A: NodeProcess;
  let a: PresenceClients;

  beforeAll(async () => {
    redis = await cluster.startRedis();
    r = cluster.redisClient(redis);
    A = await cluster.node(redis, TTL);
    a = new PresenceClients(A.grpcAddress);
    cluster.closers.push(() => a.close());
  });
  afterAll(() => cluster.cleanup());

  const login = async (node: NodeProcess, uid: string): Promise<TestClient> => {
    const c = await cluster.connect(node);
    expect((await c.login(await cluster.token(uid))).code).toBe(20003);
    return c;
  };
  const connections = async (): Promise<number> => (await a.count({ pid: '' })).connections;

  it('a refresh touches no entry: idle connections cost no per-connection Redis work', async () => {
    await Promise.all(Array.from({ length: 40 }, (_, i) => login(A, `idle${i}`)));
    await waitFor(async () => (await connections()) === 40, 5000, '40 online');
    const [hget0, zadd0, hsetnx0] = [await calls(r, 'hget'), await calls(r, 'zadd'), await calls(r, 'hsetnx')];
    // Three refresh periods (ttl/3 each).
    await new Promise((res) => setTimeout(res, TTL_MS));
    // Before: every refresh re-asserted each entry (an HGET and a ZADD per connection, 120 of each here).
    expect((await calls(r, 'hget')) - hget0).toBeLessThan(20);
    expect((await calls(r, 'zadd')) - zadd0).toBeLessThan(20);
    expect((await calls(r, 'hsetnx')) - hsetnx0).toBe(0);
    expect(await connections()).toBe(40);
  });

  it('entries the store lost (FLUSHALL, as a Redis restart without persistence) are re-registered by the next refresh', async () => {
    const before = await a.count({ pid: '' });
    await r.flushall();
    await waitFor(async () => (await a.count({ pid: '' })).connections === before.connections, 5000, 'presence re-registered');
    expect((await a.count({ pid: '' })).users).toBe(before.users);
    expect(await r.hlen('pushwire:presence:{default}:conns')).toBe(before.connections);
    expect(await r.scard(`pushwire:presence:{default}:node:${A.nodeId}`)).toBe(before.connections);
    await Promise.all(cluster.clients.splice(0).map((c) => c.close()));
    await waitFor(async () => (await connections()) === 0, 5000, 'everyone gone');
    // The node holds nothing in the project any more: after a refresh it leaves the project's expiry index.
    await waitFor(async () => (await r.zcard('pushwire:presence:{default}:nodes')) === 0, 5000, 'node forgotten');
  });

  it('a node restarted under the same id replaces what its SIGKILLed process left (its new writes keep the id alive)', async () => {
    const id = unique('again');
    const first = await cluster.node(redis, [...TTL, '--node-id', id]);
    const stale = unique('stale');
    await login(first, stale);
    await login(first, unique('stale'));
    await waitFor(async () => (await connections()) === 2, 5000, 'two online');
    await first.stop('SIGKILL');
    cluster.clients.splice(0).forEach((c) => void c.close());
    const second = await cluster.node(redis, [...TTL, '--node-id', id]);
    const fresh = unique('fresh');
    await login(second, fresh);
    await waitFor(async () => (await connections()) === 1, 5000, 'only the new connection');
    const { users } = await a.get({ pid: '', uids: [stale, fresh] });
    expect(users.map((u) => u.online)).toEqual([false, true]);
  });
});
