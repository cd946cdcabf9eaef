import type { ChannelEventData } from '../../../core/channel-events.js';
import { frame } from '../frames.js';
import { messageFrame } from './encode.js';

/**
 * Join/leave push frames, one encoder per subprotocol for the whole node (module functions, so
 * ChannelEvent's cache builds each frame once per node and every subscriber shares the bytes).
 * JSON: `{"join":{"channel":"chat:a","info":{"client":"n1-x-7","user":"alice"}}}`, defaults left
 * out (`private` only when true, `user` only when logged in).
 */
export function channelEventJson(e: ChannelEventData): Buffer {
  let info = `{"client":${JSON.stringify(e.member.client)}`;
  if (e.member.user !== '') info += `,"user":${JSON.stringify(e.member.user)}`;
  const body = `{"channel":${JSON.stringify(e.channel)}${e.private ? ',"private":true' : ''},"info":${info}}}`;
  return frame(Buffer.from(`{"${e.kind}":${body}}`), false);
}

export function channelEventProto(e: ChannelEventData): Buffer {
  const body = { channel: e.channel, private: e.private, info: { client: e.member.client, user: e.member.user } };
  return messageFrame('proto', e.kind === 'join' ? { id: 0, join: body } : { id: 0, leave: body });
}
