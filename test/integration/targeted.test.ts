import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import type { PushDataRequest } from '../../gen/pushwire/v1/push.js';
import { useTestNode } from '../helpers/fixture.js';
import { b64, pushClient, pushData, restPush } from '../helpers/grpc-client.js';
import { unique } from '../helpers/names.js';
import { NodeProcess } from '../helpers/node-process.js';
import { TestRedis } from '../helpers/redis-server.js';
import { TestClient } from '../helpers/ws-client.js';

const SECRET = 'targeted-secret';
const token = (sub: string) => new SignJWT({ sub }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));

describe('targeted pushes: uids, cids, tags (one node)', () => {
  const node = useTestNode(['--jwt-secret', SECRET]);

  /** Every client in `all` gets a fence broadcast; then each one's deliveries are exactly `expected`. */
  async function expectDeliveries(all: TestClient[], expected: Map<TestClient, string[]>): Promise<void> {
    const fence = unique('fence');
    await pushData(node.grpc, { data: Buffer.from(fence) });
    for (const c of all) {
      await c.next((f) => f.text === fence);
      expect(c.deliveries().filter((d) => d !== fence && !d.startsWith('fence-'))).toEqual(expected.get(c) ?? []);
    }
  }

  const push = (req: Partial<PushDataRequest>) => pushData(node.grpc, req);

  it('uids: every connection of any listed user, and nobody else', async () => {
    const [u1, u2, u3] = [unique('u'), unique('u'), unique('u')];
    const a = await node.connect();
    const b = await node.connect();
    const c = await node.connect();
    const anon = await node.connect();
    await a.login(await token(u1));
    await b.login(await token(u2));
    await c.login(await token(u3));
    await push({ uids: [u1, u2], data: Buffer.from('to u1 u2') });
    await expectDeliveries([a, b, c, anon], new Map([[a, ['to u1 u2']], [b, ['to u1 u2']]]));
  });

  it('tags: subscribers of any listed topic, once each even when subscribed to several', async () => {
    const [t1, t2, t3] = [unique('t'), unique('t'), unique('t')];
    const both = await node.connect();
    const one = await node.connect();
    const other = await node.connect();
    await both.subscribe(t1);
    await both.subscribe(t2);
    await one.subscribe(t2);
    await other.subscribe(t3);
    await push({ tags: [t1, t2], data: Buffer.from('tagged') });
    await expectDeliveries([both, one, other], new Map([[both, ['tagged']], [one, ['tagged']]]));
  });

  it('cids: exactly the named connections; lists intersect (uids ∩ cids ∩ tags)', async () => {
    const [u1, u2] = [unique('u'), unique('u')];
    const t = unique('t');
    const a = await node.connect();
    const b = await node.connect();
    const c = await node.connect();
    await a.login(await token(u1));
    await b.login(await token(u2));
    await a.subscribe(t);
    await push({ cids: [a.cid, c.cid], data: Buffer.from('by cid') });
    // b is u2: not in uids. a is u1 and subscribed to t. c is not logged in.
    await push({ cids: [a.cid, b.cid, c.cid], uids: [u1], data: Buffer.from('cid and uid') });
    await push({ uids: [u1, u2], tags: [t], data: Buffer.from('uid and tag') });
    await push({ cids: [b.cid], uids: [u1], data: Buffer.from('empty intersection') });
    await expectDeliveries(
      [a, b, c],
      new Map([
        [a, ['by cid', 'cid and uid', 'uid and tag']],
        [c, ['by cid']],
      ]),
    );
  });

  it('REST takes the lists as JSON arrays of strings', async () => {
    const u = unique('u');
    const a = await node.connect();
    await a.login(await token(u));
    const res = await restPush(node.server.httpUrl, { uids: [u], data: b64('via rest') });
    expect(res.status).toBe(200);
    await a.next((f) => f.text === 'via rest');
    const bad = await restPush(node.server.httpUrl, { uids: u, data: b64('x') });
    expect(bad.json).toEqual({ code: 3, message: 'invalid value for repeated string field uids: expected an array of strings', details: [] });
  });

  it('refuses invalid selectors with INVALID_ARGUMENT naming the entry', async () => {
    const cases: Array<[Partial<PushDataRequest>, string]> = [
      [{ uid: 'a', uids: ['b'] }, 'uid/topic cannot be combined with uids/cids/tags'],
      [{ topic: 'a', tags: ['b'] }, 'uid/topic cannot be combined with uids/cids/tags'],
      [{ cids: ['not-a-cid!'] }, 'cids[0]: not a connection id'],
      [{ uids: ['ok', 'bad\u0001'] }, 'uids[1]: uid contains control characters'],
      [{ tags: [''] }, 'tags[0]: topic must not be empty'],
      [{ uids: Array.from({ length: 1001 }, (_, i) => `u${i}`) }, 'uids holds at most 1000 entries'],
    ];
    for (const [req, message] of cases) {
      const err = (await push(req).catch((e: unknown) => e)) as ServiceError;
      expect(err.code, message).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toBe(message);
    }
  });
});

describe('targeted pushes never cross projects', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pushwire-targeted-'));
  const file = join(dir, 'projects.json');
  writeFileSync(file, JSON.stringify({ projects: [{ pid: 'shop' }, { pid: 'blog' }] }));
  const node = useTestNode(['--projects', file]);

  it("a push of one project naming another project's cid or tag reaches nobody", async () => {
    const shop = await node.connect(`${node.server.wsUrl}?pid=shop`);
    await shop.subscribe('news');
    await pushData(node.grpc, { pid: 'blog', cids: [shop.cid], data: Buffer.from('leak by cid') });
    await pushData(node.grpc, { pid: 'blog', tags: ['news'], data: Buffer.from('leak by tag') });
    await pushData(node.grpc, { pid: 'shop', cids: [shop.cid], data: Buffer.from('own') });
    await shop.next((f) => f.text === 'own');
    expect(shop.deliveries()).toEqual(['own']);
  });
});

describe('targeted pushes across two nodes (Redis)', () => {
  let redis: TestRedis;
  const nodes: NodeProcess[] = [];
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
  });

  it('cids reach their node only; a multi-tag push is delivered once per connection', async () => {
    redis = await TestRedis.start();
    nodes.push(await NodeProcess.start(['--redis', redis.url]), await NodeProcess.start(['--redis', redis.url]));
    const [a, b] = nodes as [NodeProcess, NodeProcess];
    const grpcA = pushClient(a.grpcAddress);
    const onB = await TestClient.connect(b.wsUrl);
    const alsoOnB = await TestClient.connect(b.wsUrl);
    const onA = await TestClient.connect(a.wsUrl);
    try {
      await onB.subscribe('t1');
      await onB.subscribe('t2');
      await onA.subscribe('t2');
      await pushData(grpcA, { cids: [onB.cid], data: Buffer.from('to one cid on B') });
      await pushData(grpcA, { tags: ['t1', 't2'], data: Buffer.from('two tags') });
      await pushData(grpcA, { data: Buffer.from('fence') });
      for (const c of [onB, alsoOnB, onA]) await c.next((f) => f.text === 'fence');
      expect(onB.deliveries()).toEqual(['to one cid on B', 'two tags', 'fence']);
      expect(alsoOnB.deliveries()).toEqual(['fence']);
      expect(onA.deliveries()).toEqual(['two tags', 'fence']);
    } finally {
      grpcA.close();
      await Promise.all([onB.close(), alsoOnB.close(), onA.close()]);
    }
  });
});
