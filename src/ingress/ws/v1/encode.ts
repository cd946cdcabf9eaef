import { isUtf8 } from 'node:buffer';
import type { Message } from '../../../core/message.js';
import { ServerFrame, type Publication, type ServerMessage } from '../../../../gen/pushwire/v1/client.js';
import { frame, textFrameOf } from '../frames.js';

/**
 * Server → client encoding for both v1 subprotocols. Replies are built per connection; a
 * publication's frame is built once per node per subprotocol (Outbound caches it).
 */

export type V1Format = 'json' | 'proto';

/** A bus message as the Publication a v1 client receives. */
export function publicationOf(m: Message): Publication {
  return {
    channel: m.topic,
    private: m.uid !== '',
    data: m.data,
    offset: String(m.offset ?? 0),
    epoch: m.epoch ?? '',
    id: m.id,
    time: String(Math.round(m.publishedAt)),
    tags: m.select?.tags ?? [],
  };
}

/** One ServerMessage as one WebSocket frame of the format. */
export function messageFrame(format: V1Format, m: ServerMessage): Buffer {
  if (format === 'proto') return frame(Buffer.from(ServerFrame.encode({ messages: [m] }).finish()), true);
  return textFrameOf(jsonLine(m));
}

/** A publication push's frame (the hot path: once per node per format). */
export function publicationFrame(format: V1Format, m: Message): Buffer {
  if (format === 'proto') return messageFrame('proto', { id: 0, pub: publicationOf(m) });
  return frame(Buffer.from(`{"pub":${publicationJson(m.topic, m.uid !== '', m.data, m.offset, m.epoch, m.id, m.publishedAt, m.select?.tags)}}`), false);
}

/**
 * The payload's JSON members: JSON text embedded as `data` (re-serialised only when it holds
 * line breaks, which would split a newline-delimited frame), other UTF-8 as `text`, anything
 * else as base64 in `b64`. Empty: nothing.
 */
export function payloadMembers(data: Uint8Array): string {
  if (data.length === 0) return '';
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
  if (!isUtf8(buf)) return `"b64":"${buf.toString('base64')}"`;
  const text = buf.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return `"text":${JSON.stringify(text)}`;
  }
  return /[\r\n]/.test(text) ? `"data":${JSON.stringify(value)}` : `"data":${text.trim()}`;
}

/**
 * JSON.stringify of the string given last time, or of a new one: the publications of one reply
 * (a recovery: up to 1,000) share their channel and epoch.
 */
function lastJson(): (s: string) => string {
  let last = '';
  let json = '""';
  return (s) => (s === last ? json : (json = JSON.stringify((last = s))));
}
const channelJson = lastJson();
const epochJson = lastJson();

function publicationJson(
  channel: string,
  priv: boolean,
  data: Uint8Array,
  offset: number | undefined,
  epoch: string | undefined,
  id: string,
  time: number,
  tags: readonly string[] | undefined,
): string {
  const payload = payloadMembers(data);
  return (
    `{"channel":${channelJson(channel)}${priv ? ',"private":true' : ''}${payload === '' ? '' : `,${payload}`}` +
    `${offset ? `,"offset":${offset},"epoch":${epochJson(epoch ?? '')}` : ''},"id":${JSON.stringify(id)},"time":${Math.round(time)}` +
    `${tags !== undefined && tags.length > 0 ? `,"tags":${JSON.stringify(tags)}` : ''}}`
  );
}

const pubJson = (p: Publication): string =>
  publicationJson(p.channel, p.private, p.data, Number(p.offset), p.epoch, p.id, Number(p.time), p.tags);

/** Drops proto3 defaults (0, '', false, empty lists) from a flat result object. */
function compact(o: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || v === 0 || v === '' || v === false || v === '0') continue;
    if (Array.isArray(v) && v.length === 0) continue;
    out[k] = v;
  }
  return out;
}

/** The JSON mapping of a ServerMessage (docs/protocol.md): numbers for offsets, payload members. */
export function jsonLine(m: ServerMessage): string {
  const head = m.id ? `{"id":${m.id},` : '{';
  if (m.error !== undefined) return `${head}"error":${JSON.stringify(compact(m.error))}}`;
  if (m.pub !== undefined) return `${head}"pub":${pubJson(m.pub)}}`;
  if (m.subscribe !== undefined) {
    const { publications, offset, ...rest } = m.subscribe;
    const o = compact({ ...rest, offset: Number(offset) });
    return `${head}"subscribe":${withPublications(o, publications)}}`;
  }
  if (m.history !== undefined) {
    const { publications, offset, ...rest } = m.history;
    return `${head}"history":${withPublications(compact({ ...rest, offset: Number(offset) }), publications)}}`;
  }
  if (m.reply !== undefined) {
    const payload = payloadMembers(m.reply.data);
    return `${head}"reply":{"id":${m.reply.id}${payload === '' ? '' : `,${payload}`}}}`;
  }
  for (const key of ['connect', 'unsubscribe', 'request', 'presence', 'pong', 'unsubscribed', 'disconnect', 'ping', 'join', 'leave'] as const) {
    const body = m[key];
    if (body !== undefined) return `${head}${JSON.stringify(key)}:${JSON.stringify(compact(body))}}`;
  }
  return `${head.slice(0, -1)}}`;
}

function withPublications(o: Record<string, unknown>, pubs: readonly Publication[]): string {
  const base = JSON.stringify(o);
  if (pubs.length === 0) return base;
  // One join over flat parts: V8 copies each once (nested concatenations would be flattened again).
  const parts: string[] = new Array(pubs.length + 2);
  parts[0] = `${base.slice(0, -1)}${base.length > 2 ? ',' : ''}"publications":[`;
  for (let i = 0; i < pubs.length; i++) parts[i + 1] = (i === 0 ? '' : ',') + pubJson(pubs[i]!);
  parts[pubs.length + 1] = ']}';
  return parts.join('');
}
