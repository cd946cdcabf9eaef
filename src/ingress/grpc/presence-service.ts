import type { OnlineUsers } from '../../core/online-users.js';
import { SNAPSHOT_CHUNK, WATCH_BUFFER, watchOnlineUsers } from '../../core/presence-watch.js';
import type { ClusterServiceServer } from '../../../gen/pushwire/v1/cluster.js';
import type { OnlineUsersServiceServer, WatchOnlineUsersRequest, WatchOnlineUsersResponse } from '../../../gen/pushwire/v1/presence.js';
import { nodeInfo, onlineUser, userPresence, watchResponse } from '../presence-messages.js';
import { unary, type Deps } from './push-service.js';
import { send, serverStream, type StreamDeps } from './streams.js';

export interface PresenceDeps extends Deps, StreamDeps {
  online: OnlineUsers;
}

/** pushwire.v1.OnlineUsersService. */
export function onlineUsersService(o: PresenceDeps): OnlineUsersServiceServer {
  const { online } = o;
  return {
    listOnlineUsers: unary('ListOnlineUsers', 'ListOnlineUsers', o, async (req, keyPid) => {
      const page = await online.list(online.resolvePid(req.pid, keyPid), req.pageSize, req.pageToken);
      return { users: page.items.map(onlineUser), nextPageToken: page.nextPageToken, totalSize: page.total };
    }),
    getPresence: unary('GetPresence', 'GetPresence', o, async (req, keyPid) => ({
      users: (await online.get(online.resolvePid(req.pid, keyPid), req.uids)).map(userPresence),
    })),
    countOnline: unary('CountOnline', 'CountOnline', o, (req, keyPid) => online.count(online.resolvePid(req.pid, keyPid))),
    watchOnlineUsers: serverStream<WatchOnlineUsersRequest, WatchOnlineUsersResponse>(
      'WatchOnlineUsers',
      'WatchOnlineUsers',
      o,
      async (call, keyPid, signal) => {
        const pid = online.resolvePid(call.request.pid, keyPid);
        o.metrics.presenceWatchers.inc();
        try {
          await watchOnlineUsers(online.presence, pid, (item) => send(call, signal, watchResponse(item)), signal, {
            chunkSize: SNAPSHOT_CHUNK,
            maxBuffered: WATCH_BUFFER,
            onReset: (reason) => o.metrics.presenceWatchResets.inc({ reason }),
          });
        } finally {
          o.metrics.presenceWatchers.dec();
        }
      },
    ),
  };
}

/** pushwire.v1.ClusterService: cluster-wide, so any valid key may call it. */
export function clusterService(o: PresenceDeps): ClusterServiceServer {
  return {
    listNodes: unary('ListNodes', 'ListNodes', o, async () => {
      const nodes = await o.online.nodes();
      const now = Date.now();
      return { nodes: nodes.map((n) => nodeInfo(n, now)) };
    }),
  };
}
