import { SignJWT } from 'jose';
import type { Redis } from 'ioredis';
import type { PushServiceClient } from '../../gen/pushwire/v1/push.js';
import { pushClient } from '../helpers/grpc-client.js';
import { NodeProcess } from '../helpers/node-process.js';
import { TestRedis } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/ports.js';
import { TestClient } from '../helpers/ws-client.js';

/** Shared bookkeeping for cluster tests: everything started here is torn down in `cleanup`. */
export class Cluster {
  readonly nodes: NodeProcess[] = [];
  readonly clients: TestClient[] = [];
  readonly redisClients: Redis[] = [];
  readonly closers: Array<() => void> = [];
  readonly redises: TestRedis[] = [];

  constructor(readonly secret: string) {}

  /** A private redis-server, stopped in `cleanup`. */
  async startRedis(): Promise<TestRedis> {
    const redis = await TestRedis.start();
    this.redises.push(redis);
    return redis;
  }

  async node(redis: TestRedis, extra: string[] = []): Promise<NodeProcess> {
    const node = await NodeProcess.start(['--redis', redis.url, '--jwt-secret', this.secret, ...extra]);
    this.nodes.push(node);
    return node;
  }

  track<T extends TestClient>(client: T): T {
    this.clients.push(client);
    return client;
  }

  /** A WebSocket client connected to `node`, closed in `cleanup`. */
  async connect(node: NodeProcess): Promise<TestClient> {
    return this.track(await TestClient.connect(node.wsUrl));
  }

  /** A gRPC client for `node`, closed in `cleanup`. */
  grpcClient(node: NodeProcess): PushServiceClient {
    const client = pushClient(node.grpcAddress);
    this.closers.push(() => client.close());
    return client;
  }

  redisClient(redis: TestRedis): Redis {
    const c = redis.client();
    c.on('error', () => {});
    this.redisClients.push(c);
    return c;
  }

  /** Never throws: runs in afterAll whatever state a failed test left behind. */
  async cleanup(): Promise<void> {
    for (const close of this.closers) {
      try {
        close();
      } catch {
        // ignore
      }
    }
    await Promise.allSettled(this.clients.map((c) => withTimeout(c.close(), 2000)));
    for (const c of this.redisClients) c.disconnect();
    await Promise.allSettled(
      this.nodes.map(async (n) => {
        const code = await withTimeout(n.stop(), 15_000);
        if (code === 'timeout') await n.stop('SIGKILL');
      }),
    );
    await Promise.allSettled(this.redises.map((r) => r.stop()));
  }

  token(uid: string): Promise<string> {
    return new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(uid)
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(this.secret));
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref())]);
}

/** Number of Redis subscribers of `pushwire:<channel>`. */
export async function numsub(redis: Redis, channel: string): Promise<number> {
  const res = (await redis.pubsub('NUMSUB', `pushwire:${channel}`)) as [string, number];
  return Number(res[1]);
}

/**
 * Every active `pushwire:*` channel in Redis, sorted, except the nodes' own `pushwire:n:<node-id>`
 * channels (each node holds its own for its whole life, for pushes aimed at its cids) and the
 * consumer signal channel `pushwire:c:consumers` (every node, for its whole life).
 */
export async function channels(redis: Redis): Promise<string[]> {
  return ((await redis.pubsub('CHANNELS', 'pushwire:*')) as string[])
    .filter((c) => !c.startsWith('pushwire:n:') && c !== 'pushwire:c:consumers')
    .sort();
}

export async function waitNumsub(redis: Redis, channel: string, expected: number, timeoutMs = 5000): Promise<void> {
  await waitFor(async () => (await numsub(redis, channel)) === expected, timeoutMs, `NUMSUB pushwire:${channel} == ${expected}`);
}

export async function readyStatus(node: NodeProcess): Promise<number> {
  try {
    return (await fetch(`${node.httpUrl}/readyz`)).status;
  } catch {
    return 0;
  }
}

export async function waitReady(node: NodeProcess, status: 200 | 503, timeoutMs = 10_000): Promise<void> {
  await waitFor(async () => (await readyStatus(node)) === status, timeoutMs, `${node.nodeId} /readyz ${status}`);
}

/** How many deliveries of exactly `text` the client got. */
export const count = (client: TestClient, text: string): number => client.deliveries().filter((d) => d === text).length;
