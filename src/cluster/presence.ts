/** One logged-in connection as presence records it. */
export interface PresenceEntry {
  pid: string;
  cid: string;
  uid: string;
  /** Node holding the connection. */
  node: string;
  /** Wall-clock ms when the connection was accepted. */
  connectedAt: number;
}

export interface OnlineUserCount {
  uid: string;
  /** Logged-in connections of the user, cluster-wide. */
  connections: number;
}

export interface UserConnections {
  uid: string;
  /** The user's connections in cid order; empty when offline. */
  connections: PresenceEntry[];
}

/** A join (the user's first connection) or a leave (its last), numbered per project. */
export interface PresenceEvent {
  kind: 'join' | 'leave';
  /** Increases by exactly one per event of the project, cluster-wide. */
  seq: number;
  uid: string;
  cid: string;
  node: string;
  /** When the change was recorded (Redis's clock in a cluster). */
  at: number;
}

/** A node's heartbeat record (ClusterService.ListNodes). */
export interface NodeRecord {
  id: string;
  wsAddress: string;
  httpAddress: string;
  grpcAddress: string;
  version: string;
  startedAt: number;
  connections: number;
  subscriptions: number;
  /** Set by the store when the heartbeat is written. */
  heartbeatAt: number;
}

export interface WatchHandlers {
  event(e: PresenceEvent): void;
  /** Events may have been missed (the event subscription was re-established). */
  lost(): void;
}

/**
 * Who is online, cluster-wide, and which nodes are alive. Writes come from the node that holds
 * the connection; entries and node records carry an expiry that their node refreshes, so a
 * node that dies without cleaning up drops out within the TTL. Nothing here scans the store:
 * every read is bounded by its page, its uids, or the number of projects and nodes.
 */
export interface Presence {
  start(): Promise<void>;
  /** Removes this node's record and closes; entries are removed by their sessions first. */
  close(): Promise<void>;

  add(entry: PresenceEntry): Promise<void>;
  remove(pid: string, cid: string): Promise<void>;
  /**
   * Re-asserts this node's entries (re-adding any the store lost) and heartbeat: the keep-alive,
   * kept to what must reach the store in time (no sweep, no reads).
   */
  refresh(entries: readonly PresenceEntry[], node: NodeRecord): Promise<void>;
  /** Removes whatever expired anywhere (entries and records of dead nodes), emitting the leaves. */
  sweep(): Promise<void>;

  /** Online users in bytewise uid order after `after` (exclusive), at most `limit`; and the total. */
  listUsers(pid: string, limit: number, after: string | undefined): Promise<{ users: OnlineUserCount[]; total: number }>;
  /** Logged-in connections in cid order after `after` (exclusive), at most `limit`. */
  listConnections(pid: string, limit: number, after: string | undefined): Promise<PresenceEntry[]>;
  users(pid: string, uids: readonly string[]): Promise<UserConnections[]>;
  count(pid: string): Promise<{ users: number; connections: number }>;
  /** The project's last event sequence number (0 before any). */
  sequence(pid: string): Promise<number>;
  /** Receives the project's events in order until the returned function is called. */
  watch(pid: string, handlers: WatchHandlers): Promise<() => void>;
  nodes(): Promise<NodeRecord[]>;
}
