/**
 * `@pushwire/client/protobuf`: the `pushwire.v1.proto` encoding, an opt-in entry point so the JSON
 * bundle does not carry it. Use: `new Client(url, { codec: protobufCodec })`.
 *
 * Publication and reply `data` are handed to the application exactly as in JSON mode (a JSON value
 * when the bytes are JSON text, a string when they are other UTF-8 text, a Uint8Array otherwise,
 * null when empty), so switching encodings changes no application code.
 */
import type { ClientInfo, Codec, Command, Method, RawPublication, Result, ServerMessage, StreamPosition } from './codec.js';
import { Reader, Writer, utf8 } from './protobuf-wire.js';

export const protobufCodec: Codec = {
  subprotocol: 'pushwire.v1.proto',
  binary: true,
  encode(commands: readonly Command[]): Uint8Array {
    const frame = new Writer();
    for (const c of commands) frame.message(1, encodeCommand(c));
    return frame.finish();
  },
  pong(): Uint8Array {
    // ClientFrame { commands: [ Command { pong: {} } ] }
    return new Writer().message(1, new Writer().message(9, new Uint8Array(0)).finish()).finish();
  },
  decode(frame: string | Uint8Array, methodOf: (id: number) => Method | undefined): ServerMessage[] {
    if (typeof frame === 'string') throw new Error('text frame on pushwire.v1.proto');
    const r = new Reader(frame);
    const out: ServerMessage[] = [];
    while (!r.done) {
      const [field, wt] = r.tag();
      if (field === 1 && wt === 2) out.push(decodeMessage(r.bytes(), methodOf));
      else r.skip(wt);
    }
    return out;
  },
};

export { Client } from './client.js';

const COMMAND_FIELD: Record<Method, number> = { connect: 2, subscribe: 3, unsubscribe: 4, request: 5, history: 6, presence: 7, ping: 8 };

function encodeCommand(c: Command): Uint8Array {
  const body = new Writer();
  switch (c.method) {
    case 'connect':
      body.string(1, c.token).string(2, c.name).string(3, c.version);
      break;
    case 'subscribe':
      body.string(1, c.channel).bool(2, c.private);
      if (c.since) body.message(3, position(c.since));
      break;
    case 'unsubscribe':
    case 'presence':
      body.string(1, c.channel).bool(2, c.private);
      break;
    case 'request':
      body.string(1, c.route);
      if (c.data !== undefined) body.bytesField(2, utf8.encode(JSON.stringify(c.data)));
      break;
    case 'history':
      body.string(1, c.channel).bool(2, c.private);
      if (c.since) body.message(3, position(c.since));
      body.varint(4, c.limit ?? 0).bool(5, c.reverse);
      break;
    case 'ping':
      break;
  }
  return new Writer().varint(1, c.id).message(COMMAND_FIELD[c.method], body.finish()).finish();
}

function position(p: StreamPosition): Uint8Array {
  return new Writer().varint(1, p.offset).string(2, p.epoch).finish();
}

/** Reads every field of a message: `visit` gets each (field, wire type) and reads or skips it. */
function fields(buf: Uint8Array, visit: (field: number, r: Reader, wireType: number) => boolean): void {
  const r = new Reader(buf);
  while (!r.done) {
    const [field, wt] = r.tag();
    if (!visit(field, r, wt)) r.skip(wt);
  }
}

const RESULT_FIELD: Record<number, Method> = { 3: 'connect', 4: 'subscribe', 5: 'unsubscribe', 6: 'request', 7: 'history', 8: 'presence', 9: 'ping' };

function decodeMessage(buf: Uint8Array, methodOf: (id: number) => Method | undefined): ServerMessage {
  let id = 0;
  let error: { code: number; message: string; detail?: string } | undefined;
  let body: { field: number; bytes: Uint8Array } | undefined;
  fields(buf, (field, r, wt) => {
    if (wt === 0 && field === 1) id = r.varint();
    else if (wt === 2 && field === 2) error = decodeError(r.bytes());
    else if (wt === 2 && field >= 3 && field <= 16) body = { field, bytes: r.bytes() };
    else return false;
    return true;
  });
  if (id) {
    if (error) return { type: 'reply', id, error };
    const method = body ? RESULT_FIELD[body.field] : methodOf(id);
    return { type: 'reply', id, result: method ? decodeResult(method, body?.bytes ?? new Uint8Array(0)) : undefined };
  }
  if (!body) throw new Error('server message with neither id nor push');
  const b = body.bytes;
  switch (body.field) {
    case 10:
      return { type: 'publication', pub: decodePublication(b) };
    case 11: {
      const u = { channel: '', private: false, code: 0, reason: '', resubscribe: false };
      fields(b, (f, r, wt) => {
        if (f === 1 && wt === 2) u.channel = r.string();
        else if (f === 2 && wt === 0) u.private = r.varint() !== 0;
        else if (f === 3 && wt === 0) u.code = r.varint();
        else if (f === 4 && wt === 2) u.reason = r.string();
        else if (f === 5 && wt === 0) u.resubscribe = r.varint() !== 0;
        else return false;
        return true;
      });
      return { type: 'unsubscribed', ...u };
    }
    case 12: {
      const d = { code: 0, reason: '', reconnect: false };
      fields(b, (f, r, wt) => {
        if (f === 1 && wt === 0) d.code = r.varint();
        else if (f === 2 && wt === 2) d.reason = r.string();
        else if (f === 3 && wt === 0) d.reconnect = r.varint() !== 0;
        else return false;
        return true;
      });
      return { type: 'disconnect', ...d };
    }
    case 13: {
      let replyId = 0;
      let data: Uint8Array = new Uint8Array(0);
      fields(b, (f, r, wt) => {
        if (f === 1 && wt === 0) replyId = r.varint();
        else if (f === 2 && wt === 2) data = r.bytes();
        else return false;
        return true;
      });
      return { type: 'request-reply', id: replyId, data: payload(data) };
    }
    case 14:
      return { type: 'ping' };
    case 15:
    case 16: {
      const j = { channel: '', private: false, info: { client: '', user: '' } as ClientInfo };
      fields(b, (f, r, wt) => {
        if (f === 1 && wt === 2) j.channel = r.string();
        else if (f === 2 && wt === 0) j.private = r.varint() !== 0;
        else if (f === 3 && wt === 2) j.info = decodeInfo(r.bytes());
        else return false;
        return true;
      });
      return { type: body.field === 15 ? 'join' : 'leave', ...j };
    }
    default:
      throw new Error(`unexpected push field ${body.field}`);
  }
}

function decodeError(b: Uint8Array): { code: number; message: string; detail?: string } {
  const e: { code: number; message: string; detail?: string } = { code: 0, message: '' };
  fields(b, (f, r, wt) => {
    if (f === 1 && wt === 0) e.code = r.varint();
    else if (f === 2 && wt === 2) e.message = r.string();
    else if (f === 3 && wt === 2) e.detail = r.string();
    else return false;
    return true;
  });
  return e;
}

function decodeResult(method: Method, b: Uint8Array): Result {
  switch (method) {
    case 'connect': {
      const c = { client: '', user: '', node: '', ping: 0, pong: 0 };
      fields(b, (f, r, wt) => {
        if (wt === 2 && f === 1) c.client = r.string();
        else if (wt === 2 && f === 2) c.user = r.string();
        else if (wt === 2 && f === 3) c.node = r.string();
        else if (wt === 0 && f === 4) c.ping = r.varint();
        else if (wt === 0 && f === 5) c.pong = r.varint();
        else return false;
        return true;
      });
      return c;
    }
    case 'subscribe': {
      const s = { positioned: false, recoverable: false, epoch: '', offset: 0, wasRecovering: false, recovered: false, publications: [] as RawPublication[] };
      fields(b, (f, r, wt) => {
        if (wt === 0 && f === 1) s.positioned = r.varint() !== 0;
        else if (wt === 0 && f === 2) s.recoverable = r.varint() !== 0;
        else if (wt === 2 && f === 3) s.epoch = r.string();
        else if (wt === 0 && f === 4) s.offset = r.varint();
        else if (wt === 0 && f === 5) s.wasRecovering = r.varint() !== 0;
        else if (wt === 0 && f === 6) s.recovered = r.varint() !== 0;
        else if (wt === 2 && f === 7) s.publications.push(decodePublication(r.bytes()));
        else return false;
        return true;
      });
      return s;
    }
    case 'history': {
      const h = { publications: [] as RawPublication[], epoch: '', offset: 0 };
      fields(b, (f, r, wt) => {
        if (wt === 2 && f === 1) h.publications.push(decodePublication(r.bytes()));
        else if (wt === 2 && f === 2) h.epoch = r.string();
        else if (wt === 0 && f === 3) h.offset = r.varint();
        else return false;
        return true;
      });
      return h;
    }
    case 'presence': {
      const clients: ClientInfo[] = [];
      fields(b, (f, r, wt) => {
        if (wt === 2 && f === 1) clients.push(decodeInfo(r.bytes()));
        else return false;
        return true;
      });
      return { clients };
    }
    default:
      return undefined;
  }
}

function decodePublication(b: Uint8Array): RawPublication {
  const p: RawPublication = { channel: '', data: null };
  let data: Uint8Array = new Uint8Array(0);
  const tags: string[] = [];
  fields(b, (f, r, wt) => {
    if (wt === 2 && f === 1) p.channel = r.string();
    else if (wt === 0 && f === 2) p.private = r.varint() !== 0;
    else if (wt === 2 && f === 3) data = r.bytes();
    else if (wt === 0 && f === 4) p.offset = r.varint();
    else if (wt === 2 && f === 5) p.epoch = r.string();
    else if (wt === 2 && f === 6) p.id = r.string();
    else if (wt === 0 && f === 7) p.time = r.varint();
    else if (wt === 2 && f === 8) tags.push(r.string());
    else return false;
    return true;
  });
  p.data = payload(data);
  if (tags.length) p.tags = tags;
  return p;
}

function decodeInfo(b: Uint8Array): ClientInfo {
  const i = { client: '', user: '' };
  fields(b, (f, r, wt) => {
    if (wt === 2 && f === 1) i.client = r.string();
    else if (wt === 2 && f === 2) i.user = r.string();
    else return false;
    return true;
  });
  return i;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes as JSON mode would present them: JSON value, else text, else the bytes; null when empty. */
function payload(bytes: Uint8Array): unknown {
  if (bytes.length === 0) return null;
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return bytes.slice();
  }
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
