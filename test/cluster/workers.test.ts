import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PushServiceClient } from '../../gen/pushwire/v1/push.js';
import { b64, pushClient, pushData, restPush } from '../helpers/grpc-client.js';
import { NodeProcess, type LogLine } from '../helpers/node-process.js';
import { waitFor } from '../helpers/ports.js';
import { TestRedis } from '../helpers/redis-server.js';
import { V1Client } from '../helpers/v1-client.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * `pushwire serve --workers 2` through the real CLI, without Redis (the primary is the bus,
 * presence store and consumer directory, over IPC) and with it (each worker a Redis node).
 * Connections spread over both workers; pushes accepted by either worker reach clients of
 * both; a killed worker is restarted and serves again, and its v1 channel members leave once
 * (published by the primary without Redis, by the pruning Redis script with it); SIGTERM
 * drains every worker.
 */
const modes = [{ name: 'without Redis', redis: false }, { name: 'with Redis', redis: true }] as const;

describe.each(modes)('serve --workers 2, $name', ({ redis: useRedis }) => {
  let redis: TestRedis | undefined;
  let node: NodeProcess;
  let grpc: PushServiceClient;
  const clients: TestClient[] = [];
  let seq = 0;

  const workerLogs = (msg: string, worker: number): LogLine[] => node.logs.filter((l) => l.msg === msg && l.worker === worker);
  const connect = async (): Promise<TestClient> => {
    const c = await TestClient.connect(node.wsUrl);
    clients.push(c);
    return c;
  };
  const nodeOfCid = (cid: string): string => cid.split('-').slice(0, 2).join('-');
  const nodeOf = (c: TestClient): string => nodeOfCid(c.cid);
  const base = (): string => String(node.logs.find((l) => l.msg === 'pushwire workers listening')!.nodeId);

  beforeAll(async () => {
    if (useRedis) redis = await TestRedis.start();
    // Generous bounds throughout: three processes starting on a loaded machine can take a while.
    const channels = JSON.stringify({ namespaces: { room: { presence: true, joinLeave: true } } });
    // A short --presence-ttl: with Redis, a killed worker's members are pruned within ttl + ttl/3.
    node = await NodeProcess.start(['--workers', '2', '--jwt-secret', 'workers-secret', '--channels', channels, '--presence-ttl', '3s', ...(redis ? ['--redis', redis.url] : [])], {}, 80_000);
    await waitFor(() => node.logs.some((l) => l.msg === 'pushwire workers listening'), 80_000, 'both workers');
    grpc = pushClient(node.grpcAddress);
  }, 180_000);

  afterAll(async () => {
    grpc?.close();
    await Promise.all(clients.map((c) => c.close()));
    await node?.stop('SIGKILL');
    await redis?.stop();
  });

  it('spreads connections over both workers, each a node of its own', { timeout: 60_000 }, async () => {
    for (let i = 0; i < 8; i++) await connect();
    const ids = new Set(clients.map(nodeOf));
    expect([...ids].sort()).toEqual([`${base()}-0`, `${base()}-1`]);
    // /metrics on the shared port answers for the machine: one series per worker.
    await waitFor(async () => (await node.metric('pushwire_connections')) === 8, 10_000, '8 connections in /metrics');
    expect(await node.metric('pushwire_connections', { worker: '0' })).toBeGreaterThan(0);
    expect(await node.metric('pushwire_connections', { worker: '1' })).toBeGreaterThan(0);
    const nodes = await waitFor(async () => {
      const r = (await (await fetch(`${node.httpUrl}/v1/nodes`)).json()) as { nodes: Array<{ nodeId: string }> };
      return r.nodes.length === 2 ? r.nodes : undefined;
    }, 10_000, 'two node records');
    expect(nodes!.map((n) => n.nodeId).sort()).toEqual([`${base()}-0`, `${base()}-1`]);
  });

  it('a broadcast, a topic push and a cid-targeted push reach clients of both workers', { timeout: 60_000 }, async () => {
    // Several pushes, so both workers' ingress takes some (REST and gRPC are spread like WebSockets).
    for (let i = 0; i < 4; i++) {
      const text = `broadcast ${++seq}`;
      const res = await restPush(node.httpUrl, { data: b64(text) });
      expect(res.status).toBe(200);
      await Promise.all(clients.map((c) => c.next((f) => f.text === text, 10_000)));
    }
    await Promise.all(clients.map((c) => c.subscribe('news')));
    for (let i = 0; i < 4; i++) {
      const text = `news ${++seq}`;
      await pushData(grpc, { topic: 'news', data: Buffer.from(text) });
      await Promise.all(clients.map((c) => c.next((f) => f.text === text, 10_000)));
    }
    const targets = [clients.find((c) => nodeOf(c).endsWith('-0'))!, clients.find((c) => nodeOf(c).endsWith('-1'))!];
    const text = `to cids ${++seq}`;
    await pushData(grpc, { cids: targets.map((c) => c.cid), data: Buffer.from(text) });
    await Promise.all(targets.map((c) => c.next((f) => f.text === text, 10_000)));
  });

  it('protocol v1 channel presence and join/leave span both workers', { timeout: 60_000 }, async () => {
    // One v1 client on each worker (connections are spread by the primary).
    const byWorker = new Map<string, { c: V1Client; cid: string }>();
    const extra: V1Client[] = [];
    try {
      for (let i = 0; i < 20 && byWorker.size < 2; i++) {
        const c = await V1Client.open(node.wsUrl);
        extra.push(c);
        const cid = (await c.command({ connect: {} })).connect.client as string;
        const worker = cid.split('-').slice(0, 2).join('-');
        if (!byWorker.has(worker)) byWorker.set(worker, { c, cid });
      }
      expect(byWorker.size).toBe(2);
      const [x, y] = [...byWorker.values()] as [{ c: V1Client; cid: string }, { c: V1Client; cid: string }];
      const channel = `room:workers-${useRedis ? 'redis' : 'ipc'}`;
      await x.c.subscribe(channel);
      await y.c.subscribe(channel);
      await x.c.next((m) => m.join?.info.client === y.cid, 10_000);
      const listed = async (c: V1Client): Promise<string[]> => ((await c.command({ presence: { channel } })).presence.clients as Array<{ client: string }>).map((i) => i.client).sort();
      expect(await listed(x.c)).toEqual([x.cid, y.cid].sort());
      expect(await listed(y.c)).toEqual([x.cid, y.cid].sort());
      await y.c.close();
      await x.c.next((m) => m.leave?.info.client === y.cid, 10_000);
      expect(await listed(x.c)).toEqual([x.cid]);
    } finally {
      await Promise.all(extra.map((c) => c.close()));
    }
  });

  it('restarts a killed worker, which then serves clients again; its channel members leave once', async () => {
    // A v1 subscriber on each worker, in a joinLeave channel.
    const v1: Array<{ c: V1Client; cid: string }> = [];
    const onWorker = async (w: number): Promise<{ c: V1Client; cid: string }> => {
      for (let i = 0; i < 20; i++) {
        const c = await V1Client.open(node.wsUrl);
        v1.push({ c, cid: (await c.command({ connect: {} })).connect.client as string });
        if (nodeOfCid(v1.at(-1)!.cid).endsWith(`-${w}`)) return v1.at(-1)!;
      }
      throw new Error(`no connection landed on worker ${w}`);
    };
    const channel = `room:crash-${useRedis ? 'redis' : 'ipc'}`;
    const [stays, dies] = [await onWorker(1), await onWorker(0)];
    await stays.c.subscribe(channel);
    await dies.c.subscribe(channel);
    await stays.c.next((m) => m.join?.info.client === dies.cid, 10_000);

    const pid = workerLogs('worker ready', 0).at(-1)!.pid as number;
    const before = workerLogs('worker ready', 0).length;
    process.kill(pid, 'SIGKILL');
    expect((await stays.c.next((m) => m.leave?.info.client === dies.cid, 30_000)).leave).toMatchObject({ channel, info: { client: dies.cid } });
    expect(((await stays.c.command({ presence: { channel } })).presence.clients as Array<{ client: string }>).map((i) => i.client)).toEqual([stays.cid]);
    // A publication after the leave (same channel, in order): nothing else was on its way.
    await pushData(grpc, { topic: channel, data: Buffer.from('after the crash') });
    await stays.c.next((m) => m.pub?.channel === channel, 10_000);
    expect(stays.c.messages.filter((m) => m.leave)).toHaveLength(1);
    await Promise.all(v1.map((x) => x.c.close()));

    await waitFor(() => workerLogs('worker died; restarting it', 0).length > 0, 30_000, 'the crash to be noticed');
    await waitFor(() => workerLogs('worker ready', 0).length > before, 80_000, 'worker 0 to be back');
    // Its clients were cut off; the other worker's stay. New connections reach the new worker.
    const survivors = clients.filter((c) => nodeOf(c).endsWith('-1'));
    let fresh: TestClient | undefined;
    for (let i = 0; i < 10 && fresh === undefined; i++) {
      const c = await connect();
      if (nodeOf(c).endsWith('-0')) fresh = c;
    }
    expect(fresh, 'a connection on the restarted worker').toBeDefined();
    const text = `after restart ${++seq}`;
    for (let i = 0; i < 2; i++) expect((await restPush(node.httpUrl, { data: b64(`${text}/${i}`) })).status).toBe(200);
    await Promise.all([fresh!, ...survivors].flatMap((c) => [0, 1].map((i) => c.next((f) => f.text === `${text}/${i}`, 10_000))));
  }, 150_000);

  it('SIGTERM drains every worker: clients get 1012 and the machine exits 0', async () => {
    const open = clients.filter((c) => c.ws.readyState === c.ws.OPEN);
    expect(open.length).toBeGreaterThan(1);
    const pids = [0, 1].map((w) => workerLogs('worker ready', w).at(-1)!.pid as number);
    const code = await node.stop('SIGTERM');
    expect(code).toBe(0);
    for (const c of open) expect((await c.closed).code).toBe(1012);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  }, 60_000);
});

describe('serve --workers: a killed primary leaves no workers behind', () => {
  it('workers exit when the primary is SIGKILLed', async () => {
    const node = await NodeProcess.start(['--workers', '2'], {}, 80_000);
    try {
      await waitFor(() => node.logs.filter((l) => l.msg === 'worker ready').length === 2, 80_000, 'both workers');
      const pids = node.logs.filter((l) => l.msg === 'worker ready').map((l) => l.pid as number);
      await node.stop('SIGKILL');
      const alive = (pid: number): boolean => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      await waitFor(() => pids.every((pid) => !alive(pid)), 30_000, 'the workers to exit');
    } finally {
      await node.stop('SIGKILL');
    }
  }, 150_000);
});

describe('serve --workers: a worker that cannot start stops the machine', () => {
  it('exits with the worker failure instead of restarting it forever', async () => {
    const blocker = await NodeProcess.start();
    try {
      const r = NodeProcess.start(['--workers', '2', '--http-port', String(blocker.ports.http)], {}, 80_000);
      await expect(r).rejects.toThrow(/exited with 1/);
    } finally {
      await blocker.stop();
    }
  }, 120_000);
});
