import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import type { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PushDataRequest, type PushServiceClient } from '../../gen/pushwire/v1/push.js';
import { b64, restPush } from '../helpers/grpc-client.js';
import { unique } from '../helpers/names.js';
import { NodeProcess } from '../helpers/node-process.js';
import type { TestRedis } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/ports.js';
import { TestClient } from '../helpers/ws-client.js';
import { Cluster, channels, numsub } from './support.js';

/**
 * Projects across a Redis cluster: two CLI nodes with the same projects file. A push to one
 * project, accepted by either node, reaches that project's clients on both nodes and never the
 * other project's clients with the same uid and topic; the bus channels carry the pid.
 */

const SHOP_SECRET = 'cluster-shop-secret';
const BLOG_SECRET = 'cluster-blog-secret';
const SHOP_KEY = 'cluster-shop-key-0123456789';
const BLOG_KEY = 'cluster-blog-key-0123456789';

const dir = mkdtempSync(join(tmpdir(), 'pushwire-projects-cluster-'));

const token = (secret: string, uid: string): Promise<string> =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(uid).setIssuedAt().setExpirationTime('10m').sign(new TextEncoder().encode(secret));

describe('projects on a two-node Redis cluster', () => {
  // The secret is unused: these nodes log in per project (the projects file).
  const cluster = new Cluster('unused');
  let redis: TestRedis;
  let r: Redis;
  let A: NodeProcess;
  let B: NodeProcess;
  let grpcA: PushServiceClient;

  beforeAll(async () => {
    const file = join(dir, 'projects.yaml');
    writeFileSync(
      file,
      [
        'projects:',
        '  - pid: shop',
        '    login: { jwtSecret: ' + SHOP_SECRET + ' }',
        '    apiKeys: [ { key: ' + SHOP_KEY + ' } ]',
        '  - pid: blog',
        '    login: { jwtSecret: ' + BLOG_SECRET + ' }',
        '    apiKeys: [ { key: ' + BLOG_KEY + ' } ]',
        '',
      ].join('\n'),
    );
    redis = await cluster.startRedis();
    r = cluster.redisClient(redis);
    for (const _ of [0, 1]) cluster.nodes.push(await NodeProcess.start(['--redis', redis.url, '--projects', file]));
    [A, B] = cluster.nodes as [NodeProcess, NodeProcess];
    grpcA = cluster.grpcClient(A);
  });

  afterAll(async () => {
    await cluster.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const connect = async (node: NodeProcess, pid: string): Promise<TestClient> =>
    cluster.track(await TestClient.connect(`${node.wsUrl}?pid=${pid}`));

  /** A connection of `pid` on `node`, logged in as `uid`, on `topic` and private `topic`. */
  const member = async (node: NodeProcess, pid: 'shop' | 'blog', uid: string, topic: string): Promise<TestClient> => {
    const c = await connect(node, pid);
    expect(await c.login(await token(pid === 'shop' ? SHOP_SECRET : BLOG_SECRET, uid))).toMatchObject({ code: 20003 });
    expect((await c.subscribe(topic)).code).toBe(20001);
    expect((await c.subscribePrivate(topic)).code).toBe(20001);
    return c;
  };

  const grpcPush = (key: string, req: { uid?: string; topic?: string; data: string; pid?: string }): Promise<number> => {
    const md = new Metadata();
    md.set('authorization', `Bearer ${key}`);
    const msg = PushDataRequest.fromPartial({ uid: req.uid ?? '', topic: req.topic ?? '', data: Buffer.from(req.data), pid: req.pid ?? '' });
    return new Promise((resolve) => grpcA.pushData(msg, md, (err: ServiceError | null) => resolve(err?.code ?? 0)));
  };

  const restPushAs = async (node: NodeProcess, key: string, req: { uid?: string; topic?: string; data: string }): Promise<void> => {
    const res = await restPush(
      node.httpUrl,
      { uid: req.uid ?? '', topic: req.topic ?? '', data: b64(req.data) },
      { headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` } },
    );
    expect(res.status, JSON.stringify(res.json)).toBe(200);
  };

  const got = (c: TestClient): string[] => c.deliveries().filter((t) => !t.startsWith('fence-'));

  it("a push to shop accepted by node A reaches shop's clients on both nodes and no blog client", async () => {
    const uid = unique('u');
    const topic = unique('t');
    const shopA = await member(A, 'shop', uid, topic);
    const shopB = await member(B, 'shop', uid, topic);
    const blogA = await member(A, 'blog', uid, topic);
    const blogB = await member(B, 'blog', uid, topic);

    // Every rule, through node A (gRPC with shop's key, no pid → the key's project).
    const pushes = [
      { topic, data: 'c-topic' },
      { uid, topic, data: 'c-private' },
      { uid, data: 'c-user' },
      { data: 'c-broadcast' },
    ];
    for (const p of pushes) expect(await grpcPush(SHOP_KEY, p)).toBe(0);
    // The key cannot aim at blog.
    expect(await grpcPush(SHOP_KEY, { topic, data: 'c-denied', pid: 'blog' })).toBe(7);
    const want = pushes.map((p) => p.data);
    for (const c of [shopA, shopB]) {
      await c.next((f) => f.text === 'c-broadcast', 10_000);
      expect(got(c)).toEqual(want);
    }

    // Fence: a blog broadcast published through the same node (same Redis connection) after the
    // shop pushes reaches each node's subscriber after them.
    const tag = unique('fence');
    expect(await grpcPush(BLOG_KEY, { data: tag })).toBe(0);
    for (const c of [blogA, blogB]) await c.next((f) => f.text === tag, 10_000);
    expect(got(blogA)).toEqual([]);
    expect(got(blogB)).toEqual([]);
  });

  it('and the other way round: blog through node B reaches blog on both nodes, never shop', async () => {
    const uid = unique('u');
    const topic = unique('t');
    const shopA = await member(A, 'shop', uid, topic);
    const shopB = await member(B, 'shop', uid, topic);
    const blogA = await member(A, 'blog', uid, topic);
    const blogB = await member(B, 'blog', uid, topic);
    await restPushAs(B, BLOG_KEY, { uid, topic, data: 'd-private' });
    await restPushAs(B, BLOG_KEY, { topic, data: 'd-topic' });
    for (const c of [blogA, blogB]) {
      await c.next((f) => f.text === 'd-topic', 10_000);
      expect(got(c)).toEqual(['d-private', 'd-topic']);
    }
    const tag = unique('fence');
    await restPushAs(B, SHOP_KEY, { data: tag });
    for (const c of [shopA, shopB]) await c.next((f) => f.text === tag, 10_000);
    expect(got(shopA)).toEqual([]);
    expect(got(shopB)).toEqual([]);
  });

  it("Redis channels carry the pid: shop's topic is pushwire:shop/t:<topic>; nothing of the default project exists", async () => {
    const uid = unique('u');
    const topic = unique('t');
    await member(A, 'shop', uid, topic);
    await member(B, 'blog', uid, topic);
    const all = await channels(r);
    expect(all).toContain(`pushwire:shop/t:${topic}`);
    expect(all).toContain('pushwire:shop/b');
    expect(all).toContain(`pushwire:shop/u:${uid}`);
    expect(all).toContain(`pushwire:shop/p:${uid.length}:${uid}:${topic}`);
    expect(all).toContain(`pushwire:blog/t:${topic}`);
    expect(all).toContain('pushwire:blog/b');
    // No unprefixed (default project) channel: not the broadcast, not the shared topic or uid.
    expect(all).not.toContain('pushwire:b');
    expect(all).not.toContain(`pushwire:t:${topic}`);
    expect(all).not.toContain(`pushwire:u:${uid}`);
    expect(all.filter((c) => !/^pushwire:(shop|blog)\//.test(c))).toEqual([]);
    // shop's topic is held on node A only, blog's on node B only.
    expect(await numsub(r, `shop/t:${topic}`)).toBe(1);
    expect(await numsub(r, `blog/t:${topic}`)).toBe(1);
  });

  it('closing the clients releases their project channels', async () => {
    await Promise.all(cluster.clients.splice(0).map((c) => c.close()));
    await waitFor(async () => (await channels(r)).length === 0, 10_000, 'every pushwire channel released');
  });
});
