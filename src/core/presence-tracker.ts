import type { NodeRecord, Presence, PresenceEntry } from '../cluster/presence.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { SessionObserver } from './hub.js';
import type { Session } from './session.js';

/** What a node says about itself in its heartbeat (heartbeatAt is set by the store). */
export type NodeDescription = Omit<NodeRecord, 'heartbeatAt'>;

/**
 * Feeds this node's logged-in client sessions into presence, and keeps them (and the node's
 * heartbeat) alive by refreshing every ttl/3. Writes are fire-and-forget: a WebSocket never
 * waits on Redis. A failed add is repaired by the next refresh; a failed remove expires.
 */
export class PresenceTracker implements SessionObserver {
  private readonly entries = new Map<string, PresenceEntry>();
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing = false;

  constructor(
    private readonly presence: Presence,
    private readonly nodeId: string,
    private readonly ttlMs: number,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
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

  /** Heartbeats now, then every ttl/3 with `describe()`'s view of the node. */
  start(describe: () => NodeDescription): void {
    const beat = (): void => {
      // A refresh slower than the interval (Redis timing out) is not stacked up.
      if (this.refreshing) return;
      this.refreshing = true;
      this.track('refresh', this.presence.refresh([...this.entries.values()], { ...describe(), heartbeatAt: 0 })).finally(() => {
        this.refreshing = false;
      });
    };
    beat();
    this.timer = setInterval(beat, Math.max(50, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  /** Stops refreshing and waits for the writes in flight (the last sessions' removals). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.allSettled([...this.inFlight]);
  }

  private track(op: string, write: Promise<void>): Promise<void> {
    const p = write.catch((err: unknown) => {
      this.metrics.presenceErrors.inc({ op });
      this.logger.debug({ err, op }, 'presence write failed');
    });
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
    return p;
  }
}
