import type { Interest } from '../cluster/interest.js';
import { ChannelEvent, type ChannelEventData } from './channel-events.js';
import { Outbound, type Message, type Selector } from './message.js';
import type { Session } from './session.js';
import {
  broadcastChannel,
  channelOf,
  isIdentityChannel,
  privateChannel,
  targetOf,
  topicChannel,
  userChannel,
} from './targeting.js';

/**
 * Told about sessions' lifecycle on this node (presence, backend events). Called synchronously
 * from the hub, in order per session; observers must not throw and must not call back into it.
 */
export interface SessionObserver {
  /** The session was added (`identified` follows at once when it logged in before). */
  connected?(session: Session): void;
  /** The session now acts as `uid` (login). */
  identified?(session: Session, uid: string): void;
  /** The session stopped acting as `uid` (logout, login as another user, or close). */
  unidentified?(session: Session, uid: string): void;
  /** The session was removed (after `unidentified` if it was logged in); it holds nothing any more. */
  disconnected?(session: Session): void;
}

/**
 * The local registry: which of this node's sessions hold which channel, and local fan-out.
 * A channel's first local holder acquires bus interest in it, its last one releases it.
 * Every channel is scoped to the session's project, including its project's broadcast channel,
 * which every session holds from add() to remove().
 */
export class Hub {
  private readonly byChannel = new Map<string, Set<Session>>();
  /** Every local session, by connection id (cids are unique cluster-wide). */
  private readonly byCid = new Map<string, Session>();
  private readonly recent = new RecentIds(RECENT_IDS);
  private readonly observers: SessionObserver[] = [];
  /** Last position delivered per channel with history and local holders: a jump is a gap. */
  private readonly positions = new Map<string, { offset: number; epoch: string }>();
  /** Told of every gap (metrics, logs). */
  onGap: (channel: string) => void = () => {};

  constructor(private readonly interest: Interest) {}

  observe(observer: SessionObserver): void {
    this.observers.push(observer);
  }

  /** The local session with this connection id, if any. */
  session(cid: string): Session | undefined {
    return this.byCid.get(cid);
  }

  /** Every local session (for periodic refreshes and reports). */
  sessions(): IterableIterator<Session> {
    return this.byCid.values();
  }

  get connectionCount(): number {
    return this.byCid.size;
  }

  /** Distinct channels held on this node (project broadcasts, topics, users, private topics). */
  get channelCount(): number {
    return this.byChannel.size;
  }

  /** Local connections and distinct channels per project (for the admin page; walks the registry). */
  projectCounts(): Map<string, { connections: number; channels: number }> {
    const counts = new Map<string, { connections: number; channels: number }>();
    const of = (pid: string) => counts.get(pid) ?? counts.set(pid, { connections: 0, channels: 0 }).get(pid)!;
    for (const session of this.byCid.values()) of(session.pid).connections++;
    // Channels are project-scoped (targeting.ts), so any holder names the channel's project.
    for (const holders of this.byChannel.values()) {
      const first = holders.values().next();
      if (!first.done) of(first.value.pid).channels++;
    }
    return counts;
  }

  /** Registers the session; resolves once it can receive its project's broadcasts. */
  add(session: Session): Promise<void> {
    this.byCid.set(session.cid, session);
    const joined = this.join(session, broadcastChannel(session.pid));
    for (const o of this.observers) o.connected?.(session);
    if (session.uid !== undefined) for (const o of this.observers) o.identified?.(session, session.uid);
    return joined;
  }

  /** Forgets the session everywhere; a closed connection leaves no trace. */
  remove(session: Session): void {
    if (!this.byCid.has(session.cid)) return;
    this.logout(session);
    for (const channel of session.channels) this.leave(session, channel);
    this.byCid.delete(session.cid);
    for (const o of this.observers) o.disconnected?.(session);
  }

  subscribe(session: Session, topic: string): Promise<void> {
    return this.join(session, topicChannel(session.pid, topic));
  }

  unsubscribe(session: Session, topic: string): void {
    this.leave(session, topicChannel(session.pid, topic));
  }

  /** Sets the session's uid. Logging in as another user first drops the old identity. */
  login(session: Session, uid: string): Promise<void> {
    if (session.uid === uid) return Promise.resolve();
    if (session.uid !== undefined) this.logout(session);
    session.uid = uid;
    const joined = this.join(session, userChannel(session.pid, uid));
    if (this.byCid.has(session.cid)) for (const o of this.observers) o.identified?.(session, uid);
    return joined;
  }

  /** Leaves the user channel and every private topic: no private delivery afterwards. */
  logout(session: Session): void {
    if (session.uid === undefined) return;
    for (const channel of session.channels) {
      if (isIdentityChannel(session.pid, channel)) this.leave(session, channel);
    }
    const uid = session.uid;
    session.uid = undefined;
    if (this.byCid.has(session.cid)) for (const o of this.observers) o.unidentified?.(session, uid);
  }

  /** Joins any channel of the session's project by name (protocol v1 channels); resolves once the bus has it. */
  joinChannel(session: Session, channel: string): Promise<void> {
    return this.join(session, channel);
  }

  leaveChannel(session: Session, channel: string): void {
    this.leave(session, channel);
  }

  /** Caller checks that the session is logged in. */
  subscribePrivate(session: Session, uid: string, topic: string): Promise<void> {
    return this.join(session, privateChannel(session.pid, uid, topic));
  }

  unsubscribePrivate(session: Session, uid: string, topic: string): void {
    this.leave(session, privateChannel(session.pid, uid, topic));
  }

  /** Hands the message to every local session it targets; returns how many. */
  deliver(message: Message): number {
    if (message.select !== undefined) return this.deliverSelected(message, message.select);
    const channel = channelOf(message.pid, targetOf(message.uid, message.topic));
    const targets = this.byChannel.get(channel);
    if (targets === undefined || targets.size === 0) return 0;
    if (message.offset !== undefined && !this.inSequence(channel, message.offset, message.epoch ?? '', targets)) return 0;
    const out = new Outbound(message);
    for (const session of targets) session.sink.deliver(out);
    return targets.size;
  }

  /** Hands a join/leave to the local holders of its channel that take such events; returns how many. */
  deliverEvent(data: ChannelEventData): number {
    const targets = this.byChannel.get(data.hubChannel);
    if (targets === undefined) return 0;
    let event: ChannelEvent | undefined;
    let n = 0;
    for (const session of targets) {
      if (session.sink.channelEvent === undefined) continue;
      event ??= new ChannelEvent(data);
      session.sink.channelEvent(event);
      n++;
    }
    return n;
  }

  /**
   * Checks a positioned message against the channel's last one. A jump (or a new epoch) means
   * this node missed publications: the holders hear of the gap first. An old offset (a copy
   * already delivered) is dropped: returns false.
   */
  private inSequence(channel: string, offset: number, epoch: string, targets: Set<Session>): boolean {
    const prev = this.positions.get(channel);
    if (prev !== undefined && prev.epoch === epoch && offset <= prev.offset) return false;
    this.positions.set(channel, { offset, epoch });
    if (prev !== undefined && (prev.epoch !== epoch || offset !== prev.offset + 1)) this.signalGap(channel, targets);
    return true;
  }

  /** The bus may have lost messages on these channels (e.g. resubscribed after a Redis reconnect). */
  gap(channels: readonly string[]): void {
    for (const channel of channels) {
      const targets = this.byChannel.get(channel);
      if (targets === undefined || targets.size === 0) continue;
      // The next message starts a new baseline: its jump is this gap, already signalled.
      this.positions.delete(channel);
      for (const session of targets) session.sink.gap?.(channel);
    }
  }

  /** An offset jump: counted (onGap), then every holder hears of it. */
  private signalGap(channel: string, targets: Set<Session>): void {
    this.onGap(channel);
    for (const session of targets) session.sink.gap?.(channel);
  }

  /** uids ∩ cids ∩ tags (each list a union), within the message's project. */
  private deliverSelected(message: Message, select: Selector): number {
    const { pid } = message;
    const { uids, cids, tags } = select;
    // Routed by uids (or by tags when there are none), a push is published on one channel per
    // entry and a node may get several copies; each copy targets the whole selection, so only
    // the first is delivered. Routed by cids, a node gets exactly one copy (its own channel).
    const routes = cids.length > 0 ? 1 : uids.length > 0 ? uids.length : tags.length;
    if (routes > 1 && this.recent.seen(message.id)) return 0;
    const candidates = new Set<Session>();
    if (cids.length > 0) {
      for (const cid of cids) {
        const s = this.byCid.get(cid);
        if (s !== undefined) candidates.add(s);
      }
    } else {
      const channels = uids.length > 0 ? uids.map((u) => userChannel(pid, u)) : tags.map((t) => topicChannel(pid, t));
      for (const channel of channels) for (const s of this.byChannel.get(channel) ?? []) candidates.add(s);
    }
    const uidSet = uids.length > 0 ? new Set(uids) : undefined;
    const tagChannels = tags.map((t) => topicChannel(pid, t));
    let out: Outbound | undefined;
    let n = 0;
    for (const s of candidates) {
      if (s.pid !== pid) continue;
      if (uidSet !== undefined && (s.uid === undefined || !uidSet.has(s.uid))) continue;
      if (tagChannels.length > 0 && !tagChannels.some((c) => s.channels.has(c))) continue;
      out ??= new Outbound(message);
      s.sink.deliver(out);
      n++;
    }
    return n;
  }

  private join(session: Session, channel: string): Promise<void> {
    if (session.channels.has(channel)) return this.interest.ready(channel);
    let holders = this.byChannel.get(channel);
    if (holders === undefined) {
      holders = new Set();
      this.byChannel.set(channel, holders);
    }
    holders.add(session);
    session.channels.add(channel);
    return this.interest.acquire(channel);
  }

  private leave(session: Session, channel: string): void {
    if (!session.channels.delete(channel)) return;
    const holders = this.byChannel.get(channel);
    if (holders === undefined) return;
    holders.delete(session);
    if (holders.size === 0) {
      this.byChannel.delete(channel);
      this.positions.delete(channel);
    }
    this.interest.release(channel);
  }
}

/** How many recent multi-channel message ids a node remembers to drop repeated copies. */
const RECENT_IDS = 4096;

/** A bounded set of recently seen ids; the oldest is forgotten first. */
class RecentIds {
  private readonly ids = new Set<string>();

  constructor(private readonly max: number) {}

  /** True when `id` was seen before; otherwise remembers it. */
  seen(id: string): boolean {
    if (this.ids.has(id)) return true;
    this.ids.add(id);
    if (this.ids.size > this.max) this.ids.delete(this.ids.values().next().value!);
    return false;
  }
}

