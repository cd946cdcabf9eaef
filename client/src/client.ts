import { backoffDelay } from './backoff.js';
import type { ClientInfo, Codec, Command, ConnectResult, HistoryResult, Method, PresenceResult, RawPublication, Result, ServerMessage, StreamPosition } from './codec.js';
import { ReasonCode, ServerCode, closeAllowsReconnect } from './codes.js';
import { Emitter } from './emitter.js';
import { ErrorCode, PushwireError } from './errors.js';
import { jsonCodec } from './json-codec.js';
import { Subscription, subscriptionKey, type SubscriptionHost, type SubscriptionOptions } from './subscription.js';
import { OPEN, globalWebSocket, type WebSocketConstructor, type WebSocketLike } from './transport.js';

export type ClientState = 'disconnected' | 'connecting' | 'connected';

export interface ClientOptions {
  /** Login token (JWT or auth-callback token) sent in the connect command. @default anonymous */
  token?: string;
  /**
   * Called for a token before the first connect when `token` is not set, and again whenever the server
   * refuses the current one (30003 auth failed): the client then reconnects with the new token.
   */
  getToken?: () => string | Promise<string>;
  /** The WebSocket implementation. @default globalThis.WebSocket (browsers, Node >= 22) */
  websocket?: WebSocketConstructor;
  /** Wire encoding. @default JSON (`pushwire.v1.json`); `protobufCodec` from `@pushwire/client/protobuf` */
  codec?: Codec;
  /** Client name and version, sent in the connect command for the server's logs. @default 'pushwire-js', SDK version */
  name?: string;
  version?: string;
  /** Reconnect back-off base, ms: attempt n waits random [0, min(max, min * 2^n)). @default 500 */
  minReconnectDelay?: number;
  /** Reconnect back-off cap, ms. @default 20000 */
  maxReconnectDelay?: number;
  /** Timeout for the connect handshake and for each command (subscribe, request, history, presence), ms. @default 5000 */
  timeout?: number;
  /** Slack added to the server's ping + pong window before the connection is presumed dead, ms. @default 10000 */
  maxServerPingDelay?: number;
  /** In browsers: close at once when the browser goes offline, reconnect at once when it comes back. @default true */
  offlineHint?: boolean;
}

export interface StateEvent {
  state: ClientState;
  previous: ClientState;
}
export interface ConnectingEvent {
  code: number;
  reason: string;
}
export interface ConnectedEvent {
  client: string;
  user: string;
  node: string;
}
export interface DisconnectedEvent {
  code: number;
  reason: string;
}
export interface ErrorEvent {
  error: PushwireError;
}
/** A publication with no subscription of its own: a push to the user, a broadcast, a targeted push. */
export interface ServerPublication {
  channel: string;
  private: boolean;
  data: unknown;
  id?: string;
  time?: number;
  tags?: string[];
}

export interface ClientEvents {
  [event: string]: unknown;
  state: StateEvent;
  connecting: ConnectingEvent;
  connected: ConnectedEvent;
  disconnected: DisconnectedEvent;
  error: ErrorEvent;
  publication: ServerPublication;
}

export interface HistoryOptions {
  private?: boolean;
  /** Only publications after this position (its epoch must match the stream's). */
  since?: StreamPosition;
  /** At most this many. @default the server's limit (1000) */
  limit?: number;
  /** Newest first. @default false */
  reverse?: boolean;
  timeout?: number;
}

export interface Publication<T = unknown> {
  channel: string;
  data: T;
  offset?: number;
  epoch?: string;
  id?: string;
  time?: number;
  tags?: string[];
}

export interface History<T = unknown> {
  publications: Array<Publication<T>>;
  offset: number;
  epoch: string;
}

export interface RequestOptions {
  /** Route name handed to the backend. */
  route?: string;
  /** How long to wait for the backend's first reply, ms. @default options.timeout */
  timeout?: number;
}

export const SDK_VERSION = '0.1.0';

interface Pending {
  method: Method;
  resolve: (result: Result) => void;
  reject: (err: PushwireError) => void;
  timer: ReturnType<typeof setTimeout>;
  /** The command, kept until it is written (commands wait for `connected`). */
  command: Command | undefined;
  /** Requests only: the backend's reply. */
  settle?: (data: unknown) => void;
}

/**
 * A pushwire connection (protocol v1) that reconnects by itself and keeps its subscriptions.
 * States: disconnected -> connecting -> connected; back to connecting whenever the connection is lost,
 * to disconnected on `disconnect()` or when the server says not to come back.
 */
export class Client extends Emitter<ClientEvents> {
  private _state: ClientState = 'disconnected';
  private _cid = '';
  private ws: WebSocketLike | undefined;
  private readonly codec: Codec;
  private readonly opts: Required<Omit<ClientOptions, 'token' | 'getToken' | 'websocket' | 'codec'>>;
  private token: string | undefined;
  private tokenStale: boolean;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private outbox: Command[] = [];
  private flushScheduled = false;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setTimeout> | undefined;
  private pingWindow = 0;
  private lastFrameAt = 0;
  private advice: { code: number; reason: string; reconnect: boolean } | undefined;
  private offline = false;
  private readonly subs = new Map<string, Subscription<any>>();
  private readonly detachHint: () => void;
  /** Bumped for every transport, so events of an old socket are ignored. */
  private generation = 0;

  constructor(
    readonly url: string,
    private readonly options: ClientOptions = {},
  ) {
    super();
    this.codec = options.codec ?? jsonCodec;
    this.opts = {
      name: options.name ?? 'pushwire-js',
      version: options.version ?? SDK_VERSION,
      minReconnectDelay: options.minReconnectDelay ?? 500,
      maxReconnectDelay: options.maxReconnectDelay ?? 20_000,
      timeout: options.timeout ?? 5000,
      maxServerPingDelay: options.maxServerPingDelay ?? 10_000,
      offlineHint: options.offlineHint ?? true,
    };
    if (this.opts.minReconnectDelay <= 0 || this.opts.maxReconnectDelay < this.opts.minReconnectDelay) {
      throw new PushwireError(ErrorCode.Argument, 'minReconnectDelay must be > 0 and maxReconnectDelay >= minReconnectDelay');
    }
    if (!options.websocket && !globalWebSocket()) {
      throw new PushwireError(ErrorCode.Argument, 'no global WebSocket here: pass options.websocket (e.g. the "ws" package)');
    }
    this.token = options.token;
    this.tokenStale = options.token === undefined && options.getToken !== undefined;
    this.detachHint = this.opts.offlineHint ? this.attachOnlineHint() : () => {};
  }

  get state(): ClientState {
    return this._state;
  }

  /** The connection id the server gave; empty until connected. */
  get cid(): string {
    return this._cid;
  }

  connect(): void {
    if (this._state !== 'disconnected') return;
    this.attempt = 0;
    this.setState('connecting');
    this.emit('connecting', { code: ReasonCode.Called, reason: 'connect called' });
    void this.openTransport();
  }

  /** Closes the connection and stops reconnecting; subscriptions are kept and resume on the next `connect()`. */
  disconnect(): void {
    if (this._state === 'disconnected') return;
    this.goDisconnected(ReasonCode.Called, 'disconnect called');
  }

  /** `disconnect()` plus removing the browser's online/offline listeners: the client is done. */
  close(): void {
    this.disconnect();
    this.detachHint();
  }

  /** Resolves once connected; rejects if the client ends up disconnected or `timeout` passes first. */
  ready(timeout = this.opts.timeout): Promise<void> {
    if (this._state === 'connected') return Promise.resolve();
    if (this._state === 'disconnected') return Promise.reject(new PushwireError(ErrorCode.Closed, 'client is disconnected'));
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        offState();
      };
      const timer = setTimeout(() => {
        done();
        reject(new PushwireError(ErrorCode.Timeout, `not connected within ${timeout} ms`));
      }, timeout);
      const offState = this.on('state', ({ state }) => {
        if (state === 'connected') {
          done();
          resolve();
        } else if (state === 'disconnected') {
          done();
          reject(new PushwireError(ErrorCode.Closed, 'client is disconnected'));
        }
      });
    });
  }

  /** Creates a subscription and starts it. One subscription per channel (and `private` flag). */
  subscribe<T = unknown>(channel: string, options: SubscriptionOptions<T> = {}): Subscription<T> {
    const key = subscriptionKey(channel, options.private ?? false);
    const existing = this.subs.get(key);
    if (existing && existing.state !== 'unsubscribed') {
      throw new PushwireError(ErrorCode.Argument, `already subscribed to "${channel}": use getSubscription() or removeSubscription() first`);
    }
    const sub = new Subscription<T>(this.subscriptionHost, channel, {
      minResubscribeDelay: this.opts.minReconnectDelay,
      maxResubscribeDelay: this.opts.maxReconnectDelay,
      timeout: this.opts.timeout,
      ...options,
    });
    this.subs.set(key, sub);
    sub.subscribe();
    return sub;
  }

  getSubscription(channel: string, isPrivate = false): Subscription<unknown> | undefined {
    return this.subs.get(subscriptionKey(channel, isPrivate));
  }

  /** Unsubscribes and forgets the subscription, so the channel can be subscribed again. */
  removeSubscription(sub: Subscription<any>): void {
    sub.unsubscribe();
    if (this.subs.get(sub.key) === sub) this.subs.delete(sub.key);
  }

  subscriptions(): Array<Subscription<unknown>> {
    return [...this.subs.values()];
  }

  /**
   * Sends a request to the project's backends and resolves with the first reply (a backend answers
   * with a push carrying reply_to). Rejects with the server's error (30005 no backend connected) or on timeout.
   */
  async request(data: unknown, options: RequestOptions = {}): Promise<unknown> {
    const result = await this.call({ method: 'request', data, ...(options.route !== undefined && { route: options.route }) }, options.timeout, true);
    return (result as { data?: unknown } | undefined)?.data;
  }

  async history(channel: string, options: HistoryOptions = {}): Promise<History> {
    const result = (await this.call(
      {
        method: 'history',
        channel,
        ...(options.private && { private: true }),
        ...(options.since && { since: options.since }),
        ...(options.limit !== undefined && { limit: options.limit }),
        ...(options.reverse && { reverse: true }),
      },
      options.timeout,
    )) as HistoryResult;
    return { publications: result.publications.map(toPublication), offset: result.offset, epoch: result.epoch };
  }

  /** Who is subscribed to the channel, cluster-wide (where the channel's namespace enables presence). */
  async presence(channel: string, options: { private?: boolean; timeout?: number } = {}): Promise<ClientInfo[]> {
    const result = (await this.call({ method: 'presence', channel, ...(options.private && { private: true }) }, options.timeout)) as PresenceResult;
    return result.clients;
  }

  /** A round trip to the server. */
  async ping(timeout?: number): Promise<void> {
    await this.call({ method: 'ping' }, timeout);
  }

  // --- commands -------------------------------------------------------------------------------

  /**
   * Sends a command once connected (waiting while connecting) and resolves with its result.
   * `untilReply`: a request resolves with the backend's reply, not the accepting result.
   */
  private call(command: DistributiveOmit<Command, 'id'>, timeout = this.opts.timeout, untilReply = false): Promise<Result> {
    return new Promise<Result>((resolve, reject) => this.send(command, timeout, resolve, reject, untilReply));
  }

  /**
   * Callback form of `call`: the answer is handled synchronously, in the order of the frame's messages,
   * so a subscribe result and the publications right behind it in the same frame cannot swap places.
   */
  private send(
    command: DistributiveOmit<Command, 'id'>,
    timeout: number,
    onResult: (result: Result) => void,
    onError: (err: PushwireError) => void,
    untilReply = false,
  ): void {
    if (this._state === 'disconnected') {
      onError(new PushwireError(ErrorCode.Closed, 'client is disconnected: call connect() first'));
      return;
    }
    const id = this.nextId++;
    const full = { ...command, id } as Command;
    const finish = (): void => {
      this.pending.delete(id);
      clearTimeout(timer);
    };
    const timer = setTimeout(() => {
      finish();
      this.outbox = this.outbox.filter((c) => c !== full);
      onError(new PushwireError(ErrorCode.Timeout, `no ${untilReply ? 'reply' : 'answer'} to ${command.method} within ${timeout} ms`));
    }, timeout);
    this.pending.set(id, {
      method: full.method,
      timer,
      command: full,
      resolve: (result) => {
        // A request's result only says the backends have it; its reply settles it.
        if (untilReply) return;
        finish();
        onResult(result);
      },
      reject: (err) => {
        finish();
        onError(err);
      },
      ...(untilReply && {
        settle: (data: unknown) => {
          finish();
          onResult({ data } as Result);
        },
      }),
    });
    if (this._state === 'connected') this.enqueue(full);
  }

  /** Queues a command; everything queued in one task goes out in one frame. */
  private enqueue(command: Command): void {
    this.outbox.push(command);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    const commands = this.outbox;
    this.outbox = [];
    if (commands.length === 0 || !this.ws || this.ws.readyState !== OPEN || this._state !== 'connected') return;
    for (const c of commands) {
      const p = this.pending.get(c.id);
      if (p) p.command = undefined;
    }
    this.ws.send(this.codec.encode(commands));
  }

  /** What a Subscription may do with its client, and nothing else. */
  private readonly subscriptionHost: SubscriptionHost = {
    connected: (): boolean => this._state === 'connected',
    subscribe: (channel, isPrivate, since, timeout, onResult, onError) =>
      this.send({ method: 'subscribe', channel, ...(isPrivate && { private: true }), ...(since && { since }) }, timeout, onResult, onError),
    unsubscribe: (channel: string, isPrivate: boolean): void => {
      // Fire and forget: the server answers even when not subscribed, and a lost connection unsubscribes anyway.
      if (this._state === 'connected') this.send({ method: 'unsubscribe', channel, ...(isPrivate && { private: true }) }, this.opts.timeout, noop, noop);
    },
    history: (channel: string, options: HistoryOptions) => this.history(channel, options),
    presence: (channel: string, options: { private?: boolean; timeout?: number }) => this.presence(channel, options),
  };

  // --- transport ------------------------------------------------------------------------------

  private async openTransport(): Promise<void> {
    const generation = ++this.generation;
    if (this.options.getToken && this.tokenStale) {
      let token: unknown;
      try {
        token = await this.options.getToken();
        if (typeof token !== 'string') throw new Error(`getToken() returned ${typeof token}, not a string`);
      } catch (err) {
        if (generation !== this.generation || this._state !== 'connecting') return;
        this.emit('error', { error: new PushwireError(ErrorCode.Token, `getToken failed: ${(err as Error).message ?? err}`) });
        this.scheduleReconnect();
        return;
      }
      if (generation !== this.generation || this._state !== 'connecting') return;
      this.token = token as string;
      this.tokenStale = false;
    }
    const Impl = this.options.websocket ?? globalWebSocket()!;
    let ws: WebSocketLike;
    try {
      ws = new Impl(this.url, this.codec.subprotocol);
    } catch (err) {
      this.emit('error', { error: new PushwireError(ErrorCode.Argument, `cannot open ${this.url}: ${(err as Error).message}`) });
      this.goDisconnected(ReasonCode.BadProtocol, 'cannot open the WebSocket');
      return;
    }
    this.ws = ws;
    this.advice = undefined;
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      if (generation !== this.generation) return;
      if (ws.protocol !== this.codec.subprotocol) {
        // A node without protocol v1 answers without the subprotocol and would speak gpush's protocol.
        this.emit('error', { error: new PushwireError(ErrorCode.BadFrame, `server did not accept subprotocol ${this.codec.subprotocol}`) });
        this.dropTransport(ReasonCode.BadProtocol, 'server does not speak protocol v1', false);
        return;
      }
      this.sendConnect();
    };
    ws.onmessage = (ev) => {
      if (generation === this.generation) this.onFrame(ev.data);
    };
    ws.onclose = (ev) => {
      if (generation !== this.generation) return;
      const advice = this.advice;
      if (advice) this.dropTransport(advice.code, advice.reason, advice.reconnect);
      else this.dropTransport(ev.code === 1006 || !ev.code ? ReasonCode.TransportClosed : ev.code, ev.reason || 'connection closed', closeAllowsReconnect(ev.code));
    };
    ws.onerror = () => {
      // A close event always follows; it carries what is known.
    };
    this.connectTimer = setTimeout(() => {
      if (generation !== this.generation) return;
      this.emit('error', { error: new PushwireError(ErrorCode.Timeout, `not connected within ${this.opts.timeout} ms`) });
      this.dropTransport(ReasonCode.Timeout, `not connected within ${this.opts.timeout} ms`, true);
    }, this.opts.timeout);
  }

  private sendConnect(): void {
    const id = this.nextId++;
    const command: Command = { id, method: 'connect', name: this.opts.name, version: this.opts.version, ...(this.token !== undefined && { token: this.token }) };
    this.pending.set(id, {
      method: 'connect',
      command: undefined,
      timer: this.connectTimer!,
      resolve: (result) => {
        this.pending.delete(id);
        this.onConnected(result as ConnectResult);
      },
      reject: (err) => {
        this.pending.delete(id);
        this.onConnectError(err);
      },
    });
    this.ws!.send(this.codec.encode([command]));
  }

  private onConnected(result: ConnectResult): void {
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.attempt = 0;
    this._cid = result.client;
    this.pingWindow = result.ping ? (result.ping + (result.pong ?? 0)) * 1000 + this.opts.maxServerPingDelay : 0;
    this.lastFrameAt = Date.now();
    this.armPingWatchdog(this.pingWindow);
    this.setState('connected');
    this.emit('connected', { client: result.client, user: result.user ?? '', node: result.node ?? '' });
    // Commands made while connecting go first, then every subscription resubscribes; one frame in all.
    for (const p of this.pending.values()) if (p.command) this.enqueue(p.command);
    for (const sub of this.subs.values()) sub.onClientConnected();
  }

  private onConnectError(err: PushwireError): void {
    if (err.serverCode === ServerCode.AuthFailed && this.options.getToken) {
      // The token expired or was revoked: fetch a new one and reconnect (with back-off, so a
      // getToken that keeps returning a bad token does not spin).
      this.tokenStale = true;
      this.emit('error', { error: err });
      this.dropTransport(err.serverCode, err.message, true);
      return;
    }
    this.emit('error', { error: err });
    this.dropTransport(err.serverCode ?? ReasonCode.BadFrame, err.message, err.temporary);
  }

  private onFrame(data: unknown): void {
    this.lastFrameAt = Date.now();
    let messages: ServerMessage[];
    try {
      const frame = typeof data === 'string' ? data : new Uint8Array(data as ArrayBuffer);
      messages = this.codec.decode(frame, (id) => this.pending.get(id)?.method);
    } catch (err) {
      this.emit('error', { error: new PushwireError(ErrorCode.BadFrame, `bad frame from the server: ${(err as Error).message}`) });
      this.dropTransport(ReasonCode.BadFrame, 'bad frame from the server', true);
      return;
    }
    for (const m of messages) {
      if (this.ws === undefined) return; // an earlier message dropped the transport
      this.onMessage(m);
    }
  }

  private onMessage(m: ServerMessage): void {
    switch (m.type) {
      case 'reply': {
        const p = this.pending.get(m.id);
        if (!p) return; // timed out already
        if (m.error) p.reject(serverError(m.error));
        else p.resolve(m.result);
        return;
      }
      case 'request-reply':
        // The first reply settles the request; later ones (a backend may answer several times) find nothing.
        // It may overtake the accepting result, which then finds nothing either.
        this.pending.get(m.id)?.settle?.(m.data);
        return;
      case 'publication': {
        const sub = this.subs.get(subscriptionKey(m.pub.channel, m.pub.private ?? false));
        if (sub) sub.onPublication(m.pub);
        else this.emit('publication', { ...toPublication(m.pub), private: m.pub.private ?? false });
        return;
      }
      case 'ping':
        this.ws?.send(this.codec.pong());
        return;
      case 'disconnect':
        this.advice = { code: m.code, reason: m.reason, reconnect: m.reconnect };
        return;
      case 'unsubscribed':
        this.subs.get(subscriptionKey(m.channel, m.private ?? false))?.onServerUnsubscribe(m.code, m.reason, m.resubscribe);
        return;
      case 'join':
      case 'leave':
        this.subs.get(subscriptionKey(m.channel, m.private ?? false))?.onPresenceEvent(m.type, m.info);
        return;
    }
  }

  /** Re-arms the dead-connection check; any frame from the server counts as life. */
  private armPingWatchdog(delay: number): void {
    clearTimeout(this.pingTimer);
    if (!this.pingWindow) return;
    this.pingTimer = setTimeout(() => {
      const silent = Date.now() - this.lastFrameAt;
      if (silent < this.pingWindow) this.armPingWatchdog(this.pingWindow - silent);
      else this.dropTransport(ReasonCode.NoPing, `no ping from the server for ${silent} ms`, true);
    }, delay);
  }

  /** Ends the current socket and decides what comes next: reconnect with back-off, or stay disconnected. */
  private dropTransport(code: number, reason: string, reconnect: boolean): void {
    const ws = this.ws;
    this.ws = undefined;
    this.generation++;
    clearTimeout(this.connectTimer);
    clearTimeout(this.pingTimer);
    this.connectTimer = undefined;
    if (ws) discard(ws);
    this.failInFlight();
    this._cid = '';
    for (const sub of this.subs.values()) sub.onClientDisconnected(code, reason);
    if (!reconnect) {
      this.goDisconnected(code, reason);
      return;
    }
    if (this._state !== 'connecting') {
      this.setState('connecting');
      this.emit('connecting', { code, reason });
    }
    this.scheduleReconnect();
  }

  /** Commands already written may or may not have run: they fail; those still queued wait for the next connection. */
  private failInFlight(): void {
    for (const [id, p] of [...this.pending]) {
      // Subscriptions resubscribe by themselves on the next connection: an unsent (un)subscribe must not go out twice.
      if (p.command && p.method !== 'subscribe' && p.method !== 'unsubscribe') continue;
      if (p.method === 'connect') {
        this.pending.delete(id);
        continue;
      }
      p.reject(new PushwireError(ErrorCode.Closed, `connection lost before the answer to ${p.method}`));
    }
    this.outbox = [];
  }

  private scheduleReconnect(): void {
    clearTimeout(this.reconnectTimer);
    if (this.offline) return; // the online event reconnects
    const delay = backoffDelay(this.attempt++, this.opts.minReconnectDelay, this.opts.maxReconnectDelay);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this._state === 'connecting') void this.openTransport();
    }, delay);
  }

  private goDisconnected(code: number, reason: string): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    if (this.ws) {
      const ws = this.ws;
      this.ws = undefined;
      this.generation++;
      discard(ws);
      for (const sub of this.subs.values()) sub.onClientDisconnected(code, reason);
    }
    clearTimeout(this.connectTimer);
    clearTimeout(this.pingTimer);
    for (const p of [...this.pending.values()]) p.reject(new PushwireError(ErrorCode.Closed, `client disconnected (${reason})`));
    this.pending.clear();
    this.outbox = [];
    this._cid = '';
    this.setState('disconnected');
    this.emit('disconnected', { code, reason });
  }

  private setState(state: ClientState): void {
    const previous = this._state;
    if (previous === state) return;
    this._state = state;
    this.emit('state', { state, previous });
  }

  private attachOnlineHint(): () => void {
    const g = globalThis as { addEventListener?: (t: string, f: () => void) => void; removeEventListener?: (t: string, f: () => void) => void };
    if (typeof g.addEventListener !== 'function' || typeof g.removeEventListener !== 'function') return () => {};
    const offline = (): void => {
      this.offline = true;
      if (this._state !== 'disconnected') {
        clearTimeout(this.reconnectTimer);
        if (this.ws) this.dropTransport(ReasonCode.Offline, 'browser went offline', true);
      }
    };
    const online = (): void => {
      this.offline = false;
      if (this._state === 'connecting' && !this.ws) {
        clearTimeout(this.reconnectTimer);
        this.attempt = 0;
        void this.openTransport();
      }
    };
    g.addEventListener('offline', offline);
    g.addEventListener('online', online);
    return () => {
      g.removeEventListener!('offline', offline);
      g.removeEventListener!('online', online);
    };
  }
}

const noop = (): void => {};

/** Closes a socket the client is done with and silences it. */
function discard(ws: WebSocketLike): void {
  ws.onopen = ws.onmessage = ws.onclose = null;
  // Not null: the `ws` package emits 'error' when a socket that is still connecting is closed, and an
  // EventEmitter 'error' with no listener would crash a Node process.
  ws.onerror = noop;
  try {
    ws.close(1000);
  } catch {
    // already closing
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function serverError(e: { code: number; message: string; detail?: string }): PushwireError {
  const text = e.detail ? `${e.message}: ${e.detail}` : e.message;
  return new PushwireError(ErrorCode.Server, text, e.code, e.code === ServerCode.TooManyRequests || e.code === ServerCode.ClusterUnavailable);
}

export function toPublication(p: RawPublication): Publication {
  return {
    channel: p.channel,
    data: p.data,
    ...(p.offset !== undefined && { offset: p.offset }),
    ...(p.epoch !== undefined && { epoch: p.epoch }),
    ...(p.id !== undefined && { id: p.id }),
    ...(p.time !== undefined && { time: p.time }),
    ...(p.tags !== undefined && { tags: p.tags }),
  };
}
