/**
 * Which connections a push reaches. Every target maps to exactly one bus channel, and the
 * local registry is keyed by the same channel names, so a node's bus interest is simply
 * the set of channels its own connections hold. Channels are scoped to a project: no push
 * of one project can name a channel of another.
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

/** The project of a node run without a projects file; also the project of v1 envelopes. */
export const DEFAULT_PID = 'default';

// The default project's channels carry no prefix, so they keep the names nodes used before
// projects existed (a rolling upgrade keeps interoperating). A pid never contains "/".
const scope = (pid: string): string => (pid === DEFAULT_PID ? '' : `${pid}/`);

export const broadcastChannel = (pid: string): string => `${scope(pid)}b`;
export const topicChannel = (pid: string, topic: string): string => `${scope(pid)}t:${topic}`;
export const userChannel = (pid: string, uid: string): string => `${scope(pid)}u:${uid}`;
// The uid's length keeps "a" + "b:c" apart from "a:b" + "c".
export const privateChannel = (pid: string, uid: string, topic: string): string =>
  `${scope(pid)}p:${uid.length}:${uid}:${topic}`;

export function channelOf(pid: string, target: Target): string {
  switch (target.kind) {
    case 'topic':
      return topicChannel(pid, target.topic);
    case 'private':
      return privateChannel(pid, target.uid, target.topic);
    case 'user':
      return userChannel(pid, target.uid);
    case 'broadcast':
      return broadcastChannel(pid);
  }
}

/** Whether a channel belongs to the session's identity (user or private topic), for logout. */
export function isIdentityChannel(pid: string, channel: string): boolean {
  const rest = channel.slice(scope(pid).length);
  return rest.startsWith('u:') || rest.startsWith('p:');
}

/**
 * A node's own channel, for pushes aimed at connection ids: a cid names its node, so such a
 * push goes to that node only. Not project-scoped (cids are unique cluster-wide); the
 * receiving hub still checks the push's project against each connection's.
 */
export const nodeChannel = (nodeId: string): string => `n:${nodeId}`;

/**
 * cids are `<node-id>-<24 random base-36 digits>` (cids.ts); node ids may contain "-", the random part
 * never does. The older `<node-id>-<boot>-<seq>` form still parses (as node id `<node-id>-<boot>`
 * it would route wrongly, so it is matched first).
 */
const OLD_CID = /^([A-Za-z0-9_.-]{1,64})-[0-9a-z]{1,16}-[0-9a-z]{1,16}$/;
const CID = /^([A-Za-z0-9_.-]{1,64})-[0-9a-z]{24}$/;

/** The node a cid belongs to, or undefined when the string is not a cid. */
export function nodeOfCid(cid: string): string | undefined {
  return (CID.exec(cid) ?? OLD_CID.exec(cid))?.[1];
}

/**
 * Bus channels a targeted push (uids/cids/tags) is published on: the most selective list
 * decides (cids: their nodes; else uids: their user channels; else tags: their topic
 * channels). The receiving hub applies every list.
 */
export function selectorChannels(pid: string, select: { uids: string[]; cids: string[]; tags: string[] }): string[] {
  if (select.cids.length > 0) return [...new Set(select.cids.map((c) => nodeChannel(nodeOfCid(c) ?? '')))];
  if (select.uids.length > 0) return [...new Set(select.uids.map((u) => userChannel(pid, u)))];
  return [...new Set(select.tags.map((t) => topicChannel(pid, t)))];
}

