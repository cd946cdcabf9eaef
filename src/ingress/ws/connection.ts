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
  onClosed: (conn: WsConnection) => void;
}

/** Requests waiting or running at which the socket stops being read, until half have drained. */
const PAUSE_AT = 64;
/**
 * Safety net: ws may still emit frames it had already read when paused. Beyond this many
 * pending requests they are refused (30001) instead of queued without bound.
 */
const MAX_PENDING_REQUESTS = 4096;
/** Bytes above which a flush hands the frames to writev instead of copying them into one buffer. */
const CONCAT_LIMIT = 64 * 1024;
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
  private queue: Buffer[] = [];
  private queued = 0;
  /** With the Flusher: no, for the end of this turn, or for the project's write delay. */
  private scheduled: 'no' | 'turn' | 'delay' = 'no';
  private closed = false;
  private closeReason: string | undefined;
  private pending = 0;
  private paused = false;
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
    this.link = new BackendLink(this.session, ctx.backends, ctx.publisher, (text) => this.enqueue(textFrame(text)));
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on('ping', this.touch);
    ws.on('pong', this.touch);
    ws.on('error', (err: Error & { code?: string }) => {
      // ws closes the connection itself (1002/1007/1009) and emits this first.
      this.closeReason ??= errorReason(err.code);
    });
    ws.on('close', (code: number) => this.onClose(code));
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
    this.scheduled = 'no';
    if (this.queue.length === 0) return 0;
    const frames = this.queue;
    const bytes = this.queued;
    this.queue = [];
    this.queued = 0;
    // Once ws has sent a close frame (the client started closing), no data frame may follow it.
    if (this.ws.readyState !== WebSocket.OPEN) return 0;
    if (frames.length === 1) this.socket.write(frames[0]!);
    else if (bytes <= CONCAT_LIMIT) this.socket.write(this.ctx.flusher.combine(frames, bytes));
    else {
      this.socket.cork();
      for (const f of frames) this.socket.write(f);
      this.socket.uncork();
    }
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
    return this.queued + this.socket.writableLength;
  }

  /** Queues a text frame (bounded like every frame: a server that does not read is closed 3008). */
  sendText(text: string): void {
    this.enqueue(textFrame(text));
  }

  /** Silent since `cutoff`? A connection whose reading we paused is never idle. */
  idleSince(cutoff: number): boolean {
    return !this.paused && this.lastSeen < cutoff;
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
    if (this.pending >= MAX_PENDING_REQUESTS) {
      const detail = `too many requests in flight (at most ${MAX_PENDING_REQUESTS})`;
      this.inOrder(() => this.error({ ...req, code: ErrorCode.BAD_REQUEST }, detail));
      return;
    }
    this.enqueueRequest(req);
  }

  /** Runs a reply behind the requests still pending, so replies keep request order. */
  private inOrder(send: () => void): void {
    if (this.pending === 0) send();
    else this.chain = this.chain.then(send);
  }

  /**
   * Requests run one at a time so replies come back in request order. A client that sends
   * faster than they complete (pipelined subscribes, a slow login) is paused, not refused.
   */
  private enqueueRequest(req: Request | WscMessage): void {
    this.run(() => this.execute(req));
  }

  /** Queues `work` behind everything pending on this connection. */
  private run(work: () => Promise<void>): void {
    this.pending++;
    if (this.pending === PAUSE_AT && !this.paused) {
      this.paused = true;
      this.ws.pause();
    }
    this.chain = this.chain
      .then(work)
      .catch((err: unknown) => this.ctx.logger.error({ err, cid: this.cid }, 'request failed'))
      .finally(() => {
        this.pending--;
        if (this.paused && this.pending <= PAUSE_AT / 2) {
          this.paused = false;
          this.lastSeen = Date.now();
          if (!this.closed) this.ws.resume();
        }
      });
  }

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

  /**
   * Queues a frame for the next write. A delivery (`delayable`) of a project with a write delay
   * waits up to that long for others to share the write; anything else (replies, pongs) is
   * written at the end of this turn, taking the waiting deliveries along (order is kept).
   */
  private enqueue(frame: Buffer, delayable = false): void {
    if (this.closed) return;
    if (this.queued + this.socket.writableLength + frame.length > this.ctx.maxQueueBytes) {
      this.closeSlow();
      return;
    }
    this.queue.push(frame);
    this.queued += frame.length;
    if (this.scheduled === 'turn') return;
    if (delayable) {
      if (this.scheduled === 'delay') return;
      const delay = this.ctx.projects.get(this.session.pid)?.writeDelayMs ?? 0;
      if (delay > 0) {
        this.scheduled = 'delay';
        this.ctx.flusher.scheduleAfter(this, delay);
        return;
      }
    }
    this.scheduled = 'turn';
    this.ctx.flusher.schedule(this);
  }

  /** Over --max-queue-bytes: drop what is queued and close; nobody else waits for this client. */
  private closeSlow(): void {
    this.closed = true;
    this.link.closingStarted();
    this.closeReason = 'slow_consumer';
    this.queue = [];
    this.queued = 0;
    this.ctx.metrics.slowConsumerCloses.inc();
    this.ws.close(CloseCode.SLOW_CONSUMER, 'slow consumer');
    setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  private onClose(code: number): void {
    this.closed = true;
    this.queue = [];
    this.queued = 0;
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
