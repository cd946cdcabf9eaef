// The client SDK (client/) against a real node started through the CLI, over real sockets:
// subscribe + REST pushes, payload kinds, history, presence, request/reply through a real backend
// consumer, token refresh with getToken, and the protobuf entry point doing the same.
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, ReasonCode, ServerCode, type Client } from '../../client/src/index.js';
import { protobufCodec } from '../../client/src/protobuf.js';
import { TestConsumer } from '../helpers/backend-client.js';
import { b64, restPush } from '../helpers/grpc-client.js';
import { NodeProcess } from '../helpers/node-process.js';
import { waitFor } from '../helpers/ports.js';
import { HISTORY_CHANNELS, Received, pushJson, range, sdkClient } from '../helpers/sdk.js';

const SECRET = 'sdk-test-secret';
/** History everywhere (HISTORY_CHANNELS), and the `room` namespace with presence and join/leave too. */
const CHANNELS = JSON.stringify({ ...JSON.parse(HISTORY_CHANNELS), namespaces: { room: { history: { size: 1000, ttl: '10m' }, presence: true, joinLeave: true } } });
const token = (sub: string, exp: string | number = '1h'): Promise<string> =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime(exp).sign(new TextEncoder().encode(SECRET));

let node: NodeProcess;
const clients: Client[] = [];
const consumers: TestConsumer[] = [];

function client(options: Parameters<typeof sdkClient>[1] = {}): Client {
  const c = sdkClient(node.wsUrl, options);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  // 150 channels on one client (the many-subscriptions case) is above the default --max-subscriptions of 128.
  node = await NodeProcess.start(['--jwt-secret', SECRET, '--channels', CHANNELS, '--max-subscriptions', '200']);
}, 60_000);
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const c of consumers.splice(0)) c.close();
});
afterAll(async () => {
  await node?.stop();
});

for (const mode of ['json', 'protobuf'] as const) {
  const options = mode === 'protobuf' ? { codec: protobufCodec } : {};

  describe(`SDK against a real node (${mode})`, () => {
    it('subscribes, receives REST pushes in order with offsets, and decodes JSON, text and binary payloads alike', async () => {
      const c = client(options);
      c.connect();
      await c.ready();
      expect(c.cid).toMatch(new RegExp(`^${node.nodeId}-`));
      const topic = `chat:${mode}-kinds`;
      const got = new Received(c.subscribe(topic));
      await got.sub.ready();
      expect(got.subscribed[0]).toMatchObject({ positioned: true, recoverable: true, wasRecovering: false, recovered: false });
      await pushJson(node.httpUrl, topic, { n: 1 });
      await restPush(node.httpUrl, { topic, data: b64('plain text') });
      await restPush(node.httpUrl, { topic, data: Buffer.from([0, 255, 1]).toString('base64') });
      await restPush(node.httpUrl, { topic, data: '' });
      await got.count(4);
      expect(got.data()).toEqual([{ n: 1 }, 'plain text', new Uint8Array([0, 255, 1]), null]);
      expect(got.offsets()).toEqual([1, 2, 3, 4]);
      expect(new Set(got.pubs.map((p) => p.epoch)).size).toBe(1);
      expect(got.pubs[0]!.id).toMatch(new RegExp(`^${node.nodeId}-`));
    });

    it('typed subscriptions: the decoder runs on every publication and on history', async () => {
      const c = client(options);
      c.connect();
      const topic = `ticker:${mode}`;
      const got = new Received(c.subscribe<{ price: number }>(topic, { decode: (d) => ({ price: Number((d as { p: number }).p) }) }));
      await got.sub.ready();
      for (const p of [10, 11, 12]) await pushJson(node.httpUrl, topic, { p });
      await got.count(3);
      expect(got.data().map((d) => d.price)).toEqual([10, 11, 12]);
      const h = await got.sub.history({ limit: 2, reverse: true });
      expect(h.publications.map((p) => [p.offset, p.data.price])).toEqual([
        [3, 12],
        [2, 11],
      ]);
      expect(h.offset).toBe(3);
      const since = await c.history(topic, { since: { offset: 1, epoch: h.epoch } });
      expect(since.publications.map((p) => p.offset)).toEqual([2, 3]);
      await expect(c.history(topic, { since: { offset: 1, epoch: 'not-the-epoch' } })).rejects.toMatchObject({ serverCode: ServerCode.InsufficientState });
    });

    it('presence where the server does not enable it rejects with 30009 (not available); ping round-trips', async () => {
      const c = client(options);
      c.connect();
      await c.ping();
      await expect(c.presence('chat:x')).rejects.toMatchObject({ code: ErrorCode.Server, serverCode: ServerCode.NotAvailable });
    });

    it('presence and join/leave on a channel whose namespace enables them', async () => {
      const a = client({ ...options, getToken: () => token('ann') });
      const b = client(options);
      a.connect();
      b.connect();
      await Promise.all([a.ready(), b.ready()]);
      const channel = `room:${mode}-presence`;
      const sa = a.subscribe(channel);
      const events: string[] = [];
      sa.on('join', ({ info }) => events.push(`join ${info.client} ${info.user ?? ''}`.trimEnd()));
      sa.on('leave', ({ info }) => events.push(`leave ${info.client} ${info.user ?? ''}`.trimEnd()));
      await sa.ready();
      const sb = b.subscribe(channel);
      await sb.ready();
      await waitFor(() => events.length >= 2, 10_000, 'two joins');
      // Its own join (after its subscribe answer), then the other's.
      expect(events).toEqual([`join ${a.cid} ann`, `join ${b.cid}`]);
      const members = await sb.presence();
      expect(members.map((m) => [m.client, m.user ?? '']).sort()).toEqual([[a.cid, 'ann'], [b.cid, '']].sort());
      expect((await a.presence(channel)).length).toBe(2);
      sb.unsubscribe();
      await waitFor(() => events.length >= 3, 10_000, 'the leave');
      expect(events[2]).toBe(`leave ${b.cid}`);
      const sb2 = b.subscribe(channel);
      await sb2.ready();
      await waitFor(() => events.length >= 4, 10_000, 'the second join');
      const bcid = b.cid;
      b.close();
      await waitFor(() => events.length >= 5, 10_000, 'the leave on close');
      expect(events.slice(3)).toEqual([`join ${bcid}`, `leave ${bcid}`]);
      expect((await sa.presence()).map((m) => m.client)).toEqual([a.cid]);
    });

    it('request/reply: a real backend consumer gets the request and its reply_to push resolves the promise', async () => {
      const consumer = await TestConsumer.connect(node.grpcAddress, { group: `sdk-${mode}` });
      consumers.push(consumer);
      const c = client(options);
      c.connect();
      await c.ready();
      const reply = c.request({ item: 'book' }, { route: 'orders.create', timeout: 10_000 });
      const event = await consumer.next((e) => e.requestId !== '' && e.cid === c.cid);
      expect(event.topic).toBe('orders.create');
      expect(JSON.parse(event.data.toString())).toEqual({ item: 'book' });
      const res = await restPush(node.httpUrl, { cids: [event.cid], reply_to: event.requestId, data: b64(JSON.stringify({ order: 7 })) });
      expect(res.status).toBe(200);
      await expect(reply).resolves.toEqual({ order: 7 });
    });

    it('request with no backend connected rejects at once with 30005; with no reply it times out', async () => {
      const c = client(options);
      c.connect();
      await expect(c.request(1, { timeout: 5000 })).rejects.toMatchObject({ serverCode: ServerCode.NoBackend });
      const consumer = await TestConsumer.connect(node.grpcAddress, { group: `silent-${mode}` });
      consumers.push(consumer);
      await expect(c.request(2, { timeout: 300 })).rejects.toMatchObject({ code: ErrorCode.Timeout });
    });

    it('token refresh: an expired token gets 30003, getToken is called again, and the client logs in with the new one', async () => {
      const issued: string[] = [];
      const getToken = async (): Promise<string> => {
        const t = await token('alice', issued.length === 0 ? Math.floor(Date.now() / 1000) - 60 : '1h');
        issued.push(t);
        return t;
      };
      const c = client({ ...options, getToken });
      const users: string[] = [];
      const errors: number[] = [];
      c.on('connected', (e) => users.push(e.user));
      c.on('error', (e) => errors.push(e.error.serverCode ?? -1));
      c.connect();
      await waitFor(() => c.state === 'connected', 10_000, 'connected with the refreshed token');
      expect(issued).toHaveLength(2);
      expect(errors).toEqual([ServerCode.AuthFailed]);
      expect(users).toEqual(['alice']);
      // Logged in: private topics work, and a push to the uid arrives as a client-level publication.
      const priv = new Received(c.subscribe('inbox', { private: true }));
      await priv.sub.ready();
      const userPushes: unknown[] = [];
      c.on('publication', (p) => userPushes.push(p.data));
      await restPush(node.httpUrl, { uid: 'alice', topic: 'inbox', data: b64('"private"') });
      await restPush(node.httpUrl, { uid: 'alice', data: b64('"to alice"') });
      await priv.count(1);
      await waitFor(() => userPushes.length === 1, 5000, 'user push');
      expect(priv.data()).toEqual(['private']);
      expect(userPushes).toEqual(['to alice']);
    });

    it('many subscriptions on one client: each channel gets its own publications, exactly once', async () => {
      const c = client(options);
      c.connect();
      const subs = range(1, 150).map((i) => new Received(c.subscribe(`many:${mode}-${i}`)));
      await Promise.all(subs.map((s) => s.sub.ready(15_000)));
      const pushes = range(1, 150).map((i) => ({ topic: `many:${mode}-${i}`, data: b64(JSON.stringify(i)) }));
      const res = await restPush(node.httpUrl, { pushes }, {}, '/v1/pushData:batch');
      expect(res.status).toBe(200);
      await Promise.all(subs.map((s) => s.count(1)));
      expect(subs.map((s) => s.data())).toEqual(range(1, 150).map((i) => [i]));
    });
  });
}

describe('SDK ping watchdog against a real node', () => {
  let frozen: NodeProcess | undefined;
  afterAll(async () => {
    frozen?.proc.kill('SIGCONT');
    await frozen?.stop();
  });

  it('a node that stops answering (SIGSTOP) is detected within ping + pong + maxServerPingDelay; the client reconnects once it is back', async () => {
    frozen = await NodeProcess.start(['--v1-ping-interval', '1s', '--v1-pong-timeout', '1s']);
    const c = sdkClient(frozen.wsUrl, { maxServerPingDelay: 500 });
    clients.push(c);
    const connecting: number[] = [];
    c.on('connecting', (e) => connecting.push(e.code));
    c.connect();
    await c.ready();
    frozen.proc.kill('SIGSTOP'); // the TCP connection stays up; only the pings stop
    await waitFor(() => c.state === 'connecting', 15_000, 'the watchdog to fire');
    expect(connecting).toEqual([0, ReasonCode.NoPing]);
    frozen.proc.kill('SIGCONT');
    await waitFor(() => c.state === 'connected', 20_000, 'reconnected after SIGCONT');
  }, 60_000);
});
