import type { IpcLink } from './ipc-link.js';
import type { NodeRecord, OnlineUserCount, Presence, PresenceEntry, PresenceEvent, UserConnections, WatchHandlers } from './presence.js';

/**
 * Presence of a `serve --workers` worker without Redis: one store in the primary (ipc-host.ts)
 * holds every worker's entries and node records, so each worker answers for the whole machine,
 * as nodes sharing Redis do. The primary drops a worker's entries and record when it exits.
 */
export class IpcPresence implements Presence {
  private readonly watches = new Map<number, WatchHandlers>();
  private watchIds = 0;

  constructor(private readonly link: IpcLink) {
    link.on('watch', (m) => {
      const w = this.watches.get(m.wid as number);
      if (m.kind === 'lost') w?.lost();
      else w?.event(m.e as PresenceEvent);
    });
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  async close(): Promise<void> {
    await this.call('presence.close', []);
  }

  async add(entry: PresenceEntry): Promise<void> {
    await this.call('presence.add', [entry]);
  }

  async remove(pid: string, cid: string): Promise<void> {
    await this.call('presence.remove', [pid, cid]);
  }

  async refresh(entries: readonly PresenceEntry[], node: NodeRecord): Promise<void> {
    await this.call('presence.refresh', [entries, node]);
  }

  /** Nothing expires in the primary's store: it drops a worker's entries when the worker exits. */
  sweep(): Promise<void> {
    return Promise.resolve();
  }

  listUsers(pid: string, limit: number, after: string | undefined): Promise<{ users: OnlineUserCount[]; total: number }> {
    return this.call('presence.listUsers', [pid, limit, after]) as Promise<{ users: OnlineUserCount[]; total: number }>;
  }

  listConnections(pid: string, limit: number, after: string | undefined): Promise<PresenceEntry[]> {
    return this.call('presence.listConnections', [pid, limit, after]) as Promise<PresenceEntry[]>;
  }

  users(pid: string, uids: readonly string[]): Promise<UserConnections[]> {
    return this.call('presence.users', [pid, uids]) as Promise<UserConnections[]>;
  }

  count(pid: string): Promise<{ users: number; connections: number }> {
    return this.call('presence.count', [pid]) as Promise<{ users: number; connections: number }>;
  }

  sequence(pid: string): Promise<number> {
    return this.call('presence.sequence', [pid]) as Promise<number>;
  }

  async watch(pid: string, handlers: WatchHandlers): Promise<() => void> {
    const wid = ++this.watchIds;
    this.watches.set(wid, handlers);
    try {
      await this.call('presence.watch', [pid, wid]);
    } catch (err) {
      this.watches.delete(wid);
      throw err;
    }
    return () => {
      if (this.watches.delete(wid)) void this.call('presence.unwatch', [wid]).catch(() => {});
    };
  }

  nodes(): Promise<NodeRecord[]> {
    return this.call('presence.nodes', []) as Promise<NodeRecord[]>;
  }

  private call(op: string, args: unknown[]): Promise<unknown> {
    return this.link.request(op, args);
  }
}
