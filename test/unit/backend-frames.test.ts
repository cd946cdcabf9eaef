import { describe, expect, it } from 'vitest';
import type { ClientEvent } from '../../src/core/backend/event.js';
import { PendingRequests, jsonValue, replyFrame, serverEventFrame } from '../../src/ingress/ws/backend-frames.js';

const source = { pid: 'shop', uid: 'alice', cid: 'n1-k-1', node: 'n1' };
const event = (over: Partial<ClientEvent> = {}): ClientEvent => ({ type: 'connect', id: 'n1-k-e1', ...source, time: 1_700_000_000_123, ...over });

const lookup = (p: PendingRequests | undefined, replyTo: string) => PendingRequests.lookup(p, replyTo);

describe('PendingRequests', () => {
  it('remembers the id type and dialect a request came in with', () => {
    const p = new PendingRequests();
    p.remember(42, 'gpush');
    p.remember('f1', 'wsc');
    expect(lookup(p, '42')).toEqual({ id: 42, dialect: 'gpush' });
    expect(lookup(p, 'f1')).toEqual({ id: 'f1', dialect: 'wsc' });
  });

  it('an unknown or forgotten id still answers, as a gpush reply with the string id', () => {
    const p = new PendingRequests();
    expect(lookup(p, '7')).toEqual({ id: '7', dialect: 'gpush' });
    // A connection that never sent a request has no map at all.
    expect(lookup(undefined, '7')).toEqual({ id: '7', dialect: 'gpush' });
  });

  it('the same id again takes the latest dialect and counts as fresh', () => {
    const p = new PendingRequests(2);
    p.remember('a', 'gpush');
    p.remember('b', 'gpush');
    p.remember('a', 'wsc'); // refreshes "a": "b" is now the oldest
    p.remember('c', 'gpush');
    expect(lookup(p, 'a')).toEqual({ id: 'a', dialect: 'wsc' });
    expect(lookup(p, 'b')).toEqual({ id: 'b', dialect: 'gpush' }); // forgotten: the fallback
    expect(lookup(p, 'c')).toEqual({ id: 'c', dialect: 'gpush' });
  });

  it('forgets the oldest ids beyond its bound', () => {
    const p = new PendingRequests(3);
    for (let i = 1; i <= 5; i++) p.remember(i, 'wsc');
    // 1 and 2 are forgotten: they fall back to string ids and the gpush dialect.
    expect(lookup(p, '1')).toEqual({ id: '1', dialect: 'gpush' });
    expect(lookup(p, '2')).toEqual({ id: '2', dialect: 'gpush' });
    for (const i of [3, 4, 5]) expect(lookup(p, String(i))).toEqual({ id: i, dialect: 'wsc' });
  });

  it('numeric and string ids with the same text share one slot (the reply only carries text)', () => {
    const p = new PendingRequests();
    p.remember(5, 'gpush');
    p.remember('5', 'wsc');
    expect(lookup(p, '5')).toEqual({ id: '5', dialect: 'wsc' });
  });

  it('keeps its default bound of 1024', () => {
    const p = new PendingRequests();
    for (let i = 0; i < 1025; i++) p.remember(i, 'wsc');
    expect(lookup(p, '0').dialect).toBe('gpush');
    expect(lookup(p, '1')).toEqual({ id: 1, dialect: 'wsc' });
    expect(lookup(p, '1024')).toEqual({ id: 1024, dialect: 'wsc' });
  });
});

describe('jsonValue', () => {
  it('embeds JSON text as is', () => {
    for (const text of ['{"a":1}', '[1,2]', '"s"', '42', 'true', 'null', ' { "spaced" : true } ']) {
      expect(jsonValue(Buffer.from(text))).toBe(text);
      expect(() => JSON.parse(jsonValue(Buffer.from(text)))).not.toThrow();
    }
  });

  it('turns anything else into a JSON string, and nothing into null', () => {
    expect(jsonValue(Buffer.from('plain text'))).toBe('"plain text"');
    expect(jsonValue(Buffer.from('{"half":'))).toBe('"{\\"half\\":"');
    expect(jsonValue(Buffer.from('line\n"quoted"'))).toBe(JSON.stringify('line\n"quoted"'));
    expect(jsonValue(Buffer.alloc(0))).toBe('null');
    expect(JSON.parse(jsonValue(Buffer.from('   ')))).toBe('   ');
  });

  it('always yields valid JSON, whatever the bytes', () => {
    const samples = [Buffer.from([0xff, 0xfe, 0x00, 0x7b]), Buffer.from([0xc3, 0x28]), Buffer.from('données 😀'), Buffer.from('\u2028\u2029')];
    for (const b of samples) expect(() => JSON.parse(jsonValue(b))).not.toThrow();
  });
});

describe('replyFrame', () => {
  it('gpush: code 20006 echoing the id with its type, data embedded', () => {
    expect(JSON.parse(replyFrame({ id: 42, dialect: 'gpush' }, Buffer.from('{"ok":true}')))).toEqual({ code: 20006, message: 'reply', id: 42, data: { ok: true } });
    expect(JSON.parse(replyFrame({ id: 'r1', dialect: 'gpush' }, Buffer.from('plain')))).toEqual({ code: 20006, message: 'reply', id: 'r1', data: 'plain' });
    expect(JSON.parse(replyFrame({ id: 'r2', dialect: 'gpush' }, Buffer.alloc(0)))).toEqual({ code: 20006, message: 'reply', id: 'r2', data: null });
  });

  it('ws-cluster: {affair_id, payload}', () => {
    expect(JSON.parse(replyFrame({ id: 'f2', dialect: 'wsc' }, Buffer.from('{"text":"hello"}')))).toEqual({ affair_id: 'f2', payload: { text: 'hello' } });
    expect(JSON.parse(replyFrame({ id: 9, dialect: 'wsc' }, Buffer.from('x')))).toEqual({ affair_id: 9, payload: 'x' });
  });

  it('escapes ids that need it', () => {
    const id = 'a"b\\c\n';
    expect(JSON.parse(replyFrame({ id, dialect: 'gpush' }, Buffer.from('1'))).id).toBe(id);
    expect(JSON.parse(replyFrame({ id, dialect: 'wsc' }, Buffer.from('1'))).affair_id).toBe(id);
  });
});

describe('serverEventFrame', () => {
  it('connect and disconnect: type, event id, source, time; no request fields', () => {
    for (const type of ['connect', 'disconnect'] as const) {
      const f = JSON.parse(serverEventFrame(event({ type }))) as Record<string, unknown>;
      expect(f).toEqual({ type, event_id: 'n1-k-e1', source, time: 1_700_000_000_123 });
    }
  });

  it('request: affair_id, topic and the payload embedded as JSON', () => {
    const f = JSON.parse(serverEventFrame(event({ type: 'request', requestId: '42', topic: 'pay', data: Buffer.from('{"amount":5}') })));
    expect(f).toEqual({ type: 'request', event_id: 'n1-k-e1', source, time: 1_700_000_000_123, affair_id: '42', topic: 'pay', payload: { amount: 5 } });
  });

  it('request without topic or data: no topic key, payload null; non-JSON data as a string', () => {
    const bare = JSON.parse(serverEventFrame(event({ type: 'request', requestId: 'r' }))) as Record<string, unknown>;
    expect('topic' in bare).toBe(false);
    expect(bare.payload).toBeNull();
    expect(bare.affair_id).toBe('r');
    const text = JSON.parse(serverEventFrame(event({ type: 'request', requestId: 'r', data: Buffer.from('hello there') })));
    expect(text.payload).toBe('hello there');
    const noId = JSON.parse(serverEventFrame(event({ type: 'request' })));
    expect(noId.affair_id).toBe('');
  });

  it('escapes identities and keeps unicode', () => {
    const f = JSON.parse(serverEventFrame(event({ type: 'request', requestId: 'q"1', uid: 'ü"ser', data: Buffer.from('["😀"]') })));
    expect(f.source.uid).toBe('ü"ser');
    expect(f.affair_id).toBe('q"1');
    expect(f.payload).toEqual(['😀']);
  });
});
