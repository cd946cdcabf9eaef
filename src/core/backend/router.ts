import type { ConsumerDirectory, ConsumerEntry } from '../../cluster/consumers.js';
import { BusUnconfirmedError } from '../../cluster/bus.js';
import { decodeConsumerFrame } from '../../cluster/consumers.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import { Code, PushwireError } from '../errors.js';
import type { Session } from '../session.js';
import { ConsumerSignal, encodeSignal, SIGNAL_CHANNEL } from './consumer-signal.js';
import { encodeEvent, decodeEvent, stickyHash, type ClientEvent, type ClientEventType } from './event.js';
import { LifecycleOutbox } from './outbox.js';

/** A backend connected to this node (a gRPC Connect stream, a server WebSocket connection). */
export interface Consumer {
  /** Unique on this node; see BackendRouter.nextConsumerId. */
  readonly id: string;
  readonly pid: string;
  readonly group: string;
  deliver(event: ClientEvent): void;
}

export interface BackendRouterOptions {
  nodeId: string;
  directory: ConsumerDirectory;
  metrics: Metrics;
  logger: Logger;
  /** A registration not refreshed within this long expires (a node that died silently). */
  consumerTtlMs: number;
  /** Publishes on a bus channel (the consumer signal's announcements). */
  publish: (channel: string, payload: Buffer) => Promise<void>;
  busReady: () => boolean;
}

/** What a client request carries to the backend. */
export interface ClientRequest {
  requestId: string;
  topic?: string;
  data: Buffer;
}

/**
 * Routes client events to backend consumers, cluster-wide: every consumer group of the
 * project gets each event once, at one of its consumers. Requests rotate over a group's
 * consumers; a connection's connect and disconnect go to the same consumer (by cid) and leave
 * this node in order, retried while the directory is unreachable.
 */
export class BackendRouter {
  private readonly local = new Map<string, Consumer>();
  private readonly outbox: LifecycleOutbox;
  private readonly bootTag = Date.now().toString(36);
  private seq = 0;
  private refresher: NodeJS.Timeout | undefined;
  /** Which projects have consumers cluster-wide (fed from SIGNAL_CHANNEL by PushNode). */
  readonly signal: ConsumerSignal;

  constructor(private readonly o: BackendRouterOptions) {
    this.signal = new ConsumerSignal(o.consumerTtlMs, o.busReady);
    // A refresh period and a bit: by then every live node has registered its consumers again.
    this.outbox = new LifecycleOutbox(o.directory, o.metrics, o.logger, o.consumerTtlMs / 3 + 1000);
    o.directory.onReconnect(() => {
      this.outbox.recovered();
      void this.refresh();
    });
  }

  start(): void {
    this.refresher = setInterval(() => void this.refresh(), Math.max(100, this.o.consumerTtlMs / 3));
    this.refresher.unref();
  }

  /** Unregisters every local consumer (shutdown starts here, so events go to other nodes). */
  async detachAll(): Promise<void> {
    await Promise.all([...this.local.values()].map((c) => this.detach(c)));
  }

  async close(): Promise<void> {
    clearInterval(this.refresher);
    await this.outbox.drain(1000);
    this.outbox.stop();
    await this.detachAll();
  }

  nextConsumerId(): string {
    return `${this.bootTag}.${(++this.seq).toString(36)}`;
  }

  /** Registers the consumer cluster-wide; it receives events once this resolves. */
  async attach(consumer: Consumer): Promise<void> {
    this.local.set(consumer.id, consumer);
    this.o.metrics.backendConsumers.set(this.local.size);
    try {
      await this.o.directory.register([this.entry(consumer)], this.o.consumerTtlMs);
    } catch (err) {
      this.local.delete(consumer.id);
      this.o.metrics.backendConsumers.set(this.local.size);
      throw clusterFailure(err);
    }
    // Before the attach returns, so connection events from other nodes start flowing (one bus hop later).
    if ([...this.local.values()].filter((c) => c.pid === consumer.pid).length === 1) await this.announce([consumer.pid]);
  }

  async detach(consumer: Consumer): Promise<void> {
    if (!this.local.delete(consumer.id)) return;
    this.o.metrics.backendConsumers.set(this.local.size);
    try {
      await this.o.directory.unregister(this.entry(consumer));
    } catch (err) {
      // The registration expires on its own; until then a dispatch to it is re-dispatched here.
      this.o.logger.warn({ err: (err as Error).message, consumer: consumer.id }, 'could not unregister a backend consumer');
    }
  }

  /**
   * Sends a client request to one consumer of each group of its project. Resolves with the
   * number of groups reached (0: no backend of the project is connected, anywhere).
   * Rejects with UNAVAILABLE when the cluster could not take it.
   */
  async request(session: Session, req: ClientRequest): Promise<number> {
    const event = this.event('request', session, session.uid ?? '');
    event.requestId = req.requestId;
    if (req.topic !== undefined) event.topic = req.topic;
    event.data = req.data;
    let reached: number;
    try {
      reached = await this.o.directory.dispatch(session.pid, encodeEvent(event), undefined);
    } catch (err) {
      this.o.metrics.backendEvents.inc({ type: 'request', result: 'failed' });
      throw clusterFailure(err);
    }
    this.o.metrics.backendEvents.inc({ type: 'request', result: reached > 0 ? 'delivered' : 'no_consumer' });
    return reached;
  }

  clientConnected(session: Session): void {
    this.lifecycle('connect', session, session.uid ?? '');
  }

  /** `uid`: who the connection was logged in as when it closed. */
  clientDisconnected(session: Session, uid: string | undefined): void {
    this.lifecycle('disconnect', session, uid ?? '');
  }

  /** A consumer frame from this node's channel. */
  receive(frame: Buffer): void {
    const { consumerId, group, event: bytes } = decodeConsumerFrame(frame);
    const event = decodeEvent(bytes);
    const consumer = this.local.get(consumerId);
    if (consumer !== undefined) consumer.deliver(event);
    // The consumer left between the directory's pick and now.
    else this.handBack(event, group);
  }

  /**
   * An event a consumer of `group` cannot take any more (it left, or is closing): it goes to
   * another consumer of that group only (the other groups have it already), once. A handed-back
   * connection event may then reach its consumer after a later event of the same connection.
   */
  handBack(event: ClientEvent, group: string): void {
    if (event.redispatched) {
      this.o.metrics.backendEvents.inc({ type: event.type, result: 'dropped' });
      return;
    }
    const again = { ...event, redispatched: true };
    const sticky = event.type === 'request' ? undefined : stickyHash(event.cid);
    this.o.directory.dispatch(event.pid, encodeEvent(again), sticky, group).then(
      (reached) => {
        if (reached === 0) this.o.metrics.backendEvents.inc({ type: event.type, result: 'dropped' });
      },
      (err: unknown) => {
        this.o.metrics.backendEvents.inc({ type: event.type, result: 'failed' });
        this.o.logger.warn({ err: (err as Error).message, event: event.id }, 'could not re-dispatch a client event');
      },
    );
  }

  private lifecycle(type: ClientEventType, session: Session, uid: string): void {
    if (!this.signal.mayHaveConsumers(session.pid)) {
      this.o.metrics.backendEvents.inc({ type, result: 'no_consumer' });
      return;
    }
    const event = this.event(type, session, uid);
    this.outbox.push(session.pid, stickyHash(session.cid), type, encodeEvent(event));
  }

  private event(type: ClientEventType, session: Session, uid: string): ClientEvent {
    return {
      type,
      id: `${this.o.nodeId}-${this.bootTag}-e${(++this.seq).toString(36)}`,
      pid: session.pid,
      uid,
      cid: session.cid,
      node: this.o.nodeId,
      time: Date.now(),
    };
  }

  private entry(c: Consumer): ConsumerEntry {
    return { pid: c.pid, group: c.group, node: this.o.nodeId, id: c.id };
  }

  private async refresh(): Promise<void> {
    if (this.local.size === 0) return;
    try {
      await this.o.directory.register([...this.local.values()].map((c) => this.entry(c)), this.o.consumerTtlMs);
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'could not refresh backend consumers');
    }
    await this.announce([...new Set([...this.local.values()].map((c) => c.pid))]);
  }

  /** Tells every node these projects have consumers (see ConsumerSignal); a lost one is repeated at the next refresh. */
  private async announce(pids: string[]): Promise<void> {
    try {
      await this.o.publish(SIGNAL_CHANNEL, encodeSignal(pids));
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'could not announce projects with backend consumers');
    }
  }
}

/** A failed dispatch: UNAVAILABLE when nothing was sent, DEADLINE_EXCEEDED when it may have gone out. */
function clusterFailure(err: unknown): PushwireError {
  if (err instanceof BusUnconfirmedError) return new PushwireError(Code.DEADLINE_EXCEEDED, `outcome unknown: ${err.message}`);
  return new PushwireError(Code.UNAVAILABLE, `cluster unavailable: ${(err as Error).message}`);
}
