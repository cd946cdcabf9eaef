import { describe, expect, it, vi } from 'vitest';
import type { Bus } from '../../src/cluster/bus.js';
import { decodeMessage } from '../../src/core/message.js';
import { ProjectRegistry, type ProjectSet } from '../../src/core/projects/registry.js';
import { Publisher, type PushRequest } from '../../src/core/publisher.js';
import { Metrics } from '../../src/observability/metrics.js';

/**
 * Publisher.push answers plain uid/topic pushes without publishAll. Forcing the general path (a
 * field the fast path does not know) must give the same results, errors, envelopes and metrics.
 */

function fixture(opts: { ready?: boolean; fail?: string; pushesPerSecond?: number } = {}) {
  const published: Array<{ channel: string; payload: Buffer }> = [];
  const bus = {
    publish: (channel: string, payload: Buffer) => {
      if (opts.fail) return Promise.reject(new Error(opts.fail));
      published.push({ channel, payload });
      return Promise.resolve();
    },
    isReady: () => opts.ready ?? true,
  } as unknown as Bus;
  const set = {
    projects: [{ pid: 'default', name: 'default', authenticator: {}, limits: { pushesPerSecond: opts.pushesPerSecond } }],
    apiKeys: new Map(),
  } as unknown as ProjectSet;
  const metrics = new Metrics('n1');
  const publisher = new Publisher(bus, new ProjectRegistry(set), 'n1', 1024, metrics, 60_000);
  const general = vi.spyOn(publisher as unknown as { pushGeneral: () => unknown }, 'pushGeneral');
  return { publisher, published, metrics, general };
}

const counter = async (metrics: Metrics, name: string): Promise<Record<string, number>> =>
  Object.fromEntries((await metrics.registry.getSingleMetric(name)!.get()).values.map((v) => [JSON.stringify(v.labels), v.value]));

const plain: PushRequest = { uid: '', topic: 'news', data: Buffer.from('hi'), pid: '', idempotencyKey: '', uids: [], cids: [], tags: [] };
// A field PushRequest does not have: stands for one added later, which the fast path must leave to publishAll.
const forced = (r: PushRequest): PushRequest => ({ ...r, somethingNew: 'x' }) as PushRequest;

describe('Publisher.push fast path', () => {
  it('takes the fast path for a plain push, and the general path for any unknown field set', async () => {
    const a = fixture();
    await a.publisher.push(plain, 'grpc');
    expect(a.general).not.toHaveBeenCalled();
    await a.publisher.push({ ...plain, somethingNew: '' } as PushRequest, 'grpc');
    expect(a.general).not.toHaveBeenCalled();
    await a.publisher.push(forced(plain), 'grpc');
    await a.publisher.push({ ...plain, idempotencyKey: 'k' }, 'grpc').catch(() => undefined);
    await a.publisher.push({ ...plain, topic: '', tags: ['news'] }, 'grpc');
    expect(a.general).toHaveBeenCalledTimes(3);
  });

  const cases: Array<[string, Parameters<typeof fixture>[0], PushRequest]> = [
    ['a topic push', {}, plain],
    ['a private push', {}, { ...plain, uid: 'alice' }],
    ['a broadcast', {}, { ...plain, topic: '' }],
    ['a Uint8Array payload', {}, { ...plain, data: new Uint8Array([1, 2, 3]) }],
    ['a bad topic', {}, { ...plain, topic: 'a\nb' }],
    ['a too-long uid', {}, { ...plain, uid: 'u'.repeat(200) }],
    ['data over the limit', {}, { ...plain, data: Buffer.alloc(1025) }],
    ['an unknown project', {}, { ...plain, pid: 'nope' }],
    ['a bus that is not ready', { ready: false }, plain],
    ['a bus that rejects the publish', { fail: 'boom' }, plain],
    ['a project over its push rate', { pushesPerSecond: 0.000001 }, plain],
  ];
  for (const [name, opts, req] of cases) {
    it(`${name}: same outcome, envelope and metrics on both paths`, async () => {
      const fast = fixture(opts);
      const slow = fixture(opts);
      const outcome = async (f: ReturnType<typeof fixture>, r: PushRequest) => {
        // Twice: the second push of a rate-limited project is the refused one.
        const results = [];
        for (let i = 0; i < 2; i++) {
          results.push(
            await f.publisher.push(r, 'http').then(
              (res) => ({ ok: { ...res, messageId: res.messageId.replace(/-[^-]+-[^-]+$/, '') } }),
              (err: { code?: number; message: string }) => ({ err: { code: err.code, message: err.message } }),
            ),
          );
        }
        const envelopes = f.published.map(({ channel, payload }) => {
          const m = decodeMessage(payload);
          return { channel, uid: m.uid, topic: m.topic, pid: m.pid, data: [...m.data], select: m.select };
        });
        const metrics = await Promise.all(
          ['pushwire_pushes_total', 'pushwire_bus_published_total', 'pushwire_bus_errors_total', 'pushwire_limit_rejections_total'].map((n) => counter(f.metrics, n)),
        );
        return { results, envelopes, metrics };
      };
      const viaFast = await outcome(fast, req);
      const viaGeneral = await outcome(slow, forced(req));
      expect(fast.general).not.toHaveBeenCalled();
      expect(slow.general).toHaveBeenCalled();
      expect(viaFast).toEqual(viaGeneral);
    });
  }
});
