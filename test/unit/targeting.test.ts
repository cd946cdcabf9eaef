import { describe, expect, it } from 'vitest';
import {
  BROADCAST_CHANNEL,
  channelOf,
  privateChannel,
  targetOf,
  topicChannel,
  userChannel,
} from '../../src/core/targeting.js';

describe('targetOf', () => {
  it('topic set, uid empty -> public topic', () => {
    expect(targetOf('', 'news')).toEqual({ kind: 'topic', topic: 'news' });
  });

  it('topic set, uid set -> private topic of that user', () => {
    expect(targetOf('alice', 'news')).toEqual({ kind: 'private', uid: 'alice', topic: 'news' });
  });

  it('topic empty, uid set -> every connection of that user', () => {
    expect(targetOf('alice', '')).toEqual({ kind: 'user', uid: 'alice' });
  });

  it('both empty -> broadcast', () => {
    expect(targetOf('', '')).toEqual({ kind: 'broadcast' });
  });
});

describe('channel names', () => {
  it('maps each target kind to its channel', () => {
    expect(channelOf(targetOf('', 'news'))).toBe(topicChannel('news'));
    expect(channelOf(targetOf('alice', 'news'))).toBe(privateChannel('alice', 'news'));
    expect(channelOf(targetOf('alice', ''))).toBe(userChannel('alice'));
    expect(channelOf(targetOf('', ''))).toBe(BROADCAST_CHANNEL);
  });

  it('keeps uid "a" + topic "b:c" apart from uid "a:b" + topic "c"', () => {
    expect(privateChannel('a', 'b:c')).not.toBe(privateChannel('a:b', 'c'));
    expect(channelOf(targetOf('a', 'b:c'))).not.toBe(channelOf(targetOf('a:b', 'c')));
  });

  it('keeps private channels apart when the uid contains digits and colons', () => {
    // p:<len>:<uid>:<topic> — the length prefix decides where the uid ends.
    const pairs: [string, string][] = [
      ['a', 'b:c'],
      ['a:b', 'c'],
      ['1', 'x'],
      ['1:', 'x'],
      ['3:a', 'b'],
      ['a', '3:a:b'],
      ['x', ':y'],
      ['x:', 'y'],
      ['', 'y'],
    ];
    const names = pairs.map(([u, t]) => privateChannel(u, t));
    expect(new Set(names).size).toBe(pairs.length);
  });

  it('never confuses kinds: topic, user, private and broadcast channels are all distinct', () => {
    const names = [
      topicChannel('x'),
      userChannel('x'),
      privateChannel('x', 'x'),
      BROADCAST_CHANNEL,
      topicChannel('b'),
      topicChannel(''),
      userChannel(''),
      topicChannel('u:x'),
      userChannel('t:x'),
    ];
    expect(new Set(names).size).toBe(names.length);
    // A topic literally named like another kind's channel is still a topic channel.
    expect(topicChannel('u:x')).not.toBe(userChannel('x'));
    expect(topicChannel('b')).not.toBe(BROADCAST_CHANNEL);
  });

  it('is a pure function of its inputs (identical on every node)', () => {
    expect(privateChannel('alice', 'news')).toBe(privateChannel('alice', 'news'));
    expect(topicChannel('news')).toBe(topicChannel('news'));
    expect(userChannel('alice')).toBe(userChannel('alice'));
  });
});
