import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PID,
  broadcastChannel,
  channelOf,
  isIdentityChannel,
  nodeChannel,
  nodeOfCid,
  selectorChannels,
  privateChannel,
  targetOf,
  topicChannel,
  userChannel,
} from '../../src/core/targeting.js';

const P = DEFAULT_PID;

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
    expect(channelOf(P, targetOf('', 'news'))).toBe(topicChannel(P, 'news'));
    expect(channelOf(P, targetOf('alice', 'news'))).toBe(privateChannel(P, 'alice', 'news'));
    expect(channelOf(P, targetOf('alice', ''))).toBe(userChannel(P, 'alice'));
    expect(channelOf(P, targetOf('', ''))).toBe(broadcastChannel(P));
  });

  it('keeps uid "a" + topic "b:c" apart from uid "a:b" + topic "c"', () => {
    expect(privateChannel(P, 'a', 'b:c')).not.toBe(privateChannel(P, 'a:b', 'c'));
    expect(channelOf(P, targetOf('a', 'b:c'))).not.toBe(channelOf(P, targetOf('a:b', 'c')));
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
    const names = pairs.map(([u, t]) => privateChannel(P, u, t));
    expect(new Set(names).size).toBe(pairs.length);
  });

  it('never confuses kinds: topic, user, private and broadcast channels are all distinct', () => {
    const names = [
      topicChannel(P, 'x'),
      userChannel(P, 'x'),
      privateChannel(P, 'x', 'x'),
      broadcastChannel(P),
      topicChannel(P, 'b'),
      topicChannel(P, ''),
      userChannel(P, ''),
      topicChannel(P, 'u:x'),
      userChannel(P, 't:x'),
    ];
    expect(new Set(names).size).toBe(names.length);
    // A topic literally named like another kind's channel is still a topic channel.
    expect(topicChannel(P, 'u:x')).not.toBe(userChannel(P, 'x'));
    expect(topicChannel(P, 'b')).not.toBe(broadcastChannel(P));
  });

  it('is a pure function of its inputs (identical on every node)', () => {
    expect(privateChannel(P, 'alice', 'news')).toBe(privateChannel(P, 'alice', 'news'));
    expect(topicChannel(P, 'news')).toBe(topicChannel(P, 'news'));
    expect(userChannel(P, 'alice')).toBe(userChannel(P, 'alice'));
  });
});

describe('project scoping', () => {
  it("keeps the default project's channel names unprefixed (as before projects existed)", () => {
    expect(topicChannel(DEFAULT_PID, 'news')).toBe('t:news');
    expect(userChannel(DEFAULT_PID, 'alice')).toBe('u:alice');
    expect(privateChannel(DEFAULT_PID, 'alice', 'n')).toBe('p:5:alice:n');
    expect(broadcastChannel(DEFAULT_PID)).toBe('b');
  });

  it('gives every other project its own channels for the same names', () => {
    for (const [a, b] of [
      [topicChannel('shop', 'news'), topicChannel('blog', 'news')],
      [userChannel('shop', 'alice'), userChannel('blog', 'alice')],
      [privateChannel('shop', 'alice', 'n'), privateChannel('blog', 'alice', 'n')],
      [broadcastChannel('shop'), broadcastChannel('blog')],
      [topicChannel('shop', 'news'), topicChannel(DEFAULT_PID, 'news')],
    ]) {
      expect(a).not.toBe(b);
    }
    expect(topicChannel('shop', 'news')).toBe('shop/t:news');
    // A topic cannot reach into another project: "/" is not allowed in a pid.
    expect(topicChannel(DEFAULT_PID, 'shop/t:news')).not.toBe(topicChannel('shop', 'news'));
  });

  it('recognises identity (user, private) channels within a project, not topics that look like them', () => {
    expect(isIdentityChannel('shop', userChannel('shop', 'a'))).toBe(true);
    expect(isIdentityChannel('shop', privateChannel('shop', 'a', 't'))).toBe(true);
    expect(isIdentityChannel('shop', topicChannel('shop', 'u:a'))).toBe(false);
    expect(isIdentityChannel('shop', broadcastChannel('shop'))).toBe(false);
    expect(isIdentityChannel(DEFAULT_PID, userChannel(DEFAULT_PID, 'a'))).toBe(true);
  });
});

describe('targeted pushes: cids and channel choice', () => {
  it('reads the node id out of a cid, node ids with "-" and "." included', () => {
    expect(nodeOfCid('3f9c2a1b-mwt29ic9-1f')).toBe('3f9c2a1b');
    expect(nodeOfCid('node-a.eu-mwt29ic9-2')).toBe('node-a.eu');
    // The current form: 24 random base-36 digits after the node id.
    expect(nodeOfCid('3f9c2a1b-0k2r9x1m4q8z7w3e5t6y1u2i')).toBe('3f9c2a1b');
    expect(nodeOfCid('node-a.eu-0k2r9x1m4q8z7w3e5t6y1u2i')).toBe('node-a.eu');
    for (const bad of ['', 'abc', 'a-b', 'a--1', 'a-B-1', 'bad!-x-1']) expect(nodeOfCid(bad), bad).toBeUndefined();
  });

  it('routes by cids (their nodes), else uids, else tags, without repeats', () => {
    const sel = (uids: string[], cids: string[], tags: string[]) => selectorChannels('shop', { uids, cids, tags });
    expect(sel(['u'], ['a-x-1', 'a-x-2', 'b-x-1'], ['t'])).toEqual([nodeChannel('a'), nodeChannel('b')]);
    expect(sel(['u1', 'u2', 'u1'], [], ['t'])).toEqual([userChannel('shop', 'u1'), userChannel('shop', 'u2')]);
    expect(sel([], [], ['t1', 't2'])).toEqual([topicChannel('shop', 't1'), topicChannel('shop', 't2')]);
  });
});

