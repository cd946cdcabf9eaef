import { DEFAULT_PID } from './targeting.js';

/** A pushed message as it travels between nodes. */
export interface Message {
  id: string;
  /** The project the push belongs to; only that project's sessions can receive it. */
  pid: string;
  uid: string;
  topic: string;
  data: Buffer;
  /** Wall-clock ms when the accepting node published it; feeds the push-to-write latency metric. */
  publishedAt: number;
  /** Targeted push (uids/cids/tags); absent: `uid`/`topic` select as in targeting.ts. */
  select?: Selector;
  /** Answers the client request with this id (BackendService): a reply frame, not raw data. */
  replyTo?: string;
  /** Position in the channel's stream, on channels with history (carried outside the envelope). */
  offset?: number;
  epoch?: string;
}

/**
 * Which connections of the project a targeted push reaches: within a list, any entry
 * matches (union); across the non-empty lists, all must match (intersection).
 */
export interface Selector {
  uids: string[];
  cids: string[];
  /** Public topics the connection subscribed to (code 1). */
  tags: string[];
}

/**
 * Older envelopes are still decoded, so nodes of the previous versions can share a bus
 * during an upgrade: v1 (no pid: the default project), v2 (no selector lists), v3 (no
 * reply_to). Plain pushes are still written as v3, so a v3 node reads everything but replies.
 */
const VERSION = 4;

/**
 * Binary envelope: version, publishedAt, length-prefixed strings (id, uid, topic, pid), then
 * (v3) three counted string lists (uids, cids, tags), (v4) reply_to, then the payload bytes
 * untouched.
 * Decoding slices the payload without copying.
 */
export function encodeMessage(m: Message): Buffer {
  // Sized first, then written in place: no intermediate Buffer per string (this runs once per push).
  const lists = m.select === undefined ? undefined : [m.select.uids, m.select.cids, m.select.tags];
  let size = 1 + 8 + 8 + 6 + m.data.length;
  size += Buffer.byteLength(m.id) + Buffer.byteLength(m.uid) + Buffer.byteLength(m.topic) + Buffer.byteLength(m.pid);
  if (lists !== undefined) for (const list of lists) for (const s of list) size += 2 + Buffer.byteLength(s);
  const { replyTo } = m;
  if (replyTo !== undefined) size += 2 + Buffer.byteLength(replyTo);
  const out = Buffer.allocUnsafe(size);
  out[0] = replyTo === undefined ? 3 : VERSION;
  out.writeDoubleBE(m.publishedAt, 1);
  let o = 9;
  const put = (s: string): void => {
    const n = out.write(s, o + 2);
    out.writeUInt16BE(n, o);
    o += 2 + n;
  };
  put(m.id);
  put(m.uid);
  put(m.topic);
  put(m.pid);
  if (lists === undefined) {
    out.fill(0, o, o + 6); // three empty lists
    o += 6;
  } else {
    for (const list of lists) {
      o = out.writeUInt16BE(list.length, o);
      for (const s of list) put(s);
    }
  }
  if (replyTo !== undefined) put(replyTo);
  m.data.copy(out, o);
  return out;
}

export function decodeMessage(buf: Buffer): Message {
  const version = buf.length < 15 ? 0 : buf.readUInt8(0);
  if (version < 1 || version > VERSION) throw new Error('unknown message envelope');
  const publishedAt = buf.readDoubleBE(1);
  let o = 9;
  const next = (): string => {
    const len = buf.readUInt16BE(o);
    o += 2;
    if (o + len > buf.length) throw new Error('truncated message envelope');
    const s = buf.toString('utf8', o, o + len);
    o += len;
    return s;
  };
  const list = (): string[] => {
    const n = buf.readUInt16BE(o);
    o += 2;
    return Array.from({ length: n }, next);
  };
  const id = next();
  const uid = next();
  const topic = next();
  const pid = version === 1 ? DEFAULT_PID : next();
  const m: Message = { id, pid, uid, topic, data: buf, publishedAt };
  if (version >= 3) {
    const [uids, cids, tags] = [list(), list(), list()];
    if (uids.length + cids.length + tags.length > 0) m.select = { uids, cids, tags };
  }
  if (version >= 4) m.replyTo = next();
  m.data = buf.subarray(o);
  return m;
}

/**
 * One message on its way to this node's subscribers. Each transport encodes it once per
 * node (e.g. into WebSocket frame bytes) and every subscriber reuses the cached bytes.
 */
export class Outbound {
  private encoder: ((m: Message) => unknown) | undefined;
  private value: unknown;
  /** Further encoders' results (v1 JSON, v1 protobuf, gRPC streams next to legacy frames). */
  private more: Map<(m: Message) => unknown, unknown> | undefined;

  constructor(readonly message: Message) {}

  encoded<T>(encode: (m: Message) => T): T {
    if (this.encoder === encode) return this.value as T;
    if (this.encoder === undefined) {
      this.encoder = encode;
      this.value = encode(this.message);
      return this.value as T;
    }
    // A node has one encoder per transport and protocol: each is built once per message.
    this.more ??= new Map();
    if (this.more.has(encode)) return this.more.get(encode) as T;
    const value = encode(this.message);
    this.more.set(encode, value);
    return value;
  }
}
