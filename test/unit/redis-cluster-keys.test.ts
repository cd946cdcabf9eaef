import { describe, expect, it } from 'vitest';
import { RedisKeys } from '../../src/cluster/redis-keys.js';
import { hashTagOf, slotOf } from '../../src/cluster/redis-slot.js';
import { parseRedisTarget } from '../../src/cluster/redis-target.js';

describe('Redis Cluster slots', () => {
  it('matches Redis: CRC16/XMODEM mod 16384 (values from CLUSTER KEYSLOT)', () => {
    expect(slotOf('foo')).toBe(12182);
    expect(slotOf('bar')).toBe(5061);
    expect(slotOf('')).toBe(0);
    expect(slotOf('123456789')).toBe(0x31c3 % 16384);
  });

  it('hashes only the first non-empty {...} tag', () => {
    expect(slotOf('{user1000}.following')).toBe(slotOf('user1000'));
    expect(slotOf('a{b}c{d}')).toBe(slotOf('b'));
    expect(hashTagOf(Buffer.from('foo{}{bar}')).toString()).toBe('foo{}{bar}');
    expect(hashTagOf(Buffer.from('foo{{bar}}zap')).toString()).toBe('{bar');
    expect(hashTagOf(Buffer.from('no-close{tag')).toString()).toBe('no-close{tag');
  });
});

describe('RedisKeys', () => {
  const cluster = new RedisKeys('pushwire:', true);
  const standalone = new RedisKeys('pushwire:', false);

  it('standalone keeps the bus channel names and PUBLISH', () => {
    expect(standalone.busChannel('t:news')).toBe('pushwire:t:news');
    expect(standalone.channelOfBus(Buffer.from('pushwire:t:news'))).toBe('t:news');
    expect(standalone.onceKey('t:news', 'default/k')).toBe('pushwire:once:default/k');
    expect(standalone.publish).toBe('PUBLISH');
    expect(standalone.consumerFramePrefix('shop', 'n:')).toBe('pushwire:n:');
  });

  it('cluster: a bus channel is its own hash tag; the history keys, the idempotency claim and the channel share a slot', () => {
    const ch = 'shop/t:a}b{c';
    expect(cluster.busChannel(ch)).toBe('pushwire:{shop/t:a}b{c}');
    expect(cluster.channelOfBus(Buffer.from(cluster.busChannel(ch)))).toBe(ch);
    const slot = slotOf(cluster.busChannel(ch));
    expect(slotOf(cluster.onceKey(ch, 'shop/k'))).toBe(slot);
    expect(slotOf(`pushwire:h:{${ch}}`)).toBe(slot);
    expect(slotOf(`pushwire:hm:{${ch}}`)).toBe(slot);
    // Channel presence (v1): both keys of the channel in the same slot.
    expect(cluster.channelPresence(ch)).toBe('pushwire:cp:{shop/t:a}b{c}');
    expect(slotOf(`${cluster.channelPresence(ch)}:m`)).toBe(slot);
    expect(slotOf(`${cluster.channelPresence(ch)}:x`)).toBe(slot);
    expect(cluster.publish).toBe('SPUBLISH');
  });

  it('cluster: every key of a project family shares the {pid} tag, and its channels the same slot', () => {
    const slot = slotOf('shop');
    for (const key of [
      cluster.presence('shop'),
      `${cluster.presence('shop')}:conns`,
      `${cluster.presence('shop')}:user:alice`,
      `${cluster.consumers('shop')}:groups`,
      `${cluster.consumers('shop')}:g:billing:rr`,
      `${cluster.consumerFramePrefix('shop', 'n:')}node-1`,
    ]) {
      expect(slotOf(key), key).toBe(slot);
    }
    expect(slotOf(cluster.nodes)).toBe(slotOf(cluster.nodesInfo));
  });
});

describe('parseRedisTarget', () => {
  it('standalone URLs pass through', () => {
    expect(parseRedisTarget('redis://localhost:6379/0')).toEqual({ mode: 'standalone', url: 'redis://localhost:6379/0' });
    expect(parseRedisTarget('rediss://r:6380').mode).toBe('standalone');
  });

  it('cluster seeds, credentials and TLS', () => {
    expect(parseRedisTarget('redis+cluster://10.0.0.1:7000,10.0.0.2:7001')).toEqual({
      mode: 'cluster',
      seeds: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
      ],
      tls: false,
    });
    expect(parseRedisTarget('rediss+cluster://user:p%40ss@h1:7000,[::1]:7001/')).toEqual({
      mode: 'cluster',
      seeds: [
        { host: 'h1', port: 7000 },
        { host: '::1', port: 7001 },
      ],
      username: 'user',
      password: 'p@ss',
      tls: true,
    });
    expect(parseRedisTarget('redis+cluster://:secret@h1')).toEqual({ mode: 'cluster', seeds: [{ host: 'h1', port: 6379 }], password: 'secret', tls: false });
  });

  it('rejects what is neither', () => {
    expect(() => parseRedisTarget('http://x')).toThrow(/redis\+cluster:\/\//);
    expect(() => parseRedisTarget('redis+cluster://h1:0')).toThrow(/bad cluster seed node "h1:0"/);
    expect(() => parseRedisTarget('redis+cluster://h1:7000,')).toThrow(/bad cluster seed node ""/);
  });
});
