import type { BackendRouter, Consumer } from '../../core/backend/router.js';
import { Code, PushwireError } from '../../core/errors.js';
import type { Publisher } from '../../core/publisher.js';
import type { Session } from '../../core/session.js';
import { PendingRequests, replyFrame, serverEventFrame, type Dialect } from './backend-frames.js';
import { ErrorCode, type RequestId, type WscMessage } from './codec.js';

/** Why a backend request or server push went nowhere: the error code and detail to answer. */
export interface Failure {
  code: number;
  detail: string;
}

/**
 * One WebSocket connection's side of the backend streams: the requests it sends and the reply
 * frames they get, its connect/disconnect events, and, once a server token logged it in, its
 * consumer registration (then it is a business backend, not a user).
 */
export class BackendLink {
  /** Created by the first request: most connections never send one. */
  private requests: PendingRequests | undefined;
  private consumer: Consumer | undefined;
  /** Backends were told this client connected, so they must be told when it leaves. */
  private announced = false;
  /** The connection is closing: events routed to its consumer go to another one. */
  private closing = false;

  constructor(
    private readonly session: Session,
    private readonly backends: BackendRouter,
    private readonly publisher: Publisher,
    /** Queues a text frame on the connection. */
    private readonly sendText: (text: string) => void,
  ) {}

  get isServer(): boolean {
    return this.consumer !== undefined;
  }

  /** A push with reply_to, framed for this connection: its request's id and dialect. */
  replyFrame(replyTo: string, data: Buffer): string {
    return replyFrame(PendingRequests.lookup(this.requests, replyTo), data);
  }

  /**
   * Hands a client request to the backends; resolves with the failure to answer when it went
   * nowhere. The id is remembered first, so a reply can never overtake it.
   */
  async request(id: RequestId | undefined, dialect: Dialect, topic: string | undefined, data: Buffer): Promise<Failure | undefined> {
    if (this.consumer !== undefined) return { code: ErrorCode.BAD_REQUEST, detail: 'server connections do not send requests' };
    if (id !== undefined) (this.requests ??= new PendingRequests()).remember(id, dialect);
    try {
      const reached = await this.backends.request(this.session, { requestId: id === undefined ? '' : String(id), topic, data });
      if (reached === 0) return { code: ErrorCode.NO_BACKEND, detail: `no backend of project "${this.session.pid}" is connected` };
      return undefined;
    } catch (err) {
      if (err instanceof PushwireError && err.code === Code.DEADLINE_EXCEEDED) return { code: ErrorCode.OUTCOME_UNKNOWN, detail: err.message };
      return { code: ErrorCode.UNAVAILABLE, detail: err instanceof PushwireError ? err.message : 'cluster unavailable' };
    }
  }

  /**
   * A server connection's `{affair_id, to:{cids,uids}, payload}`: a push to those connections
   * of its project, received as a reply to `affair_id`.
   */
  async serverPush(m: WscMessage): Promise<Failure | undefined> {
    const to = m.to;
    if (to === undefined || to.cids.length + to.uids.length === 0) {
      return { code: ErrorCode.BAD_REQUEST, detail: 'a server message needs "to": {"cids":[...]} and/or {"uids":[...]}' };
    }
    const pid = this.session.pid;
    const push = { uid: '', topic: '', data: m.payload, pid, cids: to.cids, uids: to.uids };
    try {
      await this.publisher.push(m.affairId === undefined ? push : { ...push, replyTo: String(m.affairId) }, 'ws_server', pid);
      return undefined;
    } catch (err) {
      if (!(err instanceof PushwireError)) return { code: ErrorCode.BAD_REQUEST, detail: 'push failed' };
      const code =
        err.code === Code.UNAVAILABLE
          ? ErrorCode.UNAVAILABLE
          : err.code === Code.DEADLINE_EXCEEDED
            ? ErrorCode.OUTCOME_UNKNOWN
            : err.code === Code.RESOURCE_EXHAUSTED
              ? ErrorCode.RATE_LIMITED
              : ErrorCode.BAD_REQUEST;
      return { code, detail: err.message };
    }
  }

  /**
   * A business backend's login: from now on the connection receives its project's client
   * events as a consumer of `group` (JSON frames, see serverEventFrame). Rejects (UNAVAILABLE)
   * when it could not be registered. `stillOpen` is asked once registered.
   */
  async becomeServer(group: string, stillOpen: () => boolean): Promise<boolean> {
    const consumer: Consumer = {
      id: this.backends.nextConsumerId(),
      pid: this.session.pid,
      group,
      deliver: (event) => (this.closing ? this.backends.handBack(event, group) : this.sendText(serverEventFrame(event))),
    };
    await this.backends.attach(consumer);
    if (!stillOpen()) {
      await this.backends.detach(consumer);
      return false;
    }
    // A user connection turning into a server stops being a client: backends hear it leave.
    if (this.announced) this.backends.clientDisconnected(this.session, this.session.uid);
    this.announced = false;
    this.consumer = consumer;
    return true;
  }

  /** The connection started closing: its consumer stops taking events at once. */
  closingStarted(): void {
    this.closing = true;
    if (this.consumer !== undefined) void this.backends.detach(this.consumer);
  }

  /** The client is established (its upgrade login done): backends hear `connect`. */
  announce(): void {
    if (this.consumer !== undefined) return;
    this.announced = true;
    this.backends.clientConnected(this.session);
  }

  /** The connection closed; `uid` is who it was logged in as. */
  closed(uid: string | undefined): void {
    if (this.announced) this.backends.clientDisconnected(this.session, uid);
    if (this.consumer !== undefined) void this.backends.detach(this.consumer);
  }
}
