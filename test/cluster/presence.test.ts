import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushData } from '../helpers/grpc-client.js';
import { unique } from '../helpers/names.js';
import type { NodeProcess } from '../helpers/node-process.js';
import type { TestRedis } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/ports.js';
import { PresenceClients } from '../helpers/presence-client.js';
import type { TestClient } from '../helpers/ws-client.js';
import { Cluster, channels, waitNumsub } from './support.js';

/**
 * Presence, Subscribe and the node registry across two CLI nodes and a test-owned Redis, with
 * a short --presence-ttl so a SIGKILLed node's users and record expire within the test.
 */

const TTL = ['--presence-ttl', '2s'];

describe('presence on a two-node Redis cluster', () => {
  const cluster = new Cluster('presence-cluster-secret');
  let r: Redis;
  let redis: TestRedis;
  let A: NodeProcess;
  let B: NodeProcess;
  let a: PresenceClients;
  let b: PresenceClients;

  beforeAll(async () => {
    redis = await cluster.startRedis();
    r = cluster.redisClient(redis);
    A = await cluster.node(redis, TTL);
    B = await cluster.node(redis, TTL);
    a = new PresenceClients(A.grpcAddress);
    b = new PresenceClients(B.grpcAddress);
    cluster.closers.push(() => a.close(), () => b.close());
  });
  afterAll(() => cluster.cleanup());

  const login = async (node: NodeProcess, uid: string): Promise<TestClient> => {
    const c = await cluster.connect(node);
    expect((await c.login(await cluster.token(uid))).code).toBe(20003);
    return c;
  };
  const count = (c: PresenceClients) => c.count({ pid: '' });

  it('lists, counts and looks up users across nodes, page by page', async () => {
    const x = await login(A, 'u1');
    const y = await login(B, 'u1');
    for (const [i, node] of [A, B, A, B, A, B, A].entries()) await login(node, `u${i + 2}`);
    await cluster.connect(B); // anonymous
    expect(await count(b)).toEqual({ users: 8, connections: 9 });

    const seen: string[] = [];
    let pageToken = '';
    do {
      const page = await a.list({ pid: '', pageSize: 3, pageToken });
      expect(page.totalSize).toBe(8);
      seen.push(...page.users.map((u) => `${u.uid}:${u.connections}`));
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    expect(seen).toEqual(['u1:2', 'u2:1', 'u3:1', 'u4:1', 'u5:1', 'u6:1', 'u7:1', 'u8:1']);

    const { users } = await b.get({ pid: '', uids: ['u1'] });
    expect(users[0]!.connections.map((c) => [c.cid, c.nodeId]).sort()).toEqual(
      [
        [x.cid, A.nodeId],
        [y.cid, B.nodeId],
      ].sort(),
    );
    // REST on the other node agrees.
    const rest = await (await fetch(`${A.httpUrl}/v1/projects/default/online-users:count`)).json();
    expect(rest).toEqual({ users: 8, connections: 9 });

    await Promise.all(cluster.clients.splice(0).map((c) => c.close()));
    await waitFor(async () => (await count(a)).connections === 0, 5000, 'everyone gone');
    expect(await r.hlen('pushwire:presence:{default}:conns')).toBe(0);
    expect(await r.zcard('pushwire:presence:{default}:users')).toBe(0);
  });

  it('a user on two nodes joins once (first connection) and leaves once (last), in order', async () => {
    const uid = unique('two');
    const w = a.watch();
    await w.next((i) => i.snapshot?.last === true);
    const onA = await login(A, uid);
    await w.next((i) => i.joined?.uid === uid);
    const onB = await login(B, uid);
    await onA.close();
    const connectionsOf = async () => (await b.get({ pid: '', uids: [uid] })).users[0]!.connectionCount;
    await waitFor(async () => (await connectionsOf()) === 1, 5000, 'one connection left');
    await onB.close();
    await w.next((i) => i.left?.uid === uid);
    const mine = w.items.flatMap((i) => (i.joined?.uid === uid ? [`join ${i.joined.cid}`] : i.left?.uid === uid ? [`leave ${i.left.cid}`] : []));
    expect(mine).toEqual([`join ${onA.cid}`, `leave ${onB.cid}`]);
    const seqs = w.items.filter((i) => i.joined ?? i.left).map((i) => Number((i.joined ?? i.left)!.sequence));
    expect(seqs).toEqual(seqs.map((_, k) => seqs[0]! + k));
    w.cancel();
    await w.ended;
  });

  it('Subscribe on one node receives pushes accepted by the other, private topics included; cancel releases the channels', async () => {
    const topic = unique('t');
    const uid = unique('u');
    const s = await b.subscribe({ topics: [topic], uid, privateTopics: ['inbox'] });
    const push = cluster.grpcClient(A);
    await pushData(push, { topic, data: Buffer.from('one') });
    await pushData(push, { uid, topic: 'inbox', data: Buffer.from('two') });
    await pushData(push, { uid, data: Buffer.from('three') });
    await s.next((m) => Buffer.from(m.data).toString() === 'three');
    expect(s.items.map((m) => [m.topic, m.uid, Buffer.from(m.data).toString(), m.messageId.startsWith(A.nodeId)])).toEqual([
      [topic, '', 'one', true],
      ['inbox', uid, 'two', true],
      ['', uid, 'three', true],
    ]);
    const mine = async () => (await channels(r)).filter((c) => c.includes(topic) || c.includes(uid));
    expect(await mine()).toEqual([`pushwire:p:${uid.length}:${uid}:inbox`, `pushwire:t:${topic}`, `pushwire:u:${uid}`].sort());
    s.cancel();
    await s.ended;
    // After the 500 ms unsubscribe delay, nothing of it is left in Redis or in the hub.
    await waitNumsub(r, `t:${topic}`, 0);
    await waitFor(async () => (await mine()).length === 0, 5000, 'no channels left');
    await waitFor(async () => (await B.metric('pushwire_channels')) === 0, 5000, 'hub channels released');
    expect(await B.metric('pushwire_grpc_subscribers')).toBe(0);
  });

  it('a SIGKILLed node drops out of presence and the node list within the TTL; its users leave', async () => {
    const C = await cluster.node(redis, TTL);
    const uid = unique('doomed');
    const w = a.watch();
    await w.next((i) => i.snapshot?.last === true);
    await login(C, uid);
    await w.next((i) => i.joined?.uid === uid);
    const ids = (nodes: Array<{ nodeId: string }>): string[] => nodes.map((n) => n.nodeId).sort();
    const recordOfC = async () => (await a.nodes()).nodes.find((n) => n.nodeId === C.nodeId);
    // The record shows the connection from C's next heartbeat (every ttl/3) on.
    const rec = await waitFor(async () => ((await recordOfC())?.connections === 1 ? recordOfC() : undefined), 5000, 'C heartbeat');
    expect(rec!.grpcAddress).toBe(C.grpcAddress);
    expect(Number(rec!.heartbeatTimeMs)).toBeGreaterThan(0);
    // Waited for, not read once: on a loaded box a live node's heartbeat can be late by more than
    // the 2 s TTL's margin, and it is then missing until its next one (presence-stall.test.ts).
    await waitFor(async () => ids((await a.nodes()).nodes).join() === ids([A, B, C]).join(), 15_000, 'A, B and C listed');

    // Only what follows the kill counts: a leave from a late heartbeat of C before it is not the one proven here.
    w.skip();
    await C.stop('SIGKILL');
    // Expected after the 2 s TTL plus at most one cleanup period (ttl/3); generous bound for a busy machine.
    await w.next((i) => i.left?.uid === uid, 15_000);
    await waitFor(async () => !(await b.get({ pid: '', uids: [uid] })).users[0]!.online, 5000, `${uid} offline`);
    // C is gone for good; A and B are listed again once their heartbeats land, however late.
    const listed = async () => ids(((await (await fetch(`${B.httpUrl}/v1/nodes`)).json()) as { nodes: Array<{ nodeId: string }> }).nodes);
    await waitFor(async () => (await listed()).join() === ids([A, B]).join(), 15_000, 'exactly A and B listed');
    expect(await listed()).not.toContain(C.nodeId);
    w.cancel();
  });
});
