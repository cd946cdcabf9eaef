import type { Bus } from '../cluster/bus.js';
import { isConsumerFrame, type ConsumerDirectory } from '../cluster/consumers.js';
import { Interest } from '../cluster/interest.js';
import type { Presence } from '../cluster/presence.js';
import type { ChannelPresence } from '../cluster/channel-presence.js';
import { MemoryChannelPresence } from '../cluster/memory-channel-presence.js';
import { decodeChannelEvent, isChannelEventFrame } from './channel-events.js';
import { ChannelMembers } from './channel-members.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { isSignalFrame, SIGNAL_CHANNEL } from './backend/consumer-signal.js';
import { BackendRouter } from './backend/router.js';
import { CidSource } from './cids.js';
import { Hub } from './hub.js';
import { unwrapPositioned } from '../cluster/bus.js';
import { ChannelHistory } from './history.js';
import { decodeMessage, type Message } from './message.js';
import { OnlineUsers } from './online-users.js';
import { PresenceTracker, type NodeDescription } from './presence-tracker.js';
import type { ProjectRegistry } from './projects/registry.js';
import { Publisher } from './publisher.js';
import { nodeChannel } from './targeting.js';

export interface PushNodeOptions {
  nodeId: string;
  bus: Bus;
  /** Where backend consumers register and client events are dispatched. */
  consumers: ConsumerDirectory;
  /** A consumer registration not refreshed within this long expires. */
  consumerTtlMs: number;
  projects: ProjectRegistry;
  metrics: Metrics;
  logger: Logger;
  maxPushBytes: number;
  /** How long an idempotency key is remembered. */
  idempotencyWindowMs: number;
  /** Delay before a channel's last holder leaving unsubscribes it from the bus. */
  unsubscribeDelayMs: number;
  /** Cluster-wide presence and node registry. */
  presence: Presence;
  /** Presence entries and the node's record expire unless refreshed within this (every ttl/3). */
  presenceTtlMs: number;
  /** Who is subscribed to channels with presence (protocol v1); default: in memory (a single node). */
  channelPresence?: ChannelPresence;
}

/**
 * Deliveries (one message to one local session) a node hands out per event-loop turn before it
 * queues further bus messages for the next turn. A bus read can carry hundreds of messages (a
 * Redis socket read of 64 KiB; a burst on the in-process bus), each for thousands of sockets:
 * handed out at once they are one turn of seconds in which no ingress request is answered.
 */
export const DELIVERIES_PER_TURN = 50_000;
/**
 * Bus messages held at most. Past it the node hands out the backlog at once, as it did before
 * turns were bounded: the event loop then blocks, which slows what feeds it (ingress, the bus
 * socket) instead of growing memory without bound.
 */
export const MAX_HELD_MESSAGES = 100_000;

/**
 * The transport-agnostic node: the bus, the local hub fed by it, and the publisher that
 * every ingress calls. Ingresses attach sessions to `hub` and push through `publisher`.
 */
export class PushNode {
  readonly hub: Hub;
  readonly publisher: Publisher;
  /** Channel options and history reads (HistoryService, recovery). */
  readonly history: ChannelHistory;
  readonly backends: BackendRouter;
  /** Presence reads (OnlineUsersService) and the cluster-wide connection listing. */
  readonly online: OnlineUsers;
  /** Connection ids for every transport's sessions. */
  readonly cids: CidSource;
  /** Protocol v1 channel presence and join/leave. */
  readonly members: ChannelMembers;
  private readonly channelPresence: ChannelPresence;
  private readonly interest: Interest;
  private readonly tracker: PresenceTracker;
  /** Bus messages waiting for the next turn, in arrival order (see DELIVERIES_PER_TURN). */
  private backlog: Array<[string, Buffer]> = [];
  private spent = 0;
  private turnArmed = false;
  private busy: () => boolean = () => false;

  constructor(private readonly o: PushNodeOptions) {
    this.interest = new Interest(o.bus, o.unsubscribeDelayMs);
    this.hub = new Hub(this.interest);
    this.cids = new CidSource(o.nodeId);
    this.online = new OnlineUsers(o.presence, o.projects);
    this.tracker = new PresenceTracker(o.presence, o.nodeId, o.presenceTtlMs, o.metrics, o.logger);
    this.hub.observe(this.tracker);
    this.channelPresence = o.channelPresence ?? new MemoryChannelPresence();
    this.members = new ChannelMembers(this.channelPresence, (channel, payload) => o.bus.publish(channel, payload), o.presenceTtlMs, o.metrics, o.logger);
    this.history = new ChannelHistory(o.bus, o.projects);
    this.publisher = new Publisher(o.bus, o.projects, o.nodeId, o.maxPushBytes, o.metrics, o.idempotencyWindowMs, this.history);
    this.hub.onGap = (channel) => {
      o.metrics.historyGaps.inc();
      o.logger.warn({ channel }, 'offset gap on a channel with history: its v1 subscribers resubscribe');
    };
    this.backends = new BackendRouter({
      nodeId: o.nodeId,
      directory: o.consumers,
      metrics: o.metrics,
      logger: o.logger,
      consumerTtlMs: o.consumerTtlMs,
      publish: (channel, payload) => o.bus.publish(channel, payload),
      busReady: () => o.bus.isReady(),
    });
    o.bus.onMessage((channel, payload) => this.receive(channel, payload));
    o.consumers.onFrame((frame) => this.receive('consumer frames', frame));
    o.bus.onGap((channels) => {
      // Positioned subscribers (protocol v1, Subscribe with since) resubscribe from their last offset.
      this.hub.gap(channels);
      // Announcements of projects with consumers may be among what was lost.
      if (channels.includes(SIGNAL_CHANNEL)) this.backends.signal.gap();
      o.metrics.busGaps.inc();
      o.metrics.busGapChannels.inc(channels.length);
      o.logger.warn(
        { channels: channels.length, sample: channels.slice(0, 10) },
        'bus resubscribed after a lost connection: messages published on these channels meanwhile were not received by this node',
      );
    });
  }

  /**
   * A node hears a project's broadcasts while it has connections of that project (Hub.add),
   * and always its own channel, where pushes aimed at its connection ids arrive.
   */
  async start(): Promise<void> {
    await Promise.all([this.o.bus.start(), this.o.presence.start(), this.channelPresence.start()]);
    this.members.start();
    await Promise.all([this.interest.acquire(nodeChannel(this.o.nodeId)), this.interest.acquire(SIGNAL_CHANNEL)]);
    this.backends.start();
  }

  /** Starts the presence refresh and heartbeat, once the node knows its addresses. */
  startHeartbeat(describe: () => NodeDescription): void {
    this.tracker.start(describe);
  }

  get nodeId(): string {
    return this.o.nodeId;
  }

  /** While `busy()` (the transports are still writing an earlier turn's frames), bus messages wait. */
  holdDeliveriesWhile(busy: () => boolean): void {
    this.busy = busy;
  }

  isBusReady(): boolean {
    return this.o.bus.isReady();
  }

  /**
   * After the sessions are gone: their removals land, consumers unregister, the node's record
   * is dropped, then the bus closes.
   */
  async close(): Promise<void> {
    await this.backends.close();
    await this.o.consumers.close();
    await this.tracker.close();
    await this.members.close();
    await this.o.presence.close();
    await this.channelPresence.close();
    await this.o.bus.close();
  }

  private receive(channel: string, payload: Buffer): void {
    // Once this turn's budget is spent, messages wait (in order) until the next turn, after
    // the event loop has read and answered ingress requests and written the turn's frames.
    if (this.backlog.length > 0 || this.spent >= DELIVERIES_PER_TURN || this.busy()) {
      this.backlog.push([channel, payload]);
      if (this.backlog.length >= MAX_HELD_MESSAGES) this.drain(Infinity);
      else this.armTurn();
      return;
    }
    this.spent += this.handle(channel, payload);
    this.armTurn();
  }

  private armTurn(): void {
    if (this.turnArmed) return;
    this.turnArmed = true;
    setImmediate(this.nextTurn);
  }

  private readonly nextTurn = (): void => {
    this.turnArmed = false;
    this.spent = 0;
    if (this.backlog.length > 0 && this.busy()) return this.armTurn();
    this.drain(DELIVERIES_PER_TURN);
    if (this.backlog.length > 0 || this.spent > 0) this.armTurn();
  };

  /** Hands out held messages, in order, until `budget` deliveries are spent this turn. */
  private drain(budget: number): void {
    let i = 0;
    while (i < this.backlog.length && this.spent < budget) {
      const [channel, payload] = this.backlog[i++]!;
      this.spent += this.handle(channel, payload);
    }
    this.backlog = i === this.backlog.length ? [] : this.backlog.slice(i);
  }

  /** Decodes one bus message and hands it to the hub (or the backend router); returns the deliveries. */
  private handle(channel: string, payload: Buffer): number {
    this.o.metrics.busReceived.inc();
    let delivered: number;
    try {
      if (isConsumerFrame(payload)) {
        this.backends.receive(payload);
        return 1;
      }
      if (isSignalFrame(payload)) {
        this.backends.signal.receive(payload);
        return 1;
      }
      if (isChannelEventFrame(payload)) return this.hub.deliverEvent(decodeChannelEvent(payload));
      delivered = this.hub.deliver(decode(payload));
    } catch (err) {
      this.o.metrics.busErrors.inc({ op: 'decode' });
      this.o.logger.warn({ err, channel }, 'dropped an undecodable bus message');
      return 0;
    }
    if (delivered > 0) this.o.metrics.deliveries.inc(delivered);
    return delivered;
  }
}

/** A bus payload as a message; a positioned one carries its offset and epoch. */
function decode(payload: Buffer): Message {
  const positioned = unwrapPositioned(payload);
  if (positioned === undefined) return decodeMessage(payload);
  const m = decodeMessage(positioned.envelope);
  m.offset = positioned.position.offset;
  m.epoch = positioned.position.epoch;
  return m;
}
