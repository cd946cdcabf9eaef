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

/** A stream position: the channel's epoch and the offset of a publication in it. */
export interface Position {
  offset: number;
  epoch: string;
}

/** How a positioned publish stores its publication (a channel with history). */
export interface AppendOptions {
  /** Publications kept at most. */
  size: number;
  /** The stream expires when idle this long (and older entries are not served). */
  ttlMs: number;
  /** The position (epoch, top offset) outlives the stream by this long. */
  metaTtlMs: number;
  /** Per-message TTL (0: none): the entry is kept but no longer served once older than this. */
  messageTtlMs: number;
  /** Idempotency claim, checked and taken in the same atomic step. */
  once?: OnceKey;
}

/**
 * Publications of one channel appended and published together, in order (publishPositionedMany):
 * the channel's options, then each publication's envelope and per-message TTL.
 */
export interface AppendGroup {
  channel: string;
  /** As AppendOptions (the channel's namespace): publications kept, stream and position TTLs. */
  size: number;
  ttlMs: number;
  metaTtlMs: number;
  /** The envelopes, in publication order. */
  payloads: Buffer[];
  /** Per-message TTL of each payload, ms (0: none). */
  messageTtlMs: number[];
}

/** A positioned publish's outcome: its position, or the earlier push's value when `once` was claimed. */
export type AppendResult = ({ duplicate: false } & Position) | { duplicate: true; earlier: string };

/** One stored publication, as the store returns it. */
export interface StoredEntry {
  offset: number;
  /** The message envelope (core/message.ts), as published. */
  payload: Buffer;
  /** Store clock ms when it was appended. */
  time: number;
  /** Store clock ms after which it is not served (per-message TTL); 0: never. */
  expiresAt: number;
}

/** A raw history read: the stream's position and entries in the asked range (unfiltered). */
export interface StoredRange {
  /** '' when the channel has no stream position (never published, or its meta expired). */
  epoch: string;
  /** Offset of the latest publication (0: none). */
  top: number;
  /** The store's clock, ms, at the read (entries' times are on the same clock). */
  now: number;
  entries: StoredEntry[];
}

export interface RangeQuery {
  /** Forward: entries with offset > after, oldest first. Reverse: offset > after, newest first. */
  after: number;
  count: number;
  reverse: boolean;
}

/** Wire marker of a positioned publication: 0xB2, "<offset> <epoch>\n", then the envelope. */
export const POSITIONED = 0xb2;

/** Splits a positioned bus payload; undefined when it is not one. */
export function unwrapPositioned(payload: Buffer): { position: Position; envelope: Buffer } | undefined {
  if (payload[0] !== POSITIONED) return undefined;
  const nl = payload.indexOf(0x0a, 1);
  const space = payload.indexOf(0x20, 1);
  if (nl < 0 || space < 0 || space > nl) throw new Error('truncated positioned envelope');
  const offset = Number(payload.toString('latin1', 1, space));
  if (!Number.isSafeInteger(offset) || offset < 1) throw new Error('bad offset in positioned envelope');
  return { position: { offset, epoch: payload.toString('latin1', space + 1, nl) }, envelope: payload.subarray(nl + 1) };
}

/** The bus payload of a positioned publication (what the Redis script builds in Lua). */
export function wrapPositioned(position: Position, envelope: Buffer): Buffer {
  const head = Buffer.from(`\u00b2${position.offset} ${position.epoch}\n`, 'latin1');
  return Buffer.concat([head, envelope]);
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
  /**
   * Appends to the channel's bounded stream, assigns the next offset and publishes the
   * positioned payload, all in one atomic step: offset order is delivery order on every node.
   */
  publishPositioned(channel: string, payload: Buffer, options: AppendOptions): Promise<AppendResult>;
  /**
   * publishPositioned for many publications (no idempotency claims), in fewer store round trips:
   * each group's publications get consecutive offsets, in order, appended and published
   * atomically together. Returns one promise per group, resolving to the position of the group's
   * first publication (the k-th has offset + k); it rejects as publish does (BusRefusedError:
   * none of the group was stored or published; BusUnconfirmedError: unknown).
   */
  publishPositionedMany(groups: readonly AppendGroup[]): Promise<Position>[];
  /** Reads the channel's stream position and a range of its entries, atomically. */
  readHistory(channel: string, query: RangeQuery): Promise<StoredRange>;
  /** Drops the channel's entries; its position (epoch, top offset) stays. */
  removeHistory(channel: string): Promise<void>;
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
