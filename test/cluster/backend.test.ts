import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientEventType, type ClientEvent } from '../../gen/pushwire/v1/backend.js';
import type { PushServiceClient } from '../../gen/pushwire/v1/push.js';
import { TestConsumer } from '../helpers/backend-client.js';
import { pushData } from '../helpers/grpc-client.js';
import { NodeProcess } from '../helpers/node-process.js';
import { waitFor } from '../helpers/ports.js';
import type { TestRedis } from '../helpers/redis-server.js';
import { TestClient } from '../helpers/ws-client.js';
import { Cluster, numsub, waitReady } from './support.js';

/**
 * Backend consumers across a Redis cluster of CLI nodes: competing consumers per group,
 * requests and replies crossing nodes, registrations in Redis (unregister, dead nodes, expiry),
 * connect/disconnect events in order across nodes and across a Redis restart, and projects.
 *
 * Redis keys (src/cluster/redis-consumers.ts): pushwire:be:{<pid>}:groups (SET of groups) and
 * pushwire:be:{<pid>}:g:<group> (ZSET of "node|consumer-id" scored by expiry ms).
 */

const SECRET = 'cluster-backend-secret';
const { REQUEST, CONNECT, DISCONNECT } = {
  REQUEST: ClientEventType.CLIENT_EVENT_TYPE_REQUEST,
  CONNECT: ClientEventType.CLIENT_EVENT_TYPE_CONNECT,
  DISCONNECT: ClientEventType.CLIENT_EVENT_TYPE_DISCONNECT,
};

const sign = (claims: Record<string, unknown>, secret = SECRET): Promise<string> =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('10m').sign(new TextEncoder().encode(secret));

const groupsKey = (pid = 'default') => `pushwire:be:{${pid}}:groups`;
const groupKey = (group: string, pid = 'default') => `pushwire:be:{${pid}}:g:${group}`;

/** The registered members ("node|id") of a group, with their expiry (ms). */
async function members(r: Redis, group: string, pid = 'default'): Promise<Array<{ member: string; expires: number }>> {
  const flat = await r.zrange(groupKey(group, pid), '0', '-1', 'WITHSCORES');
  const out: Array<{ member: string; expires: number }> = [];
  for (let i = 0; i < flat.length; i += 2) out.push({ member: flat[i]!, expires: Number(flat[i + 1]) });
  return out;
}

const requestsOf = (c: TestConsumer, cids?: string[]): ClientEvent[] =>
  c.events.filter((e) => e.type === REQUEST && (cids === undefined || cids.includes(e.cid)));

/** A consumer on `node`, closed in the cluster's cleanup if the test does not close it. */
async function consumerOn(cluster: Cluster, node: NodeProcess, req: { group?: string; pid?: string } = {}, key?: string): Promise<TestConsumer> {
  const c = await TestConsumer.connect(node.grpcAddress, req, key);
  cluster.closers.push(() => c.close());
  return c;
}

describe('backend consumers on a Redis cluster', () => {
  const cluster = new Cluster(SECRET);
  let redis: TestRedis;
  let r: Redis;
  let A: NodeProcess;
  let B: NodeProcess;
  let grpcB: PushServiceClient;
  /** Consumers a test opened; closed (and gone from Redis) before the next test. */
  let open: TestConsumer[] = [];

  const consumer = async (node: NodeProcess, group: string): Promise<TestConsumer> => {
    const c = await consumerOn(cluster, node, { group });
    open.push(c);
    return c;
  };

  /** Closes the test's consumers and waits until the project has no registered group left. */
  const noConsumers = async (): Promise<void> => {
    for (const c of open.splice(0)) c.close();
    await waitFor(async () => (await r.scard(groupsKey())) === 0, 10_000, 'no consumer group registered');
  };

  beforeAll(async () => {
    redis = await cluster.startRedis();
    r = cluster.redisClient(redis);
    [A, B] = await Promise.all([cluster.node(redis), cluster.node(redis)]);
    grpcB = cluster.grpcClient(B);
  });

  afterAll(async () => {
    await cluster.cleanup();
  });

  it('competing consumers across nodes: each request reaches one "g" consumer, and the "audit" consumer gets them all', async () => {
    const g1 = await consumer(A, 'g');
    const g2 = await consumer(B, 'g');
    const audit = await consumer(B, 'audit');
    expect((await r.smembers(groupsKey())).sort()).toEqual(['audit', 'g']);
    expect((await members(r, 'g')).map((m) => m.member.split('|')[0]).sort()).toEqual([A.nodeId, B.nodeId].sort());

    const [cA, cB] = await Promise.all([cluster.connect(A), cluster.connect(B)]);
    const n = 24;
    for (let i = 0; i < n; i++) {
      const c = i < n / 2 ? cA : cB;
      expect(await c.request({ code: 7, topic: 'work', data: { i } })).toMatchObject({ code: 20005 });
    }
    const cids = [cA.cid, cB.cid];
    const nums = (c: TestConsumer): number[] =>
      requestsOf(c, cids)
        .map((e) => JSON.parse(e.data.toString()) as { i?: number })
        .flatMap((d) => (typeof d === 'object' && d.i !== undefined ? [d.i] : []));
    await waitFor(() => nums(audit).length >= n, 10_000, 'audit got every request');
    await waitFor(() => nums(g1).length + nums(g2).length >= n, 10_000, 'group g got every request');
    // Fence: two more requests rotate to both "g" consumers; each node channel is FIFO, so
    // whatever was dispatched to a consumer earlier has arrived once its fence has.
    for (const id of ['fence-1', 'fence-2']) expect(await cA.request({ code: 7, data: id })).toMatchObject({ code: 20005 });
    const fenced = (c: TestConsumer) => c.events.some((e) => e.type === REQUEST && e.data.toString().startsWith('"fence-'));
    await waitFor(() => fenced(g1) && fenced(g2), 10_000, 'fences at both g consumers');

    const all = [...Array(n).keys()];
    expect([...nums(g1), ...nums(g2)].sort((x, y) => x - y)).toEqual(all);
    expect(nums(g1).length).toBeGreaterThan(0);
    expect(nums(g2).length).toBeGreaterThan(0);
    expect(nums(audit).sort((x, y) => x - y)).toEqual(all);
    // Requests crossed nodes both ways: a client of B reached the consumer on A and vice versa.
    expect(requestsOf(g1, [cB.cid]).length).toBeGreaterThan(0);
    expect(requestsOf(g2, [cA.cid]).length).toBeGreaterThan(0);
    // Events name the client's node, not the consumer's.
    for (const e of [...requestsOf(g1, cids), ...requestsOf(g2, cids)]) expect(e.nodeId).toBe(e.cid === cA.cid ? A.nodeId : B.nodeId);
    await noConsumers();
  });

  it("a request from node A reaches the consumer on node B; its reply (PushData to B with cids + reply_to) comes back on A as 20006", async () => {
    const k = await consumer(B, 'replies');
    const uid = 'replier-user';
    const c = cluster.track(await TestClient.connect(`${A.wsUrl}?token=${await sign({ sub: uid })}`));

    // gpush dialect: code 7 with a numeric id.
    c.send({ code: 7, id: 42, topic: 'orders.create', data: { item: 'book' } });
    expect((await c.next((f) => f.json?.id === 42)).json).toMatchObject({ code: 20005, id: 42 });
    const e = await k.next((x) => x.type === REQUEST && x.cid === c.cid, 10_000);
    expect(e).toMatchObject({ pid: 'default', uid, cid: c.cid, nodeId: A.nodeId, requestId: '42', topic: 'orders.create' });
    expect(JSON.parse(e.data.toString())).toEqual({ item: 'book' });
    await pushData(grpcB, { cids: [e.cid], replyTo: e.requestId, data: Buffer.from('{"ok":true,"order":7}') });
    expect((await c.next((f) => f.json?.code === 20006, 10_000)).json).toEqual({ code: 20006, message: 'reply', id: 42, data: { ok: true, order: 7 } });

    // ws-cluster dialect: {ack_id, affair_id, type, payload} → ack, then {affair_id, payload}.
    c.send({ ack_id: 'a1', affair_id: 'f1', type: 'chat', payload: { text: 'hi' } });
    expect((await c.next((f) => f.json?.ack_id === 'a1')).json).toEqual({ ack_id: 'a1', code: 0 });
    const w = await k.next((x) => x.type === REQUEST && x.requestId === 'f1', 10_000);
    expect(w).toMatchObject({ cid: c.cid, nodeId: A.nodeId, topic: 'chat' });
    expect(JSON.parse(w.data.toString())).toEqual({ text: 'hi' });
    await pushData(grpcB, { cids: [w.cid], replyTo: 'f1', data: Buffer.from('{"text":"hello"}') });
    expect((await c.next((f) => f.json?.affair_id === 'f1' && f.json.payload !== undefined, 10_000)).json).toEqual({
      affair_id: 'f1',
      payload: { text: 'hello' },
    });
    await noConsumers();
  });

  it('a WebSocket server connection on node B receives requests of node A clients and answers them', async () => {
    const server = cluster.track(await TestClient.connect(`${B.wsUrl}?token=${await sign({ sub: 'billing-svc', type: 'server', group: 'billing' })}`));
    await server.next((f) => f.json?.code === 20003);
    await waitFor(async () => (await r.sismember(groupsKey(), 'billing')) === 1, 10_000, 'server connection registered');
    expect((await members(r, 'billing')).map((m) => m.member.split('|')[0])).toEqual([B.nodeId]);

    const uid = 'paying-user';
    const c = cluster.track(await TestClient.connect(`${A.wsUrl}?token=${await sign({ sub: uid })}`));
    const connect = await server.next((f) => f.json?.type === 'connect' && (f.json.source as { cid: string }).cid === c.cid, 10_000);
    expect(connect.json).toMatchObject({ source: { pid: 'default', uid, cid: c.cid, node: A.nodeId } });

    c.send({ code: 7, id: 'pay-1', topic: 'pay', data: { amount: 5 } });
    expect((await c.next((f) => f.json?.id === 'pay-1')).json).toMatchObject({ code: 20005 });
    const req = (await server.next((f) => f.json?.type === 'request', 10_000)).json!;
    expect(req).toMatchObject({ type: 'request', affair_id: 'pay-1', topic: 'pay', payload: { amount: 5 }, source: { uid, cid: c.cid, node: A.nodeId } });

    server.send({ ack_id: 9, affair_id: req.affair_id, to: { cids: [c.cid] }, payload: { paid: true } });
    expect((await server.next((f) => f.json?.ack_id === 9)).json).toEqual({ ack_id: 9, code: 0 });
    expect((await c.next((f) => f.json?.code === 20006, 10_000)).json).toEqual({ code: 20006, message: 'reply', id: 'pay-1', data: { paid: true } });

    // The same over ws-cluster frames from the client: the reply keeps that dialect.
    c.send({ ack_id: 'k1', affair_id: 'pay-2', type: 'pay', payload: { amount: 6 } });
    expect((await c.next((f) => f.json?.ack_id === 'k1')).json).toEqual({ ack_id: 'k1', code: 0 });
    const req2 = (await server.next((f) => f.json?.type === 'request' && f.json.affair_id === 'pay-2', 10_000)).json!;
    server.send({ ack_id: 10, affair_id: req2.affair_id, to: { cids: [c.cid] }, payload: { paid: 6 } });
    expect((await server.next((f) => f.json?.ack_id === 10)).json).toEqual({ ack_id: 10, code: 0 });
    expect((await c.next((f) => f.json?.affair_id === 'pay-2' && f.json.payload !== undefined, 10_000)).json).toEqual({ affair_id: 'pay-2', payload: { paid: 6 } });

    await c.close();
    expect((await server.next((f) => f.json?.type === 'disconnect', 10_000)).json).toMatchObject({ source: { cid: c.cid, uid, node: A.nodeId } });
    await server.close();
    await waitFor(async () => (await r.scard(groupsKey())) === 0, 10_000, 'server connection unregistered');
    expect(await r.exists(groupKey('billing'))).toBe(0);
  });

  it('no consumer anywhere: 30005 at once; a cancelled stream unregisters in Redis and requests fail with 30005 again', async () => {
    await noConsumers();
    const c = await cluster.connect(A);
    const r1 = await c.request({ code: 7, data: 1 });
    expect(r1).toMatchObject({ code: 30005, message: 'no backend connected' });
    c.send({ ack_id: 'n1', affair_id: 'x', payload: 1 });
    expect((await c.next((f) => f.json?.ack_id === 'n1')).json).toMatchObject({ ack_id: 'n1', code: 30005 });

    const k = await consumer(B, 'solo');
    expect(await r.smembers(groupsKey())).toEqual(['solo']);
    const [reg] = await members(r, 'solo');
    expect(reg!.member.startsWith(`${B.nodeId}|`)).toBe(true);
    // Registered with the default 15 s TTL.
    expect(reg!.expires).toBeGreaterThan(Date.now() + 5_000);
    expect(await c.request({ code: 7, data: 2 })).toMatchObject({ code: 20005 });
    await k.next((e) => e.type === REQUEST && e.cid === c.cid, 10_000);
    expect(await r.exists(`${groupKey('solo')}:rr`)).toBe(1);

    k.close();
    open = [];
    // Unregistered by its node (no dispatch needed): the member, the group and its rotation key go.
    await waitFor(async () => (await r.zcard(groupKey('solo'))) === 0, 10_000, 'consumer unregistered');
    expect(await r.scard(groupsKey())).toBe(0);
    expect(await r.exists(groupKey('solo'), `${groupKey('solo')}:rr`)).toBe(0);
    expect(await c.request({ code: 7, data: 3 })).toMatchObject({ code: 30005 });
  });

  it('SIGKILL of the node holding one of two consumers: every later request reaches the survivor, without waiting for the TTL', async () => {
    await noConsumers();
    const C = await cluster.node(redis);
    const dead = await consumer(C, 'g');
    const survivor = await consumer(B, 'g');
    const c = await cluster.connect(A);
    // Both take part before the kill.
    for (let i = 0; i < 4; i++) expect(await c.request({ code: 7, data: `before-${i}` })).toMatchObject({ code: 20005 });
    await waitFor(() => requestsOf(dead, [c.cid]).length === 2 && requestsOf(survivor, [c.cid]).length === 2, 10_000, 'rotation over both');

    await C.stop('SIGKILL');
    // Redis has dropped C's connections (its node channel has no subscriber left) ...
    await waitFor(async () => (await numsub(r, `n:${C.nodeId}`)) === 0, 10_000, "C's node channel unsubscribed");
    // ... while C's registration is still far from expiring.
    const deadMember = (await members(r, 'g')).find((m) => m.member.startsWith(`${C.nodeId}|`));
    expect(deadMember).toBeDefined();
    expect(deadMember!.expires).toBeGreaterThan(Date.now() + 5_000);

    const n = 10;
    const answers: Array<Record<string, unknown>> = [];
    for (let i = 0; i < n; i++) answers.push(await c.request({ code: 7, data: `after-${i}` }));
    expect(answers.map((a) => a.code)).toEqual(Array(n).fill(20005));
    const after = () => requestsOf(survivor, [c.cid]).map((e) => JSON.parse(e.data.toString()) as string).filter((d) => d.startsWith('after-'));
    await waitFor(() => after().length >= n, 10_000, 'survivor got every request');
    // Fence for duplicates: one more request, after which nothing earlier can still arrive.
    expect(await c.request({ code: 7, data: 'fence' })).toMatchObject({ code: 20005 });
    await survivor.next((e) => e.type === REQUEST && e.data.toString() === '"fence"', 10_000);
    expect(after()).toEqual([...Array(n).keys()].map((i) => `after-${i}`));
    // Dispatches skip C's member (nobody hears its channel) but keep it while it is fresh: a
    // fresh registration may belong to a node that is only resubscribing after a Redis restart.
    // It goes once it missed a refresh, or at its expiry.
    expect((await members(r, 'g')).map((m) => m.member.split('|')[0]).sort()).toEqual([B.nodeId, C.nodeId].sort());
    expect(deadMember!.expires).toBeGreaterThan(Date.now());
    expect((await dead.ended)?.code).toBeDefined();
    // Test cleanup: later tests start from an empty directory without waiting for the expiry.
    await r.zrem(groupKey('g'), deadMember!.member);
  });

  it("a SIGKILLed node's registration expires after --consumer-ttl, even with no dispatch in between", async () => {
    await noConsumers();
    const D = await cluster.node(redis, ['--consumer-ttl', '1s']);
    const k = await consumer(D, 'ttl');
    const c = await cluster.connect(A);
    const [reg] = await members(r, 'ttl');
    expect(reg!.member.startsWith(`${D.nodeId}|`)).toBe(true);
    expect(reg!.expires).toBeLessThanOrEqual(Date.now() + 1_000 + 100);

    // A stand-in subscriber on D's node channel, which outlives D: a dispatch to D's consumer
    // is then still "heard" (PUBLISH returns 1), so only the expiry can make it skip D.
    const sub = cluster.redisClient(redis);
    const heard: Buffer[] = [];
    sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => heard.push(message));
    await sub.subscribe(`pushwire:n:${D.nodeId}`);
    expect(await numsub(r, `n:${D.nodeId}`)).toBe(2);
    expect(await c.request({ code: 7, data: 'live' })).toMatchObject({ code: 20005 });
    await k.next((e) => e.type === REQUEST && e.cid === c.cid, 10_000);
    await waitFor(() => heard.length === 1, 5000, 'the stand-in heard the consumer frame too');

    await D.stop('SIGKILL');
    await waitFor(async () => (await numsub(r, `n:${D.nodeId}`)) === 1, 10_000, "D's own subscription gone");
    // Nothing refreshes the registration any more: it is past its expiry (score), and the group's
    // key expires with it (PEXPIRE on every registration), without any dispatch or scan.
    await waitFor(async () => {
      const m = await members(r, 'ttl');
      return m.length === 0 || m[0]!.expires < Date.now();
    }, 10_000, "D's registration past its expiry");
    await waitFor(async () => (await r.exists(groupKey('ttl'))) === 0, 10_000, "the group's key expired");

    // The next dispatch skips and cleans it up: nobody is connected, nothing is published.
    expect(await c.request({ code: 7, data: 'late' })).toMatchObject({ code: 30005 });
    expect(await r.exists(groupKey('ttl'))).toBe(0);
    expect(await r.sismember(groupsKey(), 'ttl')).toBe(0);
    expect(heard).toHaveLength(1);
    open = [];
    k.close();
  });

  it('connect/disconnect events of 20 short connections on node A reach the consumer on node B, each connect before its disconnect, once', async () => {
    await noConsumers();
    const k = await consumer(B, 'life');
    const cids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const c = await TestClient.connect(`${A.wsUrl}?token=${await sign({ sub: `short-${i}` })}`);
      cids.push(c.cid);
      // Backends hear of a connection once the login given at the upgrade is done (a connection
      // closed before that is never announced, so neither event is sent): a reply queued behind
      // that login tells the test it is done.
      expect((await c.subscribe('short')).code).toBe(20001);
      await c.close();
    }
    // Fence: A sends its events in order to B's FIFO channel; once this one arrived, all did.
    const fence = await cluster.connect(A);
    await k.next((e) => e.cid === fence.cid && e.type === CONNECT, 10_000);
    for (const [i, cid] of cids.entries()) {
      const mine = k.events.filter((e) => e.cid === cid);
      expect(
        mine.map((e) => e.type),
        cid,
      ).toEqual([CONNECT, DISCONNECT]);
      expect(mine.every((e) => e.uid === `short-${i}` && e.nodeId === A.nodeId && e.pid === 'default')).toBe(true);
      expect(Number(mine[1]!.timeMs)).toBeGreaterThanOrEqual(Number(mine[0]!.timeMs));
    }
    // The order across connections is the order they happened in.
    const order = k.events.filter((e) => cids.includes(e.cid)).map((e) => `${e.type === CONNECT ? 'c' : 'd'}${cids.indexOf(e.cid)}`);
    expect(order).toEqual(cids.flatMap((_, i) => [`c${i}`, `d${i}`]));
    // Event ids are unique.
    expect(new Set(k.events.map((e) => e.eventId)).size).toBe(k.events.length);
    await noConsumers();
  });
});

/**
 * A TCP relay in front of Redis for one node: closing it cuts that node off (and keeps it off
 * while the others reconnect), so the test decides when that node's retries reach Redis.
 */
class Relay {
  private readonly sockets = new Set<Socket>();
  private open = true;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<Relay> {
    let relay: Relay | undefined;
    const server = createServer((client) => {
      if (!relay!.open) return void client.destroy();
      const upstream = tcpConnect(targetPort, '127.0.0.1');
      relay!.sockets.add(client).add(upstream);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        relay!.sockets.delete(client);
        relay!.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    relay = new Relay(server, (server.address() as { port: number }).port);
    return relay;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Cuts every relayed connection and refuses new ones. */
  block(): void {
    this.open = false;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  unblock(): void {
    this.open = true;
  }

  close(): Promise<void> {
    this.block();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('connect/disconnect events across a Redis restart', () => {
  const cluster = new Cluster(SECRET);
  let redis: TestRedis;
  let r: Redis;
  let relay: Relay;
  let A: NodeProcess;
  let B: NodeProcess;

  beforeAll(async () => {
    redis = await cluster.startRedis();
    r = cluster.redisClient(redis);
    relay = await Relay.start(redis.port);
    // A (the clients' node) reaches Redis through the relay; B (the consumer's) directly. A
    // short TTL makes B re-register soon after the restart (every ttl/3 = 1 s).
    A = await NodeProcess.start(['--redis', relay.url, '--jwt-secret', SECRET, '--consumer-ttl', '3s']);
    cluster.nodes.push(A);
    B = await cluster.node(redis, ['--consumer-ttl', '3s']);
  });

  afterAll(async () => {
    await cluster.cleanup();
    await relay.close();
  });

  it("the consumer gets a connection's connect before its disconnect, once, for events that happened while Redis was down", async () => {
    const k = await consumerOn(cluster, B, { group: 'life' });
    const before = await cluster.connect(A);
    await k.next((e) => e.cid === before.cid && e.type === CONNECT, 10_000);

    await redis.kill();
    // Keep A off Redis until B is back and registered (see the report on this ordering).
    relay.block();
    await Promise.all([waitReady(A, 503), waitReady(B, 503)]);

    // While Redis is down: a client comes and goes on A, and the earlier one leaves.
    const during = await TestClient.connect(`${A.wsUrl}?token=${await sign({ sub: 'during' })}`);
    // Past its login, so it is announced (see the 20 short connections above).
    expect((await during.subscribe('during')).code).toBe(20001);
    await during.close();
    await before.close();
    await waitFor(async () => (await A.metric('pushwire_backend_outbox')) >= 3, 10_000, "A's outbox holds the three events");

    await redis.restart();
    await waitReady(B, 200, 15_000);
    // B re-registers its consumer on its next refresh and listens on its node channel again.
    await waitFor(async () => (await members(r, 'life')).some((m) => m.member.startsWith(`${B.nodeId}|`)), 15_000, 'B re-registered');
    await waitFor(async () => (await numsub(r, `n:${B.nodeId}`)) === 1, 10_000, "B's node channel");
    expect(k.events.filter((e) => e.cid === during.cid)).toEqual([]);

    relay.unblock();
    await waitReady(A, 200, 15_000);
    await k.next((e) => e.cid === before.cid && e.type === DISCONNECT, 15_000);
    await waitFor(async () => (await A.metric('pushwire_backend_outbox')) === 0, 10_000, "A's outbox empty");
    // Fence: a new connection's connect follows everything A queued before it.
    const fence = await cluster.connect(A);
    await k.next((e) => e.cid === fence.cid && e.type === CONNECT, 10_000);

    expect(k.events.filter((e) => e.cid === during.cid).map((e) => [e.type, e.uid])).toEqual([
      [CONNECT, 'during'],
      [DISCONNECT, 'during'],
    ]);
    expect(k.events.filter((e) => e.cid === before.cid).map((e) => e.type)).toEqual([CONNECT, DISCONNECT]);
    // In the order they happened on A.
    const seq = k.events.filter((e) => e.cid === during.cid || e.cid === before.cid).map((e) => `${e.cid === before.cid ? 'before' : 'during'}:${e.type}`);
    expect(seq).toEqual([`before:${CONNECT}`, `during:${CONNECT}`, `during:${DISCONNECT}`, `before:${DISCONNECT}`]);
    k.close();
  });
});

describe('backend consumers of different projects on a Redis cluster', () => {
  const cluster = new Cluster('unused');
  const dir = mkdtempSync(join(tmpdir(), 'pushwire-backend-cluster-'));
  let A: NodeProcess;
  let B: NodeProcess;
  let r: Redis;
  const SHOP_KEY = 'cluster-shop-backend-key-0123';
  const BLOG_KEY = 'cluster-blog-backend-key-0123';

  beforeAll(async () => {
    const file = join(dir, 'projects.json');
    writeFileSync(
      file,
      JSON.stringify({
        projects: [
          { pid: 'shop', login: { jwtSecret: 'shop-secret' }, apiKeys: [{ key: SHOP_KEY }] },
          { pid: 'blog', login: { jwtSecret: 'blog-secret' }, apiKeys: [{ key: BLOG_KEY }] },
        ],
      }),
    );
    const redis = await cluster.startRedis();
    r = cluster.redisClient(redis);
    [A, B] = await Promise.all([
      NodeProcess.start(['--redis', redis.url, '--projects', file]),
      NodeProcess.start(['--redis', redis.url, '--projects', file]),
    ]);
    cluster.nodes.push(A, B);
  });

  afterAll(async () => {
    await cluster.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("consumers of one project never receive another project's events, on any node, with the same group and uid", async () => {
    // Same group name in both projects, consumers on both nodes.
    const shopOnB = await consumerOn(cluster, B, { group: 'g' }, SHOP_KEY);
    const shopOnA = await consumerOn(cluster, A, { pid: 'shop', group: 'g' }, SHOP_KEY);
    const blogOnA = await consumerOn(cluster, A, { group: 'g' }, BLOG_KEY);
    expect(await r.smembers(groupsKey('shop'))).toEqual(['g']);
    expect(await r.smembers(groupsKey('blog'))).toEqual(['g']);
    expect(await r.zcard(groupKey('g', 'shop'))).toBe(2);
    expect(await r.zcard(groupKey('g', 'blog'))).toBe(1);
    expect(await r.exists(groupsKey())).toBe(0);

    const uid = 'same-uid';
    const tokenFor = (pid: string) => sign({ sub: uid }, `${pid}-secret`);
    const shopClient = cluster.track(await TestClient.connect(`${A.wsUrl}?pid=shop&token=${await tokenFor('shop')}`));
    const blogClient = cluster.track(await TestClient.connect(`${B.wsUrl}?pid=blog&token=${await tokenFor('blog')}`));
    for (let i = 0; i < 6; i++) {
      expect(await shopClient.request({ code: 7, topic: 't', data: `shop-${i}` })).toMatchObject({ code: 20005 });
      expect(await blogClient.request({ code: 7, topic: 't', data: `blog-${i}` })).toMatchObject({ code: 20005 });
    }
    const shortBlog = await TestClient.connect(`${A.wsUrl}?pid=blog&token=${await tokenFor('blog')}`);
    expect((await shortBlog.subscribe('t')).code).toBe(20001);
    await shortBlog.close();

    const data = (cs: TestConsumer[]) => cs.flatMap((c) => requestsOf(c).map((e) => JSON.parse(e.data.toString()) as string)).sort();
    await waitFor(() => data([shopOnA, shopOnB]).length >= 6 && data([blogOnA]).length >= 6, 10_000, 'every request delivered');
    await blogOnA.next((e) => e.cid === shortBlog.cid && e.type === DISCONNECT, 10_000);
    // Fences through both nodes, for each project: after them, nothing earlier is in flight.
    const shopFence = cluster.track(await TestClient.connect(`${B.wsUrl}?pid=shop`));
    const blogFence = cluster.track(await TestClient.connect(`${A.wsUrl}?pid=blog`));
    await waitFor(() => [shopOnA, shopOnB].some((c) => c.events.some((e) => e.cid === shopFence.cid)), 10_000, 'shop fence');
    await blogOnA.next((e) => e.cid === blogFence.cid, 10_000);

    expect(data([shopOnA, shopOnB])).toEqual([...Array(6).keys()].map((i) => `shop-${i}`).sort());
    expect(data([blogOnA])).toEqual([...Array(6).keys()].map((i) => `blog-${i}`).sort());
    for (const c of [shopOnA, shopOnB]) {
      expect(c.events.every((e) => e.pid === 'shop')).toBe(true);
      expect(c.events.some((e) => [blogClient.cid, shortBlog.cid, blogFence.cid].includes(e.cid))).toBe(false);
    }
    expect(blogOnA.events.every((e) => e.pid === 'blog')).toBe(true);
    expect(blogOnA.events.some((e) => [shopClient.cid, shopFence.cid].includes(e.cid))).toBe(false);
    // The short blog connection's events went to the blog consumer only.
    expect(blogOnA.events.filter((e) => e.cid === shortBlog.cid).map((e) => e.type)).toEqual([CONNECT, DISCONNECT]);
  });
});
