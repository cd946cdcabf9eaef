import type { ClientInfo, Codec, Command, Method, RawPublication, Result, ServerMessage } from './codec.js';

/**
 * `pushwire.v1.json`: text frames of newline-separated JSON objects (docs/protocol.md, "JSON mapping").
 * A command is `{"id":N,"<method>":{...}}`; a server message is a reply (`id` plus the method's key or
 * `error`) or a push (`pub`, `unsubscribed`, `disconnect`, `reply`, `ping`, `join`, `leave`).
 */
export const jsonCodec: Codec = {
  subprotocol: 'pushwire.v1.json',
  binary: false,
  encode(commands: readonly Command[]): string {
    let out = '';
    for (const c of commands) {
      const { id, method, ...body } = c;
      out += (out ? '\n' : '') + JSON.stringify({ id, [method]: body });
    }
    return out;
  },
  pong(): string {
    return '{"pong":{}}';
  },
  decode(frame: string | Uint8Array, methodOf: (id: number) => Method | undefined): ServerMessage[] {
    if (typeof frame !== 'string') throw new Error('binary frame on pushwire.v1.json');
    const out: ServerMessage[] = [];
    for (const line of frame.split('\n')) {
      if (line) out.push(decodeMessage(JSON.parse(line) as Wire, methodOf));
    }
    return out;
  },
};

type Wire = Record<string, any>;

function decodeMessage(m: Wire, methodOf: (id: number) => Method | undefined): ServerMessage {
  if (m === null || typeof m !== 'object') throw new Error('server message is not an object');
  if (m.id) {
    const id = m.id as number;
    if (m.error) return { type: 'reply', id, error: { code: m.error.code, message: m.error.message ?? '', ...(m.error.detail && { detail: m.error.detail }) } };
    const method = methodOf(id);
    // `ping` is answered with `pong`; every other reply uses its command's key.
    const body = method === undefined ? undefined : m[method === 'ping' ? 'pong' : method];
    return { type: 'reply', id, result: method ? result(method, body ?? {}) : undefined };
  }
  if (m.pub) return { type: 'publication', pub: publication(m.pub) };
  if (m.ping) return { type: 'ping' };
  if (m.reply) return { type: 'request-reply', id: m.reply.id, data: payload(m.reply) };
  if (m.disconnect) return { type: 'disconnect', code: m.disconnect.code ?? 0, reason: m.disconnect.reason ?? '', reconnect: m.disconnect.reconnect ?? false };
  if (m.unsubscribed) {
    const u = m.unsubscribed;
    return { type: 'unsubscribed', channel: u.channel ?? '', private: u.private ?? false, code: u.code ?? 0, reason: u.reason ?? '', resubscribe: u.resubscribe ?? false };
  }
  if (m.join) return { type: 'join', channel: m.join.channel ?? '', private: m.join.private ?? false, info: info(m.join.info) };
  if (m.leave) return { type: 'leave', channel: m.leave.channel ?? '', private: m.leave.private ?? false, info: info(m.leave.info) };
  throw new Error(`unknown server message ${JSON.stringify(m).slice(0, 100)}`);
}

function result(method: Method, b: Wire): Result {
  switch (method) {
    case 'connect':
      return { client: b.client ?? '', user: b.user ?? '', node: b.node ?? '', ping: b.ping ?? 0, pong: b.pong ?? 0 };
    case 'subscribe':
      return {
        positioned: b.positioned ?? false,
        recoverable: b.recoverable ?? false,
        offset: b.offset ?? 0,
        epoch: b.epoch ?? '',
        wasRecovering: b.wasRecovering ?? false,
        recovered: b.recovered ?? false,
        publications: (b.publications ?? []).map(publication),
      };
    case 'history':
      return { publications: (b.publications ?? []).map(publication), offset: b.offset ?? 0, epoch: b.epoch ?? '' };
    case 'presence':
      return { clients: (b.clients ?? []).map(info) };
    default:
      return undefined;
  }
}

function publication(p: Wire): RawPublication {
  return {
    channel: p.channel ?? '',
    ...(p.private && { private: true }),
    data: payload(p),
    ...(p.offset && { offset: p.offset }),
    ...(p.epoch && { epoch: p.epoch }),
    ...(p.id && { id: p.id }),
    ...(p.time && { time: p.time }),
    ...(p.tags?.length && { tags: p.tags }),
  };
}

function info(i: Wire | undefined): ClientInfo {
  return { client: i?.client ?? '', user: i?.user ?? '' };
}

/** A payload as JSON carries it: a JSON value in `data`, UTF-8 text in `text`, other bytes in `b64`; none when empty. */
function payload(p: Wire): unknown {
  if ('data' in p) return p.data;
  if ('text' in p) return p.text;
  if ('b64' in p) return fromBase64(p.b64);
  return null;
}

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
