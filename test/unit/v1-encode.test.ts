import { describe, expect, it } from 'vitest';
import type { Message } from '../../src/core/message.js';
import { jsonLine, messageFrame, publicationFrame, publicationOf } from '../../src/ingress/ws/v1/encode.js';

const message = (topic: string, data: string, o: Partial<Message> = {}): Message => ({
  id: `n1-x-${topic}`,
  pid: 'default',
  uid: '',
  topic,
  data: Buffer.from(data),
  publishedAt: 1764000000000.4,
  offset: 7,
  epoch: `ep-${topic}`,
  ...o,
});

describe('v1 JSON encoding of publications', () => {
  it('a reply with many publications: each its own channel, epoch and payload member, whatever came before', () => {
    const pubs = [
      message('a', '{"n":1}'),
      message('a', 'plain text'),
      message('b"q', '\u00ff', { data: Buffer.from([0xff, 0x00]) }),
      message('b"q', '', { uid: 'u1', select: { uids: [], cids: [], tags: ['t1'] } }),
      message('c', '[1,\n2]', { offset: 0, epoch: '' }),
    ].map(publicationOf);
    const line = jsonLine({ id: 3, subscribe: { positioned: true, recoverable: true, epoch: 'ep-a', offset: '9', wasRecovering: true, recovered: true, publications: pubs } as never });
    expect(line).not.toContain('\n');
    expect(JSON.parse(line)).toEqual({
      id: 3,
      subscribe: {
        positioned: true,
        recoverable: true,
        epoch: 'ep-a',
        offset: 9,
        wasRecovering: true,
        recovered: true,
        publications: [
          { channel: 'a', data: { n: 1 }, offset: 7, epoch: 'ep-a', id: 'n1-x-a', time: 1764000000000 },
          { channel: 'a', text: 'plain text', offset: 7, epoch: 'ep-a', id: 'n1-x-a', time: 1764000000000 },
          { channel: 'b"q', b64: '/wA=', offset: 7, epoch: 'ep-b"q', id: 'n1-x-b"q', time: 1764000000000 },
          { channel: 'b"q', private: true, offset: 7, epoch: 'ep-b"q', id: 'n1-x-b"q', time: 1764000000000, tags: ['t1'] },
          { channel: 'c', data: [1, 2], id: 'n1-x-c', time: 1764000000000 },
        ],
      },
    });
    // Framing: one text frame holding the line, as the live publication frame is.
    const f = messageFrame('json', { id: 0, pub: pubs[0]! });
    expect(f.equals(publicationFrame('json', message('a', '{"n":1}')))).toBe(true);
  });
});
