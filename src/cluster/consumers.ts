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
   * directory cannot be reached: BusRefusedError when nothing was sent, BusUnconfirmedError
   * when it was sent and not answered in time (it may have reached a consumer). With `group`, only that group (an event handed back by a
   * consumer that left: the other groups already have it).
   */
  dispatch(pid: string, event: Buffer, sticky: number | undefined, group?: string): Promise<number>;
  /**
   * Called when the directory is reachable again after a disconnect: it may have lost every
   * registration (a Redis restarted empty), so nodes register their consumers again at once.
   */
  onReconnect(handler: () => void): void;
  /**
   * Sets the receiver of consumer frames that reach this node other than on its bus node
   * channel (on a Redis Cluster they come on per-project channels; see RedisConsumers).
   */
  onFrame(handler: (frame: Buffer) => void): void;
  close(): Promise<void>;
}

/**
 * Consumer frames share node channels with message envelopes (versions 1-15): this first byte
 * tells them apart. Layout: marker, u16 length + consumer id, u16 length + group, event bytes.
 */
export const CONSUMER_FRAME = 0xb0;

export function encodeConsumerFrame(consumerId: string, group: string, event: Buffer): Buffer {
  const id = Buffer.from(consumerId);
  const g = Buffer.from(group);
  const out = Buffer.allocUnsafe(5 + id.length + g.length + event.length);
  out[0] = CONSUMER_FRAME;
  let o = out.writeUInt16BE(id.length, 1);
  o += id.copy(out, o);
  o = out.writeUInt16BE(g.length, o);
  o += g.copy(out, o);
  event.copy(out, o);
  return out;
}

export function decodeConsumerFrame(frame: Buffer): { consumerId: string; group: string; event: Buffer } {
  if (frame.length < 5 || frame[0] !== CONSUMER_FRAME) throw new Error('not a consumer frame');
  let o = 1;
  const next = (): string => {
    if (o + 2 > frame.length) throw new Error('truncated consumer frame');
    const len = frame.readUInt16BE(o);
    o += 2;
    if (o + len > frame.length) throw new Error('truncated consumer frame');
    o += len;
    return frame.toString('utf8', o - len, o);
  };
  const consumerId = next();
  const group = next();
  return { consumerId, group, event: frame.subarray(o) };
}

export const isConsumerFrame = (frame: Buffer): boolean => frame.length > 0 && frame[0] === CONSUMER_FRAME;
