import { Cluster as RedisCluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppendGroup, Bus } from '../../src/cluster/bus.js';
import { noShardObserver } from '../../src/cluster/redis-connection.js';
import { RedisBus } from '../../src/cluster/redis-bus.js';
import { RedisClusterBus } from '../../src/cluster/redis-cluster-bus.js';
import { parseRedisTarget } from '../../src/cluster/redis-target.js';
import { createLogger } from '../../src/observability/logger.js';
import { unique } from '../helpers/names.js';
import { sleep, waitFor } from '../helpers/ports.js';
import { TestRedisCluster } from '../helpers/redis-cluster.js';
import { TestRedis } from '../helpers/redis-server.js';

const TTL = 60_000;
const META_TTL = 600_000;
/** The scripts' TTL slack (redis-history-scripts.ts): ttl / 100. */
const SLACK = TTL / 100;

const group = (channel: string, payloads: string[], o: Partial<AppendGroup> = {}): AppendGroup => ({
  channel,
  size: 100,
  ttlMs: TTL,
  metaTtlMs: META_TTL,
  payloads: payloads.map((p) => Buffer.from(p, 'latin1')),
  messageTtlMs: payloads.map(() => 0),
  ...o,
});

/**
 * The append scripts on a real Redis and a real Redis Cluster, through the buses: what is stored
 * (offsets, epoch, trimming, TTLs) and when the TTLs are refreshed (only when ttl / 100 has passed
 * since the last refresh, or the stream or its position is new).
 */
describe.each([
  { kind: 'standalone', prefix: 'st:' },
  { kind: 'cluster', prefix: 'cl:' },
])('history scripts ($kind)', ({ kind, prefix }) => {
  let bus: Bus;
  let raw: Redis | RedisCluster;
  const stop: Array<() => Promise<unknown>> = [];
  const keys = (channel: string): [string, string] => [`${prefix}h:{${channel}}`, `${prefix}hm:{${channel}}`];
  const entries = async (channel: string): Promise<[number, string][]> =>
    (await raw.xrange(keys(channel)[0], '-', '+')).map(([id, f]) => [Number(id.split('-')[0]), f[f.indexOf('d') + 1]!]);

  beforeAll(async () => {
    const logger = createLogger('silent');
    if (kind === 'standalone') {
      const redis = await TestRedis.start();
      stop.push(() => redis.kill());
      bus = new RedisBus({ url: redis.url, prefix, commandTimeoutMs: 5000, maxInFlight: 1000, logger });
      raw = new Redis(redis.port, '127.0.0.1');
    } else {
      const rc = await TestRedisCluster.start(3, 0);
      stop.push(() => rc.stop());
      const target = parseRedisTarget(rc.url);
      bus = new RedisClusterBus({ target: target as Extract<typeof target, { mode: 'cluster' }>, prefix, commandTimeoutMs: 5000, maxInFlight: 1000, logger, observer: noShardObserver });
      raw = new RedisCluster([{ host: '127.0.0.1', port: rc.ports[0]! }]);
    }
    stop.unshift(async () => raw.disconnect(), () => bus.close());
    await bus.start();
    await waitFor(() => bus.isReady(), 20_000);
    // A cluster just formed may still drop the masters' first connections: until appends to channels
    // spread over every master (30 slots) go through twice in a row.
    const warm = Array.from({ length: 30 }, (_, i) => group(`warm-up-${i}`, ['w']));
    const through = (): Promise<boolean> => Promise.all(bus.publishPositionedMany(warm)).then(() => true, () => false);
    await waitFor(async () => (await through()) && (await through()), 20_000);
  }, 120_000);

  afterAll(async () => {
    for (const s of stop) await s().catch(() => {});
  });

  it('a batch over many channels: consecutive offsets per channel, one epoch, trimmed exactly to size, TTLs set with their slack', async () => {
    const a = unique('a');
    const b = unique('b');
    const [pa, pb] = await Promise.all(bus.publishPositionedMany([group(a, ['a1', 'a2', 'a3', 'a4', 'a5'], { size: 3 }), group(b, ['b1'])]));
    expect([pa!.offset, pb!.offset]).toEqual([1, 1]);
    const [pa2] = await Promise.all(bus.publishPositionedMany([group(a, ['a6', ''], { size: 3 })]));
    expect(pa2).toEqual({ offset: 6, epoch: pa!.epoch });
    expect(await entries(a)).toEqual([
      [5, 'a5'],
      [6, 'a6'],
      [7, ''],
    ]);
    expect(await entries(b)).toEqual([[1, 'b1']]);
    const range = await bus.readHistory(a, { after: 4, count: 10, reverse: false });
    expect([range.epoch, range.top, range.entries.map((e) => e.offset)]).toEqual([pa!.epoch, 7, [5, 6, 7]]);
    for (const c of [a, b]) {
      const [stream, meta] = keys(c);
      expect(await raw.pttl(stream)).toBeGreaterThan(TTL);
      expect(await raw.pttl(stream)).toBeLessThanOrEqual(TTL + SLACK);
      expect(await raw.pttl(meta)).toBeGreaterThan(META_TTL);
      expect(await raw.pttl(meta)).toBeLessThanOrEqual(META_TTL + SLACK);
    }
  });

  it('the TTLs are refreshed only once ttl / 100 has passed since the last refresh, by both scripts', async () => {
    const c = unique('c');
    const [stream, meta] = keys(c);
    await Promise.all(bus.publishPositionedMany([group(c, ['c1'])]));
    // Shortened by hand: a push right after the refresh leaves them as they are...
    await raw.pexpire(stream, 30_000);
    await raw.pexpire(meta, 30_000);
    await Promise.all(bus.publishPositionedMany([group(c, ['c2'])]));
    await bus.publishPositioned(c, Buffer.from('c3'), { size: 100, ttlMs: TTL, metaTtlMs: META_TTL, messageTtlMs: 0 });
    expect(await raw.pttl(stream)).toBeLessThanOrEqual(30_000);
    expect(await raw.pttl(meta)).toBeLessThanOrEqual(30_000);
    // ...and one after the slack (the last refresh set back by hand) refreshes them, each script.
    for (const push of [() => Promise.all(bus.publishPositionedMany([group(c, ['c4'])])), () => bus.publishPositioned(c, Buffer.from('c5'), { size: 100, ttlMs: TTL, metaTtlMs: META_TTL, messageTtlMs: 0 })]) {
      await raw.hset(meta, 'r', String(Number(await raw.hget(meta, 'r')) - SLACK));
      await raw.pexpire(stream, 30_000);
      await raw.pexpire(meta, 30_000);
      await push();
      expect(await raw.pttl(stream)).toBeGreaterThan(TTL);
      expect(await raw.pttl(meta)).toBeGreaterThan(META_TTL);
    }
    expect((await entries(c)).map(([o]) => o)).toEqual([1, 2, 3, 4, 5]);
  });

  it('a stream removed (removeHistory) or lost while its position stays is created again with its TTL, offsets continuing', async () => {
    const d = unique('d');
    const [stream] = keys(d);
    const [first] = await Promise.all(bus.publishPositionedMany([group(d, ['d1'])]));
    await bus.removeHistory(d);
    // Within the slack: the recreated stream must not be left without a TTL.
    const [next] = await Promise.all(bus.publishPositionedMany([group(d, ['d2', 'd3'])]));
    expect(next).toEqual({ offset: 2, epoch: first!.epoch });
    expect(await raw.pttl(stream)).toBeGreaterThan(TTL);
    await raw.del(stream);
    const single = await bus.publishPositioned(d, Buffer.from('d4'), { size: 100, ttlMs: TTL, metaTtlMs: META_TTL, messageTtlMs: 0 });
    expect(single).toEqual({ duplicate: false, offset: 4, epoch: first!.epoch });
    expect(await raw.pttl(stream)).toBeGreaterThan(TTL);
    expect(await entries(d)).toEqual([[4, 'd4']]);
  });

  it('reads return every envelope byte for byte (separators, binary, empty), forward and reverse, whatever the field order', async () => {
    const f = unique('f');
    const payloads = ['plain', 'with\nnewline 12 3-4 5\n', '', '\u00ff\u0000\u00b2 x'];
    await Promise.all(bus.publishPositionedMany([group(f, payloads)]));
    // An entry written with its fields in another order (a future writer) is still read by name.
    await raw.hincrby(keys(f)[1], 's', 1);
    await raw.xadd(keys(f)[0], '5-1', 'x', '0', 't', String(Date.now()), 'd', 'odd');
    const all = [...payloads.map((p) => Buffer.from(p, 'latin1')), Buffer.from('odd')];
    const forward = await bus.readHistory(f, { after: 0, count: 10, reverse: false });
    expect(forward.entries.map((e) => [e.offset, e.payload])).toEqual(all.map((p, i) => [i + 1, p]));
    expect(forward.entries.every((e) => e.expiresAt === 0 && Math.abs(e.time - forward.now) < 60_000)).toBe(true);
    const reverse = await bus.readHistory(f, { after: 2, count: 2, reverse: true });
    expect(reverse.entries.map((e) => e.offset)).toEqual([5, 4]);
    const none = await bus.readHistory(unique('never'), { after: 0, count: 10, reverse: false });
    expect([none.epoch, none.top, none.entries]).toEqual(['', 0, []]);
  });

  it('a position that expired starts a new epoch at offset 1; short TTLs expire stream and position', async () => {
    const e = unique('e');
    const [stream, meta] = keys(e);
    const [first] = await Promise.all(bus.publishPositionedMany([group(e, ['e1', 'e2'], { ttlMs: 300, metaTtlMs: 600 })]));
    expect(await raw.pttl(stream)).toBeLessThanOrEqual(303);
    await sleep(350);
    expect(await raw.exists(stream)).toBe(0);
    expect((await bus.readHistory(e, { after: 0, count: 10, reverse: false })).top).toBe(2);
    await sleep(300);
    expect(await raw.exists(meta)).toBe(0);
    const [again] = await Promise.all(bus.publishPositionedMany([group(e, ['e3'], { ttlMs: 300, metaTtlMs: 600 })]));
    expect(again!.offset).toBe(1);
    expect(again!.epoch).not.toBe(first!.epoch);
  });
});
