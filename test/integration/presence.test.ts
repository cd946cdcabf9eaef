import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServiceError } from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushData } from '../helpers/grpc-client.js';
import { useTestNode } from '../helpers/fixture.js';
import { metric } from '../helpers/metrics.js';
import { unique } from '../helpers/names.js';
import { waitFor } from '../helpers/ports.js';
import { PresenceClients, bearer } from '../helpers/presence-client.js';
import type { TestClient } from '../helpers/ws-client.js';

/**
 * OnlineUsersService, SubscribeService and ClusterService on one node (in-memory presence),
 * through real WebSocket, gRPC and HTTP clients.
 */

const SECRET = 'presence-it-secret';
const token = (uid: string): Promise<string> =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(uid).setIssuedAt().setExpirationTime('10m').sign(new TextEncoder().encode(SECRET));

const get = async (url: string, init: RequestInit = {}): Promise<{ status: number; json: any }> => {
  const res = await fetch(url, init);
  const text = await res.text();
  try {
    return { status: res.status, json: JSON.parse(text) };
  } catch {
    return { status: res.status, json: text };
  }
};

describe('presence on one node', () => {
  const node = useTestNode(['--jwt-secret', SECRET]);
  let c: PresenceClients;
  beforeAll(() => {
    c = new PresenceClients(node.server.grpcAddress);
  });
  afterAll(() => c.close());

  const login = async (uid: string): Promise<TestClient> => {
    const client = await node.connect();
    expect((await client.login(await token(uid))).code).toBe(20003);
    return client;
  };
  const count = () => c.count({ pid: '' });

  it('counts logged-in connections only, pages users with counts and total, and reports connections', async () => {
    await node.connect(); // anonymous: not a user
    const a1 = await login('alice');
    const a2 = await login('alice');
    await login('bob');
    await login('carol');
    await login('dave');
    await login('erin');
    expect(await count()).toEqual({ users: 5, connections: 6 });

    const seen: Array<[string, number]> = [];
    let pageToken = '';
    let pages = 0;
    do {
      const page = await c.list({ pid: '', pageSize: 2, pageToken });
      expect(page.totalSize).toBe(5);
      expect(page.users.length).toBeLessThanOrEqual(2);
      seen.push(...page.users.map((u): [string, number] => [u.uid, u.connections]));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== '');
    expect(pages).toBe(3);
    expect(seen).toEqual([
      ['alice', 2],
      ['bob', 1],
      ['carol', 1],
      ['dave', 1],
      ['erin', 1],
    ]);

    const presence = await c.get({ pid: '', uids: ['alice', 'nobody'] });
    expect(presence.users.map((u) => [u.uid, u.online, u.connectionCount])).toEqual([
      ['alice', true, 2],
      ['nobody', false, 0],
    ]);
    expect(presence.users[0]!.connections.map((x) => x.cid).sort()).toEqual([a1.cid, a2.cid].sort());
    expect(presence.users[0]!.connections.every((x) => x.nodeId === node.server.nodeId && Number(x.connectedTimeMs) > 0)).toBe(true);

    // REST: the same answers in proto3 JSON.
    const base = `${node.server.httpUrl}/v1/projects/default`;
    const list = await get(`${base}/online-users?page_size=4`);
    expect(list.status).toBe(200);
    expect(list.json.users).toHaveLength(4);
    expect(list.json.totalSize).toBe(5);
    const rest = await get(`${base}/online-users?pageSize=4&pageToken=${list.json.nextPageToken}`);
    expect(rest.json).toEqual({ users: [{ uid: 'erin', connections: 1 }], totalSize: 5 });
    expect((await get(`${base}/online-users:count`)).json).toEqual({ users: 5, connections: 6 });
    const byGet = await get(`${base}/presence?uids=bob&uids=zed`);
    expect(byGet.json.users.map((u: any) => [u.uid, u.online ?? false])).toEqual([
      ['bob', true],
      ['zed', false],
    ]);
    const byPost = await get(`${base}/presence:get`, { method: 'POST', body: JSON.stringify({ uids: ['bob'] }) });
    expect(byPost.json.users[0]).toMatchObject({ uid: 'bob', online: true, connectionCount: 1 });

    await a1.logout();
    await a2.close();
    await waitFor(async () => (await count()).users === 4, 5000, 'alice offline');
    expect(await count()).toEqual({ users: 4, connections: 4 });
  });

  it('REST errors: bad page token, bad page size, unknown project, bad uid, wrong method', async () => {
    const base = `${node.server.httpUrl}/v1/projects`;
    expect(await get(`${base}/default/online-users?page_token=nope`)).toEqual({
      status: 400,
      json: { code: 3, message: 'invalid page_token', details: [] },
    });
    expect((await get(`${base}/default/online-users?page_size=x`)).json.message).toBe('invalid value for int32 field page_size: "x"');
    expect((await get(`${base}/default/online-users?page_size=-1`)).status).toBe(400);
    expect(await get(`${base}/nope/online-users:count`)).toEqual({ status: 404, json: { code: 5, message: 'unknown project "nope"', details: [] } });
    expect((await get(`${base}/default/presence:get`, { method: 'POST', body: '{"uids":["a\\u0001"]}' })).json.message).toBe(
      'uids[0]: uid contains control characters',
    );
    expect((await get(`${base}/default/presence:get`, { method: 'POST', body: '{"uid":"a"}' })).json.message).toBe(
      'unknown field "uid" in pushwire.v1.GetPresenceRequest',
    );
    expect((await get(`${base}/default/online-users`, { method: 'DELETE' })).status).toBe(501);
    const grpcErr = await c.list({ pid: '', pageSize: 0, pageToken: 'zz' }).catch((e: ServiceError) => e);
    expect([(grpcErr as ServiceError).code, (grpcErr as ServiceError).details]).toEqual([3, 'invalid page_token']);
  });

  it('WatchOnlineUsers: snapshot, then join on the first connection and leave on the last, in order', async () => {
    const uid = unique('w');
    const w = c.watch();
    const snap = await w.next((i) => i.snapshot?.last === true);
    expect(snap.snapshot!.users.some((u) => u.uid === uid)).toBe(false);
    const x = await login(uid);
    const y = await login(uid);
    await x.close();
    await y.close();
    await w.next((i) => i.left?.uid === uid);
    const mine = w.items.filter((i) => (i.joined ?? i.left)?.uid === uid);
    expect(mine.map((i) => (i.joined ? 'join' : 'leave'))).toEqual(['join', 'leave']);
    const seqs = w.items.filter((i) => i.joined ?? i.left).map((i) => Number((i.joined ?? i.left)!.sequence));
    expect(seqs).toEqual(seqs.map((_, k) => seqs[0]! + k));
    expect(mine[0]!.joined!.cid).toBe(x.cid);
    expect(mine[1]!.left!.cid).toBe(y.cid);
    w.cancel();
    expect((await w.ended)?.code).toBe(1);
    await waitFor(async () => (await metric(node.server.httpUrl, 'pushwire_presence_watchers')) === 0, 5000, 'watcher gone');
  });

  it('WatchOnlineUsers over REST streams {"result":...} lines', async () => {
    const ac = new AbortController();
    const res = await fetch(`${node.server.httpUrl}/v1/projects/default/online-users:watch`, { signal: ac.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('"last":true')) text += new TextDecoder().decode((await reader.read()).value);
    const uid = unique('rw');
    const cl = await login(uid);
    while (!text.includes(uid)) text += new TextDecoder().decode((await reader.read()).value);
    const lines = text.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.at(-1)).toMatchObject({ result: { joined: { uid, cid: cl.cid } } });
    ac.abort();
  });

  it('Subscribe receives public, user, private and broadcast pushes; cancel releases every channel', async () => {
    const topic = unique('t');
    const uid = unique('u');
    const s = await c.subscribe({ topics: [topic], uid, privateTopics: ['inbox'] });
    expect(await metric(node.server.httpUrl, 'pushwire_grpc_subscribers')).toBe(1);
    await pushData(node.grpc, { topic, data: Buffer.from('public') });
    await pushData(node.grpc, { uid, data: Buffer.from('to-user') });
    await pushData(node.grpc, { uid, topic: 'inbox', data: Buffer.from('private') });
    await pushData(node.grpc, { uid, topic: 'other', data: Buffer.from('not subscribed') });
    await pushData(node.grpc, { data: Buffer.from('everyone') });
    await s.next((m) => Buffer.from(m.data).toString() === 'everyone');
    const got = s.items.map((m) => [m.topic, m.uid, Buffer.from(m.data).toString()]);
    expect(got).toEqual([
      [topic, '', 'public'],
      ['', uid, 'to-user'],
      ['inbox', uid, 'private'],
      ['', '', 'everyone'],
    ]);
    expect(s.items.every((m) => m.messageId.startsWith(node.server.nodeId) && Number(m.timeMs) > 0)).toBe(true);
    // A service subscription is not presence.
    expect((await c.get({ pid: '', uids: [uid] })).users[0]!.online).toBe(false);

    s.cancel();
    expect((await s.ended)?.code).toBe(1);
    await waitFor(async () => (await metric(node.server.httpUrl, 'pushwire_grpc_subscribers')) === 0, 5000, 'subscriber gone');
    // The hub holds none of its channels any more (the gauge is polled every 250 ms).
    await waitFor(async () => (await metric(node.server.httpUrl, 'pushwire_channels')) <= 1, 5000, 'channels released');
  });

  it('Subscribe validates its request', async () => {
    const bad = async (req: object): Promise<[number, string]> => {
      const err = await c.subscribe(req).then(
        () => undefined,
        (e: ServiceError) => e,
      );
      return [err!.code, err!.details];
    };
    expect(await bad({ privateTopics: ['x'] })).toEqual([3, 'private_topics needs uid']);
    expect(await bad({ topics: ['ok', ''] })).toEqual([3, 'topics[1]: topic must not be empty']);
    expect(await bad({ pid: 'nope' })).toEqual([5, 'unknown project "nope"']);
  });

  it('ListNodes (gRPC and REST) lists this node', async () => {
    const { nodes } = await c.nodes();
    expect(nodes).toHaveLength(1);
    expect(nodes[0]).toMatchObject({ nodeId: node.server.nodeId, version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
    expect(nodes[0]!.grpcAddress).toBe(`127.0.0.1:${node.server.ports.grpc}`);
    const rest = await get(`${node.server.httpUrl}/v1/nodes`);
    expect(rest.json.nodes[0]).toMatchObject({ nodeId: node.server.nodeId, wsAddress: `127.0.0.1:${node.server.ports.ws}` });
  });
});

describe('presence with API keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pushwire-presence-it-'));
  const file = join(dir, 'projects.json');
  writeFileSync(
    file,
    JSON.stringify({
      projects: [
        { pid: 'shop', apiKeys: [{ key: 'shop-key-0123456789abcdef' }, { key: 'shop-push-only-0123456789', methods: ['PushData'] }] },
        { pid: 'blog', apiKeys: [{ key: 'blog-key-0123456789abcdef' }] },
      ],
    }),
  );
  const node = useTestNode(['--projects', file]);
  let c: PresenceClients;
  beforeAll(() => {
    c = new PresenceClients(node.server.grpcAddress);
  });
  afterAll(() => c.close());

  it('needs a key, the right method and the key project; ListNodes takes any key', async () => {
    const code = (p: Promise<unknown>) => p.then(() => 0, (e: ServiceError) => `${e.code} ${e.details}`);
    expect(await code(c.count({ pid: 'shop' }))).toBe('16 missing API key (authorization: Bearer <key>)');
    expect(await code(c.count({ pid: 'shop' }, bearer('shop-push-only-0123456789')))).toBe('7 this API key may not call CountOnline');
    expect(await code(c.count({ pid: 'blog' }, bearer('shop-key-0123456789abcdef')))).toBe(
      '7 this API key belongs to another project than "blog"',
    );
    expect(await c.count({ pid: '' }, bearer('shop-key-0123456789abcdef'))).toEqual({ users: 0, connections: 0 });
    expect(await code(c.subscribe({ topics: ['x'] }))).toBe('16 missing API key (authorization: Bearer <key>)');
    expect((await c.nodes(bearer('blog-key-0123456789abcdef'))).nodes).toHaveLength(1);

    const url = `${node.server.httpUrl}/v1/projects/shop/online-users`;
    expect((await get(url)).status).toBe(401);
    expect((await get(url, { headers: { authorization: 'Bearer blog-key-0123456789abcdef' } })).status).toBe(403);
    expect((await get(url, { headers: { authorization: 'Bearer shop-key-0123456789abcdef' } })).json).toEqual({});
    expect((await get(`${node.server.httpUrl}/v1/nodes`)).status).toBe(401);
  });
});
