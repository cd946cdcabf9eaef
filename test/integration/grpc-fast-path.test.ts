import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { PushDataRequest, PushDataResponse, PushStreamResponse, type PushServiceClient } from '../../gen/pushwire/v1/push.js';
import { pushClient } from '../helpers/grpc-client.js';
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
  /**
   * With `open`: once the server has ended its side (its status), write `late` if given, then
   * half-close ('end') or reset the stream as a client's cancel does ('cancel').
   */
  afterStatus?: 'end' | 'cancel';
  late?: Buffer;
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
    stream.on('end', () => {
      if (c.afterStatus === undefined) return;
      if (c.late) stream.write(c.late);
      if (c.afterStatus === 'end') stream.end();
      else stream.close(constants.NGHTTP2_CANCEL);
    });
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

  /** A node's pushes by ingress and result, and gRPC calls by method and final code. */
  const effects = async (s: TestServer): Promise<Record<string, number>> => {
    const text = await (await fetch(`${s.httpUrl}/metrics`)).text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^pushwire_pushes_total\{([^}]*)\} (\d+)/gm)) out[`push ${m[1]!.replace(/,?node="[^"]*"/, '')}`] = Number(m[2]);
    for (const m of text.matchAll(/^pushwire_grpc_request_duration_seconds_count\{[^}]*method="(\w+)",code="(\w+)"[^}]*\} (\d+)/gm)) out[`call ${m[1]} ${m[2]}`] = Number(m[3]);
    return out;
  };
  const delta = (now: Record<string, number>, then: Record<string, number>): Record<string, number> =>
    Object.fromEntries(Object.entries(now).filter(([k, v]) => v !== (then[k] ?? 0)).map(([k, v]) => [k, v - (then[k] ?? 0)]));

  /**
   * The same call to both nodes; their answers must match. Returns the fast path's. With `done`,
   * what each node did (pushes by result, calls by final code: `effects`) must match too, once
   * both changes satisfy `done`: a node may act after the client's stream closed (a handler run
   * at a late half-close).
   */
  async function same(c: Call, decode: (b: Buffer) => object, taken: boolean, done?: (change: Record<string, number>) => boolean): Promise<Answer> {
    const method = c.path === PUSH_STREAM ? 'PushStream' : 'PushData';
    const before = await fastCalls(method);
    const effectsBefore = await Promise.all([effects(fast), effects(slow)]);
    const [a, b] = await Promise.all([rawCall(fastSession, c), rawCall(slowSession, c)]);
    expect(comparable(a, decode)).toEqual(comparable(b, decode));
    expect(await fastCalls(method)).toBe(before + (taken ? 1 : 0));
    expect(await metric(slow.httpUrl, 'pushwire_grpc_fast_path_calls_total')).toBe(0);
    if (done) {
      const changes = async (): Promise<Array<Record<string, number>>> => [delta(await effects(fast), effectsBefore[0]!), delta(await effects(slow), effectsBefore[1]!)];
      const both = await waitFor(async () => {
        const now = await changes();
        return now.every(done) ? now : undefined;
      }, 10_000, 'both nodes to finish the call').catch(changes);
      expect(both?.[0]).toEqual(both?.[1]);
    }
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

    const pushedOnce = (d: Record<string, number>): boolean => d['push ingress="grpc",result="ok"'] === 1;
    const nothing = (): boolean => true;

    it('a deadline that does not pass: the same OK answer, for every form of grpc-timeout grpc-js reads', async () => {
      // Python's grpcio sends microseconds ('9999953u'), grpc-js milliseconds; grpc-js finds the digits
      // and unit anywhere in the value, reads 9 digits as their last 8, and takes the first of two headers.
      for (const t of ['5S', '30000m', '2M', '1H', '9999953u', '123456789S', ' 5 S', 'x5S', ['5S', '9S']]) {
        const a = await same({ path: PUSH_DATA, headers: { ...auth, 'grpc-timeout': t }, body: push({ topic: 't', data: Buffer.from('x') }) }, unaryAnswer, true, pushedOnce);
        expect(a.trailers?.['grpc-status'], String(t)).toBe('0');
      }
      // A value grpc-js's Metadata refuses (not printable ASCII) is no deadline at all.
      await same({ path: PUSH_DATA, headers: { ...auth, 'grpc-timeout': '5S\u00e9' }, body: push({ topic: 't' }) }, unaryAnswer, true, pushedOnce);
    });

    it('an invalid push, a missing key, with a deadline: the same errors', async () => {
      await same({ path: PUSH_DATA, headers: { ...auth, 'grpc-timeout': '5S' }, body: push({ topic: 'bad topic\n' }) }, unaryAnswer, true);
      await same({ path: PUSH_DATA, headers: { 'grpc-timeout': '5S' }, body: push({ topic: 't' }) }, unaryAnswer, true);
    });

    it('a deadline that passes before the half-close: DEADLINE_EXCEEDED, trailers only', async () => {
      const whole = push({ topic: 't', data: Buffer.from('late') });
      // Already expired ('0S', '1n': grpc-js's timer of 0 ms) or short; the client then cancels. The
      // request was read in time, so grpc-js still runs the handler when the reset ends the stream.
      for (const t of ['0S', '1n', '1m', '50m']) {
        const a = await same({ path: PUSH_DATA, headers: { ...auth, 'grpc-timeout': t }, body: whole, open: true, afterStatus: 'cancel' }, unaryAnswer, true, pushedOnce);
        expect([a.headers['grpc-status'], a.headers['grpc-message']]).toEqual(['4', 'Deadline%20exceeded']);
      }
      // Nothing sent yet; half a message, the rest after the status: nothing is pushed.
      await same({ path: PUSH_DATA, headers: { ...auth, 'grpc-timeout': '1m' }, body: Buffer.alloc(0), open: true, afterStatus: 'end' }, unaryAnswer, true, nothing);
      await same({ path: PUSH_DATA, headers: { ...auth, 'grpc-timeout': '1m' }, body: whole.subarray(0, 7), open: true, afterStatus: 'end', late: whole.subarray(7) }, unaryAnswer, true, nothing);
    });

    it('a whole request read before the deadline and half-closed after it is still pushed, as grpc-js does', async () => {
      // The caller has its DEADLINE_EXCEEDED: the outcome of a push whose deadline passed is unknown.
      const a = await same({ path: PUSH_DATA, headers: { ...auth, 'grpc-timeout': '200m' }, body: push({ topic: 't' }), open: true, afterStatus: 'end' }, unaryAnswer, true, pushedOnce);
      expect(a.headers['grpc-status']).toBe('4');
    });

    it('a malformed grpc-timeout: INTERNAL "Invalid grpc-timeout value", trailers only, before anything else', async () => {
      for (const t of ['abc', '', '5', '5s', 'S', '-']) {
        const a = await same({ path: PUSH_DATA, headers: { ...auth, 'grpc-timeout': t }, body: push({ topic: 't' }) }, unaryAnswer, true, nothing);
        expect([a.headers['grpc-status'], decodeURI(String(a.headers['grpc-message']))]).toEqual(['13', `Invalid grpc-timeout value "${t}"`]);
      }
      // grpc-js reads the header before the key and the request.
      await same({ path: PUSH_DATA, headers: { 'grpc-timeout': 'abc' }, body: push({ topic: 't' }) }, unaryAnswer, true, nothing);
      await same({ path: PUSH_DATA, headers: { ...auth, 'grpc-timeout': 'abc' }, body: frame(Buffer.alloc(MAX_MESSAGE + 1)) }, unaryAnswer, true, nothing);
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

    const streamed = (n: number, code: string) => (d: Record<string, number>): boolean =>
      (d['push ingress="grpc_stream",result="ok"'] ?? 0) === n && d[`call PushStream ${code}`] === 1;

    it('a deadline that does not pass: the same answers, then OK', async () => {
      const body = Buffer.concat([push({ topic: 's', data: Buffer.from('1') }), push({ topic: 'bad topic\n' }), push({ topic: 's', data: Buffer.from('2') })]);
      for (const t of ['10S', '9999953u']) {
        const a = await same({ path: PUSH_STREAM, headers: { ...auth, 'grpc-timeout': t }, body }, streamAnswer, true, streamed(2, 'OK'));
        expect([a.messages.length, a.trailers?.['grpc-status']]).toEqual([3, '0']);
      }
    });

    it('a deadline that passes on an open stream with nothing answered: DEADLINE_EXCEEDED trailers only, a cancel for the handler', async () => {
      for (const t of ['0S', '1m']) {
        const a = await same({ path: PUSH_STREAM, headers: { ...auth, 'grpc-timeout': t }, body: Buffer.alloc(0), open: true, afterStatus: 'end' }, streamAnswer, true, streamed(0, 'CANCELLED'));
        expect([a.headers['grpc-status'], a.headers['grpc-message']]).toEqual(['4', 'Deadline%20exceeded']);
      }
    });

    it('a deadline that passes after answers: the answers, then DEADLINE_EXCEEDED trailers; a push after it is not taken', async () => {
      // 2 s: the two answers are out long before it.
      const body = Buffer.concat([push({ topic: 's', data: Buffer.from('1') }), push({ topic: 's', data: Buffer.from('2') })]);
      const a = await same({ path: PUSH_STREAM, headers: { ...auth, 'grpc-timeout': '2S' }, body, open: true, afterStatus: 'end', late: push({ topic: 's' }) }, streamAnswer, true, streamed(2, 'CANCELLED'));
      expect(a.messages).toHaveLength(2);
      expect([a.trailers?.['grpc-status'], a.trailers?.['grpc-message']]).toEqual(['4', 'Deadline%20exceeded']);
    });

    it('a malformed grpc-timeout: INTERNAL, nothing pushed; without a key the handler answers first (UNAUTHENTICATED), as in grpc-js', async () => {
      const body = push({ topic: 's' });
      const a = await same({ path: PUSH_STREAM, headers: { ...auth, 'grpc-timeout': 'abc' }, body }, streamAnswer, true, streamed(0, 'CANCELLED'));
      expect([a.headers['grpc-status'], a.headers['grpc-message']]).toEqual(['13', 'Invalid%20grpc-timeout%20value%20%22abc%22']);
      const b = await same({ path: PUSH_STREAM, headers: { 'grpc-timeout': 'abc' }, body }, streamAnswer, true, streamed(0, 'UNAUTHENTICATED'));
      expect(b.headers['grpc-status']).toBe('16');
    });

    it('with compression, grpc-js serves the stream', async () => {
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

  describe("deadlines set by grpc-js's client", () => {
    let client: PushServiceClient;
    beforeAll(() => {
      client = pushClient(fast.grpcAddress);
    });
    afterAll(() => client?.close());
    const md = (): Metadata => {
      const m = new Metadata();
      m.set('authorization', auth.authorization);
      return m;
    };

    it('PushData and PushStream with a deadline are served by the fast path', async () => {
      const [unary0, stream0] = [await fastCalls('PushData'), await fastCalls('PushStream')];
      const reply = await new Promise<PushDataResponse>((resolve, reject) =>
        client.pushData(PushDataRequest.fromPartial({ topic: 'dl', data: Buffer.from('x') }), md(), { deadline: Date.now() + 30_000 }, (err, r) => (err ? reject(err) : resolve(r))),
      );
      expect(reply.nodeId).toBe(fast.nodeId);
      const answers = await new Promise<PushStreamResponse[]>((resolve, reject) => {
        const call = client.pushStream(md(), { deadline: Date.now() + 30_000 });
        const got: PushStreamResponse[] = [];
        call.on('data', (a: PushStreamResponse) => got.push(a));
        call.on('error', reject);
        call.on('end', () => resolve(got));
        for (let i = 0; i < 3; i++) call.write(PushDataRequest.fromPartial({ topic: 'dl', data: Buffer.from(`s${i}`) }));
        call.end();
      });
      expect(answers.map((a) => a.error?.code ?? 0)).toEqual([0, 0, 0]);
      expect([await fastCalls('PushData'), await fastCalls('PushStream')]).toEqual([unary0 + 1, stream0 + 1]);
    });

    it('a PushStream left open past its deadline ends DEADLINE_EXCEEDED', async () => {
      const stream0 = await fastCalls('PushStream');
      const err = await new Promise<ServiceError>((resolve) => {
        const call = client.pushStream(md(), { deadline: Date.now() + 500 });
        call.on('data', () => {});
        call.on('error', resolve);
        call.write(PushDataRequest.fromPartial({ topic: 'dl', data: Buffer.from('open') }));
      });
      expect(err.code).toBe(status.DEADLINE_EXCEEDED);
      expect(await fastCalls('PushStream')).toBe(stream0 + 1);
    });
  });

  describe('deadline timers', () => {
    // Timers of this process (the node runs in it): one per deadline call while it runs, none after.
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

    it('no timer outlives its call: answered, reset by the client, or a stream', async () => {
      const before = timers();
      const calls = 3000;
      const body = push({ topic: 'timers', data: Buffer.from('x') });
      const headers = { ...auth, 'grpc-timeout': '60S' };
      for (let i = 0; i < calls; i += 200) {
        await Promise.all(Array.from({ length: 200 }, () => rawCall(fastSession, { path: PUSH_DATA, headers, body })));
      }
      // Open and unanswered (not half-closed): a timer each, until the client resets them; then
      // the streams' close clears the timers.
      const open = Array.from({ length: 300 }, () => {
        const stream = fastSession.request({ ':method': 'POST', ':path': PUSH_DATA, 'content-type': 'application/grpc', te: 'trailers', ...headers });
        stream.on('error', () => {});
        stream.write(body);
        return stream;
      });
      await waitFor(() => timers() - before >= 250, 10_000, 'a timer for each open call');
      await Promise.all(open.map((stream) => new Promise((resolve) => stream.close(constants.NGHTTP2_CANCEL, () => resolve(undefined)))));
      await Promise.all(Array.from({ length: 100 }, () => rawCall(fastSession, { path: PUSH_STREAM, headers, body: Buffer.concat([body, body]) })));
      // What is left once the calls are gone: the server's and the test's own timers, not thousands.
      const settled = (): boolean => timers() - before < 50;
      await waitFor(settled, 10_000, 'deadline timers to be cleared').catch(() => false);
      expect(timers() - before).toBeLessThan(50);
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
