import { describe, expect, it } from 'vitest';
import {
  ErrorCode,
  heartReply,
  isPing,
  MAX_ID_LENGTH,
  parseRequest,
  ReplyCode,
  reply,
  RequestCode,
  type BadRequest,
} from '../../src/ingress/ws/codec.js';
import { MAX_TOPIC_BYTES } from '../../src/core/names.js';

const parse = (v: unknown) => parseRequest(typeof v === 'string' ? v : JSON.stringify(v));

function expectBad(result: ReturnType<typeof parseRequest>, echo: { topic?: string; id?: string | number } = {}): BadRequest {
  expect(result.code).toBe(30001);
  const bad = result as BadRequest;
  expect(typeof bad.detail).toBe('string');
  expect(bad.detail.length).toBeGreaterThan(0);
  expect(bad.topic).toBe(echo.topic);
  expect(bad.id).toBe(echo.id);
  return bad;
}

describe('codes', () => {
  it('match gpush', () => {
    expect(RequestCode).toEqual({
      SUBSCRIBE: 1,
      UNSUBSCRIBE: 2,
      LOGIN: 3,
      LOGOUT: 4,
      SUBSCRIBE_PRIVATE: 5,
      UNSUBSCRIBE_PRIVATE: 6,
      REQUEST: 7,
    });
    expect(ReplyCode.CONNECTED).toBe(20000);
    expect(ReplyCode.SUBSCRIBED).toBe(20001);
    expect(ReplyCode.UNSUBSCRIBED).toBe(20002);
    expect(ReplyCode.LOGGED_IN).toBe(20003);
    expect(ErrorCode).toEqual({
      BAD_REQUEST: 30001,
      NOT_LOGGED_IN: 30002,
      AUTH_FAILED: 30003,
      RATE_LIMITED: 30004,
      NO_BACKEND: 30005,
      UNAVAILABLE: 30006,
      TOO_MANY_SUBSCRIPTIONS: 30007,
      OUTCOME_UNKNOWN: 30008,
    });
    // The logged-out code is distinct from every other reply and error code.
    const all = [...Object.values(ReplyCode), ...Object.values(ErrorCode)];
    expect(new Set(all).size).toBe(all.length);
  });
});

describe('parseRequest: valid requests', () => {
  for (const code of [1, 2, 5, 6] as const) {
    it(`code ${code} with a topic`, () => {
      expect(parse({ code, topic: 'news' })).toEqual({ code, topic: 'news' });
      expect(parse({ code, topic: 'news', id: 7 })).toEqual({ code, topic: 'news', id: 7 });
      expect(parse({ code, topic: 'news', id: 'req-1' })).toEqual({ code, topic: 'news', id: 'req-1' });
    });
  }

  it('code 3 with the token in data', () => {
    expect(parse({ code: 3, data: 'tok' })).toEqual({ code: 3, token: 'tok' });
    expect(parse({ code: 3, data: 'tok', id: 1, topic: 't' })).toEqual({ code: 3, token: 'tok', id: 1, topic: 't' });
  });

  it('code 4 needs nothing else', () => {
    expect(parse({ code: 4 })).toEqual({ code: 4 });
    expect(parse({ code: 4, id: 'x' })).toEqual({ code: 4, id: 'x' });
  });

  it('accepts unicode topics, topics at the byte limit, id at the length limit, id 0, negative and empty-string ids', () => {
    expect(parse({ code: 1, topic: '新闻' })).toEqual({ code: 1, topic: '新闻' });
    const longest = 'x'.repeat(MAX_TOPIC_BYTES);
    expect(parse({ code: 1, topic: longest })).toEqual({ code: 1, topic: longest });
    const id = 'i'.repeat(MAX_ID_LENGTH);
    expect(parse({ code: 4, id })).toEqual({ code: 4, id });
    expect(parse({ code: 4, id: 0 })).toEqual({ code: 4, id: 0 });
    expect(parse({ code: 4, id: -3 })).toEqual({ code: 4, id: -3 });
    expect(parse({ code: 4, id: '' })).toEqual({ code: 4, id: '' });
  });

  it('ignores unknown extra fields', () => {
    expect(parse({ code: 1, topic: 'news', extra: true })).toEqual({ code: 1, topic: 'news' });
  });
});

describe('parseRequest: bad requests are 30001 with a detail', () => {
  it('not JSON', () => {
    expect(expectBad(parse('{not json')).detail).toMatch(/JSON/);
    expectBad(parse(''));
    expectBad(parse('ping'));
  });

  it('JSON but not an object', () => {
    for (const text of ['[]', '[{"code":1,"topic":"a"}]', 'null', '1', '"x"', 'true']) {
      expect(expectBad(parse(text)).detail).toMatch(/object/);
    }
  });

  it('missing code (echoes topic and id)', () => {
    expect(expectBad(parse({ topic: 'news', id: 5 }), { topic: 'news', id: 5 }).detail).toMatch(/missing code/);
  });

  it('code of the wrong type', () => {
    expectBad(parse({ code: '1', topic: 'news' }), { topic: 'news' });
    expectBad(parse({ code: null, topic: 'news', id: 'a' }), { topic: 'news', id: 'a' });
    expectBad(parse({ code: true }));
    expectBad(parse({ code: [1] }));
  });

  it('unknown code', () => {
    for (const code of [0, 8, 20001, -1, 1.5]) {
      expect(expectBad(parse({ code, topic: 'news', id: 'r' }), { topic: 'news', id: 'r' }).detail).toMatch(/unknown code/);
    }
  });

  for (const code of [1, 2, 5, 6]) {
    it(`code ${code}: missing, wrong-typed, empty, too long, control-char topic`, () => {
      expect(expectBad(parse({ code, id: 1 }), { id: 1 }).detail).toMatch(/missing topic/);
      expectBad(parse({ code, topic: 5, id: 1 }), { id: 1 });
      expectBad(parse({ code, topic: null }));
      expectBad(parse({ code, topic: ['a'] }));
      expectBad(parse({ code, topic: '' }), { topic: '' });
      const long = 'x'.repeat(MAX_TOPIC_BYTES + 1);
      expect(expectBad(parse({ code, topic: long, id: 'q' }), { topic: long, id: 'q' }).detail).toMatch(/longer/);
      const multibyte = '新'.repeat(86); // 258 bytes
      expectBad(parse({ code, topic: multibyte }), { topic: multibyte });
      expect(expectBad(parse({ code, topic: 'a\nb' }), { topic: 'a\nb' }).detail).toMatch(/control/);
      expectBad(parse({ code, topic: 'a\u0000b' }), { topic: 'a\u0000b' });
      expectBad(parse({ code, topic: 'a\u007fb' }), { topic: 'a\u007fb' });
    });
  }

  it('bad id types (echoing the topic, not the id)', () => {
    for (const id of [null, true, 1.5, { a: 1 }, [1], 2 ** 60]) {
      const bad = expectBad(parse({ code: 1, topic: 'news', id }), { topic: 'news' });
      expect(bad.detail).toMatch(/id/);
    }
  });

  it('id too long', () => {
    const id = 'i'.repeat(MAX_ID_LENGTH + 1);
    expectBad(parse({ code: 4, topic: 'news', id }), { topic: 'news' });
  });

  it('login without a string token', () => {
    for (const data of [undefined, '', 5, null, { token: 'x' }, ['x']]) {
      const bad = expectBad(parse({ code: 3, data, id: 9, topic: 't' }), { id: 9, topic: 't' });
      expect(bad.detail).toMatch(/token/);
    }
  });
});

describe('reply', () => {
  it('carries code and message, and only the echo fields given', () => {
    expect(reply(20001)).toEqual({ code: 20001, message: 'subscribed' });
    expect(reply(20001, { topic: 'news', id: 3 })).toEqual({ code: 20001, message: 'subscribed', topic: 'news', id: 3 });
    expect(reply(30001, { id: 'x' }, 'missing code')).toEqual({ code: 30001, message: 'bad request', detail: 'missing code', id: 'x' });
    expect(Object.keys(reply(20002, {}))).toEqual(['code', 'message']);
  });

  it('echoes falsy but present ids and topics', () => {
    expect(reply(20004, { id: 0, topic: '' })).toEqual({ code: 20004, message: 'logged out', id: 0, topic: '' });
  });

  it('has a message for every documented code', () => {
    for (const code of [20000, 20001, 20002, 20003, 20004, 30001, 30002, 30003]) {
      expect(reply(code).message).not.toBe('');
    }
    expect(reply(12345).message).toBe('');
  });

  it('round-trips through JSON with a bad request', () => {
    const bad = parse({ code: 99, topic: 'news', id: 'r1' }) as BadRequest;
    const r = JSON.parse(JSON.stringify(reply(bad.code, bad, bad.detail)));
    expect(r).toEqual({ code: 30001, message: 'bad request', detail: bad.detail, topic: 'news', id: 'r1' });
  });
});

describe('heart frames (ws-cluster)', () => {
  it('parses {"type":"heart"} with an optional ack_id, before any code check', () => {
    expect(parseRequest('{"type":"heart","ack_id":3}')).toEqual({ code: 'heart', ackId: 3 });
    expect(parseRequest('{"type":"heart","ack_id":"a"}')).toEqual({ code: 'heart', ackId: 'a' });
    expect(parseRequest('{"type":"heart"}')).toEqual({ code: 'heart' });
    expect(parseRequest('{"type":"heart","ack_id":[1]}')).toMatchObject({ code: 30001, detail: expect.stringMatching(/ack_id/) });
  });

  it("replies in ws-cluster's shape", () => {
    expect(JSON.parse(heartReply(5, 'n-1', 1700000000000))).toEqual({
      type: 'heart',
      ack_id: 5,
      payload: { pong: 1700000000000, client_id: 'n-1' },
    });
  });
});

describe('isPing', () => {
  it('matches ping in any case', () => {
    for (const t of ['ping', 'PING', 'Ping', 'pInG']) expect(isPing(t)).toBe(true);
  });
  it('rejects anything else', () => {
    for (const t of ['pingx', 'xping', ' ping', 'ping ', 'pong', '', 'pin', '"ping"']) expect(isPing(t)).toBe(false);
  });
});
