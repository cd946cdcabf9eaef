import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { useTestNode } from '../helpers/fixture.js';
import { b64, pushClient, pushDataBatch, restPush } from '../helpers/grpc-client.js';
import { metric } from '../helpers/metrics.js';
import { unique } from '../helpers/names.js';
import { NodeProcess } from '../helpers/node-process.js';
import { TestRedis } from '../helpers/redis-server.js';
import { TestClient } from '../helpers/ws-client.js';

const BATCH = '/v1/pushData:batch';
const restBatch = (httpUrl: string, body: unknown) => restPush(httpUrl, body, {}, BATCH);
const failure = (p: Promise<unknown>): Promise<ServiceError> =>
  p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (err: ServiceError) => err,
  );

describe('PushDataBatch (gRPC and POST /v1/pushData:batch)', () => {
  const node = useTestNode(['--max-push-bytes', '8KiB', '--max-queue-bytes', '1MiB']);

  it('delivers every push of a gRPC batch, in order, and answers one id per push', async () => {
    const topic = unique('batch');
    const c = await node.connect();
    await c.subscribe(topic);
    const texts = Array.from({ length: 300 }, (_, i) => `m${i}`);
    const res = await pushDataBatch(node.grpc, texts.map((t) => ({ topic, data: Buffer.from(t) })));
    expect(res.nodeId).toBe(node.server.nodeId);
    expect(res.messageIds).toHaveLength(300);
    expect(new Set(res.messageIds).size).toBe(300);
    await c.next((f) => f.text === 'm299');
    expect(c.deliveries()).toEqual(texts);
  });

  it('applies each push its own targeting', async () => {
    const [a, b] = [unique('ta'), unique('tb')];
    const ca = await node.connect();
    const cb = await node.connect();
    await ca.subscribe(a);
    await cb.subscribe(b);
    await pushDataBatch(node.grpc, [
      { topic: a, data: Buffer.from('for a') },
      { topic: b, data: Buffer.from('for b') },
      { data: Buffer.from('for all') },
    ]);
    await ca.next((f) => f.text === 'for all');
    await cb.next((f) => f.text === 'for all');
    expect(ca.deliveries()).toEqual(['for a', 'for all']);
    expect(cb.deliveries()).toEqual(['for b', 'for all']);
  });

  it('REST: proto3 JSON in, {"messageIds","nodeId"} out, delivered in order', async () => {
    const topic = unique('rest');
    const c = await node.connect();
    await c.subscribe(topic);
    const res = await restBatch(node.server.httpUrl, { pushes: [{ topic, data: b64('one') }, { topic, data: b64('two') }] });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ messageIds: [expect.any(String), expect.any(String)], nodeId: node.server.nodeId, results: [{}, {}] });
    await c.next((f) => f.text === 'two');
    expect(c.deliveries()).toEqual(['one', 'two']);
  });

  it('an empty batch is accepted and publishes nothing', async () => {
    expect((await pushDataBatch(node.grpc, [])).messageIds).toEqual([]);
    const res = await restBatch(node.server.httpUrl, {});
    expect(res).toEqual({ status: 200, json: { messageIds: [], nodeId: node.server.nodeId, results: [] } });
  });

  it('one invalid push fails the whole batch with INVALID_ARGUMENT naming its index, and nothing is delivered', async () => {
    const topic = unique('allornothing');
    const c = await node.connect();
    await c.subscribe(topic);
    const err = await failure(
      pushDataBatch(node.grpc, [
        { topic, data: Buffer.from('valid') },
        { topic: 'bad\u0001topic', data: Buffer.from('x') },
      ]),
    );
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe('pushes[1]: topic contains control characters');

    const rest = await restBatch(node.server.httpUrl, { pushes: [{ topic, data: b64('valid') }, { topic, data: '**' }] });
    expect(rest.status).toBe(400);
    expect(rest.json).toEqual({ code: 3, message: 'pushes[1]: invalid value for bytes field data: not valid base64', details: [] });

    const tooBig = await restBatch(node.server.httpUrl, { pushes: [{ topic, data: b64(Buffer.alloc(8 * 1024 + 1)) }] });
    expect(tooBig.json.message).toMatch(/^pushes\[0\]: data is 8193 bytes/);

    // A later push proves the failed ones left nothing behind.
    await restBatch(node.server.httpUrl, { pushes: [{ topic, data: b64('after') }] });
    await c.next((f) => f.text === 'after');
    expect(c.deliveries()).toEqual(['after']);
  });

  it('REST rejects a malformed batch body: not an array, unknown fields, wrong element types', async () => {
    for (const body of [{ pushes: {} }, { pushes: [1] }, { pushes: [{ nope: 1 }] }, { other: [] }]) {
      const res = await restBatch(node.server.httpUrl, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json.code).toBe(3);
    }
    expect((await restBatch(node.server.httpUrl, '[')).json).toEqual({ code: 3, message: 'request body is not valid JSON', details: [] });
    const get = await fetch(`${node.server.httpUrl}${BATCH}`);
    expect(get.status).toBe(501);
  });

  it('refuses more than 1000 pushes, and a request over the size bound (RESOURCE_EXHAUSTED from gRPC)', async () => {
    const many = Array.from({ length: 1001 }, () => ({ topic: 'x' }));
    const err = await failure(pushDataBatch(node.grpc, many));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe('a batch holds at most 1000 pushes, got 1001');
    // The whole request is bounded like one push: --max-push-bytes plus 64 KiB of framing.
    const huge = Array.from({ length: 100 }, () => ({ topic: 'x', data: Buffer.alloc(8 * 1024) }));
    expect((await failure(pushDataBatch(node.grpc, huge))).code).toBe(status.RESOURCE_EXHAUSTED);
  });

  it('counts every push of a batch in pushwire_pushes_total', async () => {
    const before = await metric(node.server.httpUrl, 'pushwire_pushes_total', { ingress: 'grpc', result: 'ok' });
    await pushDataBatch(node.grpc, [{ topic: 'n1' }, { topic: 'n2' }, { topic: 'n3' }]);
    expect(await metric(node.server.httpUrl, 'pushwire_pushes_total', { ingress: 'grpc', result: 'ok' })).toBe(before + 3);
  });
});

const HISTORY = JSON.stringify({ namespaces: { chat: { history: { size: 100, ttl: '10m' } } } });

/** A batch mixing history channels, a plain topic, skip_history and a repeated idempotency key: each push's own answer. */
async function batchOffsets(grpcAddress: string, httpUrl: string): Promise<void> {
  const grpc = pushClient(grpcAddress);
  try {
    const [a, b] = [`chat:${unique('a')}`, `chat:${unique('b')}`];
    const key = unique('key');
    const res = await pushDataBatch(grpc, [
      { topic: a, data: Buffer.from('a1') },
      { topic: b, data: Buffer.from('b1') },
      { topic: a, data: Buffer.from('a2') },
      { topic: unique('plain'), data: Buffer.from('p') },
      { topic: a, data: Buffer.from('skipped'), skipHistory: true },
      { topic: b, data: Buffer.from('b2'), idempotencyKey: key },
      { topic: b, data: Buffer.from('b2 again'), idempotencyKey: key },
    ]);
    // Epochs are per channel: every push to a channel carries that channel's one epoch.
    const [ea, eb] = [res.results[0]!.epoch, res.results[1]!.epoch];
    expect(ea).not.toBe('');
    expect(eb).not.toBe('');
    expect(res.results.map((r) => [r.offset, r.epoch, r.duplicate])).toEqual([
      ['1', ea, false],
      ['1', eb, false],
      ['2', ea, false],
      ['0', '', false],
      ['0', '', false],
      ['2', eb, false],
      ['0', '', true],
    ]);
    expect(res.messageIds[6]).toBe(res.messageIds[5]);
    // The REST bridge answers the same, in proto3 JSON (defaults left out, uint64 as a string).
    const rest = await restBatch(httpUrl, { pushes: [{ topic: a, data: b64('a3') }, { topic: unique('plain'), data: b64('p') }, { topic: b, data: b64('b3') }] });
    expect(rest.status).toBe(200);
    expect(rest.json.results).toEqual([{ offset: '3', epoch: ea }, {}, { offset: '3', epoch: eb }]);
  } finally {
    grpc.close();
  }
}

describe('PushDataBatch on channels with history: offsets per push', () => {
  const node = useTestNode(['--channels', HISTORY]);

  it('in-process bus: gRPC and REST answer each single-channel push its offset and epoch', async () => {
    await batchOffsets(node.server.grpcAddress, node.server.httpUrl);
  });

  it('Redis bus: the same through the append script', async () => {
    const redis = await TestRedis.start();
    const n = await NodeProcess.start(['--redis', redis.url, '--channels', HISTORY]);
    try {
      await batchOffsets(n.grpcAddress, n.httpUrl);
    } finally {
      await n.stop();
      await redis.stop();
    }
  });
});

describe('PushDataBatch with the Redis bus down', () => {
  let redis: TestRedis;
  let node: NodeProcess;
  afterAll(async () => {
    await node?.stop();
    await redis?.stop();
  });

  it('answers UNAVAILABLE / 503 instead of accepting, and works again once Redis is back', async () => {
    redis = await TestRedis.start();
    node = await NodeProcess.start(['--redis', redis.url]);
    const grpc = pushClient(node.grpcAddress);
    try {
      await redis.kill();
      const err = await failure(pushDataBatch(grpc, [{ topic: 't', data: Buffer.from('x') }]));
      expect(err.code).toBe(status.UNAVAILABLE);
      const rest = await restBatch(node.httpUrl, { pushes: [{ topic: 't', data: b64('x') }] });
      expect(rest.status).toBe(503);
      expect(rest.json.code).toBe(14);

      await redis.restart();
      const c = await TestClient.connect(node.wsUrl);
      await c.subscribe('t');
      const deadline = Date.now() + 10_000;
      for (;;) {
        const ok = await pushDataBatch(grpc, [{ topic: 't', data: Buffer.from('back') }]).then(
          () => true,
          () => false,
        );
        if (ok || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await c.next((f) => f.text === 'back');
      await c.close();
    } finally {
      grpc.close();
    }
  });
});
