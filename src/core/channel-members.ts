import { memberEventFrame, type ChannelEventHeads, type ChannelMember, type ChannelMembership, type ChannelPresence } from '../cluster/channel-presence.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { channelEventHeads } from './channel-events.js';
import type { ChannelOptions } from './channels/options.js';
import { RefreshLoop } from './refresh-loop.js';
import type { Session } from './session.js';

/** One v1 subscription this node recorded, with what was done for it at subscribe. */
interface Membership {
  member: ChannelMember;
  /** The channel's join/leave frames without the member (the same for all its members). */
  heads: ChannelEventHeads;
  /** A join was published, so its leave follows (namespace option joinLeave at subscribe). */
  joinLeave: boolean;
}

/**
 * This node's protocol v1 subscriptions to channels with presence or join/leave: feeds the
 * channel presence store and publishes join/leave frames on the bus. Like user presence
 * (presence-tracker.ts), writes are fire-and-forget (a client never waits on Redis), counted
 * when they fail, and every entry is re-asserted every ttl/3 so that a failed add is repaired
 * and the entries of a node that dies expire. Members of joinLeave-only namespaces are stored
 * too: when this node dies, the store sends their leaves (the node cannot), pruning them in
 * the refresh of any node that still has a member of the channel, so within ttl + ttl/3.
 */
export class ChannelMembers {
  /** hub channel → cid → membership. */
  private readonly byChannel = new Map<string, Map<string, Membership>>();
  /** cid → hub channels it holds here. */
  private readonly bySession = new Map<string, Set<string>>();
  private readonly inFlight = new Set<Promise<void>>();
  private loop: RefreshLoop | undefined;

  constructor(
    private readonly store: ChannelPresence,
    private readonly publish: (channel: string, payload: Buffer) => Promise<void>,
    private readonly ttlMs: number,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  /**
   * A v1 client now receives `hubChannel` (its subscribe answer is out). `channel`/`priv` name it
   * as the client does. Nothing happens unless the options ask for presence or join/leave, or
   * when the session already holds the channel here.
   */
  subscribed(session: Session, hubChannel: string, channel: string, priv: boolean, options: ChannelOptions): void {
    if (!options.presence && !options.joinLeave) return;
    let members = this.byChannel.get(hubChannel);
    if (members?.has(session.cid)) return;
    if (members === undefined) this.byChannel.set(hubChannel, (members = new Map()));
    const heads = members.values().next().value?.heads ?? channelEventHeads(hubChannel, channel, priv);
    const m: Membership = { member: { client: session.cid, user: session.uid ?? '' }, heads, joinLeave: options.joinLeave };
    members.set(session.cid, m);
    let held = this.bySession.get(session.cid);
    if (held === undefined) this.bySession.set(session.cid, (held = new Set()));
    held.add(hubChannel);
    this.metrics.channelPresenceMembers.inc();
    this.track('add', this.store.add(this.membership(hubChannel, m)));
    if (m.joinLeave) this.announce('join', hubChannel, m);
  }

  /** The client left `hubChannel` (unsubscribe). */
  unsubscribed(session: Session, hubChannel: string): void {
    const members = this.byChannel.get(hubChannel);
    const m = members?.get(session.cid);
    if (m === undefined) return;
    members!.delete(session.cid);
    if (members!.size === 0) this.byChannel.delete(hubChannel);
    const held = this.bySession.get(session.cid);
    held?.delete(hubChannel);
    if (held?.size === 0) this.bySession.delete(session.cid);
    this.metrics.channelPresenceMembers.dec();
    this.track('remove', this.store.remove(hubChannel, session.cid));
    if (m.joinLeave) this.announce('leave', hubChannel, m);
  }

  /** The connection closed: it leaves every channel it held. */
  disconnected(session: Session): void {
    const held = this.bySession.get(session.cid);
    if (held === undefined) return;
    for (const hubChannel of [...held]) this.unsubscribed(session, hubChannel);
  }

  /** The channel's members, cluster-wide (`channel`/`priv` name it as the client does). Rejects when the store cannot answer (counted). */
  list(hubChannel: string, channel: string, priv: boolean): Promise<ChannelMember[]> {
    const heads = this.byChannel.get(hubChannel)?.values().next().value?.heads ?? channelEventHeads(hubChannel, channel, priv);
    return this.store.list(hubChannel, heads).catch((err: unknown) => {
      this.metrics.channelPresenceErrors.inc({ op: 'list' });
      throw err;
    });
  }

  /** Re-asserts this node's members every ttl/3 (a slow refresh delays the next one, never skips it: refresh-loop.ts). */
  start(): void {
    const beat = async (): Promise<void> => {
      if (this.byChannel.size === 0) return;
      const all: ChannelMembership[] = [];
      for (const [channel, members] of this.byChannel) for (const m of members.values()) all.push(this.membership(channel, m));
      await this.track('refresh', this.store.refresh(all));
    };
    this.loop = new RefreshLoop(Math.max(50, Math.floor(this.ttlMs / 3)), beat);
    // The first refresh one period from now, as before: members were written when they subscribed.
    this.loop.startLater();
  }

  /** Stops refreshing and waits for the writes in flight (the last sessions' removals and leaves). */
  async close(): Promise<void> {
    this.loop?.stop();
    await Promise.allSettled([...this.inFlight]);
  }

  private membership(channel: string, m: Membership): ChannelMembership {
    return { channel, member: m.member, heads: m.heads, joinLeave: m.joinLeave };
  }

  private announce(kind: 'join' | 'leave', hubChannel: string, m: Membership): void {
    this.track(kind, this.publish(hubChannel, memberEventFrame(m.heads[kind], m.member)));
  }

  private track(op: string, write: Promise<void>): Promise<void> {
    const p = write.catch((err: unknown) => {
      this.metrics.channelPresenceErrors.inc({ op });
      this.logger.debug({ err, op }, 'channel presence write failed');
    });
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
    return p;
  }
}
