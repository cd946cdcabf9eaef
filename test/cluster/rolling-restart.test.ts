import { Metadata, credentials, type ServiceError } from '@grpc/grpc-js';
import { WebSocket } from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { GetHistoryRequest, HistoryServiceClient, type GetHistoryResponse } from '../../gen/pushwire/v1/history.js';
import { PushDataRequest, PushServiceClient } from '../../gen/pushwire/v1/push.js';
import type { NodeProcess } from '../helpers/node-process.js';
import { sleep, waitFor } from '../helpers/ports.js';
import type { TestRedis } from '../helpers/redis-server.js';
import { Cluster, waitReady } from './support.js';

const CHANNEL = 'chat:rolling';
const CHANNELS = JSON.stringify({ namespaces: { chat: { history: { size: 20000, ttl: '10m' } } } });
const PUSHES = 10_000;
const BATCH = 20;

/**
 * A v1 client that does what an SDK does: follows closes (1012, or a dead node) to any node that
 * is up, resubscribes with since = its last offset, and resubscribes on 30010. It records every
 * offset it is given, from recoveries and live publications alike.
 */
class FollowingClient {
  readonly offsets: number[] = [];
  readonly payloads = new Set<string>();
  offset = 0;
  epoch = '';
  notRecovered = 0;
  reconnects = 0;
  private ws: WebSocket | undefined;
  private stopped = false;
  private ids = 0;

  constructor(private readonly urls: () => string[]) {}

  start(): Promise<void> {
    return this.loop();
  }

  stop(): void {
    this.stopped = true;
    this.ws?.close();
  }

  private take(p: { offset?: number; epoch?: string; text?: string }): void {
    this.offsets.push(p.offset ?? 0);
    if (p.text !== undefined) this.payloads.add(p.text);
    this.offset = p.offset ?? this.offset;
    this.epoch = p.epoch ?? this.epoch;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const urls = this.urls();
      const url = urls[this.reconnects % Math.max(1, urls.length)];
      if (url === undefined) {
        await sleep(20);
        continue;
      }
      await this.session(url).catch(() => undefined);
      this.reconnects++;
      if (!this.stopped) await sleep(10);
    }
  }

  /** One connection's life: connect, subscribe with since, take everything until it closes. */
  private session(url: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(url, ['pushwire.v1.json']);
      this.ws = ws;
      const subscribe = (): void => {
        const since = this.offset > 0 || this.epoch !== '' ? { offset: this.offset, epoch: this.epoch } : { offset: 0, epoch: '' };
        ws.send(JSON.stringify({ id: ++this.ids, subscribe: { channel: CHANNEL, since } }));
      };
      ws.on('open', () => ws.send(JSON.stringify({ id: ++this.ids, connect: {} })));
      ws.on('message', (data: Buffer) => {
        for (const line of data.toString().split('\n')) {
          if (line === '') continue;
          const m = JSON.parse(line) as Record<string, any>;
          if (m.connect) subscribe();
          else if (m.subscribe) {
            if (m.subscribe.recovered !== true) this.notRecovered++;
            for (const p of m.subscribe.publications ?? []) this.take(p);
            this.offset = m.subscribe.offset ?? this.offset;
            this.epoch = m.subscribe.epoch ?? this.epoch;
          } else if (m.pub) this.take(m.pub);
          else if (m.unsubscribed) subscribe();
          else if (m.ping) ws.send('{"pong":{}}');
          else if (m.error && m.id) ws.close(); // e.g. subscribe during a node's shutdown: reconnect
        }
      });
      ws.on('close', () => resolve());
      ws.on('error', (err) => reject(err));
    });
  }
}

const batchPush = (client: PushServiceClient, pushes: Partial<PushDataRequest>[]): Promise<void> =>
  new Promise((resolve, reject) =>
    client.pushDataBatch({ pushes: pushes.map((p) => PushDataRequest.fromPartial(p)) }, new Metadata(), { deadline: Date.now() + 5000 }, (err: ServiceError | null) => (err ? reject(err) : resolve())),
  );

describe('rolling restart with zero loss', () => {
  const cluster = new Cluster('rolling-secret-0123456789abcdef');
  afterAll(() => cluster.cleanup());

  /** Two nodes behind one Redis; `restart(i, signal)` replaces node i with a fresh process. */
  async function twoNodes(redis: TestRedis) {
    const up: Array<NodeProcess | undefined> = [await cluster.node(redis, ['--channels', CHANNELS]), await cluster.node(redis, ['--channels', CHANNELS])];
    const grpc = new Map<NodeProcess, PushServiceClient>();
    const clientOf = (n: NodeProcess): PushServiceClient => {
      let c = grpc.get(n);
      if (c === undefined) {
        c = new PushServiceClient(n.grpcAddress, credentials.createInsecure());
        grpc.set(n, c);
        cluster.closers.push(() => c!.close());
      }
      return c;
    };
    const restart = async (i: number, signal: NodeJS.Signals): Promise<void> => {
      const old = up[i]!;
      up[i] = undefined;
      await old.stop(signal);
      const fresh = await cluster.node(redis, ['--channels', CHANNELS]);
      await waitReady(fresh, 200);
      up[i] = fresh;
    };
    return { up, clientOf, restart };
  }

  /** Pushes PUSHES numbered payloads in batches at a steady rate, each batch retried on another node until accepted. */
  async function pushAll(nodes: Awaited<ReturnType<typeof twoNodes>>): Promise<number> {
    let retries = 0;
    for (let i = 0; i < PUSHES; i += BATCH) {
      const pushes = Array.from({ length: BATCH }, (_, j) => ({ topic: CHANNEL, data: Buffer.from(`n${i + j}`) }));
      for (let attempt = 0; ; attempt++) {
        const live = nodes.up.filter((n): n is NodeProcess => n !== undefined);
        const node = live[(i / BATCH + attempt) % live.length];
        if (node === undefined) {
          await sleep(20);
          continue;
        }
        try {
          await batchPush(nodes.clientOf(node), pushes);
          break;
        } catch {
          retries++;
          await sleep(10);
        }
      }
      await sleep(5);
    }
    return retries;
  }

  async function topOffset(node: NodeProcess): Promise<number> {
    const hist = new HistoryServiceClient(node.grpcAddress, credentials.createInsecure());
    try {
      const page = await new Promise<GetHistoryResponse>((resolve, reject) =>
        hist.getHistory(GetHistoryRequest.fromPartial({ topic: CHANNEL, limit: 1, reverse: true }), (err: ServiceError | null, res) => (err ? reject(err) : resolve(res))),
      );
      return Number(page.offset);
    } finally {
      hist.close();
    }
  }

  async function run(signal: NodeJS.Signals): Promise<void> {
    const redis = await cluster.startRedis();
    const nodes = await twoNodes(redis);
    // The client follows the nodes that are up, whichever they are by then.
    const client = new FollowingClient(() => nodes.up.filter((n): n is NodeProcess => n !== undefined).map((n) => n.wsUrl));
    const following = client.start();
    const pushing = pushAll(nodes);
    // Each node in turn is replaced while the pusher runs.
    await waitFor(() => client.offset >= 1500, 60_000, 'first 1500 delivered');
    await nodes.restart(0, signal);
    await waitFor(() => client.offset >= 5000, 60_000, 'first 5000 delivered');
    await nodes.restart(1, signal);
    await pushing;
    const live = nodes.up.find((n) => n !== undefined)!;
    const top = await topOffset(live);
    await waitFor(() => client.offset === top, 30_000, `client at offset ${top}`);
    client.stop();
    await following;
    expect(top).toBeGreaterThanOrEqual(PUSHES);
    // Every offset exactly once, in order.
    expect(client.offsets.length).toBe(top);
    expect(client.offsets.every((o, i) => o === i + 1)).toBe(true);
    // Every push reached the client (retries of unconfirmed batches may have added copies).
    for (let i = 0; i < PUSHES; i++) if (!client.payloads.has(`n${i}`)) throw new Error(`push n${i} never arrived`);
    expect(client.notRecovered).toBe(0);
    expect(client.reconnects).toBeGreaterThanOrEqual(2);
  }

  it('SIGTERM: each node drained (1012) and restarted; the client ends with every offset exactly once', async () => {
    await run('SIGTERM');
  }, 120_000);

  it('SIGKILL: each node killed and restarted; the client ends with every offset exactly once', async () => {
    await run('SIGKILL');
  }, 120_000);
});
