import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import type { PushDataResponse, PushServiceClient } from '../../gen/pushwire/v1/push.js';
import { useTestNode } from '../helpers/fixture.js';
import { b64, pushClient, pushData, pushDataBatch, restPush } from '../helpers/grpc-client.js';
import { unique } from '../helpers/names.js';
import { NodeProcess } from '../helpers/node-process.js';
import { sleep, waitFor } from '../helpers/ports.js';
import { TestRedis } from '../helpers/redis-server.js';
import { TestClient } from '../helpers/ws-client.js';

const push = (client: PushServiceClient, topic: string, text: string, idempotencyKey: string): Promise<PushDataResponse> =>
  pushData(client, { topic, data: Buffer.from(text), idempotencyKey });

describe('idempotency_key on one node', () => {
  const node = useTestNode(['--idempotency-window', '700ms']);

  it('accepts a key once: repeats answer the first message id with duplicate=true and deliver nothing', async () => {
    const topic = unique('idem');
    const c = await node.connect();
    await c.subscribe(topic);
    const key = unique('key');
    const first = await push(node.grpc, topic, 'first', key);
    expect(first.duplicate).toBe(false);
    const again = await push(node.grpc, topic, 'again', key);
    expect(again).toEqual({ messageId: first.messageId, nodeId: node.server.nodeId, duplicate: true, offset: '0', epoch: '' });
    // Over REST too (snake_case or lowerCamelCase), same key, same answer.
    const rest = await restPush(node.server.httpUrl, { topic, data: b64('rest'), idempotency_key: key });
    expect(rest.json).toEqual({ messageId: first.messageId, nodeId: node.server.nodeId, duplicate: true });
    const other = await restPush(node.server.httpUrl, { topic, data: b64('other'), idempotencyKey: unique('key') });
    expect(other.json.duplicate).toBeUndefined(); // proto3 JSON omits false
    await c.next((f) => f.text === 'other');
    expect(c.deliveries()).toEqual(['first', 'other']);
  });

  it('forgets a key after the window', async () => {
    const topic = unique('window');
    const c = await node.connect();
    await c.subscribe(topic);
    const key = unique('key');
    const first = await push(node.grpc, topic, 'one', key);
    await sleep(900);
    const later = await push(node.grpc, topic, 'two', key);
    expect(later.duplicate).toBe(false);
    expect(later.messageId).not.toBe(first.messageId);
    await c.next((f) => f.text === 'two');
    expect(c.deliveries()).toEqual(['one', 'two']);
  });

  it('works inside a batch: a repeated key in the same batch is published once', async () => {
    const topic = unique('batch');
    const c = await node.connect();
    await c.subscribe(topic);
    const key = unique('key');
    const res = await pushDataBatch(node.grpc, [
      { topic, data: Buffer.from('a'), idempotencyKey: key },
      { topic, data: Buffer.from('b'), idempotencyKey: key },
      { topic, data: Buffer.from('c') },
    ]);
    expect(res.messageIds[1]).toBe(res.messageIds[0]);
    await c.next((f) => f.text === 'c');
    expect(c.deliveries()).toEqual(['a', 'c']);
  });

  it('rejects a key longer than 256 bytes', async () => {
    const err = (await push(node.grpc, 't', 'x', 'k'.repeat(257)).catch((e: unknown) => e)) as ServiceError;
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe('idempotency_key longer than 256 bytes');
  });
});

describe('idempotency_key across a cluster', () => {
  let redis: TestRedis;
  let a: NodeProcess;
  let b: NodeProcess;
  const clients: PushServiceClient[] = [];
  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  it('a key used on node A is a duplicate on node B; a push that failed while Redis was down claimed nothing', async () => {
    redis = await TestRedis.start();
    a = await NodeProcess.start(['--redis', redis.url]);
    b = await NodeProcess.start(['--redis', redis.url]);
    const [ga, gb] = [pushClient(a.grpcAddress), pushClient(b.grpcAddress)];
    clients.push(ga, gb);
    const c = await TestClient.connect(b.wsUrl);
    await c.subscribe('orders');

    const first = await push(ga, 'orders', 'from A', 'order-42');
    const second = await push(gb, 'orders', 'from B', 'order-42');
    expect(second).toEqual({ messageId: first.messageId, nodeId: b.nodeId, duplicate: true, offset: '0', epoch: '' });
    await push(gb, 'orders', 'fence', 'order-43');
    await c.next((f) => f.text === 'fence');
    expect(c.deliveries()).toEqual(['from A', 'fence']);

    await redis.kill();
    // Once A knows Redis is gone, the push is refused unsent (UNAVAILABLE); a push written to the dying
    // connection just before would be "sent, not confirmed" (DEADLINE_EXCEEDED) instead.
    await waitFor(async () => (await fetch(`${a.httpUrl}/readyz`).catch(() => undefined))?.status === 503, 10_000, 'node A not ready');
    const err = (await push(ga, 'orders', 'lost', 'order-44').catch((e: unknown) => e)) as ServiceError;
    expect(err.code).toBe(status.UNAVAILABLE);
    await redis.restart();
    // The subscriber on B must be back before the retry is published (Redis pub/sub keeps nothing
    // for a node that is still resubscribing): B's readiness includes its subscriptions.
    await waitFor(async () => (await fetch(`${b.httpUrl}/readyz`)).status === 200, 20_000, 'node B ready again');
    // Once the bus is back, the same key is accepted: the failed attempt left no claim.
    const deadline = Date.now() + 10_000;
    let retried: PushDataResponse | undefined;
    while (retried === undefined && Date.now() < deadline) {
      retried = await push(ga, 'orders', 'retried', 'order-44').catch(() => undefined);
      if (retried === undefined) await sleep(100);
    }
    expect(retried?.duplicate).toBe(false);
    await c.next((f) => f.text === 'retried');
    await c.close();
  });
});
