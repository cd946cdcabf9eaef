/**
 * The bus did not send the message (disconnected, over its in-flight bound, stalled, or the
 * server refused the command): nothing was published, the caller may retry (UNAVAILABLE).
 */
export class BusRefusedError extends Error {
  override name = 'BusRefusedError';
}

/**
 * The message was handed to the server but no confirmation came (timeout, or the connection
 * dropped first): it may or may not have been published. The caller cannot tell; retrying is
 * safe only with an idempotency key (DEADLINE_EXCEEDED).
 */
export class BusUnconfirmedError extends Error {
  override name = 'BusUnconfirmedError';
}

export interface OnceKey {
  key: string;
  /** Stored with the claim and returned to later duplicates (the first push's message id). */
  value: string;
  ttlMs: number;
}

/**
 * The one interface between the core and the cluster transport. Channels are opaque
 * strings chosen by the core; payloads are opaque bytes.
 */
export interface Bus {
  /**
   * Resolves once the bus confirmed the payload. Rejects with BusRefusedError when it was not
   * sent (caller answers UNAVAILABLE) and BusUnconfirmedError when it was sent but not
   * confirmed in time (DEADLINE_EXCEEDED). Any other rejection counts as refused.
   */
  publish(channel: string, payload: Buffer): Promise<void>;
  /**
   * Publishes unless `once.key` was claimed within `once.ttlMs`, cluster-wide and atomically
   * with the publish. Resolves undefined when it published (and claimed the key with
   * `once.value`), or the value stored by the earlier claim when it did not.
   */
  publishOnce(channel: string, payload: Buffer, once: OnceKey): Promise<string | undefined>;
  /**
   * Starts receiving a channel. Never rejects: a bus that is disconnected remembers the
   * channel and subscribes again when it is back.
   */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  /** Sets the single receiver of every message on a subscribed channel. */
  onMessage(handler: (channel: string, payload: Buffer) => void): void;
  /**
   * Adds a receiver of gap notices (every one is called): the bus may have lost messages on these
   * subscribed channels (e.g. it resubscribed after a reconnect; pub/sub does not replay what
   * was published meanwhile). Called after the subscriptions are back. A bus that cannot lose
   * messages never calls it.
   */
  onGap(handler: (channels: readonly string[]) => void): void;
  /** Whether a publish can succeed now. */
  isReady(): boolean;
  start(): Promise<void>;
  close(): Promise<void>;
}
