import { describe, expect, it } from 'vitest';
import { PushDataBatchResponse, PushDataResponse } from '../../gen/pushwire/v1/push.js';
import { encodeMessage, type Message } from '../../src/core/message.js';
import { encodePushDataBatchResponse, encodePushDataResponse } from '../../src/ingress/grpc/push-service.js';

/** The envelope encoder as it was before it wrote in place: the reference for the byte layout. */
function referenceEncode(m: Message): Buffer {
  const strings = [m.id, m.uid, m.topic, m.pid].map((s) => Buffer.from(s));
  const lists = [m.select?.uids ?? [], m.select?.cids ?? [], m.select?.tags ?? []].map((l) => l.map((s) => Buffer.from(s)));
  let head = 1 + 8;
  for (const b of strings) head += 2 + b.length;
  for (const l of lists) for (const b of l) head += 2 + b.length;
  head += 2 * lists.length;
  const out = Buffer.allocUnsafe(head + m.data.length);
  let o = out.writeUInt8(3, 0);
  o = out.writeDoubleBE(m.publishedAt, o);
  const put = (b: Buffer): void => {
    o = out.writeUInt16BE(b.length, o);
    o += b.copy(out, o);
  };
  for (const b of strings) put(b);
  for (const l of lists) {
    o = out.writeUInt16BE(l.length, o);
    for (const b of l) put(b);
  }
  m.data.copy(out, o);
  return out;
}

describe('hot-path encoders write the same bytes as the reference encoders', () => {
  const messages: Array<[string, Message]> = [
    ['an ordinary push', { id: 'n1-abc-1', pid: 'default', uid: '', topic: 'news', data: Buffer.from('hello'), publishedAt: 1_700_000_000_123 }],
    ['all strings empty, no data', { id: '', pid: '', uid: '', topic: '', data: Buffer.alloc(0), publishedAt: 0 }],
    ['multi-byte UTF-8 and a lone surrogate', { id: 'é-1', pid: 'shop', uid: 'ユーザー', topic: 'a\ud800b', data: Buffer.from([0, 255, 1]), publishedAt: -1.5 }],
    ['long strings', { id: 'x'.repeat(300), pid: 'p', uid: 'u'.repeat(128), topic: 't'.repeat(256), data: Buffer.alloc(70_000, 7), publishedAt: Date.now() }],
    ['an empty selector', { id: 'i', pid: 'p', uid: '', topic: '', data: Buffer.from('d'), publishedAt: 1, select: { uids: [], cids: [], tags: [] } }],
    [
      'a selector with every list',
      { id: 'i', pid: 'p', uid: '', topic: '', data: Buffer.from('d'), publishedAt: 1, select: { uids: ['a', 'bé'], cids: ['n-1-2'], tags: ['t1', '', 't3'] } },
    ],
  ];
  for (const [name, m] of messages) {
    it(`envelope: ${name}`, () => {
      expect(encodeMessage(m).equals(referenceEncode(m))).toBe(true);
    });
  }

  const responses: Array<[string, PushDataResponse]> = [
    ['ordinary', { messageId: 'bench0-mwt29ic9-1', nodeId: 'bench0', duplicate: false, offset: '0', epoch: '' }],
    ['a duplicate', { messageId: 'a-b-c', nodeId: 'a', duplicate: true, offset: '0', epoch: '' }],
    ['all defaults', { messageId: '', nodeId: '', duplicate: false, offset: '0', epoch: '' }],
    ['only duplicate', { messageId: '', nodeId: '', duplicate: true, offset: '0', epoch: '' }],
    ['multi-byte', { messageId: 'é'.repeat(70), nodeId: 'nœud', duplicate: false, offset: '0', epoch: '' }],
    ['lengths around varint boundaries', { messageId: 'x'.repeat(127), nodeId: 'y'.repeat(128), duplicate: true, offset: '0', epoch: '' }],
    ['a two- and a three-byte length', { messageId: 'x'.repeat(16_383), nodeId: 'y'.repeat(16_384), duplicate: false, offset: '0', epoch: '' }],
    ['with an offset and epoch (history)', { messageId: 'a-b-c', nodeId: 'a', duplicate: false, offset: '42', epoch: 'mx5e-1f' }],
    ['a large offset (more than 32 bits)', { messageId: 'a', nodeId: 'b', duplicate: false, offset: String(2 ** 53 - 1), epoch: 'e' }],
    ['offsets around varint boundaries', { messageId: 'a', nodeId: 'b', duplicate: false, offset: '128', epoch: '' }],
  ];
  for (const [name, r] of responses) {
    it(`PushDataResponse: ${name}`, () => {
      const reference = Buffer.from(PushDataResponse.encode(r).finish());
      expect(encodePushDataResponse(r).equals(reference)).toBe(true);
      expect(PushDataResponse.decode(encodePushDataResponse(r))).toEqual(r);
    });
  }

  const result = (offset: number, epoch = '', duplicate = false): { offset: string; epoch: string; duplicate: boolean } => ({ offset: String(offset), epoch, duplicate });
  const batches: Array<[string, PushDataBatchResponse]> = [
    ['empty', { messageIds: [], nodeId: '', results: [] }],
    ['plain pushes (empty results)', { messageIds: ['n-b-1', 'n-b-2'], nodeId: 'n', results: [result(0), result(0)] }],
    ['history offsets, epochs and a duplicate', { messageIds: ['a', 'b', 'c'], nodeId: 'nœud', results: [result(1, 'mx5e-1f'), result(0, '', true), result(127, 'é'.repeat(80))] }],
    ['offsets around varint boundaries and above 32 bits', { messageIds: ['x', 'y', 'z', 'w'], nodeId: 'n', results: [result(128, 'e'), result(16_383), result(16_384, 'e', true), result(2 ** 53 - 1, 'e')] }],
    ['long ids and a node id without results', { messageIds: ['x'.repeat(16_384), ''], nodeId: 'y'.repeat(200), results: [] }],
    ['a thousand results', { messageIds: Array.from({ length: 1000 }, (_, i) => `n-b-${i}`), nodeId: 'n', results: Array.from({ length: 1000 }, (_, i) => result(i, 'ep')) }],
  ];
  for (const [name, r] of batches) {
    it(`PushDataBatchResponse: ${name}`, () => {
      const reference = Buffer.from(PushDataBatchResponse.encode(r).finish());
      expect(encodePushDataBatchResponse(r).equals(reference)).toBe(true);
      expect(PushDataBatchResponse.decode(encodePushDataBatchResponse(r))).toEqual(r);
    });
  }
});
