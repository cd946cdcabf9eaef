import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b64, restPush } from '../helpers/grpc-client.js';
import type { NodeProcess } from '../helpers/node-process.js';
import { waitFor } from '../helpers/ports.js';
import { TestRedis } from '../helpers/redis-server.js';
import type { TestClient } from '../helpers/ws-client.js';
import { RedisBus } from '../../src/cluster/redis-bus.js';
import { createLogger } from '../../src/observability/logger.js';
import { Cluster, waitNumsub } from './support.js';

/**
 * Issue 9, defect 8: Redis pub/sub keeps nothing for a subscriber that is away, so whatever is
 * published while a node's subscriber connection is being re-established is lost to it. The
 * node cannot prevent that; it must know and say so: onGap for the listeners (the gap signal of
 * channels with history), a metric and a log line.
 */
describe('bus resubscribe after CLIENT KILL reports the gap', () => {
  let redis: TestRedis;
  let r: Redis;
  let bus: RedisBus | undefined;

  beforeAll(async () => {
    redis = await TestRedis.start();
    r = redis.client();
    r.on('error', () => {});
  });

  afterAll(async () => {
    r?.disconnect();
    await bus?.close().catch(() => {});
    await redis?.stop();
  });

  it('RedisBus.onGap: every listener hears the channels it resubscribed, after they are back, and only then', async () => {
    bus = new RedisBus({ url: redis.url, prefix: 'gaptest:', commandTimeoutMs: 2000, maxInFlight: 100, logger: createLogger('silent') });
    const gaps: string[][] = [];
    const also: number[] = [];
    bus.onGap((channels) => gaps.push([...channels].sort()));
    bus.onGap((channels) => also.push(channels.length));
    const got: string[] = [];
    bus.onMessage((channel, payload) => got.push(`${channel}=${payload.toString()}`));
    await bus.start();
    await Promise.all([bus.subscribe('t:a'), bus.subscribe('t:b')]);
    await waitFor(() => bus!.isReady(), 20_000, 'bus ready');
    expect(gaps).toEqual([]); // the first subscription is not a gap

    await r.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await waitFor(() => gaps.length === 1, 30_000, 'a gap notice');
    expect(gaps[0]).toEqual(['t:a', 't:b']);
    expect(also).toEqual([2]);
    // Reported once the subscriptions are back: a publish now arrives.
    await bus.publish('t:a', Buffer.from('after'));
    await waitFor(() => got.includes('t:a=after'), 20_000, 'delivery after the gap');
  }, 90_000);

  describe('a node (real CLI) whose subscriber connection is killed', () => {
    const cluster = new Cluster('gap-secret');
    let A: NodeProcess;
    let client: TestClient;
    let r2: Redis;

    beforeAll(async () => {
      const redis2 = await cluster.startRedis();
      r2 = cluster.redisClient(redis2);
      A = await cluster.node(redis2);
      client = await cluster.connect(A);
      expect((await client.subscribe('gapped')).code).toBe(20001);
      await waitNumsub(r2, 't:gapped', 1, 20_000);
    }, 60_000);

    afterAll(async () => {
      await cluster.cleanup();
    });

    it('counts the gap, logs it with the channels, and delivers again', async () => {
      expect(await A.metric('pushwire_bus_gaps_total')).toBe(0);
      await r2.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await waitFor(async () => (await A.metric('pushwire_bus_gaps_total')) === 1, 30_000, 'gap counted');
      // Its node channel, the project broadcast channel and the topic.
      expect(await A.metric('pushwire_bus_gap_channels_total')).toBeGreaterThanOrEqual(3);
      // The node logs the gap in the same tick it counts it, but its stdout reaches this process by
      // another pipe than the /metrics answer: under load the line can arrive after the count is seen.
      const line = await waitFor(() => A.logs.find((l) => l.msg.startsWith('bus resubscribed after a lost connection')), 30_000, 'the gap log line');
      expect(line!.level).toBe(40);
      expect(line!.sample as string[]).toContain('t:gapped');
      await waitFor(async () => (await restPush(A.httpUrl, { topic: 'gapped', data: b64('back') })).status === 200, 30_000, 'push accepted');
      await client.next((f) => f.text === 'back', 30_000);
    }, 120_000);
  });
});
