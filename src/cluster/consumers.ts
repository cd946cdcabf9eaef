/** A backend consumer registered cluster-wide: `id` is unique on `node`. */
export interface ConsumerEntry {
  pid: string;
  group: string;
  node: string;
  id: string;
}

/**
 * The cluster-wide directory of backend consumers, per project and consumer group, and the
 * way client events reach them. Registrations expire unless refreshed, so consumers of a node
 * that died without unregistering drop out on their own.
 */
export interface ConsumerDirectory {
  /** Registers (or refreshes) entries until `ttlMs` from now. */
  register(entries: readonly ConsumerEntry[], ttlMs: number): Promise<void>;
  unregister(entry: ConsumerEntry): Promise<void>;
  /**
   * Sends `event` to one live consumer of every consumer group of `pid`, as a consumer frame
   * (see encodeConsumerFrame) on the consumer's node channel. `sticky` picks the same consumer
   * for the same key while a group's membership is unchanged; without it, groups rotate.
   * Resolves with how many groups it reached (0: no consumer connected); rejects when the
   * directory cannot be reached.
   */
  dispatch(pid: string, event: Buffer, sticky: number | undefined): Promise<number>;
  /**
   * Called when the directory is reachable again after a disconnect: it may have lost every
   * registration (a Redis restarted empty), so nodes register their consumers again at once.
   */
  onReconnect(handler: () => void): void;
  close(): Promise<void>;
}

/**
 * Consumer frames share node channels with message envelopes (versions 1-15): this first byte
 * tells them apart. Layout: marker, u16 consumer-id length, consumer id, event bytes.
 */
export const CONSUMER_FRAME = 0xb0;

export function encodeConsumerFrame(consumerId: string, event: Buffer): Buffer {
  const id = Buffer.from(consumerId);
  const out = Buffer.allocUnsafe(3 + id.length + event.length);
  out[0] = CONSUMER_FRAME;
  out.writeUInt16BE(id.length, 1);
  id.copy(out, 3);
  event.copy(out, 3 + id.length);
  return out;
}

export function decodeConsumerFrame(frame: Buffer): { consumerId: string; event: Buffer } {
  if (frame.length < 3 || frame[0] !== CONSUMER_FRAME) throw new Error('not a consumer frame');
  const len = frame.readUInt16BE(1);
  if (3 + len > frame.length) throw new Error('truncated consumer frame');
  return { consumerId: frame.toString('utf8', 3, 3 + len), event: frame.subarray(3 + len) };
}

export const isConsumerFrame = (frame: Buffer): boolean => frame.length > 0 && frame[0] === CONSUMER_FRAME;
