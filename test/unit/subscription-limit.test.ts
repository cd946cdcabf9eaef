import { describe, expect, it } from 'vitest';
import { Session } from '../../src/core/session.js';
import { overSubscriptionLimit } from '../../src/core/subscription-limit.js';
import { broadcastChannel, topicChannel, userChannel } from '../../src/core/targeting.js';

describe('overSubscriptionLimit', () => {
  const session = (uid?: string, topics: string[] = []): Session => {
    const s = new Session('c1', 'p', { deliver: () => {} });
    s.uid = uid;
    s.channels.add(broadcastChannel('p'));
    if (uid !== undefined) s.channels.add(userChannel('p', uid));
    for (const t of topics) s.channels.add(topicChannel('p', t));
    return s;
  };

  it('counts topics only: the project broadcast and the user channel are free', () => {
    expect(overSubscriptionLimit(session(undefined, ['a']), topicChannel('p', 'b'), 2)).toBe(false);
    expect(overSubscriptionLimit(session(undefined, ['a', 'b']), topicChannel('p', 'c'), 2)).toBe(true);
    expect(overSubscriptionLimit(session('u', ['a']), topicChannel('p', 'b'), 2)).toBe(false);
    expect(overSubscriptionLimit(session('u', ['a', 'b']), topicChannel('p', 'c'), 2)).toBe(true);
  });

  it('a channel already held is never over the limit', () => {
    expect(overSubscriptionLimit(session('u', ['a', 'b']), topicChannel('p', 'a'), 2)).toBe(false);
  });
});
