import { describe, expect, it } from 'vitest';
import { CONSUMER_FRAME, decodeConsumerFrame, encodeConsumerFrame, isConsumerFrame } from '../../src/cluster/consumers.js';
import { encodeEvent } from '../../src/core/backend/event.js';
import { decodeMessage, encodeMessage, type Message } from '../../src/core/message.js';

const message: Message = { id: 'n1-1', pid: 'shop', uid: 'alice', topic: 'news', data: Buffer.from('hello'), publishedAt: 1_700_000_000_000 };

describe('consumer frames', () => {
  it('round-trips a consumer id, its group and event bytes', () => {
    const event = encodeEvent({ type: 'connect', id: 'e1', pid: 'shop', uid: '', cid: 'n1-a-1', node: 'n1', time: 1 });
    const frame = encodeConsumerFrame('kq1.2', 'billing', event);
    expect(frame[0]).toBe(CONSUMER_FRAME);
    expect(frame.readUInt16BE(1)).toBe(5);
    const back = decodeConsumerFrame(frame);
    expect(back.consumerId).toBe('kq1.2');
    expect(back.group).toBe('billing');
    expect(Buffer.compare(back.event, event)).toBe(0);
  });

  it('round-trips binary event bytes, an empty event and a unicode id (byte length prefix)', () => {
    const event = Buffer.from([0, 0xb0, 0xff, 1, 2, 3]);
    const back = decodeConsumerFrame(encodeConsumerFrame('c-😀', 'g', event));
    expect(back.consumerId).toBe('c-😀');
    expect([...back.event]).toEqual([...event]);
    const empty = decodeConsumerFrame(encodeConsumerFrame('x', 'g', Buffer.alloc(0)));
    expect(empty).toEqual({ consumerId: 'x', group: 'g', event: Buffer.alloc(0) });
    const noId = decodeConsumerFrame(encodeConsumerFrame('', 'default', Buffer.from('e')));
    expect(noId.consumerId).toBe('');
    expect(noId.event.toString()).toBe('e');
  });

  it('matches the frame the Redis DISPATCH script builds (marker, u16 BE length + id, u16 BE length + group, event)', () => {
    const id = 'a'.repeat(300);
    const group = 'orders';
    const event = Buffer.from('{"type":"request"}');
    const u16 = (s: string) => Buffer.concat([Buffer.from([Math.floor(s.length / 256), s.length % 256]), Buffer.from(s)]);
    const lua = Buffer.concat([Buffer.from([CONSUMER_FRAME]), u16(id), u16(group), event]);
    expect(Buffer.compare(encodeConsumerFrame(id, group, event), lua)).toBe(0);
    expect(decodeConsumerFrame(lua)).toMatchObject({ consumerId: id, group });
  });

  it('refuses frames that are not consumer frames or are truncated', () => {
    expect(() => decodeConsumerFrame(Buffer.alloc(0))).toThrow(/not a consumer frame/);
    expect(() => decodeConsumerFrame(Buffer.from([CONSUMER_FRAME, 0]))).toThrow(/not a consumer frame/);
    expect(() => decodeConsumerFrame(encodeMessage(message))).toThrow(/not a consumer frame/);
    expect(() => decodeConsumerFrame(Buffer.from([CONSUMER_FRAME, 0, 10, 0x61, 0]))).toThrow(/truncated/);
    expect(() => decodeConsumerFrame(Buffer.from([CONSUMER_FRAME, 0, 1, 0x61, 0, 5, 0x62]))).toThrow(/truncated/);
  });

  it('is told apart from message envelopes (versions 1-4) by its first byte', () => {
    const v3 = encodeMessage(message);
    const v4 = encodeMessage({ ...message, replyTo: '42', select: { uids: [], cids: ['n1-a-1'], tags: [] } });
    expect(v3[0]).toBe(3);
    expect(v4[0]).toBe(4);
    for (const env of [v3, v4]) {
      expect(isConsumerFrame(env)).toBe(false);
      expect(decodeMessage(env).id).toBe('n1-1');
    }
    for (const version of [1, 2, 3, 4, 15]) {
      const fake = Buffer.from(v3);
      fake[0] = version;
      expect(isConsumerFrame(fake)).toBe(false);
    }
    const frame = encodeConsumerFrame('kq1.1', 'default', encodeEvent({ type: 'disconnect', id: 'e', pid: 'p', uid: '', cid: 'c', node: 'n', time: 0 }));
    expect(isConsumerFrame(frame)).toBe(true);
    // And the message decoder never mistakes a consumer frame for an envelope.
    expect(() => decodeMessage(frame)).toThrow(/unknown message envelope/);
    expect(isConsumerFrame(Buffer.alloc(0))).toBe(false);
  });
});
