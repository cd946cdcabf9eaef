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
  /** Resolves once the bus accepted the payload; rejects when it cannot (caller answers UNAVAILABLE). */
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
  /** Whether a publish can succeed now. */
  isReady(): boolean;
  start(): Promise<void>;
  close(): Promise<void>;
}
