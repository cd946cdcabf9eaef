import { isUtf8 } from 'node:buffer';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import { AuthError } from '../../core/auth/auth-error.js';
import type { Identity } from '../../core/auth/authenticator.js';
import type { BackendRouter } from '../../core/backend/router.js';
import type { Hub } from '../../core/hub.js';
import type { Publisher } from '../../core/publisher.js';
import type { RateLimiter } from '../../core/projects/rate-limiter.js';
import type { ProjectRegistry } from '../../core/projects/registry.js';
import type { Message, Outbound } from '../../core/message.js';
import { Session, type Sink } from '../../core/session.js';
import { overSubscriptionLimit, subscriptionLimitDetail } from '../../core/subscription-limit.js';
import { privateChannel, topicChannel } from '../../core/targeting.js';
import type { Metrics } from '../../observability/metrics.js';
import { CloseCode } from './close-codes.js';
import { BackendLink, type Failure } from './backend-link.js';
import {
  ErrorCode,
  ReplyCode,
  heartReply,
  isPing,
  parseRequest,
  reply,
  wscAck,
  type Reply,
  type Request,
  type WscMessage,
} from './codec.js';
import type { Flusher } from './flusher.js';
import { SocketOutbox } from './socket-outbox.js';
import { WriteSchedule } from './write-schedule.js';
import { PONG_FRAME, textFrame } from './frames.js';

export interface ConnectionContext {
  hub: Hub;
  backends: BackendRouter;
  /** Server connections push their replies through it, like the server API. */
  publisher: Publisher;
  projects: ProjectRegistry;
  metrics: Metrics;
  logger: Logger;
  flusher: Flusher;
  /** Encodes a message into frame bytes; the same function for every connection, so Outbound caches it once. */
  encodeDelivery: (m: Message) => Buffer;
  maxQueueBytes: number;
  /** Per-project client request rate (requestsPerSecond), shared by the node's connections. */
  requestRates: RateLimiter;
  /** Topics (public and private) one connection may hold at once; beyond it subscribes get 30007. */
  maxSubscriptions: number;
  onClosed: (conn: WsConnection) => void;
}

/**
 * Requests (or request bytes) waiting or running at which the socket stops being read, until
 * half remain. High on purpose: pausing a reader lets its TCP receive window close, and
 * reopening it waits on the sender's persist/retransmit timers (200 ms and doubling). At the old
 * 64/32 a pipelined flood paused and resumed hundreds of times and stalled for seconds though the
 * client read every reply (issue 9, defect 5); now a flood of fast requests never pauses (each
 * read chunk is answered before the next) and slow ones (logins) pause a few times.
 */
export const PAUSE_AT_REQUESTS = 4096;
export const PAUSE_AT_BYTES = 1024 * 1024;
/**
 * Safety net: ws still emits frames it had already read when paused. Beyond twice the pause
 * bounds a request is refused with 30004 instead of queued without bound.
 */
export const MAX_PENDING_REQUESTS = 2 * PAUSE_AT_REQUESTS;
export const MAX_PENDING_REQUEST_BYTES = 4 * PAUSE_AT_BYTES;
/** Bytes above which a flush hands the frames to writev instead of copying them into one buffer. */
/** How long a closing client gets to answer our close frame. */
const CLOSE_GRACE_MS = 2000;

/**
 * One client connection: gpush protocol state, keepalive bookkeeping and the bounded
 * outbound queue. Frames are written to the socket directly (one write per event-loop turn);
 * `ws` is used for the handshake, parsing and control frames.
 */
export class WsConnection implements Sink {
  readonly session: Session;
  lastSeen = Date.now();
  private lastPing = 0;
  private readonly outbox: SocketOutbox;
  private readonly schedule: WriteSchedule;
  private closed = false;
  private closeReason: string | undefined;
  private pending = 0;
  private pendingBytes = 0;
  /** Reading stopped because the client does not read its replies. */
  private held = false;
  /** Reading stopped because PAUSE_AT_* requests are pending. */
  private busy = false;
  private chain: Promise<void> = Promise.resolve();
  /** Requests to backends, their replies, and the server role (ws-cluster's type 2). */
  private readonly link: BackendLink;

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    cid: string,
    pid: string,
    private readonly ctx: ConnectionContext,
  ) {
    this.session = new Session(cid, pid, this);
    this.outbox = new SocketOutbox(socket, ctx.flusher, ctx.maxQueueBytes);
    this.schedule = new WriteSchedule(this, ctx.flusher, () => ctx.projects.get(pid)?.writeDelayMs ?? 0);
    this.link = new BackendLink(this.session, ctx.backends, ctx.publisher, (text) => this.enqueue(textFrame(text)));
    ws.on('message', (data: Buffer, isBinary: boolean) => this.guarded(() => this.onMessage(data, isBinary)));
    ws.on('ping', this.touch);
    ws.on('pong', this.touch);
    ws.on('error', (err: Error & { code?: string }) => {
      // ws closes the connection itself (1002/1007/1009) and emits this first.
      this.closeReason ??= errorReason(err.code);
    });
    ws.on('close', (code: number) => this.onClose(code));
    socket.on('drain', this.releaseRequests);
  }

  get cid(): string {
    return this.session.cid;
  }

  /**
   * The connected frame goes out once the session hears its project's broadcasts. Backends
   * hear of the connection after the upgrade's login, so its connect event carries the uid.
   */
  start(token: string | undefined): void {
    this.run(async () => {
      await this.ctx.hub.add(this.session);
      this.send({ code: ReplyCode.CONNECTED, message: 'connected', cid: this.cid });
    });
    if (token !== undefined) this.enqueueRequest({ code: 3, token });
    this.run(() => {
      if (!this.closed) this.link.announce();
      return Promise.resolve();
    });
  }

  deliver(out: Outbound): void {
    const { replyTo } = out.message;
    // Replies go to one connection and echo its own request id: framed per connection.
    if (replyTo !== undefined) this.enqueue(textFrame(this.link.replyFrame(replyTo, out.message.data)));
    else this.enqueue(out.encoded(this.ctx.encodeDelivery), true);
  }

  /** Writes what is queued; returns the bytes written. Called by the Flusher. */
  flush(): number {
    this.schedule.flushed();
    // Once ws has sent a close frame (the client started closing), no data frame may follow it.
    const bytes = this.outbox.write(this.ws.readyState === WebSocket.OPEN);
    if (bytes > 0 && this.held && this.socket.writableLength === 0) this.releaseRequests();
    return bytes;
  }

  /** Flushes what is pending, then closes with `code`; used for shutdown and timeouts. */
  close(code: number, reason: string, metricReason: string): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.link.closingStarted();
    this.closeReason = metricReason;
    this.ws.close(code, reason);
    setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  /** A business backend's connection (ws-cluster "server" type): it gets client events and online reports. */
  get isServer(): boolean {
    return this.link.isServer;
  }

  get pid(): string {
    return this.session.pid;
  }

  /** Bytes queued here or in the socket, not yet taken by the kernel. */
  backlog(): number {
    return this.outbox.backlog();
  }

  /** Queues a text frame (bounded like every frame: a server that does not read is closed 3008). */
  sendText(text: string): void {
    this.enqueue(textFrame(text));
  }

  /** Silent since `cutoff`? A connection with requests still running is never idle. */
  idleSince(cutoff: number): boolean {
    return this.pending === 0 && !this.held && !this.busy && this.lastSeen < cutoff;
  }

  /**
   * Server connections are not required to send anything (ws-cluster's rule), so the node asks
   * them: a WebSocket ping once they have been silent since `cutoff`, at most once per `every`
   * ms. Their pong counts as activity; a dead peer stays silent and times out like a client,
   * so its consumer does not swallow events forever.
   */
  probe(cutoff: number, now: number, every: number): void {
    if (!this.link.isServer || this.closed || this.lastSeen >= cutoff || now - this.lastPing < every) return;
    this.lastPing = now;
    this.ws.ping();
  }

  private readonly touch = (): void => {
    this.lastSeen = Date.now();
  };

  /**
   * Nothing a client sends may escape as an exception: ws emits 'message' synchronously from
   * the socket's data handler, where a throw is uncaught and ends the process. A bug that gets
   * here closes this connection with 1011 and is logged; the node and every other client go on.
   */
  private guarded(work: () => void): void {
    try {
      work();
    } catch (err) {
      this.ctx.logger.error({ err, cid: this.cid }, 'unexpected error handling a client frame');
      this.close(CloseCode.INTERNAL_ERROR, 'internal error', 'internal_error');
    }
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    this.lastSeen = Date.now();
    if (this.closed) return;
    if (isBinary && !isUtf8(data)) {
      this.inOrder(() => this.error({ code: ErrorCode.BAD_REQUEST }, 'bad data format: binary frame is not UTF-8 JSON'));
      return;
    }
    const text = data.toString('utf8');
    if (isPing(text)) {
      this.enqueue(PONG_FRAME);
      return;
    }
    const req = parseRequest(text);
    if (req.code === 'heart') {
      this.enqueue(textFrame(heartReply(req.ackId, this.cid, Date.now())));
      return;
    }
    if (req.code === ErrorCode.BAD_REQUEST) {
      this.inOrder(() => this.error(req, req.detail));
      return;
    }
    const pid = this.session.pid;
    const rate = this.ctx.projects.get(pid)?.limits.requestsPerSecond;
    if (rate !== undefined && !this.ctx.requestRates.take(pid, rate)) {
      this.ctx.metrics.limitRejections.inc({ pid, limit: 'requests' });
      this.inOrder(() => this.error({ ...req, code: ErrorCode.RATE_LIMITED }, `project "${pid}" allows ${rate} requests per second`));
      return;
    }
    if (this.pending >= MAX_PENDING_REQUESTS || this.pendingBytes + data.length > MAX_PENDING_REQUEST_BYTES) {
      this.ctx.metrics.limitRejections.inc({ pid, limit: 'pending_requests' });
      const detail = `too many requests in flight (at most ${MAX_PENDING_REQUESTS}, ${MAX_PENDING_REQUEST_BYTES} bytes)`;
      const refused = { ...req, code: ErrorCode.RATE_LIMITED };
      this.inOrder(() => this.error(refused, detail));
      return;
    }
    this.enqueueRequest(req, data.length);
  }

  /** Runs a reply behind the requests still pending, so replies keep request order. */
  private inOrder(send: () => void): void {
    if (this.pending === 0) send();
    else this.chain = this.chain.then(send);
  }

  /**
   * Requests run one at a time so replies come back in request order. A client that sends
   * faster than they complete (pipelined subscribes, a slow login) has them queued, up to
   * MAX_PENDING_REQUESTS / MAX_PENDING_REQUEST_BYTES.
   */
  private enqueueRequest(req: Request | WscMessage, bytes = 0): void {
    this.run(() => this.execute(req), bytes);
  }

  /** Queues `work` behind everything pending on this connection. */
  private run(work: () => Promise<void>, bytes = 0): void {
    this.pending++;
    this.pendingBytes += bytes;
    if (!this.busy && (this.pending >= PAUSE_AT_REQUESTS || this.pendingBytes >= PAUSE_AT_BYTES)) {
      this.busy = true;
      this.readState();
    }
    this.chain = this.chain
      .then(work)
      .catch((err: unknown) => this.ctx.logger.error({ err, cid: this.cid }, 'request failed'))
      .finally(() => {
        this.pending--;
        this.pendingBytes -= bytes;
        this.lastSeen = Date.now();
        if (this.busy && this.pending <= PAUSE_AT_REQUESTS / 2 && this.pendingBytes <= PAUSE_AT_BYTES / 2) {
          this.busy = false;
          this.readState();
        }
        this.holdBackRequests();
      });
  }

  /** Reads while neither reason to stop (busy, held) holds. */
  private readState(): void {
    if (this.closed) return;
    if (this.busy || this.held) this.ws.pause();
    else this.ws.resume();
  }

  /**
   * A client pipelining requests faster than it reads the replies: past half the queue bound,
   * the node stops reading until the kernel has taken every reply (TCP back-pressure on the
   * client's own fault), so a flood is slowed to the client's reading pace instead of being
   * closed 3008. Deliveries never stop reading.
   */
  private holdBackRequests(): void {
    if (this.held || this.closed || this.backlog() <= this.ctx.maxQueueBytes / 2) return;
    this.held = true;
    this.readState();
  }

  private readonly releaseRequests = (): void => {
    if (!this.held) return;
    this.held = false;
    this.lastSeen = Date.now();
    this.readState();
  };

  private async execute(req: Request | WscMessage): Promise<void> {
    if (this.closed) return;
    if (req.code === 'wsc') {
      // ws-cluster: from a user a request to the backends, from a server a push to `to`.
      return this.wscAnswer(req, await (this.link.isServer ? this.link.serverPush(req) : this.link.request(req.affairId, 'wsc', req.type, req.payload)));
    }
    const { hub } = this.ctx;
    const s = this.session;
    switch (req.code) {
      case 1:
        if (this.overSubscribed(topicChannel(s.pid, req.topic))) return this.tooManySubscriptions(req);
        await hub.subscribe(s, req.topic);
        return this.ok(ReplyCode.SUBSCRIBED, req);
      case 2:
        hub.unsubscribe(s, req.topic);
        return this.ok(ReplyCode.UNSUBSCRIBED, req);
      case 3:
        return this.login(req);
      case 4:
        hub.logout(s);
        return this.ok(ReplyCode.LOGGED_OUT, req);
      case 5:
        if (s.uid === undefined) return this.error({ ...req, code: ErrorCode.NOT_LOGGED_IN });
        if (this.overSubscribed(privateChannel(s.pid, s.uid, req.topic))) return this.tooManySubscriptions(req);
        await hub.subscribePrivate(s, s.uid, req.topic);
        return this.ok(ReplyCode.SUBSCRIBED, req);
      case 6:
        if (s.uid === undefined) return this.error({ ...req, code: ErrorCode.NOT_LOGGED_IN });
        hub.unsubscribePrivate(s, s.uid, req.topic);
        return this.ok(ReplyCode.UNSUBSCRIBED, req);
      case 7: {
        const failed = await this.link.request(req.id, 'gpush', req.topic, req.data);
        return failed === undefined ? this.ok(ReplyCode.ACCEPTED, req) : this.error({ ...req, code: failed.code }, failed.detail);
      }
    }
  }

  private overSubscribed(channel: string): boolean {
    return overSubscriptionLimit(this.session, channel, this.ctx.maxSubscriptions);
  }

  private tooManySubscriptions(req: Request): void {
    this.ctx.metrics.limitRejections.inc({ pid: this.session.pid, limit: 'subscriptions' });
    this.error({ ...req, code: ErrorCode.TOO_MANY_SUBSCRIPTIONS }, subscriptionLimitDetail(this.ctx.maxSubscriptions));
  }

  /** ws-cluster answers: an ack (or failed ack) when `ack_id` was given, else errors only. */
  private wscAnswer(m: WscMessage, failed: Failure | undefined): void {
    if (failed !== undefined) this.ctx.metrics.clientErrors.inc({ code: String(failed.code) });
    if (m.ackId !== undefined) this.enqueue(textFrame(wscAck(m.ackId, failed?.code ?? 0, failed?.detail)));
    else if (failed !== undefined) this.send(reply(failed.code, m.affairId === undefined ? {} : { id: m.affairId }, failed.detail));
  }

  private async login(req: Extract<Request, { code: 3 }>): Promise<void> {
    if (this.link.isServer) return this.error({ ...req, code: ErrorCode.AUTH_FAILED }, 'a server connection keeps its identity');
    let identity: Identity;
    try {
      // Looked up per login: a reload may have changed the project's keys (or removed it).
      const project = this.ctx.projects.get(this.session.pid);
      if (project === undefined) throw new AuthError(`project "${this.session.pid}" no longer exists`);
      identity = await project.authenticator.authenticate(req.token);
    } catch (err) {
      this.ctx.metrics.logins.inc({ result: 'failed' });
      const detail = err instanceof AuthError ? err.message : 'token verification failed';
      if (!(err instanceof AuthError)) this.ctx.logger.error({ err, cid: this.cid }, 'authenticator failed');
      return this.error({ ...req, code: ErrorCode.AUTH_FAILED }, detail);
    }
    if (this.closed) return; // closed while the token was checked: touch nothing
    this.ctx.metrics.logins.inc({ result: 'ok' });
    if (identity.server !== undefined) return this.becomeServer(req, identity.server.group);
    await this.ctx.hub.login(this.session, identity.uid);
    this.ok(ReplyCode.LOGGED_IN, req);
  }

  /** A business backend's login (ws-cluster "server" type): a consumer of `group`, not a user. */
  private async becomeServer(req: Extract<Request, { code: 3 }>, group: string): Promise<void> {
    try {
      if (!(await this.link.becomeServer(group, () => !this.closed))) return;
    } catch (err) {
      return this.error({ ...req, code: ErrorCode.UNAVAILABLE }, (err as Error).message);
    }
    this.ctx.hub.logout(this.session);
    this.ok(ReplyCode.LOGGED_IN, req);
  }

  private ok(code: number, req: Request): void {
    this.send(reply(code, req));
  }

  private error(req: { code: number; topic?: string; id?: string | number }, detail?: string): void {
    this.ctx.metrics.clientErrors.inc({ code: String(req.code) });
    this.send(reply(req.code, req, detail));
  }

  private send(r: Reply): void {
    this.enqueue(textFrame(JSON.stringify(r)));
  }

  /** Queues a frame for the next write; deliveries are `delayable` (see WriteSchedule). */
  private enqueue(frame: Buffer, delayable = false): void {
    if (this.closed) return;
    if (!this.outbox.push(frame)) {
      this.closeSlow();
      return;
    }
    this.schedule.queued(delayable);
  }

  /** Over --max-queue-bytes: drop what is queued and close; nobody else waits for this client. */
  private closeSlow(): void {
    this.closed = true;
    this.link.closingStarted();
    this.closeReason = 'slow_consumer';
    this.outbox.clear();
    this.ctx.metrics.slowConsumerCloses.inc();
    this.ws.close(CloseCode.SLOW_CONSUMER, 'slow consumer');
    setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  private onClose(code: number): void {
    this.closed = true;
    this.outbox.clear();
    this.link.closed(this.session.uid);
    this.ctx.hub.remove(this.session);
    this.ctx.metrics.connectionsClosed.inc({ reason: this.closeReason ?? (code === 1006 ? 'abnormal' : 'client') });
    this.ctx.onClosed(this);
  }
}

function errorReason(code: string | undefined): string {
  switch (code) {
    case 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH':
      return 'message_too_big';
    case 'WS_ERR_INVALID_UTF8':
      return 'invalid_utf8';
    default:
      return 'protocol_error';
  }
}
