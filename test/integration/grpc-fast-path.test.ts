import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PushDataRequest, PushDataResponse, PushStreamResponse } from '../../gen/pushwire/v1/push.js';
import { metric } from '../helpers/metrics.js';
import { waitFor } from '../helpers/ports.js';
import { startTestServer, type TestServer } from '../helpers/in-process.js';

/**
 * The node:http2 fast path for PushService.PushData and PushStream must answer what grpc-js
 * answers. Each case goes over raw HTTP/2 to two nodes alike but for --grpc-fast-path: true (the
 * default) and false (grpc-js serves every call). Response headers, each length-prefixed message
 * (decoded, with message and node ids normalised, and its length) and trailers must be equal.
 */

const KEY = 'fast-grpc-key-0123456789';
const PUSH_DATA = '/pushwire.v1.PushService/PushData';
const PUSH_STREAM = '/pushwire.v1.PushService/PushStream';
const MAX_PUSH_BYTES = 1024;
// What the node sets grpc.max_receive_message_length to.
const MAX_MESSAGE = MAX_PUSH_BYTES + 64 * 1024;

const frame = (body: Uint8Array, flag = 0): Buffer => {
  const out = Buffer.alloc(5 + body.length);
  out[0] = flag;
  out.writeUInt32BE(body.length, 1);
  out.set(body, 5);
  return out;
};
const push = (p: Partial<PushDataRequest>): Buffer => frame(PushDataRequest.encode(PushDataRequest.fromPartial(p)).finish());

interface Answer {
  headers: IncomingHttpHeaders;
  /** Length-prefixed messages: flag, length, body. */
  messages: Array<{ flag: number; length: number; body: Buffer }>;
  /** Bytes after the last whole message (none from a well-behaved server). */
  rest: number;
  trailers: IncomingHttpHeaders | undefined;
  rstCode: number;
}

interface Call {
  path: string;
  headers?: OutgoingHttpHeaders;
  /** Written in one go, then the stream is half-closed unless `open`. */
  body: Buffer;
  open?: boolean;
}

/** One call over raw HTTP/2: everything the server sent, until the stream closes. */
function rawCall(session: ClientHttp2Session, c: Call): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': c.path, 'content-type': 'application/grpc', te: 'trailers', ...c.headers });
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (headers = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.on('error', () => {});
    stream.on('close', () => {
      const data = Buffer.concat(chunks);
      const messages: Answer['messages'] = [];
      let at = 0;
      while (data.length - at >= 5 && data.length - at - 5 >= data.readUInt32BE(at + 1)) {
        const length = data.readUInt32BE(at + 1);
        messages.push({ flag: data[at]!, length, body: data.subarray(at + 5, at + 5 + length) });
        at += 5 + length;
      }
      resolve({ headers, messages, rest: data.length - at, trailers, rstCode: stream.rstCode ?? 0 });
    });
    stream.on('timeout', () => reject(new Error('timeout')));
    if (c.open) stream.write(c.body);
    else stream.end(c.body);
  });
}

/** An answer with what differs between two nodes taken out: date, message ids, node ids. */
function comparable(a: Answer, decode: (b: Buffer) => object): object {
  const { date: _date, ...headers } = a.headers;
  return {
    headers,
    messages: a.messages.map((m) => {
      const v = decode(m.body) as Record<string, unknown>;
      return { flag: m.flag, length: m.length, value: { ...v, ...(v.messageId ? { messageId: 'ID' } : {}), ...(v.nodeId ? { nodeId: 'NODE' } : {}) } };
    }),
    rest: a.rest,
    trailers: a.trailers,
    rstCode: a.rstCode,
  };
}
const unaryAnswer = (b: Buffer): object => PushDataResponse.decode(b);
const streamAnswer = (b: Buffer): object => PushStreamResponse.decode(b);

describe('gRPC fast path (node:http2 in front of grpc-js)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-fastgrpc-'));
  const file = join(dir, 'projects.json');
  writeFileSync(file, JSON.stringify({ projects: [{ pid: 'default', apiKeys: [{ key: KEY }] }] }));
  let fast: TestServer;
  let slow: TestServer;
  let fastSession: ClientHttp2Session;
  let slowSession: ClientHttp2Session;
  const auth = { authorization: `Bearer ${KEY}` };

  beforeAll(async () => {
    const args = ['--projects', file, '--max-push-bytes', String(MAX_PUSH_BYTES)];
    [fast, slow] = await Promise.all([startTestServer(args), startTestServer([...args, '--grpc-fast-path', 'false'])]);
    fastSession = connect(`http://${fast.grpcAddress}`);
    slowSession = connect(`http://${slow.grpcAddress}`);
  });
  afterAll(async () => {
    fastSession?.close();
    slowSession?.close();
    await Promise.all([fast?.shutdown(), slow?.shutdown()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const fastCalls = (method: string): Promise<number> => metric(fast.httpUrl, 'pushwire_grpc_fast_path_calls_total', { method });

  /** The same call to both nodes; their answers must match. Returns the fast path's. */
  async function same(c: Call, decode: (b: Buffer) => object, taken: boolean): Promise<Answer> {
    const method = c.path === PUSH_STREAM ? 'PushStream' : 'PushData';
    const before = await fastCalls(method);
    const [a, b] = await Promise.all([rawCall(fastSession, c), rawCall(slowSession, c)]);
    expect(comparable(a, decode)).toEqual(comparable(b, decode));
    expect(await fastCalls(method)).toBe(before + (taken ? 1 : 0));
    expect(await metric(slow.httpUrl, 'pushwire_grpc_fast_path_calls_total')).toBe(0);
    return a;
  }

  describe('PushData', () => {
    it('a push: headers, one answer, OK trailers', async () => {
      const a = await same({ path: PUSH_DATA, headers: auth, body: push({ topic: 't', data: Buffer.from('x') }) }, unaryAnswer, true);
      expect(a.headers['content-type']).toBe('application/grpc+proto');
      expect(a.headers['grpc-accept-encoding']).toBe('identity,deflate,gzip');
      expect(a.messages).toHaveLength(1);
      expect(a.trailers?.['grpc-status']).toBe('0');
    });

    it('content-type application/grpc+proto is taken too', async () => {
      await same({ path: PUSH_DATA, headers: { ...auth, 'content-type': 'application/grpc+proto' }, body: push({ topic: 't' }) }, unaryAnswer, true);
    });

    it('no key, a wrong key: UNAUTHENTICATED, trailers only', async () => {
      const a = await same({ path: PUSH_DATA, body: push({ topic: 't' }) }, unaryAnswer, true);
      expect(a.headers['grpc-status']).toBe('16');
      await same({ path: PUSH_DATA, headers: { authorization: 'Bearer nope-nope-nope-nope' }, body: push({ topic: 't' }) }, unaryAnswer, true);
    });

    it('an invalid push: INVALID_ARGUMENT with a percent-encoded message', async () => {
      const a = await same({ path: PUSH_DATA, headers: auth, body: push({ topic: 'bad topic\n', data: Buffer.from('x') }) }, unaryAnswer, true);
      expect(a.headers['grpc-status']).toBe('3');
      expect(a.headers['grpc-message']).toMatch(/%20/);
    });

    it('an unknown field is skipped, as by the generated decoder', async () => {
      const known = PushDataRequest.encode(PushDataRequest.fromPartial({ topic: 't', data: Buffer.from('x') })).finish();
      // Field 99, varint 1.
      const body = frame(Buffer.concat([Buffer.from(known), Buffer.from([0x98, 0x06, 0x01])]));
      const a = await same({ path: PUSH_DATA, headers: auth, body }, unaryAnswer, true);
      expect(a.trailers?.['grpc-status']).toBe('0');
    });

    it('bytes that are not a PushDataRequest: INVALID_ARGUMENT', async () => {
      const a = await same({ path: PUSH_DATA, headers: auth, body: frame(Buffer.from([0x0a, 0xff, 0xff])) }, unaryAnswer, true);
      expect(a.headers['grpc-status']).toBe('3');
    });

    it('a message over the limit: RESOURCE_EXHAUSTED as soon as its length is read', async () => {
      const a = await same({ path: PUSH_DATA, headers: auth, body: frame(Buffer.alloc(MAX_MESSAGE + 1)) }, unaryAnswer, true);
      expect(a.headers['grpc-status']).toBe('8');
      // The length prefix alone is enough.
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(MAX_MESSAGE + 1, 1);
      await same({ path: PUSH_DATA, headers: auth, body: prefix }, unaryAnswer, true);
    });

    it('a push at the payload limit and one just over it, as grpc-js', async () => {
      await same({ path: PUSH_DATA, headers: auth, body: push({ topic: 't', data: Buffer.alloc(MAX_PUSH_BYTES) }) }, unaryAnswer, true);
      await same({ path: PUSH_DATA, headers: auth, body: push({ topic: 't', data: Buffer.alloc(MAX_PUSH_BYTES + 1) }) }, unaryAnswer, true);
    });

    it('malformed framing: a truncated message, no message, two messages, a partial prefix', async () => {
      const whole = push({ topic: 't', data: Buffer.from('x') });
      await same({ path: PUSH_DATA, headers: auth, body: whole.subarray(0, whole.length - 2) }, unaryAnswer, true);
      await same({ path: PUSH_DATA, headers: auth, body: Buffer.alloc(0) }, unaryAnswer, true);
      await same({ path: PUSH_DATA, headers: auth, body: Buffer.concat([whole, whole]) }, unaryAnswer, true);
      await same({ path: PUSH_DATA, headers: auth, body: Buffer.from([0, 0, 0]) }, unaryAnswer, true);
      // The compressed flag without grpc-encoding reads as identity in grpc-js.
      await same({ path: PUSH_DATA, headers: auth, body: Buffer.concat([Buffer.from([1]), whole.subarray(1)]) }, unaryAnswer, true);
    });

    it('with a deadline (grpc-timeout), grpc-js serves the call', async () => {
      await same({ path: PUSH_DATA, headers: { ...auth, 'grpc-timeout': '5S' }, body: push({ topic: 't' }) }, unaryAnswer, false);
    });

    it('compressed (grpc-encoding gzip), grpc-js serves the call', async () => {
      const raw = PushDataRequest.encode(PushDataRequest.fromPartial({ topic: 't', data: Buffer.from('zip') })).finish();
      const a = await same({ path: PUSH_DATA, headers: { ...auth, 'grpc-encoding': 'gzip' }, body: frame(gzipSync(raw), 1) }, unaryAnswer, false);
      expect(a.trailers?.['grpc-status']).toBe('0');
      await same({ path: PUSH_DATA, headers: { ...auth, 'grpc-encoding': 'identity' }, body: push({ topic: 't' }) }, unaryAnswer, true);
    });

    it('another content-type goes to grpc-js: application/grpc+json as it reads it, text/plain 415', async () => {
      await same({ path: PUSH_DATA, headers: { ...auth, 'content-type': 'application/grpc+json' }, body: push({ topic: 't' }) }, unaryAnswer, false);
      const a = await same({ path: PUSH_DATA, headers: { ...auth, 'content-type': 'text/plain' }, body: push({ topic: 't' }) }, unaryAnswer, false);
      expect(a.headers[':status']).toBe(415);
    });
  });

  describe('PushStream', () => {
    it('pushes, a bad one, an undecodable one: answers in order, then OK', async () => {
      const body = Buffer.concat([
        push({ topic: 's', data: Buffer.from('1') }),
        push({ topic: 'bad topic\n' }),
        frame(Buffer.from([0x0a, 0xff, 0xff])),
        push({ topic: 's', data: Buffer.from('2'), idempotencyKey: 'k-stream' }),
        push({ topic: 's', data: Buffer.from('3'), idempotencyKey: 'k-stream' }),
      ]);
      const a = await same({ path: PUSH_STREAM, headers: auth, body }, streamAnswer, true);
      expect(a.messages).toHaveLength(5);
      expect(a.trailers?.['grpc-status']).toBe('0');
      expect(a.trailers?.['grpc-message']).toBe('OK');
    });

    it('many pushes in several DATA frames, split across message boundaries', async () => {
      const body = Buffer.concat(Array.from({ length: 3000 }, (_, i) => push({ topic: 'many', data: Buffer.from(`p${i}`) })));
      const a = await same({ path: PUSH_STREAM, headers: auth, body }, streamAnswer, true);
      expect(a.messages).toHaveLength(3000);
    });

    it('no key: UNAUTHENTICATED, trailers only', async () => {
      const a = await same({ path: PUSH_STREAM, body: push({ topic: 's' }) }, streamAnswer, true);
      expect(a.headers['grpc-status']).toBe('16');
    });

    it('an empty stream ends OK, trailers only', async () => {
      await same({ path: PUSH_STREAM, headers: auth, body: Buffer.alloc(0) }, streamAnswer, true);
    });

    it('a message over the limit ends the stream RESOURCE_EXHAUSTED', async () => {
      const a = await same({ path: PUSH_STREAM, headers: auth, body: frame(Buffer.alloc(MAX_MESSAGE + 1)) }, streamAnswer, true);
      expect(a.headers['grpc-status']).toBe('8');
    });

    it('a truncated last message is dropped at the half-close', async () => {
      const whole = push({ topic: 's', data: Buffer.from('x') });
      await same({ path: PUSH_STREAM, headers: auth, body: Buffer.concat([whole, whole.subarray(0, 4)]) }, streamAnswer, true);
    });

    it('with a deadline or compression, grpc-js serves the stream', async () => {
      await same({ path: PUSH_STREAM, headers: { ...auth, 'grpc-timeout': '10S' }, body: push({ topic: 's' }) }, streamAnswer, false);
      const raw = PushDataRequest.encode(PushDataRequest.fromPartial({ topic: 's', data: Buffer.from('zip') })).finish();
      await same({ path: PUSH_STREAM, headers: { ...auth, 'grpc-encoding': 'gzip' }, body: frame(gzipSync(raw), 1) }, streamAnswer, false);
    });

    it('a cancelled stream (RST_STREAM CANCEL) ends the call on both nodes alike', async () => {
      // PushStream calls by final code, as the duration histogram counts them.
      const byCode = async (s: TestServer): Promise<Record<string, number>> => {
        const text = await (await fetch(`${s.httpUrl}/metrics`)).text();
        const out: Record<string, number> = {};
        for (const m of text.matchAll(/^pushwire_grpc_request_duration_seconds_count\{[^}]*method="PushStream",code="(\w+)"[^}]*\} (\d+)/gm)) out[m[1]!] = Number(m[2]);
        return out;
      };
      const before = [await byCode(fast), await byCode(slow)];
      for (const session of [fastSession, slowSession]) {
        const stream = session.request({ ':method': 'POST', ':path': PUSH_STREAM, 'content-type': 'application/grpc', te: 'trailers', ...auth });
        stream.on('error', () => {});
        stream.write(push({ topic: 's' }));
        await new Promise<void>((resolve) => stream.once('data', () => resolve()));
        // What a gRPC client's cancel sends.
        stream.close(constants.NGHTTP2_CANCEL);
      }
      const delta = (now: Record<string, number>, then: Record<string, number>): Record<string, number> =>
        Object.fromEntries(Object.entries(now).filter(([k, v]) => v !== (then[k] ?? 0)).map(([k, v]) => [k, v - (then[k] ?? 0)]));
      await waitFor(async () => Object.keys(delta(await byCode(fast), before[0]!)).length > 0 && Object.keys(delta(await byCode(slow), before[1]!)).length > 0, 10_000, 'both nodes to end the call');
      expect(delta(await byCode(fast), before[0]!)).toEqual(delta(await byCode(slow), before[1]!));
    });

    it('the session survives a cancel: the next call on it works', async () => {
      await same({ path: PUSH_STREAM, headers: auth, body: push({ topic: 's' }) }, streamAnswer, true);
    });
  });

  describe('everything else is grpc-js', () => {
    it('PushDataBatch, health, an unknown method', async () => {
      const none = (): object => ({});
      const batch = frame(Buffer.concat([Buffer.from([0x0a]), Buffer.from([push({ topic: 'b' }).length - 5]), push({ topic: 'b' }).subarray(5)]));
      const b = await rawCall(fastSession, { path: '/pushwire.v1.PushService/PushDataBatch', headers: auth, body: batch });
      expect(b.trailers?.['grpc-status']).toBe('0');
      const health = await same({ path: '/grpc.health.v1.Health/Check', body: frame(Buffer.alloc(0)) }, none, false);
      expect(health.messages[0]!.body).toEqual(Buffer.from([0x08, 0x01]));
      const unknown = await same({ path: '/pushwire.v1.PushService/Nope', body: frame(Buffer.alloc(0)) }, none, false);
      expect(unknown.headers['grpc-status']).toBe('12');
    });
  });
});

describe('gRPC fast path at shutdown', () => {
  it('an open PushStream ends UNAVAILABLE after its answers, as with grpc-js', async () => {
    for (const args of [[], ['--grpc-fast-path', 'false']]) {
      const server = await startTestServer(args);
      const session = connect(`http://${server.grpcAddress}`);
      try {
        const stream = session.request({ ':method': 'POST', ':path': PUSH_STREAM, 'content-type': 'application/grpc', te: 'trailers' });
        stream.on('error', () => {});
        const trailers = new Promise<IncomingHttpHeaders>((resolve) => stream.on('trailers', resolve));
        let answers = 0;
        stream.on('data', () => answers++);
        stream.write(push({ topic: 'x' }));
        await waitFor(() => answers > 0, 10_000, 'an answer');
        const down = server.shutdown();
        const t = await trailers;
        expect(t['grpc-status']).toBe('14');
        stream.close();
        await down;
      } finally {
        session.destroy();
      }
    }
  });
});
