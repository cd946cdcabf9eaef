import type { NodeRecord, Presence, PresenceEntry } from '../cluster/presence.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { SessionObserver } from './hub.js';
import { RefreshLoop } from './refresh-loop.js';
import type { Session } from './session.js';

/** What a node says about itself in its heartbeat (heartbeatAt is set by the store). */
export type NodeDescription = Omit<NodeRecord, 'heartbeatAt'>;

/**
 * Feeds this node's logged-in client sessions into presence, and keeps them (and the node's
 * heartbeat) alive by refreshing every ttl/3. Writes are fire-and-forget: a WebSocket never
 * waits on Redis. A failed add is repaired by the next refresh; a failed remove expires.
 *
 * The keep-alive and the sweep of expired entries (other nodes') are separate loops, so a slow
 * sweep never delays the keep-alive. A node whose keep-alive did not reach the store for a whole
 * ttl (its event loop starved of CPU, the process stopped, Redis unreachable) may have been taken
 * for dead by the others: its users left. That is logged and counted once per episode; the next
 * keep-alive that lands repairs it (the store's version check answers "re-send everything", and
 * the users join again).
 */
export class PresenceTracker implements SessionObserver {
  private readonly entries = new Map<string, PresenceEntry>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly loops: RefreshLoop[] = [];
  /** When the last keep-alive that reached the store started (performance.now()). */
  private lastKept: number | undefined;
  private late = false;

  constructor(
    private readonly presence: Presence,
    private readonly nodeId: string,
    private readonly ttlMs: number,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {}

  identified(session: Session, uid: string): void {
    if (session.kind !== 'client') return;
    const entry = { pid: session.pid, cid: session.cid, uid, node: this.nodeId, connectedAt: session.connectedAt };
    this.entries.set(session.cid, entry);
    this.track('add', this.presence.add(entry));
  }

  unidentified(session: Session): void {
    if (!this.entries.delete(session.cid)) return;
    this.track('remove', this.presence.remove(session.pid, session.cid));
  }

  /** Heartbeats (and sweeps) now, then every ttl/3 with `describe()`'s view of the node. */
  start(describe: () => NodeDescription): void {
    const period = Math.max(50, Math.floor(this.ttlMs / 3));
    const keepAlive = async (): Promise<void> => {
      const started = this.now();
      this.checkLate(started);
      try {
        await this.presence.refresh([...this.entries.values()], { ...describe(), heartbeatAt: 0 });
        this.lastKept = started;
        this.late = false;
      } catch (err) {
        this.failed('refresh', err);
      }
    };
    this.lastKept = undefined;
    this.loops.push(new RefreshLoop(period, () => this.hold(keepAlive()), this.now), new RefreshLoop(period, () => this.track('sweep', this.presence.sweep())));
    for (const loop of this.loops) loop.start();
  }

  /** Stops refreshing and waits for the writes in flight (the last sessions' removals). */
  async close(): Promise<void> {
    for (const loop of this.loops) loop.stop();
    await Promise.allSettled([...this.inFlight]);
  }

  /** A keep-alive starting a whole ttl after the last one that landed: the cluster may have swept this node. */
  private checkLate(started: number): void {
    if (this.lastKept === undefined || this.late || started - this.lastKept < this.ttlMs) return;
    this.late = true;
    this.metrics.presenceHeartbeatsLate.inc();
    this.logger.warn(
      { sinceLastMs: Math.round(started - this.lastKept), ttlMs: this.ttlMs },
      'presence heartbeat late: none reached the store within --presence-ttl, so other nodes may have taken this node for dead (its users left); they join again as soon as a heartbeat lands',
    );
  }

  private failed(op: string, err: unknown): void {
    this.metrics.presenceErrors.inc({ op });
    this.logger.debug({ err, op }, 'presence write failed');
  }

  private track(op: string, write: Promise<void>): Promise<void> {
    return this.hold(write.catch((err: unknown) => this.failed(op, err)));
  }

  /** Remembers `p` (which never rejects) until it settles, for close(). */
  private hold(p: Promise<void>): Promise<void> {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
    return p;
  }
}
