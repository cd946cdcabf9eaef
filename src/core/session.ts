import type { ChannelEvent } from './channel-events.js';
import type { Outbound } from './message.js';

/** What a transport provides to receive deliveries (a WebSocket connection, a gRPC stream). */
export interface Sink {
  deliver(out: Outbound): void;
  /**
   * The node may have missed publications on `channel` (an offset jump, or the bus lost
   * messages): positioned subscribers must resubscribe from their last offset.
   */
  gap?(channel: string): void;
  /** A join/leave on a channel the session holds (protocol v1 sinks; others ignore them). */
  channelEvent?(event: ChannelEvent): void;
}

/**
 * Transport-agnostic state of one client connection: who it is and which channels it holds.
 * Only the hub mutates `uid` and `channels`, so the registry and the session never disagree.
 */
/**
 * `client`: a user's connection (a logged-in client counts as presence); `service`: a backend
 * receiving pushes on a user's behalf (gRPC Subscribe), which does not make the user online.
 */
export type SessionKind = 'client' | 'service';

export class Session {
  uid: string | undefined;
  /** Wall-clock ms when the connection was accepted. */
  readonly connectedAt = Date.now();
  /** Bus channels (see targeting.ts) this session is registered under. */
  readonly channels = new Set<string>();

  constructor(
    readonly cid: string,
    /** The project this connection belongs to, for its whole life. */
    readonly pid: string,
    readonly sink: Sink,
    readonly kind: SessionKind = 'client',
  ) {}
}
