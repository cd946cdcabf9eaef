import type { Session } from './session.js';
import { userChannel } from './targeting.js';

/**
 * Whether joining `channel` would take `session` over `max` topics (--max-subscriptions). One
 * rule for every WebSocket protocol (legacy codes 1/5, v1 subscribe), so a client cannot
 * escape the limit by switching protocol. The session's channels are its topics plus the
 * project broadcast and, logged in, its user channel; those two do not count. A channel the
 * session already holds never counts as a new one.
 */
export function overSubscriptionLimit(session: Session, channel: string, max: number): boolean {
  if (session.channels.has(channel)) return false;
  const fixed = 1 + (session.uid !== undefined && session.channels.has(userChannel(session.pid, session.uid)) ? 1 : 0);
  return session.channels.size - fixed >= max;
}

/** The detail sent with 30007 by both protocols. */
export function subscriptionLimitDetail(max: number): string {
  return `a connection may hold at most ${max} topics`;
}
