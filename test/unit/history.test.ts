import { describe, expect, it } from 'vitest';
import { unwrapPositioned, wrapPositioned } from '../../src/cluster/bus.js';
import { MemoryBus } from '../../src/cluster/memory-bus.js';
import { parseDuration } from '../../src/config.js';
import { channelOptions, namespaceOf, parseChannelSettings } from '../../src/core/channels/options.js';
import { ChannelHistory } from '../../src/core/history.js';
import { decodeMessage, encodeMessage } from '../../src/core/message.js';
import { ProjectRegistry } from '../../src/core/projects/registry.js';
import { validateCommand } from '../../src/ingress/ws/v1/commands.js';
import { jsonLine, payloadMembers } from '../../src/ingress/ws/v1/encode.js';

const parse = (raw: unknown) =>
  parseChannelSettings(raw, 'channels', (where, why) => {
    throw new Error(`${where}: ${why}`);
  }, parseDuration);

describe('channel options', () => {
  it('namespaces by prefix; user channels and unlisted topics take the defaults', () => {
    const s = parse({ history: { size: 5, ttl: '1m' }, namespaces: { chat: { history: { size: 9, ttl: '2m' }, recover: false }, small: { maxPushBytes: 10 } } });
    expect(namespaceOf('chat:room')).toBe('chat');
    expect(namespaceOf(':x')).toBeUndefined();
    expect(namespaceOf('plain')).toBeUndefined();
    expect(channelOptions(s, 'chat:room')).toEqual({ recover: false, presence: false, joinLeave: false, history: { size: 9, ttlMs: 120_000, metaTtlMs: 30 * 24 * 3600 * 1000 } });
    expect(channelOptions(s, 'small:x')).toEqual({ recover: false, presence: false, joinLeave: false, maxPushBytes: 10 });
    expect(channelOptions(s, 'other:x').history?.size).toBe(5);
    expect(channelOptions(s, '').recover).toBe(true);
  });

  it('presence and joinLeave: off by default, independent of history, per namespace', () => {
    const s = parse({ presence: true, namespaces: { chat: { joinLeave: true }, room: { presence: true, joinLeave: true, history: { size: 2, ttl: '1m' } } } });
    expect(channelOptions(s, 'plain')).toMatchObject({ presence: true, joinLeave: false });
    expect(channelOptions(s, '')).toMatchObject({ presence: true, joinLeave: false });
    expect(channelOptions(s, 'chat:a')).toMatchObject({ presence: false, joinLeave: true });
    expect(channelOptions(s, 'room:a')).toMatchObject({ presence: true, joinLeave: true, recover: true });
    expect(channelOptions(parse({}), 'x')).toMatchObject({ presence: false, joinLeave: false });
  });

  it('refuses bad settings with the place and the reason', () => {
    const bad = (raw: unknown) => () => parse(raw);
    expect(bad({ history: { size: 0, ttl: '1m' } })).toThrow('channels.history.size: must be an integer from 1 to 100000');
    expect(bad({ history: { size: 3 } })).toThrow('channels.history.ttl: is required (a duration such as 10m)');
    expect(bad({ history: { size: 3, ttl: 'soon' } })).toThrow('channels.history.ttl: must be a duration such as 30s, 10m or 24h');
    expect(bad({ history: { size: 3, ttl: '1h', metaTtl: '1m' } })).toThrow('channels.history.metaTtl: must not be shorter than history.ttl');
    expect(bad({ recover: true })).toThrow('channels.recover: needs history (recovery replays the history)');
    expect(bad({ recover: 'yes' })).toThrow('channels.recover: must be true or false');
    expect(bad({ presence: 1 })).toThrow('channels.presence: must be true or false');
    expect(bad({ namespaces: { chat: { joinLeave: 'on' } } })).toThrow('channels.namespaces.chat.joinLeave: must be true or false');
    expect(bad({ maxPushBytes: -1 })).toThrow('channels.maxPushBytes: must be a positive integer (bytes)');
    expect(bad({ namespaces: { 'a b': {} } })).toThrow('channels.namespaces.a b: a namespace name is 1-64 of A-Z a-z 0-9 _ . -');
    expect(bad({ namespaces: { chat: { history: { size: 1, ttl: '1m', extra: 1 } } } })).toThrow('channels.namespaces.chat.history.extra: unknown field');
    expect(bad({ size: 1 })).toThrow('channels.size: unknown field');
    expect(bad([])).toThrow('channels: must be an object');
  });
});

describe('positioned bus payloads', () => {
  it('wrap and unwrap keep the position and the envelope', () => {
    const env = encodeMessage({ id: 'i', pid: 'default', uid: '', topic: 't', data: Buffer.from('d'), publishedAt: 1 });
    const wrapped = wrapPositioned({ offset: 2 ** 40, epoch: 'ab-12' }, env);
    const out = unwrapPositioned(wrapped)!;
    expect(out.position).toEqual({ offset: 2 ** 40, epoch: 'ab-12' });
    expect(decodeMessage(out.envelope).data.toString()).toBe('d');
    expect(unwrapPositioned(env)).toBeUndefined();
    expect(() => unwrapPositioned(Buffer.from('\u00b2x', 'latin1'))).toThrow('truncated positioned envelope');
  });
});

describe('ChannelHistory on the memory bus', () => {
  const projects = new ProjectRegistry({
    projects: [{ pid: 'default', name: 'default', authenticator: { authenticate: () => Promise.reject(new Error('no')) }, limits: {}, channels: parse({ history: { size: 3, ttl: '1m' } }) }],
    apiKeys: new Map(),
  });
  const history = { size: 3, ttlMs: 60_000, metaTtlMs: 120_000 };
  const append = { ...history, messageTtlMs: 0 };
  const env = (n: number) => encodeMessage({ id: `m${n}`, pid: 'default', uid: '', topic: 't', data: Buffer.from(`d${n}`), publishedAt: n });

  it('complete only when every publication after since is held, in the same epoch', async () => {
    const bus = new MemoryBus();
    const h = new ChannelHistory(bus, projects);
    const none = await h.read('t:t', history, { since: { offset: 0, epoch: '' }, limit: 0, reverse: false });
    expect(none).toMatchObject({ epoch: '', offset: 0, complete: true });
    let epoch = '';
    for (let i = 1; i <= 5; i++) {
      const r = await bus.publishPositioned('t:t', env(i), append);
      if (!r.duplicate) epoch = r.epoch;
    }
    const page = await h.read('t:t', history, { since: { offset: 2, epoch }, limit: 0, reverse: false });
    expect(page.complete).toBe(true);
    expect(page.publications.map((m) => [m.offset, m.data.toString()])).toEqual([[3, 'd3'], [4, 'd4'], [5, 'd5']]);
    expect((await h.read('t:t', history, { since: { offset: 1, epoch }, limit: 0, reverse: false })).complete).toBe(false); // trimmed
    expect((await h.read('t:t', history, { since: { offset: 2, epoch: 'x' }, limit: 0, reverse: false })).complete).toBe(false); // epoch
    expect((await h.read('t:t', history, { since: { offset: 9, epoch }, limit: 0, reverse: false })).complete).toBe(false); // ahead
    expect((await h.read('t:t', history, { since: { offset: 2, epoch }, limit: 2, reverse: false })).complete).toBe(false); // over the limit
    expect((await h.read('t:t', history, { since: { offset: 5, epoch }, limit: 0, reverse: false })).complete).toBe(true);
    const rev = await h.read('t:t', history, { limit: 2, reverse: true });
    expect(rev.publications.map((m) => m.offset)).toEqual([5, 4]);
    await bus.removeHistory('t:t');
    const after = await h.read('t:t', history, { since: { offset: 4, epoch }, limit: 0, reverse: false });
    expect(after).toMatchObject({ epoch, offset: 5, complete: false });
  });

  it('the idempotency claim rides on the positioned publish', async () => {
    const bus = new MemoryBus();
    const once = { key: 'k', value: 'first', ttlMs: 10_000 };
    expect(await bus.publishPositioned('t:u', env(1), { ...append, once })).toMatchObject({ duplicate: false, offset: 1 });
    expect(await bus.publishPositioned('t:u', env(2), { ...append, once: { ...once, value: 'second' } })).toEqual({ duplicate: true, earlier: 'first' });
  });
});

describe('protocol v1 commands and JSON mapping', () => {
  it('validates commands', () => {
    expect(validateCommand({ id: 1, subscribe: { channel: 'a', since: { offset: 3, epoch: 'e' } } }, true)).toEqual({ kind: 'subscribe', id: 1, channel: 'a', private: false, since: { offset: 3, epoch: 'e' } });
    expect(validateCommand({ id: 2, subscribe: { private: true } }, true)).toEqual({ kind: 'subscribe', id: 2, channel: '', private: true });
    expect(validateCommand({ pong: {} }, true)).toEqual({ kind: 'pong' });
    expect(validateCommand({ id: 3, ping: {}, pong: {} }, true)).toMatchObject({ kind: 'bad', id: 3, detail: 'a command has exactly one command field' });
    expect(validateCommand({ id: 4, subscribe: { channel: 7 } }, true)).toMatchObject({ kind: 'bad', detail: 'subscribe.channel must be a string' });
    expect(validateCommand({ id: 5, subscribe: { channel: 'x'.repeat(257) } }, true)).toMatchObject({ kind: 'bad', detail: 'channel longer than 256 bytes' });
    expect(validateCommand({ id: 6, history: { channel: 'a', limit: 1.5 } }, true)).toMatchObject({ kind: 'bad', detail: 'history.limit must be a non-negative integer' });
    expect(validateCommand({ id: 7, request: { data: { a: 1 } } }, true)).toMatchObject({ kind: 'request', data: Buffer.from('{"a":1}') });
    expect(validateCommand({ id: 8, subscribe: { channel: 'a', since: { offset: '3' } } }, true)).toMatchObject({ kind: 'bad', detail: 'since.offset must be a non-negative integer' });
    expect(validateCommand([1], true)).toMatchObject({ kind: 'bad', detail: 'bad data format: not a JSON object' });
  });

  it('embeds JSON payloads, carries other text as text and binary as b64', () => {
    expect(payloadMembers(Buffer.from('{"a":1}'))).toBe('"data":{"a":1}');
    expect(payloadMembers(Buffer.from('{\n"a": 1\n}'))).toBe('"data":{"a":1}');
    expect(payloadMembers(Buffer.from('hello'))).toBe('"text":"hello"');
    expect(payloadMembers(Buffer.from([0xff]))).toBe('"b64":"/w=="');
    expect(payloadMembers(Buffer.alloc(0))).toBe('');
    const line = jsonLine({ id: 0, pub: { channel: 'c', private: false, data: Buffer.from('1'), offset: '7', epoch: 'e', id: 'm', time: '5', tags: [] } });
    expect(JSON.parse(line)).toEqual({ pub: { channel: 'c', data: 1, offset: 7, epoch: 'e', id: 'm', time: 5 } });
    expect(JSON.parse(jsonLine({ id: 3, error: { code: 30001, message: 'bad request', detail: '' } }))).toEqual({ id: 3, error: { code: 30001, message: 'bad request' } });
  });
});
