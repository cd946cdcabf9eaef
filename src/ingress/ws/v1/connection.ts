import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import type { Position } from '../../../cluster/bus.js';
import { AuthError } from '../../../core/auth/auth-error.js';
import type { BackendRouter } from '../../../core/backend/router.js';
import type { ChannelEvent } from '../../../core/channel-events.js';
import type { ChannelMembers } from '../../../core/channel-members.js';
import type { ChannelOptions } from '../../../core/channels/options.js';
import { MAX_HISTORY_READ } from '../../../core/channels/options.js';
import type { ChannelHistory } from '../../../core/history.js';
import type { Hub } from '../../../core/hub.js';
import type { Message, Outbound } from '../../../core/message.js';
import type { Publisher } from '../../../core/publisher.js';
import type { RateLimiter } from '../../../core/projects/rate-limiter.js';
import type { ProjectRegistry } from '../../../core/projects/registry.js';
import { Session, type Sink } from '../../../core/session.js';
import { PositionedSubscriptions } from '../../../core/recovery.js';
import { overSubscriptionLimit, subscriptionLimitDetail } from '../../../core/subscription-limit.js';
import { privateChannel, topicChannel, userChannel } from '../../../core/targeting.js';
import type { Metrics } from '../../../observability/metrics.js';
import { ClientFrame, type Publication, type ServerMessage } from '../../../../gen/pushwire/v1/client.js';
import { BackendLink } from '../backend-link.js';
import { TOO_DEEP, nestsDeeperThan } from '../../json-depth.js';
import { CloseCode } from '../close-codes.js';
import { ErrorCode, MESSAGES as LEGACY_MESSAGES } from '../codec.js';
import type { Flusher } from '../flusher.js';
import { SocketOutbox } from '../socket-outbox.js';
import { WriteSchedule } from '../write-schedule.js';
import { protoCommand, validateCommand, type V1Command } from './commands.js';
import { messageFrame, publicationOf, type V1Format } from './encode.js';
import { channelEventJson, channelEventProto } from './channel-event-frames.js';

export interface V1Context {
  hub: Hub;
  history: ChannelHistory;
  /** Channel presence and join/leave (namespace options presence, joinLeave). */
  members: ChannelMembers;
  backends: BackendRouter;
  publisher: Publisher;
  projects: ProjectRegistry;
  metrics: Metrics;
  logger: Logger;
  flusher: Flusher;
  nodeId: string;
  /** Publication frames, one encoder per format for the node, so Outbound caches each once. */
  encodeJson: (m: Message) => Buffer;
  encodeProto: (m: Message) => Buffer;
  maxQueueBytes: number;
  requestRates: RateLimiter;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  /** Topics (public and private) one connection may hold at once, as legacy: beyond it subscribes get 30007. */
  maxSubscriptions: number;
  onClosed: (conn: V1Connection) => void;
}

/** v1 codes beyond the legacy catalogue (docs/protocol.md). */
export const V1Code = { NOT_AVAILABLE: 30009, INSUFFICIENT_STATE: 30010 } as const;

const MESSAGES: Readonly<Record<number, string>> = { ...LEGACY_MESSAGES, 30009: 'not available', 30010: 'insufficient state' };

const PAUSE_AT = 64;
const MAX_PENDING_COMMANDS = 4096;
const CLOSE_GRACE_MS = 2000;
/**
 * A protocol v1 connection (pushwire.v1.json or pushwire.v1.proto): commands with ids,
 * positioned subscriptions with recovery, server pings and disconnect advice. Same bounded
 * queue and once-per-turn writes as the legacy connection.
 */
export class V1Connection implements Sink {
  readonly session: Session;
  private lastSeen = Date.now();
  private pingSentAt = 0;
  private lastPing = Date.now();
  private readonly outbox: SocketOutbox;
  private readonly schedule: WriteSchedule;
  private closed = false;
  private closeReason: string | undefined;
  private connected = false;
  private pending = 0;
  private paused = false;
  private chain: Promise<void> = Promise.resolve();
  /** Positioned subscriptions by hub channel, keyed for the client by (channel, private). */
  private readonly subs = new PositionedSubscriptions<{ channel: string; private: boolean }>((sub) =>
    this.send({
      id: 0,
      unsubscribed: { channel: sub.key.channel, private: sub.key.private, code: V1Code.INSUFFICIENT_STATE, reason: 'insufficient state', resubscribe: true },
    }),
  );
  private readonly link: BackendLink;
  /** Hub channels the client subscribed to (answered), the ones whose join/leave it receives. */
  private readonly subscribed = new Set<string>();

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    cid: string,
    pid: string,
    private readonly format: V1Format,
    private readonly urlToken: string | undefined,
    private readonly ctx: V1Context,
  ) {
    this.session = new Session(cid, pid, this);
    this.outbox = new SocketOutbox(socket, ctx.flusher, ctx.maxQueueBytes);
    this.schedule = new WriteSchedule(this, ctx.flusher, () => ctx.projects.get(pid)?.writeDelayMs ?? 0);
    this.link = new BackendLink(this.session, ctx.backends, ctx.publisher, () => {});
    ws.on('message', (data: Buffer, isBinary: boolean) => this.guarded(data, isBinary));
    ws.on('ping', this.touch);
    ws.on('pong', this.touch);
    ws.on('error', (err: Error & { code?: string }) => {
      this.closeReason ??= err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'message_too_big' : err.code === 'WS_ERR_INVALID_UTF8' ? 'invalid_utf8' : 'protocol_error';
    });
    ws.on('close', (code: number) => this.onClose(code));
  }

  get cid(): string {
    return this.session.cid;
  }

  get pid(): string {
    return this.session.pid;
  }

  /** v1 connections are always clients. */
  readonly isServer = false;

  backlog(): number {
    return this.outbox.backlog();
  }

  private readonly touch = (): void => {
    this.lastSeen = Date.now();
  };

  /**
   * The node's keepalive tick: a ping every ping interval; a connection that sent nothing
   * within the pong timeout after a ping is closed 3001. Reading paused by us is not silence.
   */
  keepalive(now: number): void {
    if (this.closed) return;
    if (this.pingSentAt !== 0 && !this.paused && this.lastSeen < this.pingSentAt && now - this.pingSentAt >= this.ctx.pongTimeoutMs) {
      this.close(CloseCode.PING_TIMEOUT, 'ping timeout', 'ping_timeout');
      return;
    }
    if (now - this.lastPing >= this.ctx.pingIntervalMs) {
      this.lastPing = now;
      if (this.pingSentAt === 0 || this.lastSeen >= this.pingSentAt) this.pingSentAt = now;
      this.send({ id: 0, ping: {} });
    }
  }

  deliver(out: Outbound): void {
    const m = out.message;
    if (m.replyTo !== undefined) {
      const id = Number(m.replyTo);
      if (Number.isInteger(id) && id > 0) this.send({ id: 0, reply: { id, data: m.data } });
      return;
    }
    if (m.offset !== undefined && !this.subs.admit(m)) return;
    this.enqueue(out.encoded(this.format === 'json' ? this.ctx.encodeJson : this.ctx.encodeProto), true);
  }

  gap(channel: string): void {
    this.subs.gap(channel);
  }

  /** A join/leave on a channel this client subscribed to; the frame is shared by the node's subscribers. */
  channelEvent(event: ChannelEvent): void {
    if (!this.subscribed.has(event.data.hubChannel)) return;
    this.enqueue(event.encoded(this.format === 'json' ? channelEventJson : channelEventProto), true);
  }

  flush(): number {
    this.schedule.flushed();
    return this.outbox.write(this.ws.readyState === WebSocket.OPEN);
  }

  /** Sends the disconnect advice, flushes, closes with `code`. */
  close(code: number, reason: string, metricReason: string): void {
    if (this.closed) return;
    this.send({ id: 0, disconnect: { code, reason, reconnect: code === CloseCode.SERVICE_RESTART || (code >= 3000 && code < 3500) } });
    this.flush();
    this.closed = true;
    this.link.closingStarted();
    this.closeReason = metricReason;
    this.ws.close(code, reason);
    setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  /**
   * Nothing a client sends may escape as an exception (ws emits 'message' from the socket's data
   * handler, where a throw ends the process): a bug met here closes this connection with 1011.
   */
  private guarded(data: Buffer, isBinary: boolean): void {
    try {
      this.onMessage(data, isBinary);
    } catch (err) {
      this.ctx.logger.error({ err, cid: this.cid }, 'unexpected error handling a client frame');
      this.close(CloseCode.INTERNAL_ERROR, 'internal error', 'internal_error');
    }
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    this.lastSeen = Date.now();
    if (this.closed) return;
    for (const cmd of this.decode(data, isBinary)) {
      if (cmd.kind === 'pong') continue;
      if (cmd.kind === 'bad') {
        this.inOrder(() => this.error(cmd.id, ErrorCode.BAD_REQUEST, cmd.detail));
        continue;
      }
      if (cmd.kind === 'ping') {
        this.inOrder(() => this.send({ id: cmd.id, pong: {} }));
        continue;
      }
      const rate = this.ctx.projects.get(this.pid)?.limits.requestsPerSecond;
      if (rate !== undefined && !this.ctx.requestRates.take(this.pid, rate)) {
        this.ctx.metrics.limitRejections.inc({ pid: this.pid, limit: 'requests' });
        this.inOrder(() => this.error(cmd.id, ErrorCode.RATE_LIMITED, `project "${this.pid}" allows ${rate} requests per second`));
        continue;
      }
      if (this.pending >= MAX_PENDING_COMMANDS) {
        this.inOrder(() => this.error(cmd.id, ErrorCode.BAD_REQUEST, `too many commands in flight (at most ${MAX_PENDING_COMMANDS})`));
        continue;
      }
      this.run(() => this.execute(cmd));
    }
  }

  private decode(data: Buffer, isBinary: boolean): V1Command[] {
    if (this.format === 'proto') {
      if (!isBinary) return [{ kind: 'bad', id: 0, detail: 'wrong frame type for pushwire.v1.proto: send binary frames' }];
      let frame: ClientFrame;
      try {
        frame = ClientFrame.decode(data);
      } catch {
        return [{ kind: 'bad', id: 0, detail: 'bad data format: not a pushwire.v1.ClientFrame' }];
      }
      if (frame.commands.length === 0) return [{ kind: 'bad', id: 0, detail: 'bad data format: a ClientFrame without commands' }];
      return frame.commands.map((c) => validateCommand(protoCommand(c), false));
    }
    if (isBinary) return [{ kind: 'bad', id: 0, detail: 'wrong frame type for pushwire.v1.json: send text frames' }];
    const out: V1Command[] = [];
    for (const line of data.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      // Before parsing: request data is serialised again for the backends (see json-depth.ts).
      if (nestsDeeperThan(line)) {
        out.push({ kind: 'bad', id: 0, detail: `bad data format: ${TOO_DEEP}` });
        continue;
      }
      let raw: unknown;
      try {
        raw = JSON.parse(line);
      } catch {
        out.push({ kind: 'bad', id: 0, detail: 'bad data format: not JSON' });
        continue;
      }
      out.push(validateCommand(raw, true));
    }
    if (out.length === 0) out.push({ kind: 'bad', id: 0, detail: 'bad data format: not JSON' });
    return out;
  }

  private inOrder(work: () => void): void {
    if (this.pending === 0) work();
    else this.chain = this.chain.then(work);
  }

  private run(work: () => Promise<void>): void {
    this.pending++;
    if (this.pending === PAUSE_AT && !this.paused) {
      this.paused = true;
      this.ws.pause();
    }
    this.chain = this.chain
      .then(work)
      .catch((err: unknown) => this.ctx.logger.error({ err, cid: this.cid }, 'v1 command failed'))
      .finally(() => {
        this.pending--;
        if (this.paused && this.pending <= PAUSE_AT / 2) {
          this.paused = false;
          this.lastSeen = Date.now();
          if (!this.closed) this.ws.resume();
        }
      });
  }

  private async execute(cmd: Exclude<V1Command, { kind: 'bad' | 'pong' | 'ping' }>): Promise<void> {
    if (this.closed) return;
    if (cmd.kind === 'connect') return this.connect(cmd);
    if (!this.connected) return this.error(cmd.id, ErrorCode.BAD_REQUEST, 'send connect first');
    switch (cmd.kind) {
      case 'subscribe':
        return this.subscribe(cmd);
      case 'unsubscribe':
        return this.unsubscribe(cmd);
      case 'history':
        return this.history(cmd);
      case 'presence':
        return this.presence(cmd);
      case 'request': {
        const failed = await this.link.request(cmd.id, 'gpush', cmd.route || undefined, cmd.data);
        if (failed !== undefined) return this.error(cmd.id, failed.code, failed.detail);
        return this.send({ id: cmd.id, request: {} });
      }
    }
  }

  private async connect(cmd: Extract<V1Command, { kind: 'connect' }>): Promise<void> {
    if (this.connected) return this.error(cmd.id, ErrorCode.BAD_REQUEST, 'already connected');
    const token = cmd.token || this.urlToken;
    let uid: string | undefined;
    if (token) {
      try {
        const project = this.ctx.projects.get(this.pid);
        if (project === undefined) throw new AuthError(`project "${this.pid}" no longer exists`);
        const identity = await project.authenticator.authenticate(token);
        if (identity.server !== undefined) throw new AuthError('server tokens connect with the legacy protocol');
        uid = identity.uid;
      } catch (err) {
        this.ctx.metrics.logins.inc({ result: 'failed' });
        if (!(err instanceof AuthError)) this.ctx.logger.error({ err, cid: this.cid }, 'authenticator failed');
        return this.error(cmd.id, ErrorCode.AUTH_FAILED, err instanceof AuthError ? err.message : 'token verification failed');
      }
      this.ctx.metrics.logins.inc({ result: 'ok' });
    }
    if (this.closed) return;
    await this.ctx.hub.add(this.session);
    if (uid !== undefined) await this.ctx.hub.login(this.session, uid);
    if (this.closed) return;
    this.connected = true;
    this.link.announce();
    this.send({
      id: cmd.id,
      connect: {
        client: this.cid,
        user: uid ?? '',
        node: this.ctx.nodeId,
        ping: Math.round(this.ctx.pingIntervalMs / 1000),
        pong: Math.round(this.ctx.pongTimeoutMs / 1000),
      },
    });
  }

  /** The hub channel a v1 (channel, private) names; undefined (after the 30002 reply) without login. */
  private resolve(id: number, channel: string, priv: boolean): string | undefined {
    const uid = this.session.uid;
    if (!priv) return topicChannel(this.pid, channel);
    if (uid === undefined) {
      this.error(id, ErrorCode.NOT_LOGGED_IN, channel === '' ? "the user's channel needs login" : 'a private channel needs login');
      return undefined;
    }
    return channel === '' ? userChannel(this.pid, uid) : privateChannel(this.pid, uid, channel);
  }

  private async subscribe(cmd: Extract<V1Command, { kind: 'subscribe' }>): Promise<void> {
    const hubChannel = this.resolve(cmd.id, cmd.channel, cmd.private);
    if (hubChannel === undefined) return;
    // The user's own channel is held from connect on and is not a topic: never over the limit.
    if (!(cmd.private && cmd.channel === '') && overSubscriptionLimit(this.session, hubChannel, this.ctx.maxSubscriptions)) {
      this.ctx.metrics.limitRejections.inc({ pid: this.pid, limit: 'subscriptions' });
      return this.error(cmd.id, ErrorCode.TOO_MANY_SUBSCRIPTIONS, subscriptionLimitDetail(this.ctx.maxSubscriptions));
    }
    const options = this.ctx.history.options(this.pid, cmd.private ? this.session.uid! : '', cmd.channel);
    const history = options.history;
    const wasRecovering = cmd.since !== undefined;
    if (history === undefined) {
      this.subs.delete(hubChannel);
      if (!(cmd.private && cmd.channel === '')) await this.ctx.hub.joinChannel(this.session, hubChannel);
      if (this.closed) return;
      this.send({ id: cmd.id, subscribe: result({ wasRecovering }) });
      return this.joined(hubChannel, cmd, options);
    }
    // Joined before history is read: publications from now on are buffered and merged by offset.
    const sub = this.subs.begin(hubChannel, { channel: cmd.channel, private: cmd.private });
    if (!(cmd.private && cmd.channel === '')) await this.ctx.hub.joinChannel(this.session, hubChannel);
    const recover = wasRecovering && options.recover;
    let page;
    try {
      page = await this.ctx.history.read(hubChannel, history, recover ? { since: cmd.since, limit: MAX_HISTORY_READ, reverse: false } : { limit: 1, reverse: true });
    } catch (err) {
      if (this.subs.current(hubChannel, sub)) this.subs.delete(hubChannel);
      return this.error(cmd.id, ErrorCode.UNAVAILABLE, `history unavailable: ${(err as Error).message}`);
    }
    if (this.closed || !this.subs.current(hubChannel, sub)) return;
    const recovered = recover && page.complete;
    if (wasRecovering) this.ctx.metrics.recoveries.inc({ result: recovered ? 'recovered' : 'not_recovered' });
    const publications: Publication[] = recovered ? page.publications.map(publicationOf) : [];
    this.send({
      id: cmd.id,
      subscribe: result({ positioned: true, recoverable: options.recover, epoch: page.epoch, offset: String(page.offset), wasRecovering, recovered, publications }),
    });
    this.joined(hubChannel, cmd, options);
    const encode = this.format === 'json' ? this.ctx.encodeJson : this.ctx.encodeProto;
    this.subs.settle(sub, page, (m) => this.enqueue(encode(m), true));
  }

  /** The subscribe answer is out: join/leave flow to the client, and the subscription counts as presence. */
  private joined(hubChannel: string, cmd: { channel: string; private: boolean }, options: ChannelOptions): void {
    this.subscribed.add(hubChannel);
    this.ctx.members.subscribed(this.session, hubChannel, cmd.channel, cmd.private, options);
  }

  private unsubscribe(cmd: Extract<V1Command, { kind: 'unsubscribe' }>): void {
    const hubChannel = this.resolve(cmd.id, cmd.channel, cmd.private);
    if (hubChannel === undefined) return;
    this.subs.delete(hubChannel);
    this.subscribed.delete(hubChannel);
    this.ctx.members.unsubscribed(this.session, hubChannel);
    // The user's own channel stays joined while logged in (as in the legacy protocol).
    if (!(cmd.private && cmd.channel === '')) this.ctx.hub.leaveChannel(this.session, hubChannel);
    this.send({ id: cmd.id, unsubscribe: {} });
  }

  /** Who is subscribed to the channel, cluster-wide: a channel the client may subscribe to, in a namespace with presence. */
  private async presence(cmd: Extract<V1Command, { kind: 'presence' }>): Promise<void> {
    const hubChannel = this.resolve(cmd.id, cmd.channel, cmd.private);
    if (hubChannel === undefined) return;
    if (!this.ctx.history.options(this.pid, cmd.private ? this.session.uid! : '', cmd.channel).presence) {
      return this.error(cmd.id, V1Code.NOT_AVAILABLE, 'presence is not enabled for this channel');
    }
    let clients;
    try {
      clients = await this.ctx.members.list(hubChannel, cmd.channel, cmd.private);
    } catch (err) {
      return this.error(cmd.id, ErrorCode.UNAVAILABLE, `presence unavailable: ${(err as Error).message}`);
    }
    this.send({ id: cmd.id, presence: { clients } });
  }

  private async history(cmd: Extract<V1Command, { kind: 'history' }>): Promise<void> {
    const hubChannel = this.resolve(cmd.id, cmd.channel, cmd.private);
    if (hubChannel === undefined) return;
    const history = this.ctx.history.options(this.pid, cmd.private ? this.session.uid! : '', cmd.channel).history;
    if (history === undefined) return this.error(cmd.id, V1Code.NOT_AVAILABLE, 'this channel keeps no history');
    let page;
    try {
      page = await this.ctx.history.read(hubChannel, history, { since: cmd.since, limit: cmd.limit, reverse: cmd.reverse });
    } catch (err) {
      return this.error(cmd.id, ErrorCode.UNAVAILABLE, `history unavailable: ${(err as Error).message}`);
    }
    if (cmd.since !== undefined && !sameStream(cmd.since, page.epoch)) {
      return this.error(cmd.id, V1Code.INSUFFICIENT_STATE, `since names epoch "${cmd.since.epoch}", the stream's is "${page.epoch}"`);
    }
    this.send({ id: cmd.id, history: { publications: page.publications.map(publicationOf), epoch: page.epoch, offset: String(page.offset) } });
  }

  private error(id: number, code: number, detail: string): void {
    this.ctx.metrics.clientErrors.inc({ code: String(code) });
    this.send({ id, error: { code, message: MESSAGES[code] ?? 'error', detail } });
  }

  private send(m: ServerMessage): void {
    this.enqueue(messageFrame(this.format, m));
  }

  /** Queues a frame for the next write; publications are `delayable` (the project's write delay, see WriteSchedule). */
  private enqueue(frame: Buffer, delayable = false): void {
    if (this.closed) return;
    if (!this.outbox.push(frame)) {
      this.closeSlow();
      return;
    }
    this.schedule.queued(delayable);
  }

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
    this.subs.clear();
    this.subscribed.clear();
    this.ctx.members.disconnected(this.session);
    this.link.closed(this.session.uid);
    this.ctx.hub.remove(this.session);
    this.ctx.metrics.connectionsClosed.inc({ reason: this.closeReason ?? (code === 1006 ? 'abnormal' : 'client') });
    this.ctx.onClosed(this);
  }
}

/** A since position belongs to the stream of `epoch` (a {0, ""} position precedes every epoch). */
function sameStream(since: Position, epoch: string): boolean {
  return since.epoch === epoch || (since.epoch === '' && since.offset === 0);
}

function result(r: Partial<import('../../../../gen/pushwire/v1/client.js').SubscribeResult>) {
  return {
    positioned: false,
    recoverable: false,
    epoch: '',
    offset: '0',
    wasRecovering: false,
    recovered: false,
    publications: [],
    ...r,
  };
}
