import { describe, expect, it } from 'vitest';
import { MemoryChannelPresence } from '../../src/cluster/memory-channel-presence.js';
import { ChannelEvent, decodeChannelEvent, encodeChannelEvent, isChannelEventFrame, type ChannelEventData } from '../../src/core/channel-events.js';
import { ChannelMembers } from '../../src/core/channel-members.js';
import { NO_CHANNEL_OPTIONS } from '../../src/core/channels/options.js';
import { decodeMessage, encodeMessage } from '../../src/core/message.js';
import { Session } from '../../src/core/session.js';
import { channelEventJson } from '../../src/ingress/ws/v1/channel-event-frames.js';
import { pino } from 'pino';
import { Metrics } from '../../src/observability/metrics.js';

const event: ChannelEventData = { kind: 'leave', hubChannel: 't:default\u0000chat:é', channel: 'chat:é', private: true, member: { client: 'n1-a-7', user: 'zoë' } };

describe('channel event frames', () => {
  it('round-trip every field (UTF-8 included) and are told apart from message envelopes', () => {
    const frame = encodeChannelEvent(event);
    expect(isChannelEventFrame(frame)).toBe(true);
    expect(decodeChannelEvent(frame)).toEqual(event);
    expect(decodeChannelEvent(encodeChannelEvent({ ...event, kind: 'join', private: false, member: { client: 'c', user: '' } }))).toMatchObject({ kind: 'join', private: false, member: { user: '' } });
    const envelope = encodeMessage({ id: 'i', pid: 'default', uid: '', topic: 't', data: Buffer.from('x'), publishedAt: 1 });
    expect(isChannelEventFrame(envelope)).toBe(false);
    expect(() => decodeMessage(frame)).toThrow();
  });

  it('refuses truncated or foreign frames', () => {
    const frame = encodeChannelEvent(event);
    expect(() => decodeChannelEvent(frame.subarray(0, frame.length - 1))).toThrow('truncated channel event frame');
    expect(() => decodeChannelEvent(Buffer.from([0xb3, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0]))).toThrow('not a channel event frame');
    expect(() => decodeChannelEvent(Buffer.from([0xb2]))).toThrow('not a channel event frame');
  });

  it('a ChannelEvent builds each encoder frame once; the JSON frame leaves defaults out', () => {
    let calls = 0;
    const encode = (e: ChannelEventData): string => `${++calls}:${e.kind}`;
    const shared = new ChannelEvent(event);
    expect([shared.encoded(encode), shared.encoded(encode)]).toEqual(['1:leave', '1:leave']);
    const json = channelEventJson({ ...event, private: false, member: { client: 'c1', user: '' } });
    // An unmasked text frame: 2 header bytes, then the payload.
    expect(json.subarray(2).toString()).toBe('{"leave":{"channel":"chat:é","info":{"client":"c1"}}}');
  });
});

describe('ChannelMembers', () => {
  const setup = () => {
    const store = new MemoryChannelPresence();
    const published: ChannelEventData[] = [];
    const members = new ChannelMembers(store, (_c, p) => (published.push(decodeChannelEvent(p)), Promise.resolve()), 30_000, new Metrics('n1'), pino({ level: 'silent' }));
    return { store, published, members };
  };
  const session = (cid: string, uid?: string): Session => {
    const s = new Session(cid, 'default', { deliver: () => {} });
    s.uid = uid;
    return s;
  };
  const both = { ...NO_CHANNEL_OPTIONS, presence: true, joinLeave: true };

  it('records members and announces join/leave only as the options at subscribe say, once per session and channel', async () => {
    const { store, published, members } = setup();
    const a = session('a', 'ann');
    const b = session('b');
    members.subscribed(a, 'h1', 'room:1', false, both);
    members.subscribed(a, 'h1', 'room:1', false, both); // held already: nothing new
    members.subscribed(b, 'h1', 'room:1', false, { ...NO_CHANNEL_OPTIONS, presence: true });
    members.subscribed(b, 'h2', 'events:1', false, { ...NO_CHANNEL_OPTIONS, joinLeave: true });
    members.subscribed(b, 'h3', 'plain', false, NO_CHANNEL_OPTIONS);
    expect(await members.list('h1', 'room:1', false)).toEqual([
      { client: 'a', user: 'ann' },
      { client: 'b', user: '' },
    ]);
    // A joinLeave-only member is stored too (the store sends its leave if its node dies); the
    // presence command answers only where the namespace has presence.
    expect(await members.list('h2', 'events:1', false)).toEqual([{ client: 'b', user: '' }]);
    expect(await members.list('h3', 'plain', false)).toEqual([]);
    expect(published.map((e) => `${e.kind} ${e.hubChannel} ${e.member.client}`)).toEqual(['join h1 a', 'join h2 b']);
    members.unsubscribed(a, 'h1');
    members.unsubscribed(a, 'h1');
    members.disconnected(b);
    await members.close();
    expect(published.map((e) => `${e.kind} ${e.hubChannel} ${e.member.client}`)).toEqual(['join h1 a', 'join h2 b', 'leave h1 a', 'leave h2 b']);
    expect(await store.list('h1')).toEqual([]);
    expect(await store.list('h2')).toEqual([]);
  });
});
