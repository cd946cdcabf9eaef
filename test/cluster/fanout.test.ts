import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PushServiceClient } from '../../gen/pushwire/v1/push.js';
import { b64, pushData, restPush } from '../helpers/grpc-client.js';
import type { NodeProcess } from '../helpers/node-process.js';
import type { TestRedis } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/ports.js';
import type { TestClient } from '../helpers/ws-client.js';
import { Cluster, count } from './support.js';

/**
 * Three real nodes (CLI processes) sharing one redis-server. A push accepted by node A over
 * gRPC or by node B over REST must reach the matching clients on every node, and only them.
 *
 * Negative checks use a fence: after the push that must NOT arrive, the same ingress node
 * publishes a broadcast. One Redis connection publishes both, and each node has one
 * subscriber connection, so a node receives them in publish order: once a client has the
 * fence, anything the first push was going to deliver to it would already be there.
 */
describe('cluster fan-out across nodes', () => {
  const cluster = new Cluster('fanout-secret');
  let redis: TestRedis;
  let A: NodeProcess;
  let B: NodeProcess;
  let C: NodeProcess;
  let grpcA: PushServiceClient;
  let grpcB: PushServiceClient;

  // a1: A, public "news", alice, private "inbox"   a2: A, public "news", bob, private "inbox"
  // b1: B, public "news", alice (no private)        b2: B, alice, private "inbox"
  // b3: B, anonymous, public "other"                c1: C, anonymous, nothing at all
  let a1: TestClient, a2: TestClient, b1: TestClient, b2: TestClient, b3: TestClient, c1: TestClient;
  let all: TestClient[];
  let seq = 0;
  const unique = (label: string): string => `${label}#${++seq}`;

  type Via = 'A/grpc' | 'B/rest';
  async function push(via: Via, uid: string, topic: string, text: string): Promise<void> {
    if (via === 'A/grpc') {
      const res = await pushData(grpcA, { uid, topic, data: Buffer.from(text) });
      expect(res.nodeId).toBe(A.nodeId);
    } else {
      const res = await restPush(B.httpUrl, { uid, topic, data: b64(text) });
      expect(res.status).toBe(200);
      expect(res.json.nodeId).toBe(B.nodeId);
    }
  }

  /** Broadcast from the same ingress and wait until every client has it (see the header comment). */
  async function fence(via: Via): Promise<void> {
    const text = unique(`fence-${via}`);
    await push(via, '', '', text);
    await Promise.all(all.map((c) => c.next((f) => f.text === text)));
  }

  /** Pushes through `via`, then checks exactly-once delivery to `expected` and none to the rest. */
  async function expectTargets(via: Via, uid: string, topic: string, expected: TestClient[]): Promise<void> {
    const text = unique(`${via} uid=${uid} topic=${topic}`);
    await push(via, uid, topic, text);
    await Promise.all(expected.map((c) => c.next((f) => f.text === text)));
    await fence(via);
    for (const c of all) expect(count(c, text), `${c.cid} got ${text}`).toBe(expected.includes(c) ? 1 : 0);
  }

  const login = async (c: TestClient, uid: string): Promise<void> => {
    expect((await c.login(await cluster.token(uid))).code).toBe(20003);
  };

  beforeAll(async () => {
    redis = await cluster.startRedis();
    [A, B, C] = await Promise.all([cluster.node(redis), cluster.node(redis), cluster.node(redis)]);
    grpcA = cluster.grpcClient(A);
    grpcB = cluster.grpcClient(B);

    [a1, a2, b1, b2, b3, c1] = await Promise.all([
      cluster.connect(A),
      cluster.connect(A),
      cluster.connect(B),
      cluster.connect(B),
      cluster.connect(B),
      cluster.connect(C),
    ]);
    all = [a1, a2, b1, b2, b3, c1];
    expect(new Set(all.map((c) => c.cid)).size).toBe(6);

    for (const c of [a1, a2, b1]) expect((await c.subscribe('news')).code).toBe(20001);
    expect((await b3.subscribe('other')).code).toBe(20001);
    await login(a1, 'alice');
    await login(a2, 'bob');
    await login(b1, 'alice');
    await login(b2, 'alice');
    for (const c of [a1, a2, b2]) expect((await c.subscribePrivate('inbox')).code).toBe(20001);
  });

  afterAll(async () => {
    await cluster.cleanup();
  });

  it('runs three distinct nodes on one Redis', () => {
    expect(new Set([A.nodeId, B.nodeId, C.nodeId]).size).toBe(3);
    for (const c of [a1, a2]) expect(c.cid.startsWith(`${A.nodeId}-`)).toBe(true);
    for (const c of [b1, b2, b3]) expect(c.cid.startsWith(`${B.nodeId}-`)).toBe(true);
    expect(c1.cid.startsWith(`${C.nodeId}-`)).toBe(true);
  });

  for (const via of ['A/grpc', 'B/rest'] as const) {
    describe(`a push accepted by ${via}`, () => {
      it('public topic: every subscriber of the topic on every node, nobody else', async () => {
        await expectTargets(via, '', 'news', [a1, a2, b1]);
        await expectTargets(via, '', 'other', [b3]);
        await expectTargets(via, '', 'nobody-listens', []);
      });

      it('uid + topic: only that user’s connections that subscribed privately (code 5)', async () => {
        // b1 is alice too but only holds the public "news"; a2 subscribed "inbox" privately as bob.
        await expectTargets(via, 'alice', 'inbox', [a1, b2]);
        await expectTargets(via, 'bob', 'inbox', [a2]);
        // A private push to a topic that is only subscribed publicly reaches nobody.
        await expectTargets(via, 'alice', 'news', []);
      });

      it('uid only: every logged-in connection of that user on every node', async () => {
        await expectTargets(via, 'alice', '', [a1, b1, b2]);
        await expectTargets(via, 'bob', '', [a2]);
        await expectTargets(via, 'carol', '', []);
      });

      it('broadcast: every connection of every node, including a node whose clients hold nothing', async () => {
        await expectTargets(via, '', '', all);
      });
    });
  }

  it('delivers bytes unchanged across nodes, binary as a binary frame', async () => {
    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80]);
    await pushData(grpcA, { topic: 'other', data: bytes });
    const f = await b3.next((fr) => fr.binary);
    expect(f.data.equals(bytes)).toBe(true);
    const viaRest = await restPush(B.httpUrl, { topic: 'news', data: Buffer.from('héllo ✓').toString('base64') });
    expect(viaRest.status).toBe(200);
    const g = await a1.next((fr) => fr.text === 'héllo ✓');
    expect(g.binary).toBe(false);
  });

  it('300 pushes from one publisher to one topic arrive in order on a client of another node', async () => {
    const sub = await cluster.connect(B);
    expect((await sub.subscribe('ordered')).code).toBe(20001);
    const n = 300;
    for (let i = 0; i < n; i++) await pushData(grpcA, { topic: 'ordered', data: Buffer.from(`ord-${i}`) });
    await sub.next((f) => f.text === `ord-${n - 1}`, 15_000);
    const got = sub.deliveries().filter((d) => d.startsWith('ord-'));
    expect(got).toEqual(Array.from({ length: n }, (_, i) => `ord-${i}`));
    await sub.close();
  });

  it('a user’s pushes from one publisher arrive in order on every node', async () => {
    const n = 100;
    for (let i = 0; i < n; i++) {
      const r = await restPush(B.httpUrl, { uid: 'alice', data: b64(`user-ord-${i}`) });
      expect(r.status).toBe(200);
    }
    const want = Array.from({ length: n }, (_, i) => `user-ord-${i}`);
    for (const c of [a1, b1, b2]) {
      await c.next((f) => f.text === want[n - 1]);
      expect(c.deliveries().filter((d) => d.startsWith('user-ord-'))).toEqual(want);
    }
  });

  it('logout on node B stops private and user delivery pushed from node A', async () => {
    expect((await b2.logout()).code).toBe(20004);
    await expectTargets('A/grpc', 'alice', 'inbox', [a1]);
    await expectTargets('A/grpc', 'alice', '', [a1, b1]);
    // The logged-out connection is still open and still gets broadcasts.
    await expectTargets('A/grpc', '', '', all);
    // Logging back in restores user delivery, but not the private subscription it left.
    await login(b2, 'alice');
    await expectTargets('A/grpc', 'alice', '', [a1, b1, b2]);
    await expectTargets('A/grpc', 'alice', 'inbox', [a1]);
  });

  it('a closed connection on one node stops receiving while the others keep going', async () => {
    const extra = await cluster.connect(C);
    expect((await extra.subscribe('news')).code).toBe(20001);
    await expectTargets('B/rest', '', 'news', [a1, a2, b1, extra]);
    await extra.close();
    // Node C forgets it (only c1 is left) and news keeps flowing to the other nodes.
    await waitFor(async () => (await C.metric('pushwire_connections')) === 1, 5000, 'C back to one connection');
    await expectTargets('B/rest', '', 'news', [a1, a2, b1]);
  });
});
