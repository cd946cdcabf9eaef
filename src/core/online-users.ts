import type { NodeRecord, OnlineUserCount, Presence, PresenceEntry, UserConnections } from '../cluster/presence.js';
import { Code, PushwireError, invalidArgument } from './errors.js';
import { uidProblem } from './names.js';
import { decodePageToken, encodePageToken, type PageKind } from './page-token.js';
import type { ProjectRegistry } from './projects/registry.js';

/** Page size when the request gives none. */
export const DEFAULT_PAGE_SIZE = 100;
/** Largest page; larger requests get this many (AIP-158). */
export const MAX_PAGE_SIZE = 1000;
/** Most uids one GetPresence call may ask about. */
export const MAX_PRESENCE_UIDS = 1000;

export interface Page<T> {
  items: T[];
  /** Empty on the last page. */
  nextPageToken: string;
}

/**
 * The presence use cases behind OnlineUsersService (gRPC and REST): project resolution,
 * validation, paging, and store failures as UNAVAILABLE.
 */
export class OnlineUsers {
  constructor(
    readonly presence: Presence,
    private readonly projects: ProjectRegistry,
  ) {}

  /** The project a call is about: the one asked for, checked against the caller's key. */
  resolvePid(requested: string, keyPid: string | undefined): string {
    return this.projects.resolvePid(requested, keyPid);
  }

  async list(pid: string, pageSize: number, pageToken: string): Promise<Page<OnlineUserCount> & { total: number }> {
    const limit = pageSizeOf(pageSize);
    const after = decodePageToken(pageToken, pid, 'users');
    const { users, total } = await store(() => this.presence.listUsers(pid, limit + 1, after));
    return { ...page(pid, 'users', users, limit, (u) => u.uid), total };
  }

  /**
   * Pages through a project's logged-in connections (cid, uid, node), cluster-wide, in cid
   * order; for periodic online reports (ws-cluster's server connections).
   */
  async connections(pid: string, pageSize: number, pageToken: string): Promise<Page<PresenceEntry>> {
    const limit = pageSizeOf(pageSize);
    const after = decodePageToken(pageToken, pid, 'connections');
    const entries = await store(() => this.presence.listConnections(pid, limit + 1, after));
    return page(pid, 'connections', entries, limit, (e) => e.cid);
  }

  async get(pid: string, uids: readonly string[]): Promise<UserConnections[]> {
    if (uids.length > MAX_PRESENCE_UIDS) throw invalidArgument(`uids holds at most ${MAX_PRESENCE_UIDS} entries`);
    uids.forEach((uid, i) => {
      const why = uidProblem(uid);
      if (why) throw invalidArgument(`uids[${i}]: ${why}`);
    });
    return store(() => this.presence.users(pid, uids));
  }

  count(pid: string): Promise<{ users: number; connections: number }> {
    return store(() => this.presence.count(pid));
  }

  /** Live nodes, by id. */
  async nodes(): Promise<NodeRecord[]> {
    const nodes = await store(() => this.presence.nodes());
    return nodes.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}

function pageSizeOf(pageSize: number): number {
  if (!Number.isInteger(pageSize) || pageSize < 0) throw invalidArgument(`page_size must be between 0 and ${MAX_PAGE_SIZE}, got ${pageSize}`);
  return pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(pageSize, MAX_PAGE_SIZE);
}

/** `items` were read with limit + 1: one more than the page means another page follows. */
function page<T>(pid: string, kind: PageKind, items: T[], limit: number, key: (item: T) => string): Page<T> {
  if (items.length <= limit) return { items, nextPageToken: '' };
  const shown = items.slice(0, limit);
  return { items: shown, nextPageToken: encodePageToken(pid, kind, key(shown[limit - 1]!)) };
}

/** A presence store failure (Redis down or slow) is UNAVAILABLE: safe to retry. */
export async function store<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof PushwireError) throw err;
    throw new PushwireError(Code.UNAVAILABLE, `presence is unavailable: ${(err as Error).message}`);
  }
}
