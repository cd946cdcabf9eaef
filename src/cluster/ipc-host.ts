import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { wrapPositioned, type AppendGroup, type AppendOptions, type AppendResult, type Position, type RangeQuery } from './bus.js';
import { MemoryHistory } from './memory-history.js';
import type { Logger } from '../observability/logger.js';
import type { ConsumerEntry } from './consumers.js';
import { asBuffer } from './ipc-bus.js';
import type { IpcMessage } from './ipc-link.js';
import { MemoryConsumers } from './memory-consumers.js';
import { MemoryPresence } from './memory-presence.js';
import { MemoryChannelPresence } from './memory-channel-presence.js';
import type { ChannelMember } from './channel-presence.js';
import type { NodeRecord, PresenceEntry } from './presence.js';

/** One worker as the primary sees it. */
export interface HostedWorker {
  readonly index: number;
  readonly nodeId: string;
  send(message: IpcMessage): void;
}

/** How long /metrics waits for each worker's registry before answering without it. */
const COLLECT_TIMEOUT_MS = 2000;

interface WorkerState {
  subscriptions: Set<string>;
  /** `pid \n cid` of the presence entries it added and did not remove. */
  entries: Set<string>;
  /**
   * `channel \n client` of the channel presence members it added and did not remove, with the
   * leave frame owed to the channel when the worker exits without removing them (joinLeave).
   */
  members: Map<string, Buffer | null>;
  consumers: Map<string, ConsumerEntry>;
  watches: Map<number, () => void>;
  outbox: Array<[string, Buffer]>;
}

/** The memory store announces nothing itself (detach does): it needs no frame heads. */
const NO_HEADS = { join: Buffer.alloc(0), leave: Buffer.alloc(0) };

type Metrics = MetricObjectWithValues<MetricValue<string>>[];

/**
 * The primary's side of `serve --workers`: what Redis is to separate nodes, for the workers of
 * one machine run without --redis. It routes bus messages to the workers subscribed to their
 * channel (a turn's messages to one worker in one IPC message, in publish order), claims
 * idempotency keys, and hosts the one presence store, channel presence store and consumer directory. With --redis it is
 * used for /metrics only. A worker that exits leaves nothing behind: its subscriptions, presence
 * entries, channel presence members, node record, consumer registrations and watches go with it.
 */
export class IpcHost {
  private readonly workers = new Map<HostedWorker, WorkerState>();
  private readonly routes = new Map<string, Set<HostedWorker>>();
  private readonly claims = new Map<string, { value: string; expires: number }>();
  private readonly history = new MemoryHistory();
  private readonly presence = new MemoryPresence();
  private readonly channelPresence = new MemoryChannelPresence();
  private readonly records = new Map<string, NodeRecord>();
  private readonly consumers: MemoryConsumers;
  private readonly collecting = new Map<number, (metrics: Metrics | undefined) => void>();
  private collectIds = 0;
  private sweeps = 0;
  private flushing = false;

  constructor(
    private readonly logger: Logger,
    /** The bus channel a node hears (the core's naming), where consumer frames go. */
    nodeChannel: (node: string) => string,
  ) {
    this.consumers = new MemoryConsumers({ publish: (c, p) => Promise.resolve(this.route(c, p)) }, nodeChannel);
  }

  attach(w: HostedWorker): void {
    this.workers.set(w, { subscriptions: new Set(), entries: new Set(), members: new Map(), consumers: new Map(), watches: new Map(), outbox: [] });
  }

  /** The worker exited: everything it held in the shared state goes. */
  detach(w: HostedWorker): void {
    const s = this.workers.get(w);
    if (s === undefined) return;
    this.workers.delete(w);
    for (const c of s.subscriptions) this.unsubscribe(w, c);
    for (const key of s.entries) {
      const sep = key.indexOf('\n');
      void this.presence.remove(key.slice(0, sep), key.slice(sep + 1));
    }
    // A worker that exits cleanly removed its members (and published their leaves) first; what
    // is left belonged to a crashed one. Its subscriptions are gone already, so the leaves reach
    // the other workers' subscribers only, once: a worker is detached once.
    let leaves = 0;
    for (const [key, leave] of s.members) {
      const sep = key.indexOf('\n');
      const channel = key.slice(0, sep);
      void this.channelPresence.remove(channel, key.slice(sep + 1));
      if (leave !== null) {
        this.route(channel, leave);
        leaves++;
      }
    }
    if (s.members.size > 0) this.logger.info({ worker: w.index, members: s.members.size, leaves }, "dropped an exited worker's channel members");
    for (const e of s.consumers.values()) void this.consumers.unregister(e);
    for (const unwatch of s.watches.values()) unwatch();
    this.records.delete(w.nodeId);
  }

  handle(w: HostedWorker, m: IpcMessage): void {
    const s = this.workers.get(w);
    if (s === undefined) return;
    switch (m.pw) {
      case 'pubs':
        for (const [c, p] of m.list as Array<[string, Uint8Array]>) this.route(c, asBuffer(p));
        return;
      case 'sub':
        s.subscriptions.add(m.c as string);
        let set = this.routes.get(m.c as string);
        if (set === undefined) this.routes.set(m.c as string, (set = new Set()));
        set.add(w);
        return;
      case 'unsub':
        s.subscriptions.delete(m.c as string);
        this.unsubscribe(w, m.c as string);
        return;
      case 'collected':
        this.collecting.get(m.id as number)?.(m.metrics as Metrics);
        return;
      case 'req':
        this.answer(w, s, m.id as number, m.op as string, m.args as unknown[]);
        return;
    }
  }

  private answer(w: HostedWorker, s: WorkerState, id: number, op: string, args: unknown[]): void {
    let result: Promise<unknown>;
    try {
      result = Promise.resolve(this.call(w, s, op, args));
    } catch (err) {
      result = Promise.reject(err as Error);
    }
    result.then(
      (value) => w.send({ pw: 'res', id, value: value ?? null }),
      (err: unknown) => {
        this.logger.warn({ err, op }, 'workers primary: request failed');
        w.send({ pw: 'res', id, error: (err as Error).message ?? String(err) });
      },
    );
  }

  private call(w: HostedWorker, s: WorkerState, op: string, a: unknown[]): unknown {
    switch (op) {
      case 'publishPositioned':
        return this.publishPositioned(a[0] as string, asBuffer(a[1] as Uint8Array), a[2] as AppendOptions);
      case 'publishPositionedMany':
        return this.publishPositionedMany(a[0] as AppendGroup[]);
      case 'readHistory':
        return this.history.read(a[0] as string, a[1] as RangeQuery);
      case 'removeHistory':
        return this.history.remove(a[0] as string);
      case 'publishOnce':
        return this.publishOnce(a[0] as string, asBuffer(a[1] as Uint8Array), a[2] as { key: string; value: string; ttlMs: number });
      case 'metrics':
        return this.metrics();
      case 'presence.add': {
        const e = a[0] as PresenceEntry;
        s.entries.add(`${e.pid}\n${e.cid}`);
        return this.presence.add(e);
      }
      case 'presence.remove':
        s.entries.delete(`${a[0] as string}\n${a[1] as string}`);
        return this.presence.remove(a[0] as string, a[1] as string);
      case 'presence.refresh': {
        const node = a[1] as NodeRecord;
        this.records.set(w.nodeId, { ...node, heartbeatAt: Date.now() });
        return undefined;
      }
      case 'presence.close':
        this.records.delete(w.nodeId);
        return undefined;
      case 'presence.listUsers':
        return this.presence.listUsers(a[0] as string, a[1] as number, a[2] as string | undefined);
      case 'presence.listConnections':
        return this.presence.listConnections(a[0] as string, a[1] as number, a[2] as string | undefined);
      case 'presence.users':
        return this.presence.users(a[0] as string, a[1] as string[]);
      case 'presence.count':
        return this.presence.count(a[0] as string);
      case 'presence.sequence':
        return this.presence.sequence(a[0] as string);
      case 'presence.nodes':
        return [...this.records.values()].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
      case 'presence.watch': {
        const wid = a[1] as number;
        return this.presence
          .watch(a[0] as string, {
            event: (e) => w.send({ pw: 'watch', wid, kind: 'event', e }),
            lost: () => w.send({ pw: 'watch', wid, kind: 'lost' }),
          })
          .then((unwatch) => {
            s.watches.set(wid, unwatch);
          });
      }
      case 'presence.unwatch':
        s.watches.get(a[0] as number)?.();
        s.watches.delete(a[0] as number);
        return undefined;
      case 'chanPresence.add': {
        const member = a[1] as ChannelMember;
        const leave = a[2] as Uint8Array | null | undefined;
        s.members.set(`${a[0] as string}\n${member.client}`, leave == null ? null : asBuffer(leave));
        return this.channelPresence.add({ channel: a[0] as string, member, heads: NO_HEADS, joinLeave: false });
      }
      case 'chanPresence.remove':
        s.members.delete(`${a[0] as string}\n${a[1] as string}`);
        return this.channelPresence.remove(a[0] as string, a[1] as string);
      case 'chanPresence.list':
        return this.channelPresence.list(a[0] as string, NO_HEADS);
      case 'consumers.register': {
        for (const e of a[0] as ConsumerEntry[]) s.consumers.set(`${e.pid}\n${e.group}\n${e.id}`, e);
        return this.consumers.register(a[0] as ConsumerEntry[], a[1] as number);
      }
      case 'consumers.unregister': {
        const e = a[0] as ConsumerEntry;
        s.consumers.delete(`${e.pid}\n${e.group}\n${e.id}`);
        return this.consumers.unregister(e);
      }
      case 'consumers.dispatch':
        return this.consumers.dispatch(a[0] as string, asBuffer(a[1] as Uint8Array), a[2] as number | undefined, a[3] as string | undefined);
      default:
        throw new Error(`unknown request "${op}"`);
    }
  }

  /** History for the workers: assigned, stored and routed in one step here, as Redis's script does. */
  private publishPositioned(channel: string, payload: Buffer, o: AppendOptions): AppendResult {
    if (o.once !== undefined) {
      const earlier = this.publishOnceClaim(o.once);
      if (earlier !== undefined) return { duplicate: true, earlier };
    }
    const position = this.history.append(channel, payload, o);
    this.route(channel, wrapPositioned(position, payload));
    return { duplicate: false, ...position };
  }

  /** publishPositioned for each publication of each group, in order; each group's first position. */
  private publishPositionedMany(groups: AppendGroup[]): Position[] {
    return groups.map((g) => {
      let first: Position | undefined;
      g.payloads.forEach((p, i) => {
        const payload = asBuffer(p);
        const position = this.history.append(g.channel, payload, { size: g.size, ttlMs: g.ttlMs, metaTtlMs: g.metaTtlMs, messageTtlMs: g.messageTtlMs[i] ?? 0 });
        this.route(g.channel, wrapPositioned(position, payload));
        first ??= position;
      });
      return first!;
    });
  }

  /** Claims `once.key`; returns the earlier claim's value when it was taken. */
  private publishOnceClaim(once: { key: string; value: string; ttlMs: number }): string | undefined {
    const now = Date.now();
    const claim = this.claims.get(once.key);
    if (claim !== undefined && claim.expires > now) return claim.value;
    this.claims.set(once.key, { value: once.value, expires: now + once.ttlMs });
    return undefined;
  }

  private publishOnce(channel: string, payload: Buffer, once: { key: string; value: string; ttlMs: number }): string | undefined {
    const now = Date.now();
    if (++this.sweeps % 1024 === 0) for (const [k, c] of this.claims) if (c.expires <= now) this.claims.delete(k);
    const claim = this.claims.get(once.key);
    if (claim !== undefined && claim.expires > now) return claim.value;
    this.claims.set(once.key, { value: once.value, expires: now + once.ttlMs });
    this.route(channel, payload);
    return undefined;
  }

  /** Queues a message for every worker subscribed to `channel`; the turn's queue leaves in setImmediate. */
  private route(channel: string, payload: Buffer): void {
    const to = this.routes.get(channel);
    if (to === undefined) return;
    for (const w of to) this.workers.get(w)?.outbox.push([channel, payload]);
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushing = false;
    for (const [w, s] of this.workers) {
      if (s.outbox.length === 0) continue;
      const list = s.outbox;
      s.outbox = [];
      w.send({ pw: 'msgs', list });
    }
  }

  private unsubscribe(w: HostedWorker, channel: string): void {
    const set = this.routes.get(channel);
    set?.delete(w);
    if (set?.size === 0) this.routes.delete(channel);
  }

  /** Every worker's registry, merged: series stay apart by their `node` and `worker` labels. */
  private async metrics(): Promise<string> {
    const all = await Promise.all([...this.workers.keys()].map((w) => this.collect(w)));
    const registry = AggregatorRegistry.aggregate(all.filter((m): m is Metrics => m !== undefined));
    return registry.metrics();
  }

  private collect(w: HostedWorker): Promise<Metrics | undefined> {
    const id = ++this.collectIds;
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(undefined), COLLECT_TIMEOUT_MS);
      const done = (m: Metrics | undefined): void => {
        clearTimeout(timer);
        this.collecting.delete(id);
        resolve(m);
      };
      this.collecting.set(id, done);
      w.send({ pw: 'collect', id });
    });
  }
}
