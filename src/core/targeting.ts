/**
 * Which connections a push reaches. Every target maps to exactly one bus channel, and the
 * local registry is keyed by the same channel names, so a node's bus interest is simply
 * the set of channels its own connections hold.
 */
export type Target =
  | { kind: 'topic'; topic: string }
  | { kind: 'private'; uid: string; topic: string }
  | { kind: 'user'; uid: string }
  | { kind: 'broadcast' };

export function targetOf(uid: string, topic: string): Target {
  if (topic !== '' && uid === '') return { kind: 'topic', topic };
  if (topic !== '') return { kind: 'private', uid, topic };
  if (uid !== '') return { kind: 'user', uid };
  return { kind: 'broadcast' };
}

export const BROADCAST_CHANNEL = 'b';

export const topicChannel = (topic: string): string => `t:${topic}`;
export const userChannel = (uid: string): string => `u:${uid}`;
// The uid's length keeps "a" + "b:c" apart from "a:b" + "c".
export const privateChannel = (uid: string, topic: string): string => `p:${uid.length}:${uid}:${topic}`;

export function channelOf(target: Target): string {
  switch (target.kind) {
    case 'topic':
      return topicChannel(target.topic);
    case 'private':
      return privateChannel(target.uid, target.topic);
    case 'user':
      return userChannel(target.uid);
    case 'broadcast':
      return BROADCAST_CHANNEL;
  }
}
