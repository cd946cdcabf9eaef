/**
 * The one interface between the core and the cluster transport. Channels are opaque
 * strings chosen by the core; payloads are opaque bytes.
 */
export interface Bus {
  /** Resolves once the bus accepted the payload; rejects when it cannot (caller answers UNAVAILABLE). */
  publish(channel: string, payload: Buffer): Promise<void>;
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
