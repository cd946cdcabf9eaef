import type { Bus } from '../cluster/bus.js';
import { isConsumerFrame, type ConsumerDirectory } from '../cluster/consumers.js';
import { Interest } from '../cluster/interest.js';
import type { Presence } from '../cluster/presence.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
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
}

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
  private readonly interest: Interest;
  private readonly tracker: PresenceTracker;

  constructor(private readonly o: PushNodeOptions) {
    this.interest = new Interest(o.bus, o.unsubscribeDelayMs);
    this.hub = new Hub(this.interest);
    this.cids = new CidSource(o.nodeId);
    this.online = new OnlineUsers(o.presence, o.projects);
    this.tracker = new PresenceTracker(o.presence, o.nodeId, o.presenceTtlMs, o.metrics, o.logger);
    this.hub.observe(this.tracker);
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
    });
    o.bus.onMessage((channel, payload) => this.receive(channel, payload));
  }

  /**
   * A node hears a project's broadcasts while it has connections of that project (Hub.add),
   * and always its own channel, where pushes aimed at its connection ids arrive.
   */
  async start(): Promise<void> {
    await Promise.all([this.o.bus.start(), this.o.presence.start()]);
    await this.interest.acquire(nodeChannel(this.o.nodeId));
    this.backends.start();
  }

  /** Starts the presence refresh and heartbeat, once the node knows its addresses. */
  startHeartbeat(describe: () => NodeDescription): void {
    this.tracker.start(describe);
  }

  get nodeId(): string {
    return this.o.nodeId;
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
    await this.o.presence.close();
    await this.o.bus.close();
  }

  private receive(channel: string, payload: Buffer): void {
    this.o.metrics.busReceived.inc();
    let delivered: number;
    try {
      if (isConsumerFrame(payload)) return this.backends.receive(payload);
      delivered = this.hub.deliver(decode(payload));
    } catch (err) {
      this.o.metrics.busErrors.inc({ op: 'decode' });
      this.o.logger.warn({ err, channel }, 'dropped an undecodable bus message');
      return;
    }
    if (delivered > 0) this.o.metrics.deliveries.inc(delivered);
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
