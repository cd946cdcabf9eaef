import { credentials, type ServiceError } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { GetHistoryRequest, HistoryServiceClient, type GetHistoryResponse } from '../../gen/pushwire/v1/history.js';
import type { PushDataRequest } from '../../gen/pushwire/v1/push.js';
import { pushData, pushDataBatch } from '../helpers/grpc-client.js';
import { unique } from '../helpers/names.js';
import { V1Client, payloadText } from '../helpers/v1-client.js';
import { Cluster } from './support.js';

const CHANNELS = JSON.stringify({
  namespaces: {
    chat: { history: { size: 1000, ttl: '10m' } },
    tiny: { history: { size: 3, ttl: '10m' } },
  },
});

const getHistory = (client: HistoryServiceClient, req: Partial<GetHistoryRequest>): Promise<GetHistoryResponse> =>
  new Promise((resolve, reject) => client.getHistory(GetHistoryRequest.fromPartial(req), (err: ServiceError | null, res) => (err ? reject(err) : resolve(res))));

/**
 * A PushDataBatch appends the plain pushes of each channel with history in one script call
 * (publisher.ts, redis-history-scripts.ts): what a client and the history see must be exactly
 * what pushing them one by one gives.
 */
describe('batched appends to channels with history (one Redis, two nodes)', () => {
  const cluster = new Cluster('history-batch-secret-0123456789ab');
  const v1: V1Client[] = [];
  afterAll(async () => {
    await Promise.allSettled(v1.map((c) => c.close()));
    await cluster.cleanup();
  });

  it('keeps per-channel order and consecutive offsets, with skip_history, idempotent and ttl pushes mixed in', async () => {
    const redis = await cluster.startRedis();
    const a = await cluster.node(redis, ['--channels', CHANNELS]);
    const b = await cluster.node(redis, ['--channels', CHANNELS]);
    const ga = cluster.grpcClient(a);
    const hist = new HistoryServiceClient(b.grpcAddress, credentials.createInsecure());
    cluster.closers.push(() => hist.close());
    const [x, y, mixed, tiny] = ['x', 'y', 'mixed', 'tiny'].map((n) => (n === 'tiny' ? `tiny:${unique(n)}` : `chat:${unique(n)}`)) as [string, string, string, string];
    const plain = unique('plain');
    const c = await V1Client.connect(b.wsUrl, 'json');
    v1.push(c);
    for (const ch of [x, y, mixed, tiny]) await c.subscribe(ch);
    await c.subscribe(plain);
    // One push before the batch: the batch continues the channel's stream.
    expect((await pushData(ga, { topic: x, data: Buffer.from('x0') })).offset).toBe('1');

    const pushes: Partial<PushDataRequest>[] = [
      { topic: x, data: Buffer.from('x1') },
      { topic: y, data: Buffer.from('y1') },
      { topic: mixed, data: Buffer.from('m1') },
      { topic: x, data: Buffer.from('x2'), ttl: 1 },
      { topic: plain, data: Buffer.from('p1') },
      { topic: mixed, data: Buffer.from('m2'), skipHistory: true },
      { topic: y, data: Buffer.from('y2') },
      { topic: mixed, data: Buffer.from('m3'), idempotencyKey: unique('key') },
      { topic: x, data: Buffer.from('x3') },
      ...Array.from({ length: 5 }, (_, i) => ({ topic: tiny, data: Buffer.from(`t${i + 1}`) })),
      { topic: mixed, data: Buffer.from('m4') },
    ];
    const res = await pushDataBatch(ga, pushes);
    expect(res.messageIds).toHaveLength(pushes.length);
    expect(new Set(res.messageIds).size).toBe(pushes.length);

    // Live, on the other node: each channel's publications in batch order, offsets consecutive.
    await c.next((m) => m.pub?.channel === mixed && payloadText(m.pub) === 'm4');
    await c.next((m) => m.pub?.channel === x && m.pub.offset === 4);
    await c.next((m) => m.pub?.channel === tiny && m.pub.offset === 5);
    const live = (ch: string) => c.pubs(ch).map((p) => [p.offset ?? 0, payloadText(p)]);
    expect(live(x)).toEqual([[1, 'x0'], [2, 'x1'], [3, 'x2'], [4, 'x3']]);
    expect(live(y)).toEqual([[1, 'y1'], [2, 'y2']]);
    expect(live(mixed)).toEqual([[1, 'm1'], [0, 'm2'], [2, 'm3'], [3, 'm4']]);
    expect(live(tiny)).toEqual([1, 2, 3, 4, 5].map((i) => [i, `t${i}`]));
    expect(live(plain)).toEqual([[0, 'p1']]);
    const epochs = new Set(c.pubs(x).map((p) => p.epoch));
    expect(epochs.size).toBe(1);

    // The stored streams: same offsets, message ids in batch order, trimmed to the namespace's size.
    const page = await getHistory(hist, { topic: x });
    expect(page.publications.map((p) => [p.offset, Buffer.from(p.data).toString(), p.messageId])).toEqual([
      ['1', 'x0', page.publications[0]!.messageId],
      ['2', 'x1', res.messageIds[0]],
      ['3', 'x2', res.messageIds[3]],
      ['4', 'x3', res.messageIds[8]],
    ]);
    expect((await getHistory(hist, { topic: mixed })).publications.map((p) => Buffer.from(p.data).toString())).toEqual(['m1', 'm3', 'm4']);
    const small = await getHistory(hist, { topic: tiny });
    expect([small.offset, small.publications.map((p) => p.offset)]).toEqual(['5', ['3', '4', '5']]);
    // Per-message ttl inside a batch: x2 expires after 1 s, the others stay.
    const raw = cluster.redisClient(redis);
    const entries = await raw.xrange(`pushwire:h:{t:${x}}`, '-', '+');
    const expires = entries.map(([, f]) => Number(f[f.indexOf('x') + 1]));
    expect(expires[0]).toBe(0);
    expect(expires[2]! - Number(entries[2]![1][entries[2]![1].indexOf('t') + 1])).toBe(1000);
    expect([expires[1], expires[3]]).toEqual([0, 0]);
    expect(await raw.pttl(`pushwire:h:{t:${x}}`)).toBeGreaterThan(9 * 60_000);
    expect(await raw.pttl(`pushwire:hm:{t:${x}}`)).toBeGreaterThan(24 * 3600_000);

    // A client recovering from before the batch gets exactly the batch's publications.
    const again = await V1Client.connect(a.wsUrl, 'proto');
    v1.push(again);
    const r = await again.subscribe(y, { since: { offset: 0, epoch: '' } });
    expect([r.recovered, r.publications.map(payloadText)]).toEqual([true, ['y1', 'y2']]);
  });

  it('a batch Redis cannot take is UNAVAILABLE and stores nothing', async () => {
    const redis = await cluster.startRedis();
    const a = await cluster.node(redis, ['--channels', CHANNELS]);
    const ga = cluster.grpcClient(a);
    const raw = cluster.redisClient(redis);
    const x = `chat:${unique('x')}`;
    // Over maxmemory with noeviction: the script's first write is refused, so none of it happens.
    await raw.config('SET', 'maxmemory', '1');
    const err = (await pushDataBatch(ga, [{ topic: x, data: Buffer.from('a') }, { topic: `chat:${unique('y')}`, data: Buffer.from('b') }]).catch((e: ServiceError) => e)) as ServiceError;
    expect(err.code).toBe(14);
    expect(err.details).toContain('OOM');
    await raw.config('SET', 'maxmemory', '0');
    expect(await raw.exists(`pushwire:h:{t:${x}}`, `pushwire:hm:{t:${x}}`)).toBe(0);
    expect((await pushDataBatch(ga, [{ topic: x, data: Buffer.from('c') }])).messageIds).toHaveLength(1);
    expect((await pushData(ga, { topic: x, data: Buffer.from('d') })).offset).toBe('2');
  });
});
