import { describe, expect, it } from 'vitest';
import { decodeEvent, encodeEvent, stickyHash, type ClientEvent } from '../../src/core/backend/event.js';

const base: ClientEvent = {
  type: 'connect',
  id: 'node-a-kq1-e1',
  pid: 'shop',
  uid: 'alice',
  cid: 'node-a-kq1-1',
  node: 'node-a',
  time: 1_700_000_000_123,
};

const roundTrip = (e: ClientEvent): ClientEvent => decodeEvent(encodeEvent(e));

describe('client events on the bus (encodeEvent / decodeEvent)', () => {
  it('round-trips connect and disconnect events (no request fields, no data key)', () => {
    for (const type of ['connect', 'disconnect'] as const) {
      const back = roundTrip({ ...base, type });
      expect(back).toEqual({ ...base, type });
      expect('data' in back).toBe(false);
      expect('requestId' in back).toBe(false);
      expect('topic' in back).toBe(false);
    }
  });

  it('round-trips a request with topic, request id and JSON data', () => {
    const e: ClientEvent = { ...base, type: 'request', requestId: '42', topic: 'orders.create', data: Buffer.from('{"item":"book","n":2}') };
    const back = roundTrip(e);
    expect(back).toEqual(e);
    expect(Buffer.isBuffer(back.data)).toBe(true);
    expect(back.data!.toString()).toBe('{"item":"book","n":2}');
  });

  it('round-trips arbitrary binary data byte for byte (every byte value, invalid UTF-8 included)', () => {
    const data = Buffer.from([...Array(256).keys(), 0xff, 0xfe, 0xc3, 0x28, 0x00, 0x80]);
    const back = roundTrip({ ...base, type: 'request', requestId: 'r', data });
    expect(Buffer.compare(back.data!, data)).toBe(0);
    expect(back.data!.length).toBe(data.length);
  });

  it('keeps empty data as an empty buffer (not absent)', () => {
    const back = roundTrip({ ...base, type: 'request', requestId: '', data: Buffer.alloc(0) });
    expect(Buffer.isBuffer(back.data)).toBe(true);
    expect(back.data!.length).toBe(0);
    expect(back.requestId).toBe('');
  });

  it('round-trips unicode identities and the redispatched flag', () => {
    const e: ClientEvent = { ...base, uid: '用户-😀', topic: 'thème', type: 'request', requestId: 'ид', data: Buffer.from('"données 😀"'), redispatched: true };
    expect(roundTrip(e)).toEqual(e);
  });

  it('encodes to JSON with data as base64', () => {
    const encoded = encodeEvent({ ...base, type: 'request', requestId: '1', data: Buffer.from([0, 1, 2, 255]) });
    const raw = JSON.parse(encoded.toString()) as Record<string, unknown>;
    expect(raw.data).toBe(Buffer.from([0, 1, 2, 255]).toString('base64'));
    expect(raw.type).toBe('request');
  });

  it('refuses what is not a client event', () => {
    for (const bad of ['null', '5', '"x"', '{}', '{"type":"push"}', '[]']) {
      expect(() => decodeEvent(Buffer.from(bad)), bad).toThrow();
    }
    expect(() => decodeEvent(Buffer.from('not json'))).toThrow();
  });
});

describe('stickyHash', () => {
  it('is a stable 32-bit FNV-1a (known values)', () => {
    // FNV-1a 32-bit reference values.
    expect(stickyHash('')).toBe(0x811c9dc5);
    expect(stickyHash('a')).toBe(0xe40c292c);
    expect(stickyHash('foobar')).toBe(0xbf9cf968);
  });

  it('is deterministic and an unsigned 32-bit integer', () => {
    for (const key of ['node-a-kq1-1', 'node-b-kq1-2', '😀', 'x'.repeat(1000)]) {
      const h = stickyHash(key);
      expect(stickyHash(key)).toBe(h);
      expect(Number.isInteger(h)).toBe(true);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(h).toBeLessThan(2 ** 32);
    }
  });

  it('spreads cids over a few consumers', () => {
    const buckets = [0, 0, 0];
    for (let i = 0; i < 3000; i++) buckets[stickyHash(`node-a-kq1-${i.toString(36)}`) % 3]!++;
    for (const b of buckets) expect(b).toBeGreaterThan(500);
  });
});
