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
}

/** v1 (no pid, default project) is still decoded, so older nodes can share a bus during an upgrade. */
const VERSION = 2;

/**
 * Binary envelope: version, publishedAt, length-prefixed strings (id, uid, topic, and from v2
 * pid), then the payload bytes untouched. Decoding slices the payload without copying.
 */
export function encodeMessage(m: Message): Buffer {
  const id = Buffer.from(m.id);
  const uid = Buffer.from(m.uid);
  const topic = Buffer.from(m.topic);
  const pid = Buffer.from(m.pid);
  const head = 1 + 8 + 2 + id.length + 2 + uid.length + 2 + topic.length + 2 + pid.length;
  const out = Buffer.allocUnsafe(head + m.data.length);
  let o = out.writeUInt8(VERSION, 0);
  o = out.writeDoubleBE(m.publishedAt, o);
  for (const part of [id, uid, topic, pid]) {
    o = out.writeUInt16BE(part.length, o);
    o += part.copy(out, o);
  }
  m.data.copy(out, o);
  return out;
}

export function decodeMessage(buf: Buffer): Message {
  const version = buf.length < 15 ? 0 : buf.readUInt8(0);
  if (version !== 1 && version !== VERSION) throw new Error('unknown message envelope');
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
  const id = next();
  const uid = next();
  const topic = next();
  const pid = version === 1 ? DEFAULT_PID : next();
  return { id, pid, uid, topic, data: buf.subarray(o), publishedAt };
}

/**
 * One message on its way to this node's subscribers. Each transport encodes it once per
 * node (e.g. into WebSocket frame bytes) and every subscriber reuses the cached bytes.
 */
export class Outbound {
  private encoder: ((m: Message) => unknown) | undefined;
  private value: unknown;

  constructor(readonly message: Message) {}

  encoded<T>(encode: (m: Message) => T): T {
    if (this.encoder === encode) return this.value as T;
    // One slot is enough: a node has one encoder per transport, and a message rarely meets two.
    this.encoder = encode;
    this.value = encode(this.message);
    return this.value as T;
  }
}
