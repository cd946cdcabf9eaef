import { backoffDelay } from './backoff.js';
import type { ClientInfo, RawPublication, Result, StreamPosition, SubscribeResult } from './codec.js';
import { ReasonCode } from './codes.js';
import { Emitter } from './emitter.js';
import { ErrorCode, PushwireError } from './errors.js';
import type { History, HistoryOptions, Publication } from './client.js';

export type SubscriptionState = 'unsubscribed' | 'subscribing' | 'subscribed';

export interface SubscriptionOptions<T> {
  /** A private topic of the logged-in user (needs login); with an empty channel, the user's own channel. @default false */
  private?: boolean;
  /** Start from this position: the first subscribe recovers what came after it (e.g. a position the app saved). */
  since?: StreamPosition;
  /** Turns each publication's `data` into a `T` (JSON: the pushed JSON value or text; protobuf: bytes). @default identity */
  decode?: (data: unknown) => T;
  /** Resubscribe back-off base and cap, ms, after a temporary error or a timeout. @default the client's reconnect delays */
  minResubscribeDelay?: number;
  maxResubscribeDelay?: number;
  /** Subscribe command timeout, ms. @default the client's timeout */
  timeout?: number;
}

export interface SubscribedEvent {
  channel: string;
  /** The channel keeps history: publications carry offset and epoch. */
  positioned: boolean;
  recoverable: boolean;
  /** This subscribe asked to recover from a position. */
  wasRecovering: boolean;
  /**
   * Every publication missed since that position follows, in order (true); or the server could not
   * recover them (false): reload the state from your backend. Always false when not wasRecovering.
   */
  recovered: boolean;
  /** The stream's position after the recovered publications. */
  offset?: number;
  epoch?: string;
}

export interface SubscriptionEvents<T> {
  [event: string]: unknown;
  state: { state: SubscriptionState; previous: SubscriptionState };
  subscribing: { code: number; reason: string };
  subscribed: SubscribedEvent;
  unsubscribed: { code: number; reason: string };
  publication: Publication<T>;
  error: { error: PushwireError };
  join: { info: ClientInfo };
  leave: { info: ClientInfo };
}

/** What a subscription needs from its client (the client implements it). */
export interface SubscriptionHost {
  connected(): boolean;
  /** Sends a subscribe; exactly one of the callbacks is called, synchronously with the frame that answers it. */
  subscribe(
    channel: string,
    isPrivate: boolean,
    since: StreamPosition | undefined,
    timeout: number,
    onResult: (result: Result) => void,
    onError: (err: PushwireError) => void,
  ): void;
  unsubscribe(channel: string, isPrivate: boolean): void;
  history(channel: string, options: HistoryOptions): Promise<History>;
  presence(channel: string, options: { private?: boolean; timeout?: number }): Promise<ClientInfo[]>;
}

export function subscriptionKey(channel: string, isPrivate: boolean): string {
  return (isPrivate ? 'p:' : 't:') + channel;
}

const identity = <T>(data: unknown): T => data as T;

/**
 * One channel of a client. States: unsubscribed -> subscribing -> subscribed. While subscribed it
 * tracks the stream position (offset, epoch) of the last publication it delivered; whenever it has to
 * subscribe again (reconnect, a gap the server or the SDK detected) it asks to recover from there, so
 * the application sees each publication once and in order, or a `subscribed` event with
 * `recovered: false`.
 */
export class Subscription<T = unknown> extends Emitter<SubscriptionEvents<T>> {
  readonly key: string;
  readonly private: boolean;
  private _state: SubscriptionState = 'unsubscribed';
  private _position: StreamPosition | undefined;
  private positioned = false;
  private readonly decode: (data: unknown) => T;
  /** Bumped for every subscribe sent, so a stale answer is ignored. */
  private generation = 0;
  private inFlight = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly host: SubscriptionHost,
    readonly channel: string,
    private readonly options: SubscriptionOptions<T> & { minResubscribeDelay: number; maxResubscribeDelay: number; timeout: number },
  ) {
    super();
    this.private = options.private ?? false;
    this.key = subscriptionKey(channel, this.private);
    this.decode = options.decode ?? identity;
    this._position = options.since;
  }

  get state(): SubscriptionState {
    return this._state;
  }

  /** Offset and epoch of the last publication delivered (or the stream's position at subscribe). */
  get position(): StreamPosition | undefined {
    return this._position && { ...this._position };
  }

  subscribe(): void {
    if (this._state !== 'unsubscribed') return;
    this.attempt = 0;
    this.setState('subscribing');
    this.emit('subscribing', { code: ReasonCode.Called, reason: 'subscribe called' });
    if (this.host.connected()) this.send();
  }

  unsubscribe(): void {
    if (this._state === 'unsubscribed') return;
    const wasActive = this._state === 'subscribed' || this.inFlight;
    this.reset();
    if (wasActive) this.host.unsubscribe(this.channel, this.private);
    this._position = undefined;
    this.positioned = false;
    this.setState('unsubscribed');
    this.emit('unsubscribed', { code: ReasonCode.Called, reason: 'unsubscribe called' });
  }

  /** Resolves once subscribed; rejects when unsubscribed or after `timeout` ms. */
  ready(timeout = this.options.timeout): Promise<void> {
    if (this._state === 'subscribed') return Promise.resolve();
    if (this._state === 'unsubscribed') return Promise.reject(new PushwireError(ErrorCode.Closed, 'subscription is unsubscribed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new PushwireError(ErrorCode.Timeout, `not subscribed within ${timeout} ms`));
      }, timeout);
      const off = this.on('state', ({ state }) => {
        if (state === 'subscribing') return;
        clearTimeout(timer);
        off();
        if (state === 'subscribed') resolve();
        else reject(new PushwireError(ErrorCode.Closed, 'subscription is unsubscribed'));
      });
    });
  }

  /** The channel's history, with `data` decoded like live publications. */
  async history(options: Omit<HistoryOptions, 'private'> = {}): Promise<History<T>> {
    const h = await this.host.history(this.channel, { ...options, private: this.private });
    return { ...h, publications: h.publications.map((p) => ({ ...p, data: this.decode(p.data) })) };
  }

  presence(timeout?: number): Promise<ClientInfo[]> {
    return this.host.presence(this.channel, { private: this.private, ...(timeout !== undefined && { timeout }) });
  }

  // --- called by the client -------------------------------------------------------------------

  /** @internal */
  onClientConnected(): void {
    if (this._state === 'subscribing' && !this.inFlight) {
      clearTimeout(this.retryTimer);
      this.send();
    }
  }

  /** @internal The connection is gone; the server forgot this subscription. */
  onClientDisconnected(code: number, reason: string): void {
    if (this._state === 'unsubscribed') return;
    this.reset();
    if (this._state === 'subscribed') {
      this.setState('subscribing');
      this.emit('subscribing', { code, reason });
    }
  }

  /** @internal */
  onPublication(pub: RawPublication): void {
    if (this._state !== 'subscribed') return; // a resubscribe is under way and will recover it
    if (this.positioned && pub.offset) {
      let at = this._position;
      // A stream that did not exist yet at subscribe (offset 0, no epoch) gets its epoch with its first publication.
      if (at && at.offset === 0 && at.epoch === '') at = { offset: 0, epoch: pub.epoch ?? '' };
      if (at && pub.epoch === at.epoch) {
        if (pub.offset <= at.offset) return; // already delivered
        if (pub.offset > at.offset + 1) {
          // Publications between were lost on the way (the server's own gap signal may be on its way
          // too): recover them rather than deliver out of order.
          this.resubscribe(ReasonCode.Gap, `offset jumped from ${at.offset} to ${pub.offset}`);
          return;
        }
      } else if (at) {
        this.resubscribe(ReasonCode.Gap, `epoch changed from "${at.epoch}" to "${pub.epoch}"`);
        return;
      }
      this._position = { offset: pub.offset, epoch: pub.epoch ?? '' };
    }
    this.deliver(pub);
  }

  /** @internal The server ended the subscription; with `resubscribe` (30010, a gap), recover from the last position. */
  onServerUnsubscribe(code: number, reason: string, resubscribe: boolean): void {
    if (this._state === 'unsubscribed') return;
    this.reset();
    if (resubscribe) {
      this.setState('subscribing');
      this.emit('subscribing', { code, reason });
      if (this.host.connected()) this.send();
      return;
    }
    this._position = undefined;
    this.positioned = false;
    this.setState('unsubscribed');
    this.emit('unsubscribed', { code, reason });
  }

  /** @internal */
  onPresenceEvent(type: 'join' | 'leave', info: ClientInfo): void {
    if (this._state === 'subscribed') this.emit(type, { info });
  }

  // --- internals ------------------------------------------------------------------------------

  private send(): void {
    const generation = ++this.generation;
    const since = this._position;
    this.inFlight = true;
    this.host.subscribe(
      this.channel,
      this.private,
      since,
      this.options.timeout,
      (result) => {
        if (generation !== this.generation) return;
        this.inFlight = false;
        this.onSubscribed((result ?? {}) as SubscribeResult, since);
      },
      (err) => {
        if (generation !== this.generation) return;
        this.inFlight = false;
        this.onSubscribeError(err);
      },
    );
  }

  private onSubscribed(result: SubscribeResult, since: StreamPosition | undefined): void {
    this.attempt = 0;
    this.positioned = result.positioned ?? false;
    const recovered = since !== undefined && (result.recovered ?? false);
    const floor = recovered ? since.offset : Infinity;
    if (this.positioned) this._position = { offset: result.offset ?? 0, epoch: result.epoch ?? '' };
    this.setState('subscribed');
    this.emit('subscribed', {
      channel: this.channel,
      positioned: this.positioned,
      recoverable: result.recoverable ?? false,
      wasRecovering: since !== undefined,
      recovered,
      ...(this.positioned && { offset: this._position!.offset, epoch: this._position!.epoch }),
    });
    if (!recovered) return;
    const generation = this.generation;
    for (const pub of result.publications ?? []) {
      // A listener may unsubscribe (or the connection drop) while the recovered ones are delivered.
      if (generation !== this.generation || this._state !== 'subscribed') return;
      if (pub.offset !== undefined && pub.offset <= floor) continue;
      this.deliver(pub);
    }
  }

  private onSubscribeError(err: PushwireError): void {
    if (err.code === ErrorCode.Closed) return; // the connection dropped; resubscribed when it is back
    if (err.code === ErrorCode.Timeout || err.temporary) {
      this.emit('error', { error: err });
      // After a timeout the server may still have subscribed: unsubscribing makes the next subscribe clean.
      if (err.code === ErrorCode.Timeout) this.host.unsubscribe(this.channel, this.private);
      this.retryLater();
      return;
    }
    this.emit('error', { error: err });
    this._position = undefined;
    this.positioned = false;
    this.setState('unsubscribed');
    this.emit('unsubscribed', { code: err.serverCode ?? ReasonCode.BadFrame, reason: err.message });
  }

  /** Subscribes again from the last position; unsubscribing first, in the same frame, so the server starts over. */
  private resubscribe(code: number, reason: string): void {
    this.reset();
    this.setState('subscribing');
    this.emit('subscribing', { code, reason });
    this.host.unsubscribe(this.channel, this.private);
    if (this.host.connected()) this.send();
  }

  private retryLater(): void {
    clearTimeout(this.retryTimer);
    const delay = backoffDelay(this.attempt++, this.options.minResubscribeDelay, this.options.maxResubscribeDelay);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this._state === 'subscribing' && !this.inFlight && this.host.connected()) this.send();
    }, delay);
  }

  private reset(): void {
    this.generation++;
    this.inFlight = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private deliver(pub: RawPublication): void {
    let data: T;
    try {
      data = this.decode(pub.data);
    } catch (err) {
      this.emit('error', { error: new PushwireError(ErrorCode.BadFrame, `decode failed on "${this.channel}" at offset ${pub.offset ?? '-'}: ${(err as Error).message}`) });
      return;
    }
    this.emit('publication', {
      channel: this.channel,
      data,
      ...(pub.offset !== undefined && { offset: pub.offset }),
      ...(pub.epoch !== undefined && { epoch: pub.epoch }),
      ...(pub.id !== undefined && { id: pub.id }),
      ...(pub.time !== undefined && { time: pub.time }),
      ...(pub.tags !== undefined && { tags: pub.tags }),
    });
  }

  private setState(state: SubscriptionState): void {
    const previous = this._state;
    if (previous === state) return;
    this._state = state;
    this.emit('state', { state, previous });
  }
}
