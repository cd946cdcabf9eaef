// The client SDK across node restarts: two nodes behind one Redis, clients on node A, pushes made
// through node B while A is down. The SDK follows the disconnect advice (1012), reconnects by itself,
// resubscribes from its last offset and epoch, and ends with every offset exactly once; a channel whose
// history cannot reach back says recovered: false instead.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client, ConnectingEvent } from '../../client/src/index.js';
import { protobufCodec } from '../../client/src/protobuf.js';
import { NodeProcess } from '../helpers/node-process.js';
import { freePort, waitFor } from '../helpers/ports.js';
import type { TestRedis } from '../helpers/redis-server.js';
import { Received, pushJson, range, sdkClient } from '../helpers/sdk.js';
import { Cluster } from './support.js';

const CHANNELS = JSON.stringify({
  history: { size: 1000, ttl: '10m' },
  namespaces: { small: { history: { size: 3, ttl: '10m' } } },
});

describe('SDK recovery across a node restart (Redis, two nodes)', () => {
  const cluster = new Cluster('sdk-recovery');
  let redis: TestRedis;
  let a: NodeProcess;
  let b: NodeProcess;
  let ports: string[];
  const clients: Client[] = [];

  const startA = async (): Promise<NodeProcess> => {
    a = await cluster.node(redis, ['--channels', CHANNELS, '--node-id', 'sdk-a', ...ports]);
    return a;
  };

  beforeAll(async () => {
    redis = await cluster.startRedis();
    // A restarts on the same ports, so the clients' URL stays valid.
    ports = ['--ws-port', String(await freePort()), '--http-port', String(await freePort()), '--grpc-port', String(await freePort())];
    await startA();
    b = await cluster.node(redis, ['--channels', CHANNELS, '--node-id', 'sdk-b']);
  }, 60_000);
  afterAll(async () => {
    for (const c of clients) c.close();
    await cluster.cleanup();
  });

  it('JSON and protobuf clients with many subscriptions get every missed publication exactly once, in order', async () => {
    const url = a.wsUrl;
    const json = sdkClient(url);
    const proto = sdkClient(url, { codec: protobufCodec });
    clients.push(json, proto);
    const connecting: ConnectingEvent[] = [];
    json.on('connecting', (e) => connecting.push(e));
    const channels = range(1, 40).map((i) => `room:${i}`);
    const jsonSubs = channels.map((ch) => new Received(json.subscribe(ch)));
    const protoSubs = channels.map((ch) => new Received(proto.subscribe(ch)));
    const small = new Received(json.subscribe('small:feed'));
    json.connect();
    proto.connect();
    await Promise.all([...jsonSubs, ...protoSubs, small].map((s) => s.sub.ready(15_000)));

    const pushRound = async (from: number, to: number, via: NodeProcess): Promise<void> => {
      for (const n of range(from, to)) {
        await Promise.all(channels.map((ch) => pushJson(via.httpUrl, ch, n)));
      }
    };
    await pushRound(1, 3, b);
    for (const n of range(1, 2)) await pushJson(b.httpUrl, 'small:feed', n);
    await Promise.all([...jsonSubs, ...protoSubs].map((s) => s.count(3)));
    await small.count(2);

    // Drain A: the clients get the 1012 advice and keep trying while it is down.
    expect(await a.stop('SIGTERM')).toBe(0);
    await waitFor(() => json.state === 'connecting' && proto.state === 'connecting', 10_000, 'clients connecting');
    expect(connecting.at(-1)).toMatchObject({ code: 1012, reason: 'service restart' });

    // Missed while A is down, pushed through B into the shared Redis history.
    await pushRound(4, 10, b);
    for (const n of range(3, 9)) await pushJson(b.httpUrl, 'small:feed', n);

    await startA();
    await Promise.all([json.ready(20_000), proto.ready(20_000)]);
    await Promise.all([...jsonSubs, ...protoSubs].map((s) => waitFor(() => s.subscribed.length === 2, 15_000, `${s.sub.channel} resubscribed`)));
    await pushRound(11, 12, a);
    await Promise.all([...jsonSubs, ...protoSubs].map((s) => s.count(12)));

    for (const s of [...jsonSubs, ...protoSubs]) {
      expect(s.subscribed[1]).toMatchObject({ wasRecovering: true, recovered: true });
      expect(s.offsets()).toEqual(range(1, 12));
      expect(s.data()).toEqual(range(1, 12));
    }
    // History of 3 cannot hold the 7 missed: recovered false, at the stream's current position.
    await waitFor(() => small.subscribed.length === 2, 10_000, 'small:feed resubscribed');
    expect(small.subscribed[1]).toMatchObject({ wasRecovering: true, recovered: false, offset: 9 });
    expect(small.offsets()).toEqual([1, 2]);
    await pushJson(a.httpUrl, 'small:feed', 10);
    await small.count(3);
    expect(small.offsets()).toEqual([1, 2, 10]);
  }, 120_000);

  it('after a SIGKILL (no advice, abnormal close) the client reconnects and recovers too', async () => {
    const c = sdkClient(a.wsUrl);
    clients.push(c);
    const connecting: ConnectingEvent[] = [];
    c.on('connecting', (e) => connecting.push(e));
    const got = new Received(c.subscribe('crash:1'));
    c.connect();
    await got.sub.ready();
    for (const n of range(1, 3)) await pushJson(b.httpUrl, 'crash:1', n);
    await got.count(3);
    await a.stop('SIGKILL');
    await waitFor(() => c.state === 'connecting', 10_000, 'client connecting');
    expect(connecting.at(-1)!.code).toBe(1); // ReasonCode.TransportClosed: the server said nothing
    for (const n of range(4, 8)) await pushJson(b.httpUrl, 'crash:1', n);
    await startA();
    await waitFor(() => got.subscribed.length === 2, 20_000, 'resubscribed after the crash');
    await got.count(8);
    expect(got.subscribed[1]).toMatchObject({ wasRecovering: true, recovered: true });
    expect(got.offsets()).toEqual(range(1, 8));
  }, 90_000);
});
