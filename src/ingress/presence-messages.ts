import type { NodeRecord, OnlineUserCount, UserConnections } from '../cluster/presence.js';
import type { Message } from '../core/message.js';
import type { WatchItem } from '../core/presence-watch.js';
import type { NodeInfo } from '../../gen/pushwire/v1/cluster.js';
import type { OnlineUser, UserPresence, WatchOnlineUsersResponse } from '../../gen/pushwire/v1/presence.js';
import type { SubscribeResponse } from '../../gen/pushwire/v1/subscribe.js';

/** Core results as the generated message types, shared by gRPC and the REST bridge (toJSON). */

export const onlineUser = (u: OnlineUserCount): OnlineUser => ({ uid: u.uid, connections: u.connections });

export const userPresence = (u: UserConnections): UserPresence => ({
  uid: u.uid,
  online: u.connections.length > 0,
  connectionCount: u.connections.length,
  connections: u.connections.map((c) => ({ cid: c.cid, nodeId: c.node, connectedTimeMs: String(c.connectedAt) })),
});

export function watchResponse(item: WatchItem): WatchOnlineUsersResponse {
  switch (item.kind) {
    case 'snapshot':
      return { snapshot: { users: item.users.map(onlineUser), last: item.last, sequence: String(item.seq) } };
    case 'reset':
      return { reset: { reason: item.reason } };
    default: {
      const e = item.event;
      const change = { uid: e.uid, cid: e.cid, nodeId: e.node, timeMs: String(e.at), sequence: String(e.seq) };
      return item.kind === 'join' ? { joined: change } : { left: change };
    }
  }
}

export const nodeInfo = (n: NodeRecord, now: number): NodeInfo => ({
  nodeId: n.id,
  wsAddress: n.wsAddress,
  httpAddress: n.httpAddress,
  grpcAddress: n.grpcAddress,
  version: n.version,
  startedTimeMs: String(n.startedAt),
  uptimeMs: String(Math.max(0, now - n.startedAt)),
  connections: n.connections,
  subscriptions: n.subscriptions,
  heartbeatTimeMs: String(n.heartbeatAt),
});

/** One object per message per node (Outbound caches it); grpc-js serializes it per stream. */
export const subscribeResponse = (m: Message): SubscribeResponse => ({
  topic: m.topic,
  uid: m.uid,
  data: m.data,
  messageId: m.id,
  timeMs: String(Math.round(m.publishedAt)),
  offset: String(m.offset ?? 0),
  epoch: m.epoch ?? '',
});
