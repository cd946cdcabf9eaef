import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useTestNode } from '../helpers/fixture.js';
import { b64, pushData, restPush } from '../helpers/grpc-client.js';
import { unique } from '../helpers/names.js';
import { NodeProcess } from '../helpers/node-process.js';
import { waitFor } from '../helpers/ports.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * The WebSocket client protocol on one node: the first frame, replies to codes 1-6 (with the
 * echoed topic and id), targeting, raw deliveries, order, logout / re-login, and cleanup.
 */

const SECRET = 'ws-protocol-secret';
const secretKey = new TextEncoder().encode(SECRET);

const token = (uid: string): Promise<string> =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(uid).setIssuedAt().setExpirationTime('1h').sign(secretKey);

describe('WebSocket protocol on an in-process node', () => {
  const node = useTestNode(['--jwt-secret', SECRET]);

  /** A connection logged in as `uid` (the reply is checked). */
  const loggedIn = async (uid: string): Promise<TestClient> => {
    const c = await node.connect();
    expect(await c.login(await token(uid))).toMatchObject({ code: 20003 });
    return c;
  };

  const push = async (req: { uid?: string; topic?: string; data: string | Buffer }): Promise<void> => {
    const res = await restPush(node.server.httpUrl, { uid: req.uid ?? '', topic: req.topic ?? '', data: b64(req.data) });
    expect(res.status, JSON.stringify(res.json)).toBe(200);
  };

  /**
   * Pushes a broadcast after the pushes under test and waits until every client has it: on one
   * node pushes are delivered in publish order, so anything the clients were going to get from
   * earlier pushes has arrived by then. Returns the fence text.
   */
  const fence = async (...cs: TestClient[]): Promise<string> => {
    const tag = unique('fence');
    await push({ data: tag });
    for (const c of cs) await c.next((f) => f.text === tag);
    return tag;
  };

  /** Deliveries a client received, without fences. */
  const got = (c: TestClient): string[] => c.deliveries().filter((t) => !t.startsWith('fence-'));

  describe('first frame', () => {
    it('is 20000 with a cid that starts with the node id and differs per connection', async () => {
      const a = await node.connect();
      const b = await node.connect();
      for (const c of [a, b]) {
        const first = c.frames[0]!;
        expect(first.binary).toBe(false);
        expect(first.json).toMatchObject({ code: 20000, message: expect.any(String), cid: expect.any(String) });
        expect(first.json!.cid).toMatch(new RegExp(`^${node.server.nodeId}-`));
      }
      expect(a.cid).not.toBe(b.cid);
    });
  });

  describe('replies to codes 1-6', () => {
    it('answer every code and echo topic and a string id', async () => {
      const c = await node.connect();
      const topic = unique('topic');

      // Private codes before login: 30002, with topic and id echoed.
      expect(await c.request({ code: 5, topic })).toMatchObject({ code: 30002, topic, message: expect.any(String) });
      expect(await c.request({ code: 6, topic })).toMatchObject({ code: 30002, topic });

      expect(await c.request({ code: 1, topic })).toMatchObject({ code: 20001, topic, message: expect.any(String) });
      expect(await c.request({ code: 2, topic })).toMatchObject({ code: 20002, topic });
      const login = await c.request({ code: 3, topic, data: await token(unique('u')) });
      expect(login).toMatchObject({ code: 20003, topic });
      expect(await c.request({ code: 5, topic })).toMatchObject({ code: 20001, topic });
      expect(await c.request({ code: 6, topic })).toMatchObject({ code: 20002, topic });
      const logout = await c.request({ code: 4 });
      expect(logout.code).toBe(20004);
      expect(logout.code).not.toBe(20003); // a distinct "logged out" code, unlike gpush
      // After logout the private codes need a login again.
      expect(await c.request({ code: 5, topic })).toMatchObject({ code: 30002, topic });
    });

    it('echo integer ids and the exact string id, also when requests are sent back to back', async () => {
      const c = await node.connect();
      const topic = unique('topic');
      const uidToken = await token(unique('u'));
      const requests = [
        { code: 1, topic, id: 1 },
        { code: 1, topic, id: 'sub-again' },
        { code: 2, topic, id: 0 },
        { code: 5, topic, id: 'before-login' },
        { code: 3, data: uidToken, id: 9007199254740991 },
        { code: 5, topic, id: -7 },
        { code: 6, topic, id: 'x'.repeat(64) },
        { code: 4, id: 'bye' },
      ];
      for (const r of requests) c.send(r);
      const expected: Array<[string | number, number]> = [
        [1, 20001],
        ['sub-again', 20001],
        [0, 20002],
        ['before-login', 30002],
        [9007199254740991, 20003],
        [-7, 20001],
        ['x'.repeat(64), 20002],
        ['bye', 20004],
      ];
      const replies = [];
      for (const [id, code] of expected) {
        const reply = (await c.next((f) => f.json?.id === id)).json!;
        expect(reply.code, `reply to id ${String(id)}`).toBe(code);
        expect(typeof reply.id).toBe(typeof id);
        replies.push(reply);
      }
      // Replies come back in request order.
      const order = c.frames.filter((f) => f.json && 'id' in f.json).map((f) => f.json!.id);
      expect(order).toEqual(expected.map(([id]) => id));
      // Topic echoed where the request had one.
      expect(replies.filter((r) => r.topic === topic)).toHaveLength(6);
    });

    it('omit id and topic when the request has none', async () => {
      const c = await node.connect();
      c.send({ code: 4 });
      const reply = (await c.next((f) => f.json?.code === 20004)).json!;
      expect(reply).not.toHaveProperty('id');
      expect(reply).not.toHaveProperty('topic');
    });
  });

  describe('subscriptions', () => {
    it('subscribing twice answers 20001 twice and delivers once', async () => {
      const c = await node.connect();
      const topic = unique('twice');
      expect((await c.subscribe(topic)).code).toBe(20001);
      expect((await c.subscribe(topic)).code).toBe(20001);
      await push({ topic, data: 'once' });
      await fence(c);
      expect(got(c)).toEqual(['once']);
    });

    it('unsubscribe stops delivery', async () => {
      const c = await node.connect();
      const topic = unique('unsub');
      await c.subscribe(topic);
      await push({ topic, data: 'before' });
      await c.next((f) => f.text === 'before');
      expect(await c.unsubscribe(topic)).toMatchObject({ code: 20002, topic });
      await push({ topic, data: 'after' });
      await fence(c);
      expect(got(c)).toEqual(['before']);
    });

    it('unsubscribing a topic never subscribed is a harmless 20002', async () => {
      const c = await node.connect();
      const topic = unique('never');
      expect(await c.unsubscribe(topic)).toMatchObject({ code: 20002, topic });
      await c.subscribe(topic);
      await push({ topic, data: 'still works' });
      await c.next((f) => f.text === 'still works');
    });

    it('unsubscribing privately does not drop the public subscription of the same name (and vice versa)', async () => {
      const uid = unique('u');
      const topic = unique('both');
      const c = await loggedIn(uid);
      await c.subscribe(topic);
      await c.subscribePrivate(topic);
      expect((await c.unsubscribePrivate(topic)).code).toBe(20002);
      await push({ topic, data: 'public' });
      await push({ uid, topic, data: 'private-after-unsub' });
      await fence(c);
      expect(got(c)).toEqual(['public']);

      await c.subscribePrivate(topic);
      expect((await c.unsubscribe(topic)).code).toBe(20002);
      await push({ topic, data: 'public-after-unsub' });
      await push({ uid, topic, data: 'private' });
      await fence(c);
      expect(got(c)).toEqual(['public', 'private']);
    });
  });

  describe('targeting', () => {
    /**
     * One user (u1) with three connections: private subscriber of T, public subscriber of T,
     * logged in without subscriptions; another user (u2) private subscriber of T; an anonymous
     * public subscriber of T; an anonymous connection with nothing.
     */
    const world = async () => {
      const u1 = unique('u1');
      const u2 = unique('u2');
      const topic = unique('T');
      const u1Private = await loggedIn(u1);
      expect((await u1Private.subscribePrivate(topic)).code).toBe(20001);
      const u1Public = await loggedIn(u1);
      expect((await u1Public.subscribe(topic)).code).toBe(20001);
      const u1Idle = await loggedIn(u1);
      const u2Private = await loggedIn(u2);
      expect((await u2Private.subscribePrivate(topic)).code).toBe(20001);
      const anonPublic = await node.connect();
      expect((await anonPublic.subscribe(topic)).code).toBe(20001);
      const anonIdle = await node.connect();
      const all = [u1Private, u1Public, u1Idle, u2Private, anonPublic, anonIdle];
      return { u1, u2, topic, u1Private, u1Public, u1Idle, u2Private, anonPublic, anonIdle, all };
    };

    it('topic only reaches the public subscribers only', async () => {
      const w = await world();
      await push({ topic: w.topic, data: 'public news' });
      await fence(...w.all);
      expect(got(w.u1Public)).toEqual(['public news']);
      expect(got(w.anonPublic)).toEqual(['public news']);
      for (const c of [w.u1Private, w.u1Idle, w.u2Private, w.anonIdle]) expect(got(c)).toEqual([]);
    });

    it("uid + topic reaches only that user's private subscribers of the topic", async () => {
      const w = await world();
      await push({ uid: w.u1, topic: w.topic, data: 'for u1 on T' });
      await push({ uid: w.u2, topic: w.topic, data: 'for u2 on T' });
      await push({ uid: w.u1, topic: unique('other-topic'), data: 'for u1 elsewhere' });
      await fence(...w.all);
      expect(got(w.u1Private)).toEqual(['for u1 on T']);
      expect(got(w.u2Private)).toEqual(['for u2 on T']);
      // Not the user's other connections, not public subscribers of T, not anonymous ones.
      for (const c of [w.u1Public, w.u1Idle, w.anonPublic, w.anonIdle]) expect(got(c)).toEqual([]);
    });

    it('uid only reaches every connection logged in as uid', async () => {
      const w = await world();
      await push({ uid: w.u1, data: 'for all of u1' });
      await fence(...w.all);
      for (const c of [w.u1Private, w.u1Public, w.u1Idle]) expect(got(c)).toEqual(['for all of u1']);
      for (const c of [w.u2Private, w.anonPublic, w.anonIdle]) expect(got(c)).toEqual([]);
    });

    it('both empty reaches every connection, anonymous ones included', async () => {
      const w = await world();
      await push({ data: 'to everyone' });
      for (const c of w.all) await c.next((f) => f.text === 'to everyone');
      await fence(...w.all);
      for (const c of w.all) expect(got(c)).toEqual(['to everyone']);
    });

    it('a uid push for a user nobody is logged in as reaches nobody', async () => {
      const w = await world();
      await push({ uid: unique('nobody'), data: 'lost' });
      await push({ uid: unique('nobody'), topic: w.topic, data: 'lost too' });
      await fence(...w.all);
      for (const c of w.all) expect(got(c)).toEqual([]);
    });
  });

  describe('deliveries', () => {
    it('valid UTF-8 arrives as one text frame with the exact bytes', async () => {
      const c = await node.connect();
      const topic = unique('utf8');
      await c.subscribe(topic);
      const text = 'héllo ✓ 🚀 {"code":1}';
      await pushData(node.grpc, { topic, data: Buffer.from(text, 'utf8') });
      const f = await c.next((x) => x.text === text);
      expect(f.binary).toBe(false);
      expect(f.data.equals(Buffer.from(text, 'utf8'))).toBe(true);
      await fence(c);
      expect(got(c)).toEqual([text]); // one frame, no envelope
    });

    it('non-UTF-8 bytes arrive as one binary frame with the exact bytes (gRPC and REST)', async () => {
      const c = await node.connect();
      const topic = unique('bin');
      await c.subscribe(topic);
      const bytes = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0xc3, 0x28, 0x01, 0x7f]);
      await pushData(node.grpc, { topic, data: bytes });
      const f1 = await c.next((x) => x.binary);
      expect(f1.data.equals(bytes)).toBe(true);

      const bytes2 = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
      await push({ topic, data: bytes2 });
      const f2 = await c.next((x) => x.binary);
      expect(f2.data.equals(bytes2)).toBe(true);

      await fence(c);
      expect(c.frames.filter((x) => x.binary)).toHaveLength(2);
      expect(got(c)).toHaveLength(2);
    });

    it('a larger payload still arrives in one frame, unchanged', async () => {
      const c = await node.connect();
      const topic = unique('big');
      await c.subscribe(topic);
      const big = Buffer.alloc(100_000, 'abcdefghij');
      await pushData(node.grpc, { topic, data: big });
      const f = await c.next((x) => x.data.length === big.length);
      expect(f.binary).toBe(false);
      expect(f.data.equals(big)).toBe(true);
    });

    it('200 pushes to one topic arrive in publish order', async () => {
      const c = await node.connect();
      const topic = unique('order');
      await c.subscribe(topic);
      const n = 200;
      for (let i = 0; i < n; i++) await pushData(node.grpc, { topic, data: Buffer.from(`m${i}`) });
      await c.next((f) => f.text === `m${n - 1}`, 10_000);
      expect(got(c)).toEqual(Array.from({ length: n }, (_, i) => `m${i}`));
    });

    it('pushes to one user arrive in publish order', async () => {
      const uid = unique('ordered-user');
      const c = await loggedIn(uid);
      const n = 50;
      for (let i = 0; i < n; i++) await push({ uid, data: `u${i}` });
      await c.next((f) => f.text === `u${n - 1}`);
      expect(got(c)).toEqual(Array.from({ length: n }, (_, i) => `u${i}`));
    });
  });

  describe('login state', () => {
    it('logout (code 4) stops private and user deliveries; public subscriptions stay', async () => {
      const uid = unique('leaver');
      const priv = unique('alerts');
      const pub = unique('pub');
      const leaver = await loggedIn(uid);
      await leaver.subscribePrivate(priv);
      await leaver.subscribe(pub);
      const stayer = await loggedIn(uid);
      await stayer.subscribePrivate(priv);

      await push({ uid, topic: priv, data: 'private-1' });
      await push({ uid, data: 'user-1' });
      await fence(leaver, stayer);
      expect(got(leaver)).toEqual(['private-1', 'user-1']);

      expect(await leaver.logout()).toMatchObject({ code: 20004 });
      await push({ uid, topic: priv, data: 'private-2' });
      await push({ uid, data: 'user-2' });
      await push({ topic: pub, data: 'public-2' });
      await fence(leaver, stayer);
      expect(got(leaver)).toEqual(['private-1', 'user-1', 'public-2']);
      // The user's other connection is unaffected.
      expect(got(stayer)).toEqual(['private-1', 'user-1', 'private-2', 'user-2']);
      // Logged out for real: private subscriptions need a login again.
      expect((await leaver.subscribePrivate(priv)).code).toBe(30002);
      // Logging out twice is harmless.
      expect((await leaver.logout()).code).toBe(20004);
    });

    it('logging in again as the same uid does not duplicate deliveries', async () => {
      const uid = unique('twice');
      const topic = unique('t');
      const c = await loggedIn(uid);
      await c.subscribePrivate(topic);
      const tok = await token(uid);
      expect((await c.login(tok)).code).toBe(20003);
      expect((await c.login(tok)).code).toBe(20003);
      expect((await c.subscribePrivate(topic)).code).toBe(20001);
      await push({ uid, data: 'user' });
      await push({ uid, topic, data: 'private' });
      await fence(c);
      expect(got(c)).toEqual(['user', 'private']);
    });

    it('logging in as another uid moves the connection cleanly', async () => {
      const uA = unique('A');
      const uB = unique('B');
      const topic = unique('t');
      const c = await loggedIn(uA);
      await c.subscribePrivate(topic);
      await push({ uid: uA, topic, data: 'A-private-before' });
      await c.next((f) => f.text === 'A-private-before');

      expect(await c.login(await token(uB))).toMatchObject({ code: 20003 });
      await push({ uid: uA, data: 'A-user' });
      await push({ uid: uA, topic, data: 'A-private' });
      await push({ uid: uB, topic, data: 'B-private-not-subscribed' });
      await push({ uid: uB, data: 'B-user' });
      await fence(c);
      // Old uid gone, old private subscriptions dropped (not carried over to B), new uid live.
      expect(got(c)).toEqual(['A-private-before', 'B-user']);

      expect((await c.subscribePrivate(topic)).code).toBe(20001);
      await push({ uid: uB, topic, data: 'B-private' });
      await push({ uid: uA, topic, data: 'A-private-again' });
      await fence(c);
      expect(got(c)).toEqual(['A-private-before', 'B-user', 'B-private']);
    });

    it('a failed login keeps the current identity', async () => {
      const uid = unique('keep');
      const c = await loggedIn(uid);
      expect((await c.login('garbage')).code).toBe(30003);
      await push({ uid, data: 'still me' });
      await c.next((f) => f.text === 'still me');
    });
  });
});

describe('WebSocket connections on a CLI node', () => {
  let node: NodeProcess;
  let clients: TestClient[] = [];

  beforeAll(async () => {
    node = await NodeProcess.start(['--node-id', 'proto-node', '--jwt-secret', SECRET]);
  });
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close()));
    clients = [];
  });
  afterAll(async () => {
    await node?.stop();
  });

  const connect = async (): Promise<TestClient> => {
    const c = await TestClient.connect(node.wsUrl);
    clients.push(c);
    return c;
  };

  it('gives every connection a distinct cid prefixed with the node id', async () => {
    const cs = await Promise.all([connect(), connect(), connect()]);
    for (const c of cs) {
      expect(c.frames[0]!.json?.code).toBe(20000);
      expect(c.cid).toMatch(/^proto-node-/);
    }
    expect(new Set(cs.map((c) => c.cid)).size).toBe(3);
  });

  it('a closed connection leaves no trace in the connection and channel registries', async () => {
    await waitFor(async () => (await node.metric('pushwire_connections')) === 0, 5000, 'no connections at start');
    await waitFor(async () => (await node.metric('pushwire_channels')) === 0, 5000, 'no channels at start');
    const closedBefore = await node.metric('pushwire_connections_closed_total');

    const a = await connect();
    await a.subscribe('a');
    await a.subscribe('b');
    const b = await connect();
    expect((await b.login(await token('gone-user'))).code).toBe(20003);
    await b.subscribePrivate('a');
    const c = await connect();
    expect((await c.login(await token('gone-user'))).code).toBe(20003);
    await c.subscribe('a');

    expect(await node.metric('pushwire_connections')).toBe(3);
    // b (the project's broadcast channel), t:a, t:b, u:gone-user, p:gone-user:a
    await waitFor(async () => (await node.metric('pushwire_channels')) === 5, 5000, 'channels gauge at 5');

    await a.close();
    await b.close();
    // An abrupt close (no close frame) must be cleaned up too.
    c.ws.terminate();
    await c.closed;

    await waitFor(async () => (await node.metric('pushwire_connections')) === 0, 5000, 'connections back to 0');
    await waitFor(async () => (await node.metric('pushwire_channels')) === 0, 5000, 'channels back to 0');
    await waitFor(
      async () => (await node.metric('pushwire_connections_closed_total')) === closedBefore + 3,
      5000,
      'three closes counted',
    );

    // Pushes to the old targets still succeed and reach nobody stale; a new client works normally.
    for (const body of [{ topic: 'a' }, { uid: 'gone-user' }, { uid: 'gone-user', topic: 'a' }]) {
      const res = await restPush(node.httpUrl, { ...body, data: b64('to nobody') });
      expect(res.status).toBe(200);
    }
    const fresh = await connect();
    await fresh.subscribe('a');
    await restPush(node.httpUrl, { topic: 'a', data: b64('fresh') });
    await fresh.next((f) => f.text === 'fresh');
    expect(fresh.deliveries()).toEqual(['fresh']);
    expect(node.proc.exitCode).toBeNull();
  });
});
