import { describe, expect, it, vi } from 'vitest';
import { decodeMessage, encodeMessage, Outbound, type Message } from '../../src/core/message.js';

const base: Message = {
  id: 'node1-42',
  pid: 'shop',
  uid: 'alice',
  topic: 'news',
  data: Buffer.from('hello'),
  publishedAt: 1_700_000_000_123,
};

const roundTrip = (m: Message): Message => decodeMessage(encodeMessage(m));

describe('message envelope', () => {
  it('round-trips an ordinary message', () => {
    const back = roundTrip(base);
    expect(back).toEqual(base);
    expect(Buffer.isBuffer(back.data)).toBe(true);
  });

  it('round-trips empty strings and empty data', () => {
    const m: Message = { id: '', pid: '', uid: '', topic: '', data: Buffer.alloc(0), publishedAt: 0 };
    const back = roundTrip(m);
    expect(back).toEqual(m);
    expect(back.data.length).toBe(0);
  });

  it('round-trips unicode names (multi-byte lengths)', () => {
    const m: Message = { ...base, id: 'ид-😀', uid: '用户', topic: 'thème:ünïcödé/🚀', data: Buffer.from('données 😀') };
    expect(roundTrip(m)).toEqual(m);
  });

  it('round-trips arbitrary binary data, including bytes that are not UTF-8', () => {
    const data = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const m: Message = { ...base, data: Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, 0xc3]), data]) };
    const back = roundTrip(m);
    expect(back.data.equals(m.data)).toBe(true);
  });

  it('round-trips a large payload (4 MiB)', () => {
    const data = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    const back = roundTrip({ ...base, data });
    expect(back.data.length).toBe(data.length);
    expect(back.data.equals(data)).toBe(true);
  });

  it('round-trips names at the 16-bit length limit', () => {
    const m: Message = { ...base, topic: 't'.repeat(65535) };
    expect(roundTrip(m).topic).toBe(m.topic);
  });

  it('keeps publishedAt exactly (a double)', () => {
    for (const publishedAt of [0, 1, Date.now(), 1.5, Number.MAX_SAFE_INTEGER]) {
      expect(roundTrip({ ...base, publishedAt }).publishedAt).toBe(publishedAt);
    }
  });

  it('decoding slices the payload without copying', () => {
    const buf = encodeMessage(base);
    const back = decodeMessage(buf);
    expect(back.data.buffer).toBe(buf.buffer);
  });

  it('throws on input shorter than the smallest envelope', () => {
    expect(() => decodeMessage(Buffer.alloc(0))).toThrow();
    expect(() => decodeMessage(Buffer.from([1]))).toThrow();
    const min = encodeMessage({ id: '', pid: '', uid: '', topic: '', data: Buffer.alloc(0), publishedAt: 0 });
    expect(min.length).toBe(23); // v3: four empty strings and three empty lists
    expect(() => decodeMessage(min.subarray(0, 22))).toThrow();
  });

  it('throws on an unknown version', () => {
    const buf = Buffer.from(encodeMessage(base));
    buf[0] = 4;
    expect(() => decodeMessage(buf)).toThrow(/envelope/);
    buf[0] = 0;
    expect(() => decodeMessage(buf)).toThrow(/envelope/);
  });

  it('throws on a truncated envelope (cut inside a name)', () => {
    const buf = encodeMessage({ ...base, id: 'a-fairly-long-id', uid: 'some-user', topic: 'some-topic', data: Buffer.alloc(0) });
    // Cut anywhere inside the header strings.
    for (let cut = 15; cut < buf.length; cut++) {
      expect(() => decodeMessage(buf.subarray(0, cut)), `cut at ${cut}`).toThrow();
    }
  });

  it('throws on a corrupted length prefix pointing past the end', () => {
    const buf = Buffer.from(encodeMessage(base));
    buf.writeUInt16BE(0xffff, 9); // id length
    expect(() => decodeMessage(buf)).toThrow(/truncated/);
  });
});

describe('Outbound', () => {
  it('exposes the message and caches the encoding per encoder', () => {
    const out = new Outbound(base);
    expect(out.message).toBe(base);
    const enc = vi.fn((m: Message) => ({ bytes: m.data.length }));
    const a = out.encoded(enc);
    const b = out.encoded(enc);
    expect(a).toBe(b);
    expect(a).toEqual({ bytes: 5 });
    expect(enc).toHaveBeenCalledTimes(1);
  });

  it('a different encoder gets its own result', () => {
    const out = new Outbound(base);
    const upper = (m: Message) => m.data.toString().toUpperCase();
    const len = (m: Message) => m.data.length;
    expect(out.encoded(upper)).toBe('HELLO');
    expect(out.encoded(len)).toBe(5);
    expect(out.encoded(upper)).toBe('HELLO');
  });

  it('decodes a v1 envelope (no pid, from a node before projects) as the default project', () => {
    // v1: version, publishedAt, id, uid, topic, then the payload.
    const parts = ['n-1', 'alice', 'news'].map((t) => Buffer.from(t));
    const head = Buffer.alloc(9);
    head.writeUInt8(1, 0);
    head.writeDoubleBE(42, 1);
    const v1 = Buffer.concat([head, ...parts.flatMap((p) => [Buffer.from([0, p.length]), p]), Buffer.from('hi')]);
    expect(decodeMessage(v1)).toEqual({ id: 'n-1', pid: 'default', uid: 'alice', topic: 'news', data: Buffer.from('hi'), publishedAt: 42 });
  });

  it('round-trips a targeted push selector, and leaves it out when every list is empty', () => {
    const m: Message = { ...base, uid: '', topic: '', select: { uids: ['a', 'б'], cids: ['n-1-2'], tags: [] } };
    expect(roundTrip(m)).toEqual(m);
    const empty = roundTrip({ ...base, select: { uids: [], cids: [], tags: [] } });
    expect(empty.select).toBeUndefined();
  });
});

