import type { ChannelMember } from '../cluster/channel-presence.js';

/**
 * Join/leave frames share the bus with message envelopes (versions 1-15), consumer frames
 * (0xb0), consumer signals (0xb1) and positioned publications (0xb2). They are published on the
 * channel itself, so they reach exactly the nodes holding it, in publish order with its
 * publications; each node builds the client frame once per protocol (ChannelEvent.encoded).
 */
export const CHANNEL_EVENT_FRAME = 0xb3;

export const isChannelEventFrame = (frame: Buffer): boolean => frame.length > 0 && frame[0] === CHANNEL_EVENT_FRAME;

export interface ChannelEventData {
  kind: 'join' | 'leave';
  /** The core channel (targeting.ts) the event is about. */
  hubChannel: string;
  /** The channel as v1 clients name it (the topic; '' with `private` for the user's own channel). */
  channel: string;
  private: boolean;
  member: ChannelMember;
}

/** Marker, kind (1 join, 2 leave), private (0/1), then hubChannel, channel, client, user as u16-length UTF-8. */
export function encodeChannelEvent(e: ChannelEventData): Buffer {
  const strings = [e.hubChannel, e.channel, e.member.client, e.member.user];
  let size = 3;
  for (const s of strings) size += 2 + Buffer.byteLength(s);
  const out = Buffer.allocUnsafe(size);
  out[0] = CHANNEL_EVENT_FRAME;
  out[1] = e.kind === 'join' ? 1 : 2;
  out[2] = e.private ? 1 : 0;
  let o = 3;
  for (const s of strings) {
    const n = out.write(s, o + 2);
    out.writeUInt16BE(n, o);
    o += 2 + n;
  }
  return out;
}

export function decodeChannelEvent(frame: Buffer): ChannelEventData {
  if (!isChannelEventFrame(frame) || frame.length < 11 || (frame[1] !== 1 && frame[1] !== 2)) throw new Error('not a channel event frame');
  let o = 3;
  const next = (): string => {
    if (o + 2 > frame.length) throw new Error('truncated channel event frame');
    const len = frame.readUInt16BE(o);
    o += 2;
    if (o + len > frame.length) throw new Error('truncated channel event frame');
    const s = frame.toString('utf8', o, o + len);
    o += len;
    return s;
  };
  const [hubChannel, channel, client, user] = [next(), next(), next(), next()];
  return { kind: frame[1] === 1 ? 'join' : 'leave', hubChannel, channel, private: frame[2] === 1, member: { client, user } };
}

/**
 * One join/leave on its way to this node's subscribers of the channel: like Outbound for
 * publications, each protocol's frame is built once per node and reused by every subscriber.
 */
export class ChannelEvent {
  private readonly frames = new Map<(e: ChannelEventData) => unknown, unknown>();

  constructor(readonly data: ChannelEventData) {}

  encoded<T>(encode: (e: ChannelEventData) => T): T {
    if (this.frames.has(encode)) return this.frames.get(encode) as T;
    const value = encode(this.data);
    this.frames.set(encode, value);
    return value;
  }
}
