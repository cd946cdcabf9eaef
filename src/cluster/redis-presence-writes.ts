import { randomBytes } from 'node:crypto';
import type { PresenceEntry } from './presence.js';

/** Runs one presence script on a project's slot (RedisPresence.run). */
export type RunScript = (script: 'pwApply' | 'pwBeat' | 'pwSync', pid: string, ...args: Array<string | number>) => Promise<unknown>;

/** Entries per SYNC script call: bounded work per Redis round trip. */
const SYNC_CHUNK = 500;

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

/** What this node holds in one project, and its writes not yet sent. */
interface ProjectState {
  entries: Map<string, PresenceEntry>;
  /** The version of the last write sent for the project (undefined: none since it was forgotten). */
  version: string | undefined;
  ops: Array<string | number>;
  waiters: Waiter[];
  /** An APPLY is on its way: queued ops wait for it (batches grow with Redis latency). */
  sending: boolean;
}

/**
 * One node's presence writes to Redis, batched. The adds and removes of one event-loop turn (and
 * all that arrive while the project's previous batch is on its way) go to Redis as one APPLY per
 * project, in the order they were made; the refresh is one BEAT per project (one ZADD in Redis),
 * and only a project whose stored state may differ from the node's (a failed write, a Redis
 * restart or failover, a sweep that took the node for dead) is re-sent whole (SYNC). Versions
 * carry a per-process token, so a restarted node with the same id replaces what it left behind.
 */
export class PresenceWrites {
  private readonly projects = new Map<string, ProjectState>();
  private readonly boot = randomBytes(6).toString('base64url');
  private counter = 0;
  private scheduled = false;
  /** Projects with queued ops, so a turn's send looks at those only, not at every project. */
  private readonly dirty = new Set<string>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /** This node's id: every entry written here is its (a store serves one node or one worker). */
  private node = '';

  constructor(
    private readonly run: RunScript,
    private readonly ttlMs: number,
    /** Called when a project had no entries before a write (it goes into presence:pids). */
    private readonly listed: (pid: string) => Promise<void>,
  ) {}

  add(e: PresenceEntry): Promise<void> {
    this.node = e.node;
    const s = this.state(e.pid);
    s.entries.set(e.cid, e);
    return this.queue(e.pid, s, ['p', e.cid, e.uid, e.connectedAt]);
  }

  remove(pid: string, cid: string): Promise<void> {
    const s = this.state(pid);
    s.entries.delete(cid);
    return this.queue(pid, s, ['r', cid]);
  }

  /**
   * `entries` is the node's complete view at this instant: a project whose remembered entries
   * differ is re-sent whole, every other one only has its expiry pushed back.
   */
  async refresh(entries: readonly PresenceEntry[], node: string): Promise<void> {
    this.node = node;
    const given = new Map<string, Map<string, PresenceEntry>>();
    for (const e of entries) {
      let m = given.get(e.pid);
      if (m === undefined) given.set(e.pid, (m = new Map()));
      m.set(e.cid, e);
    }
    const work: Promise<void>[] = [];
    for (const pid of new Set([...given.keys(), ...this.projects.keys()])) {
      const s = this.state(pid);
      const want = given.get(pid) ?? new Map<string, PresenceEntry>();
      const same = want.size === s.entries.size && [...want.keys()].every((cid) => s.entries.has(cid));
      if (!same) s.entries = want;
      work.push(same ? this.beat(pid, s) : this.sync(pid, s));
    }
    await Promise.all(work);
  }

  /** Sends what is queued and waits for every write on its way. */
  async close(): Promise<void> {
    for (const [pid, s] of this.projects) if (s.ops.length > 0) this.send(pid, s);
    await Promise.allSettled([...this.inFlight]);
  }

  private state(pid: string): ProjectState {
    let s = this.projects.get(pid);
    if (s === undefined) this.projects.set(pid, (s = { entries: new Map(), version: undefined, ops: [], waiters: [], sending: false }));
    return s;
  }

  private queue(pid: string, s: ProjectState, op: Array<string | number>): Promise<void> {
    s.ops.push(...op);
    const done = new Promise<void>((resolve, reject) => s.waiters.push({ resolve, reject }));
    this.dirty.add(pid);
    if (!s.sending) this.schedule();
    return done;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.sendQueued());
  }

  /** Sends every project with queued ops; one still sending keeps its ops for when its APPLY is answered. */
  private sendQueued(): void {
    this.scheduled = false;
    for (const pid of this.dirty) {
      const s = this.projects.get(pid);
      if (s === undefined || s.ops.length === 0) this.dirty.delete(pid);
      else if (!s.sending) this.send(pid, s);
    }
  }

  /** Sends the queued ops of a project now (before a BEAT or SYNC, so these count what they cover). */
  private send(pid: string, s: ProjectState): void {
    const { ops, waiters } = s;
    this.dirty.delete(pid);
    s.ops = [];
    s.waiters = [];
    // Removals before the node is known (no add, no refresh yet) touch no node's expiry.
    const version = this.nextVersion();
    if (this.node !== '') s.version = version;
    s.sending = true;
    const p = this.track(this.run('pwApply', pid, this.ttlMs, this.node, version, ...ops))
      .then((wasEmpty) => (wasEmpty === 1 ? this.listed(pid) : undefined))
      .then(
        () => waiters.forEach((w) => w.resolve()),
        (err: unknown) => waiters.forEach((w) => w.reject(err)),
      )
      .finally(() => {
        s.sending = false;
        if (s.ops.length > 0) this.schedule();
      });
    void p;
  }

  private async beat(pid: string, s: ProjectState): Promise<void> {
    if (s.ops.length > 0) this.send(pid, s);
    if (s.version === undefined) {
      // Nothing sent since the project was forgotten: it is empty in Redis as far as this node knows.
      if (s.entries.size === 0) return this.forget(pid, s, undefined);
      return this.sync(pid, s);
    }
    const sent = s.version;
    const answer = await this.track(this.run('pwBeat', pid, this.ttlMs, this.node, sent, s.entries.size));
    if (answer === 1) return;
    if (answer === 2) return this.forget(pid, s, sent);
    // The version moved on meanwhile: the newer writes carry their own state, and the next refresh checks again.
    if (s.version === sent) await this.sync(pid, s);
  }

  /** Replaces the node's stored entries of the project with its view, in calls sent in one turn. */
  private async sync(pid: string, s: ProjectState): Promise<void> {
    if (s.ops.length > 0) this.send(pid, s);
    const list = [...s.entries.values()];
    const version = this.nextVersion();
    s.version = version;
    const calls: Promise<unknown>[] = [];
    const chunks = Math.max(1, Math.ceil(list.length / SYNC_CHUNK));
    for (let c = 0; c < chunks; c++) {
      const args = list.slice(c * SYNC_CHUNK, (c + 1) * SYNC_CHUNK).flatMap((e) => [e.cid, e.uid, e.connectedAt]);
      calls.push(this.track(this.run('pwSync', pid, this.ttlMs, this.node, version, c === 0 ? 1 : 0, c === chunks - 1 ? 1 : 0, ...args)));
    }
    const answers = await Promise.all(calls);
    if (answers.includes(1)) await this.listed(pid);
    if (list.length === 0) this.forget(pid, s, version);
  }

  /** The project holds nothing of this node, here and in Redis: its state goes (unless written meanwhile). */
  private forget(pid: string, s: ProjectState, version: string | undefined): void {
    if (s.version === version && s.entries.size === 0 && s.ops.length === 0 && !s.sending && this.projects.get(pid) === s) this.projects.delete(pid);
  }

  private nextVersion(): string {
    return `${this.boot}.${++this.counter}`;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p)).catch(() => {});
    return p;
  }
}
