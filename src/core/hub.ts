import type { Interest } from '../cluster/interest.js';
import { Outbound, type Message } from './message.js';
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
 * The local registry: which of this node's sessions hold which channel, and local fan-out.
 * A channel's first local holder acquires bus interest in it, its last one releases it.
 * Every channel is scoped to the session's project, including its project's broadcast channel,
 * which every session holds from add() to remove().
 */
export class Hub {
  private readonly sessions = new Set<Session>();
  private readonly byChannel = new Map<string, Set<Session>>();

  constructor(private readonly interest: Interest) {}

  get connectionCount(): number {
    return this.sessions.size;
  }

  /** Distinct channels held on this node (project broadcasts, topics, users, private topics). */
  get channelCount(): number {
    return this.byChannel.size;
  }

  /** Registers the session; resolves once it can receive its project's broadcasts. */
  add(session: Session): Promise<void> {
    this.sessions.add(session);
    return this.join(session, broadcastChannel(session.pid));
  }

  /** Forgets the session everywhere; a closed connection leaves no trace. */
  remove(session: Session): void {
    for (const channel of session.channels) this.leave(session, channel);
    session.uid = undefined;
    this.sessions.delete(session);
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
    return this.join(session, userChannel(session.pid, uid));
  }

  /** Leaves the user channel and every private topic: no private delivery afterwards. */
  logout(session: Session): void {
    if (session.uid === undefined) return;
    for (const channel of session.channels) {
      if (isIdentityChannel(session.pid, channel)) this.leave(session, channel);
    }
    session.uid = undefined;
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
    const targets = this.byChannel.get(channelOf(message.pid, targetOf(message.uid, message.topic)));
    if (targets === undefined || targets.size === 0) return 0;
    const out = new Outbound(message);
    for (const session of targets) session.sink.deliver(out);
    return targets.size;
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
    if (holders.size === 0) this.byChannel.delete(channel);
    this.interest.release(channel);
  }
}
