import type { NodeRecord, OnlineUserCount, Presence, PresenceEntry, UserConnections, WatchHandlers } from './presence.js';
import { SortedStrings } from './sorted-strings.js';

/** One project's presence: the in-memory twin of the Redis model (see redis-presence.ts). */
class ProjectPresence {
  readonly conns = new Map<string, PresenceEntry>();
  readonly cids = new SortedStrings();
  readonly users = new SortedStrings();
  readonly byUser = new Map<string, Set<string>>();
  readonly watchers = new Set<WatchHandlers>();
  seq = 0;
}

/**
 * Presence of a single node without Redis: the same semantics, in memory. Nothing expires,
 * since the only node cannot die without taking its presence with it.
 */
export class MemoryPresence implements Presence {
  private readonly projects = new Map<string, ProjectPresence>();
  private self: NodeRecord | undefined;

  start(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.self = undefined;
    return Promise.resolve();
  }

  add(entry: PresenceEntry): Promise<void> {
    const p = this.project(entry.pid);
    const cur = p.conns.get(entry.cid);
    if (cur?.uid === entry.uid) return Promise.resolve();
    if (cur !== undefined) this.drop(p, cur);
    p.conns.set(entry.cid, entry);
    p.cids.add(entry.cid);
    let set = p.byUser.get(entry.uid);
    if (set === undefined) {
      set = new Set();
      p.byUser.set(entry.uid, set);
    }
    set.add(entry.cid);
    if (set.size === 1) {
      p.users.add(entry.uid);
      this.emit(p, 'join', entry);
    }
    return Promise.resolve();
  }

  remove(pid: string, cid: string): Promise<void> {
    const p = this.projects.get(pid);
    const cur = p?.conns.get(cid);
    if (p !== undefined && cur !== undefined) this.drop(p, cur);
    return Promise.resolve();
  }

  refresh(_entries: readonly PresenceEntry[], node: NodeRecord): Promise<void> {
    this.self = { ...node, heartbeatAt: Date.now() };
    return Promise.resolve();
  }

  /** Nothing expires here: a node's own entries leave with their sessions. */
  sweep(): Promise<void> {
    return Promise.resolve();
  }

  listUsers(pid: string, limit: number, after: string | undefined): Promise<{ users: OnlineUserCount[]; total: number }> {
    const p = this.projects.get(pid);
    if (p === undefined) return Promise.resolve({ users: [], total: 0 });
    const users = p.users.range(after, limit).map((uid) => ({ uid, connections: p.byUser.get(uid)!.size }));
    return Promise.resolve({ users, total: p.users.size });
  }

  listConnections(pid: string, limit: number, after: string | undefined): Promise<PresenceEntry[]> {
    const p = this.projects.get(pid);
    return Promise.resolve(p === undefined ? [] : p.cids.range(after, limit).map((cid) => p.conns.get(cid)!));
  }

  users(pid: string, uids: readonly string[]): Promise<UserConnections[]> {
    const p = this.projects.get(pid);
    return Promise.resolve(
      uids.map((uid) => {
        const cids = [...(p?.byUser.get(uid) ?? [])].sort();
        return { uid, connections: cids.map((cid) => p!.conns.get(cid)!) };
      }),
    );
  }

  count(pid: string): Promise<{ users: number; connections: number }> {
    const p = this.projects.get(pid);
    return Promise.resolve({ users: p?.users.size ?? 0, connections: p?.conns.size ?? 0 });
  }

  sequence(pid: string): Promise<number> {
    return Promise.resolve(this.projects.get(pid)?.seq ?? 0);
  }

  watch(pid: string, handlers: WatchHandlers): Promise<() => void> {
    const p = this.project(pid);
    p.watchers.add(handlers);
    return Promise.resolve(() => {
      p.watchers.delete(handlers);
    });
  }

  nodes(): Promise<NodeRecord[]> {
    return Promise.resolve(this.self === undefined ? [] : [this.self]);
  }

  private project(pid: string): ProjectPresence {
    let p = this.projects.get(pid);
    if (p === undefined) {
      p = new ProjectPresence();
      this.projects.set(pid, p);
    }
    return p;
  }

  private drop(p: ProjectPresence, entry: PresenceEntry): void {
    p.conns.delete(entry.cid);
    p.cids.delete(entry.cid);
    const set = p.byUser.get(entry.uid);
    set?.delete(entry.cid);
    if (set !== undefined && set.size === 0) {
      p.byUser.delete(entry.uid);
      p.users.delete(entry.uid);
      this.emit(p, 'leave', entry);
    }
  }

  private emit(p: ProjectPresence, kind: 'join' | 'leave', e: PresenceEntry): void {
    const event = { kind, seq: ++p.seq, uid: e.uid, cid: e.cid, node: e.node, at: Date.now() };
    for (const w of p.watchers) w.event(event);
  }
}
