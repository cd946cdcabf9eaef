import { memberEventFrame, type ChannelEventHeads, type ChannelMember } from '../cluster/channel-presence.js';

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
  return memberEventFrame(eventHead(e.kind, e.hubChannel, e.channel, e.private), e.member);
}

/**
 * The join and leave frames of a channel up to the member (see ChannelEventHeads): what a store
 * completes with a member it drops or takes back by itself (a dead node's).
 */
export function channelEventHeads(hubChannel: string, channel: string, priv: boolean): ChannelEventHeads {
  return { join: eventHead('join', hubChannel, channel, priv), leave: eventHead('leave', hubChannel, channel, priv) };
}

function eventHead(kind: 'join' | 'leave', hubChannel: string, channel: string, priv: boolean): Buffer {
  const h = Buffer.byteLength(hubChannel);
  const c = Buffer.byteLength(channel);
  const out = Buffer.allocUnsafe(7 + h + c);
  out[0] = CHANNEL_EVENT_FRAME;
  out[1] = kind === 'join' ? 1 : 2;
  out[2] = priv ? 1 : 0;
  out.writeUInt16BE(h, 3);
  out.write(hubChannel, 5);
  out.writeUInt16BE(c, 5 + h);
  out.write(channel, 7 + h);
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
