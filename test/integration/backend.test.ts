import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { ClientEventType } from '../../gen/pushwire/v1/backend.js';
import { TestConsumer } from '../helpers/backend-client.js';
import { useTestNode } from '../helpers/fixture.js';
import { startTestServer } from '../helpers/in-process.js';
import { pushClient, pushData, restPush, b64 } from '../helpers/grpc-client.js';
import { unique } from '../helpers/names.js';
import { sleep } from '../helpers/ports.js';

const SECRET = 'backend-secret';
const sign = (claims: Record<string, unknown>, secret = SECRET) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));
const userToken = (sub: string) => sign({ sub });
const serverToken = (sub: string, extra: Record<string, unknown> = {}) => sign({ sub, type: 'server', ...extra });

const { REQUEST, CONNECT, DISCONNECT } = {
  REQUEST: ClientEventType.CLIENT_EVENT_TYPE_REQUEST,
  CONNECT: ClientEventType.CLIENT_EVENT_TYPE_CONNECT,
  DISCONNECT: ClientEventType.CLIENT_EVENT_TYPE_DISCONNECT,
};

describe('backend streams: client requests, replies and connection events (one node)', () => {
  const node = useTestNode(['--jwt-secret', SECRET]);
  const consumers: TestConsumer[] = [];
  const consumer = async (group?: string) => {
    const c = await TestConsumer.connect(node.server.grpcAddress, { group });
    consumers.push(c);
    return c;
  };
  const closeConsumers = async () => {
    for (const c of consumers.splice(0)) c.close();
    await sleep(50);
  };

  it('without a consumer a request is answered 30005 at once, never silence', async () => {
    await closeConsumers();
    const c = await node.connect();
    const r = await c.request({ code: 7, data: { q: 1 } });
    expect(r).toMatchObject({ code: 30005, message: 'no backend connected' });
    expect(String(r.detail)).toContain('default');
    // The connection is still healthy.
    expect(await c.subscribe('news')).toMatchObject({ code: 20001 });
  });

  it('code 7 reaches the consumer with the client identity; the reply (reply_to) comes back as 20006 echoing the id', async () => {
    await closeConsumers();
    const backend = await consumer();
    const uid = unique('u');
    const c = await node.connect(`${node.server.wsUrl}?token=${await userToken(uid)}`);
    c.send({ code: 7, id: 42, topic: 'orders.create', data: { item: 'book', n: 2 } });
    expect((await c.next((f) => f.json?.id === 42)).json).toMatchObject({ code: 20005, id: 42, message: 'request accepted' });
    const e = await backend.next((x) => x.type === REQUEST);
    expect(e).toMatchObject({ uid, cid: c.cid, pid: 'default', requestId: '42', topic: 'orders.create', nodeId: node.server.nodeId });
    expect(JSON.parse(e.data.toString())).toEqual({ item: 'book', n: 2 });
    expect(Number(e.timeMs)).toBeGreaterThan(Date.now() - 60_000);

    await pushData(node.grpc, { cids: [e.cid], replyTo: e.requestId, data: Buffer.from('{"ok":true,"order":7}') });
    const reply = await c.next((f) => f.json?.code === 20006);
    // The id keeps the type the client used (a number here), and JSON data is embedded as JSON.
    expect(reply.json).toEqual({ code: 20006, message: 'reply', id: 42, data: { ok: true, order: 7 } });
    // Non-JSON reply data arrives as a string, over REST too.
    const rest = await restPush(node.server.httpUrl, { cids: [c.cid], reply_to: '42', data: b64('plain text') });
    expect(rest.status).toBe(200);
    expect((await c.next((f) => f.json?.code === 20006)).json).toMatchObject({ id: 42, data: 'plain text' });
  });

  it('a request needs an id; reply_to is bounded; bad frames leave the connection healthy', async () => {
    const c = await node.connect();
    expect(await c.request({ code: 7, topic: 5 })).toMatchObject({ code: 30001 });
    c.send({ code: 7, data: 1 });
    expect((await c.next((f) => f.json?.code === 30001)).json!.detail).toMatch(/needs an id/);
    const err = await pushData(node.grpc, { cids: [c.cid], replyTo: 'x'.repeat(65), data: Buffer.from('1') }).catch((e: ServiceError) => e);
    expect((err as ServiceError).code).toBe(status.INVALID_ARGUMENT);
    expect(await c.subscribe('still-ok')).toMatchObject({ code: 20001 });
  });

  it('competing consumers: each request reaches exactly one consumer of each group', async () => {
    await closeConsumers();
    const [a1, a2, b1] = [await consumer('billing'), await consumer('billing'), await consumer('audit')];
    const c = await node.connect();
    const n = 20;
    for (let i = 0; i < n; i++) expect(await c.request({ code: 7, data: i })).toMatchObject({ code: 20005 });
    await b1.next((e) => e.type === REQUEST && e.data.toString() === String(n - 1));
    await sleep(100);
    const reqs = (t: TestConsumer) => t.events.filter((e) => e.type === REQUEST && e.cid === c.cid).map((e) => Number(e.data.toString()));
    // Group "billing" shares the requests (each once, both get some); group "audit" gets them all.
    expect([...reqs(a1), ...reqs(a2)].sort((x, y) => x - y)).toEqual([...Array(n).keys()]);
    expect(reqs(a1).length).toBeGreaterThan(0);
    expect(reqs(a2).length).toBeGreaterThan(0);
    expect(reqs(b1)).toEqual([...Array(n).keys()]);
  });

  it('a cancelled consumer stops receiving; with none left, requests fail with 30005 again', async () => {
    await closeConsumers();
    const backend = await consumer();
    const c = await node.connect();
    expect(await c.request({ code: 7 })).toMatchObject({ code: 20005 });
    backend.close();
    consumers.length = 0;
    await sleep(100);
    expect(await c.request({ code: 7 })).toMatchObject({ code: 30005 });
  });

  it('connect and disconnect events, in order, carrying the uid of the upgrade token', async () => {
    await closeConsumers();
    const backend = await consumer();
    const uid = unique('u');
    const c = await node.connect(`${node.server.wsUrl}?token=${await userToken(uid)}`);
    const cid = c.cid;
    // Backends hear of a connection once its upgrade login is done (a connection closed before
    // that produces no events at all).
    await c.next((f) => f.json?.code === 20003);
    await c.close();
    const connect = await backend.next((e) => e.cid === cid);
    const disconnect = await backend.next((e) => e.cid === cid);
    expect(connect).toMatchObject({ type: CONNECT, uid, cid, pid: 'default' });
    expect(disconnect).toMatchObject({ type: DISCONNECT, uid, cid });
    expect(Number(disconnect.timeMs)).toBeGreaterThanOrEqual(Number(connect.timeMs));
    // An anonymous connection's events carry an empty uid.
    const anon = await node.connect();
    expect(await backend.next((e) => e.cid === anon.cid)).toMatchObject({ type: CONNECT, uid: '' });
  });

  it('ws-cluster user frames: ack after acceptance, reply as {affair_id, payload}, failed ack without a backend', async () => {
    await closeConsumers();
    const c = await node.connect();
    c.send({ ack_id: 'a1', affair_id: 'f1', type: 'chat', payload: { text: 'hi' } });
    expect((await c.next((f) => f.json?.ack_id === 'a1')).json).toMatchObject({ ack_id: 'a1', code: 30005 });

    const backend = await consumer();
    c.send({ ack_id: 'a2', affair_id: 'f2', type: 'chat', payload: { text: 'hi' } });
    expect((await c.next((f) => f.json?.ack_id === 'a2')).json).toEqual({ ack_id: 'a2', code: 0 });
    const e = await backend.next((x) => x.type === REQUEST && x.requestId === 'f2');
    expect(e).toMatchObject({ topic: 'chat', cid: c.cid });
    expect(JSON.parse(e.data.toString())).toEqual({ text: 'hi' });
    await pushData(node.grpc, { cids: [c.cid], replyTo: 'f2', data: Buffer.from('{"text":"hello"}') });
    expect((await c.next((f) => f.json?.affair_id === 'f2')).json).toEqual({ affair_id: 'f2', payload: { text: 'hello' } });
  });

  it('WebSocket server connections (type "server" in the token) receive the events as JSON and reply with {to, affair_id}', async () => {
    await closeConsumers();
    const server = await node.connect(`${node.server.wsUrl}?token=${await serverToken('billing-svc', { group: 'billing' })}`);
    expect((await server.next((f) => f.json?.code === 20003)).json).toMatchObject({ code: 20003 });
    const uid = unique('u');
    const c = await node.connect(`${node.server.wsUrl}?token=${await userToken(uid)}`);
    const connect = await server.next((f) => f.json?.type === 'connect');
    expect(connect.json).toMatchObject({ type: 'connect', source: { pid: 'default', uid, cid: c.cid, node: node.server.nodeId } });

    expect(await c.request({ code: 7, topic: 'pay', data: { amount: 5 } })).toMatchObject({ code: 20005 });
    const req = (await server.next((f) => f.json?.type === 'request')).json!;
    expect(req).toMatchObject({ type: 'request', topic: 'pay', payload: { amount: 5 }, source: { uid, cid: c.cid } });
    const requestId = req.affair_id as string;

    server.send({ ack_id: 9, affair_id: requestId, to: { cids: [c.cid] }, payload: { paid: true } });
    expect((await server.next((f) => f.json?.ack_id === 9)).json).toEqual({ ack_id: 9, code: 0 });
    const reply = await c.next((f) => f.json?.code === 20006);
    expect(reply.json).toMatchObject({ id: requestId, data: { paid: true } });

    // A server message without "to" is refused with a failed ack; the connection stays.
    server.send({ ack_id: 10, payload: {} });
    expect((await server.next((f) => f.json?.ack_id === 10)).json).toMatchObject({ ack_id: 10, code: 30001 });
    // Server connections are not users: a push to the uid "billing-svc" does not reach them.
    await pushData(node.grpc, { uid: 'billing-svc', data: Buffer.from('not-for-servers') });
    await c.close();
    expect((await server.next((f) => f.json?.type === 'disconnect')).json).toMatchObject({ source: { cid: c.cid, uid } });
    expect(server.frames.some((f) => f.text === 'not-for-servers')).toBe(false);
    await server.close();
    await sleep(50);
    const d = await node.connect();
    expect(await d.request({ code: 7 })).toMatchObject({ code: 30005 });
  });

  it('a server connection cannot log in again, and does not send requests', async () => {
    const server = await node.connect(`${node.server.wsUrl}?token=${await serverToken('svc')}`);
    await server.next((f) => f.json?.code === 20003);
    expect(await server.login(await userToken('someone'))).toMatchObject({ code: 30003 });
    expect(await server.request({ code: 7 })).toMatchObject({ code: 30001 });
  });

  it('a token with an invalid group is refused (30003)', async () => {
    const c = await node.connect();
    const r = await c.login(await serverToken('svc', { group: 'bad group!' }));
    expect(r).toMatchObject({ code: 30003 });
    expect(String(r.detail)).toContain('group');
  });

  it('Connect validates its group', async () => {
    const err = await TestConsumer.connect(node.server.grpcAddress, { group: 'no spaces' }).catch((e: ServiceError) => e);
    expect((err as ServiceError).code).toBe(status.INVALID_ARGUMENT);
  });

  it('ws-cluster clients can use the /connect path', async () => {
    const c = await node.connect(node.server.wsUrl.replace(/\/ws$/, '/connect'));
    expect(c.cid).not.toBe('');
  });
});

describe('backend streams: projects and API keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pushwire-backend-'));
  const file = join(dir, 'projects.json');
  writeFileSync(
    file,
    JSON.stringify({
      projects: [
        { pid: 'shop', login: { jwtSecret: 'shop-secret' }, apiKeys: [{ key: 'shop-key-000000000000' }, { key: 'shop-push-only-000000', methods: ['PushData'] }] },
        { pid: 'blog', login: { jwtSecret: 'blog-secret' }, apiKeys: [{ key: 'blog-key-000000000000' }] },
      ],
    }),
  );
  const node = useTestNode(['--projects', file]);
  const connect = (req: { pid?: string; group?: string }, key?: string) => TestConsumer.connect(node.server.grpcAddress, req, key);

  it('Connect needs a key allowed to Connect, for its own project', async () => {
    const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: ServiceError) => e.code);
    expect(await code(connect({ pid: 'shop' }))).toBe(status.UNAUTHENTICATED);
    expect(await code(connect({ pid: 'shop' }, 'nope-nope-nope-nope'))).toBe(status.UNAUTHENTICATED);
    expect(await code(connect({ pid: 'shop' }, 'shop-push-only-000000'))).toBe(status.PERMISSION_DENIED);
    expect(await code(connect({ pid: 'blog' }, 'shop-key-000000000000'))).toBe(status.PERMISSION_DENIED);
  });

  it("a project's consumers never see another project's clients, even sharing uids and groups", async () => {
    const shop = await connect({}, 'shop-key-000000000000');
    const blog = await connect({ pid: 'blog' }, 'blog-key-000000000000');
    try {
      const uid = unique('same');
      const s = await node.connect(`${node.server.wsUrl}?pid=shop&token=${await sign({ sub: uid }, 'shop-secret')}`);
      const b = await node.connect(`${node.server.wsUrl}?pid=blog&token=${await sign({ sub: uid }, 'blog-secret')}`);
      expect(await s.request({ code: 7, data: 'from-shop' })).toMatchObject({ code: 20005 });
      expect(await b.request({ code: 7, data: 'from-blog' })).toMatchObject({ code: 20005 });
      const fromShop = await shop.next((e) => e.type === REQUEST);
      const fromBlog = await blog.next((e) => e.type === REQUEST);
      expect([fromShop.pid, fromShop.cid, fromShop.data.toString()]).toEqual(['shop', s.cid, '"from-shop"']);
      expect([fromBlog.pid, fromBlog.cid, fromBlog.data.toString()]).toEqual(['blog', b.cid, '"from-blog"']);
      await sleep(100);
      expect(shop.events.every((e) => e.pid === 'shop')).toBe(true);
      expect(blog.events.every((e) => e.pid === 'blog')).toBe(true);
      // A blog key cannot answer a shop client, even knowing its cid.
      const blogApi = pushClient(node.server.grpcAddress);
      const err = await new Promise<ServiceError | null>((resolve) => {
        const md = new Metadata();
        md.set('authorization', 'Bearer blog-key-000000000000');
        blogApi.pushData({ uid: '', topic: '', data: Buffer.from('x'), pid: 'shop', idempotencyKey: '', uids: [], cids: [s.cid], tags: [], replyTo: '1', ttl: 0, skipHistory: false }, md, (e) => resolve(e));
      });
      blogApi.close();
      expect(err?.code).toBe(status.PERMISSION_DENIED);
    } finally {
      shop.close();
      blog.close();
    }
  });
});

describe('ws-cluster online report to server connections', () => {
  const node = useTestNode(['--jwt-secret', SECRET, '--online-report-interval', '200ms']);

  it('server connections receive the logged-in connections of their project periodically', async () => {
    const uid = unique('u');
    const user = await node.connect(`${node.server.wsUrl}?token=${await userToken(uid)}`);
    await user.next((f) => f.json?.code === 20003);
    const anon = await node.connect();
    const server = await node.connect(`${node.server.wsUrl}?token=${await serverToken('svc')}`);
    await server.next((f) => f.json?.code === 20003);
    const report = await server.next((f) => f.json?.type === 'online' && f.json.last === true);
    const list = report.json!.payload as Array<{ cid: string; uid: string; node: string }>;
    expect(list).toContainEqual({ cid: user.cid, uid, node: node.server.nodeId });
    // Anonymous connections and the server connection itself are not users.
    expect(list.some((e) => e.cid === anon.cid || e.cid === server.cid)).toBe(false);
    expect(report.json).toMatchObject({ chunk: 0, type: 'online' });
    // User connections never get reports.
    expect(user.frames.some((f) => f.json?.type === 'online')).toBe(false);
  });
});

describe('shutdown with backend consumers', () => {
  it('ends Connect streams with UNAVAILABLE instead of waiting on them', async () => {
    const server = await startTestServer(['--shutdown-timeout', '20s']);
    const consumer = await TestConsumer.connect(server.grpcAddress);
    const shutdown = server.shutdown();
    const ended = await consumer.ended;
    expect(ended?.code).toBe(status.UNAVAILABLE);
    expect(ended?.details).toBe('node shutting down');
    await shutdown;
    consumer.close();
  });
});

describe('server connections and keepalive', () => {
  const node = useTestNode(['--jwt-secret', SECRET, '--ping-timeout', '1s']);

  it('a silent server connection that answers pings stays; one that does not is closed 3001', async () => {
    const token = await serverToken('svc');
    const answering = await node.connect(`${node.server.wsUrl}?token=${token}`);
    // A peer that never answers pings (a dead TCP peer looks like this).
    const mute = await node.connect(`${node.server.wsUrl}?token=${token}`, { autoPong: false });
    await answering.next((f) => f.json?.code === 20003);
    await mute.next((f) => f.json?.code === 20003);
    expect((await mute.closed).code).toBe(3001);
    await sleep(1500);
    expect(answering.ws.readyState).toBe(answering.ws.OPEN);
    // Still a consumer: it gets a client's request.
    const c = await node.connect();
    expect(await c.request({ code: 7, data: 'still there' })).toMatchObject({ code: 20005 });
    expect((await answering.next((f) => f.json?.type === 'request')).json).toMatchObject({ payload: 'still there' });
  });
});
