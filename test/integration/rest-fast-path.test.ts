import { createServer, type RequestListener, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/cluster/memory-bus.js';
import { MemoryConsumers } from '../../src/cluster/memory-consumers.js';
import { MemoryPresence } from '../../src/cluster/memory-presence.js';
import type { Identity } from '../../src/core/auth/authenticator.js';
import { PushNode } from '../../src/core/node.js';
import { ProjectRegistry, type ProjectSet } from '../../src/core/projects/registry.js';
import { nodeChannel } from '../../src/core/targeting.js';
import { createHttpApp, createHttpHandler, type HttpAppOptions } from '../../src/ingress/http/app.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';

/**
 * The fast path (node:http, in front of express) must answer byte for byte what the express routes
 * answer. Each case goes over a raw socket to two listeners sharing one node: express alone, and the
 * fast path in front of express. Only the Date header and message ids may differ.
 */

const KEY_ALL = 'fast-path-key-all-0123456789';
const KEY_BATCH_ONLY = 'fast-path-key-batch-0123456789';
const MAX_PUSH_BYTES = 1024;

function projectSet(withKeys: boolean): ProjectSet {
  const authenticator = { authenticate: (): Promise<Identity> => Promise.reject(new Error('no login here')) };
  return {
    projects: [{ pid: 'default', name: 'default', authenticator, limits: {} }],
    apiKeys: withKeys
      ? new Map([
          [KEY_ALL, { pid: 'default', methods: undefined }],
          [KEY_BATCH_ONLY, { pid: 'default', methods: new Set(['PushDataBatch']) }],
        ])
      : new Map(),
  } as ProjectSet;
}

interface Pair {
  express: number;
  fast: number;
  metrics: Metrics;
  close(): Promise<void>;
}

async function startPair(withKeys: boolean): Promise<Pair> {
  const logger = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));
  const metrics = new Metrics('fastnode');
  const projects = new ProjectRegistry(projectSet(withKeys));
  // A node on in-process parts; the push routes only use its publisher.
  const bus = new MemoryBus();
  const node = new PushNode({
    nodeId: 'fastnode',
    bus,
    consumers: new MemoryConsumers(bus, nodeChannel),
    consumerTtlMs: 15_000,
    projects,
    metrics,
    logger,
    maxPushBytes: MAX_PUSH_BYTES,
    idempotencyWindowMs: 60_000,
    unsubscribeDelayMs: 500,
    presence: new MemoryPresence(),
    presenceTtlMs: 30_000,
  });
  const o: HttpAppOptions = {
    publisher: node.publisher,
    projects,
    metrics,
    logger,
    maxPushBytes: MAX_PUSH_BYTES,
    isReady: () => true,
    node,
    maxQueueBytes: 1 << 20,
  };
  const listen = (handler: RequestListener): Promise<Server> =>
    new Promise((resolve) => {
      const s = createServer(handler);
      s.listen(0, '127.0.0.1', () => resolve(s));
    });
  const a = await listen(createHttpApp(o));
  const b = await listen(createHttpHandler(o));
  const port = (s: Server): number => (s.address() as AddressInfo).port;
  return {
    express: port(a),
    fast: port(b),
    metrics,
    async close() {
      for (const s of [a, b]) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
      await bus.close();
    },
  };
}

/** Writes `parts` (with a short pause between them) and returns everything the server sent until it closed. */
function exchange(port: number, parts: Array<string | Buffer>): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    sock.on('data', (d) => got.push(d));
    sock.on('end', () => resolve(Buffer.concat(got).toString('latin1')));
    sock.on('error', reject);
    sock.setTimeout(5000, () => {
      sock.destroy();
      reject(new Error(`no end of response; got ${JSON.stringify(Buffer.concat(got).toString('latin1'))}`));
    });
    void (async () => {
      for (const p of parts) {
        sock.write(p);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
  });
}

/**
 * Masks what may differ: the Date header and message ids. A response carrying ids gets its
 * Content-Length masked too (ids vary in length) after checking it against its body.
 */
function normalize(raw: string): string {
  return raw
    .split(/(?=HTTP\/1\.1 \d{3} )/)
    .map((response) => {
      let r = response.replace(/\r\nDate: [^\r]+/g, '\r\nDate: <date>');
      if (!r.includes('"messageId')) return r;
      const [head, body = ''] = r.split('\r\n\r\n');
      const declared = /\r\nContent-Length: (\d+)/.exec(head!)?.[1];
      expect(Number(declared)).toBe(Buffer.byteLength(body, 'latin1'));
      r = r.replace(/\r\nContent-Length: \d+/, '\r\nContent-Length: <n>');
      return r.replace(/"messageId":"[^"]+"/g, '"messageId":"<id>"').replace(/"messageIds":\[[^\]]*\]/g, (ids) => `"messageIds":[${ids.split(',').length}]`);
    })
    .join('');
}

function request(method: string, path: string, body: string | Buffer | undefined, headers: Record<string, string> = {}): Array<string | Buffer> {
  const h = Object.entries({ Host: '127.0.0.1', Connection: 'close', ...headers }).map(([k, v]) => `${k}: ${v}\r\n`);
  if (body === undefined) return [`${method} ${path} HTTP/1.1\r\n${h.join('')}\r\n`];
  const b = Buffer.from(body);
  if (headers['Transfer-Encoding'] === 'chunked') {
    // Three chunks, sent as separate writes: the fast path must not assume one 'data' event.
    const third = Math.ceil(b.length / 3);
    const chunks = [b.subarray(0, third), b.subarray(third, 2 * third), b.subarray(2 * third)].filter((c) => c.length > 0);
    return [`${method} ${path} HTTP/1.1\r\n${h.join('')}\r\n`, ...chunks.map((c) => Buffer.concat([Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n')])), '0\r\n\r\n'];
  }
  return [`${method} ${path} HTTP/1.1\r\n${h.join('')}Content-Length: ${b.length}\r\n\r\n`, b];
}

const push = JSON.stringify({ topic: 'fast', data: Buffer.from('hello').toString('base64') });
const batch = JSON.stringify({ pushes: [{ topic: 'a', data: 'aGk=' }, { topic: 'b' }] });
const big = JSON.stringify({ topic: 't', data: Buffer.alloc(100 * 1024, 1).toString('base64') });
const json = { 'Content-Type': 'application/json' };

const OPEN_CASES: Array<[string, Array<string | Buffer>]> = [
  ['a valid push', request('POST', '/v1/pushData', push, json)],
  ['a valid batch', request('POST', '/v1/pushData:batch', batch, json)],
  ['a chunked body in three writes', request('POST', '/v1/pushData', push, { ...json, 'Transfer-Encoding': 'chunked' })],
  ['a chunked batch', request('POST', '/v1/pushData:batch', batch, { 'Transfer-Encoding': 'chunked' })],
  ['a query string', request('POST', '/v1/pushData?topic=ignored&x=1', push, json)],
  ['an empty query string', request('POST', '/v1/pushData?', push, json)],
  ['a trailing slash (404)', request('POST', '/v1/pushData/', push, json)],
  ['a trailing slash on batch (404)', request('POST', '/v1/pushData:batch/', batch, json)],
  ['another case (404)', request('POST', '/v1/pushdata', push, json)],
  ['a double slash (404)', request('POST', '//v1/pushData', push, json)],
  ['GET (501)', request('GET', '/v1/pushData', undefined)],
  ['HEAD (501, no body)', request('HEAD', '/v1/pushData', undefined)],
  ['HEAD on batch', request('HEAD', '/v1/pushData:batch', undefined)],
  ['PUT with a body (501)', request('PUT', '/v1/pushData', push, json)],
  ['no content type', request('POST', '/v1/pushData', push)],
  ['text/plain', request('POST', '/v1/pushData', push, { 'Content-Type': 'text/plain' })],
  ['a form content type', request('POST', '/v1/pushData', push, { 'Content-Type': 'application/x-www-form-urlencoded' })],
  ['a JSON charset parameter', request('POST', '/v1/pushData', push, { 'Content-Type': 'application/json; charset=latin1' })],
  ['no body and no length (the empty message)', request('POST', '/v1/pushData', undefined)],
  ['Content-Length: 0', request('POST', '/v1/pushData', '', json)],
  ['an empty chunked body', [`POST /v1/pushData HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n`, '0\r\n\r\n']],
  ['invalid JSON', request('POST', '/v1/pushData', '{"topic":', json)],
  ['a JSON array', request('POST', '/v1/pushData', '[]', json)],
  ['an unknown field', request('POST', '/v1/pushData', '{"nope":1}', json)],
  ['bad base64', request('POST', '/v1/pushData', '{"data":"a+b-"}', json)],
  ['data over --max-push-bytes', request('POST', '/v1/pushData', JSON.stringify({ data: Buffer.alloc(MAX_PUSH_BYTES + 1).toString('base64') }), json)],
  ['a body over the HTTP limit (declared length)', request('POST', '/v1/pushData', big, json)],
  ['a body over the HTTP limit (chunked)', request('POST', '/v1/pushData', big, { ...json, 'Transfer-Encoding': 'chunked' })],
  ['a batch over the HTTP limit', request('POST', '/v1/pushData:batch', JSON.stringify({ pushes: [JSON.parse(big)] }), json)],
  ['an invalid push in a batch', request('POST', '/v1/pushData:batch', '{"pushes":[{"topic":"ok"},{"topic":"bad\\ntopic"}]}', json)],
  ['a gzip body (inflated by express)', request('POST', '/v1/pushData', gzipSync(push), { ...json, 'Content-Encoding': 'gzip' })],
  ['an identity content encoding', request('POST', '/v1/pushData', push, { ...json, 'Content-Encoding': 'Identity' })],
  ['an unsupported content encoding', request('POST', '/v1/pushData', push, { ...json, 'Content-Encoding': 'compress' })],
  ['an Authorization header on an open API', request('POST', '/v1/pushData', push, { ...json, Authorization: 'Bearer whatever' })],
  [
    'two pushes on one keep-alive connection',
    [...request('POST', '/v1/pushData', push, { ...json, Connection: 'keep-alive' }), ...request('POST', '/v1/pushData', push, json)],
  ],
  [
    'an oversized body, then a push on the same connection',
    [...request('POST', '/v1/pushData', big, { ...json, Connection: 'keep-alive' }), ...request('POST', '/v1/pushData', push, json)],
  ],
];

const KEYED_CASES: Array<[string, Array<string | Buffer>]> = [
  ['no key (401)', request('POST', '/v1/pushData', push, json)],
  ['an unknown key (401)', request('POST', '/v1/pushData', push, { ...json, Authorization: 'Bearer nope-nope-nope' })],
  ['a valid key', request('POST', '/v1/pushData', push, { ...json, Authorization: `Bearer ${KEY_ALL}` })],
  ['a valid key, lower-case scheme', request('POST', '/v1/pushData', push, { ...json, Authorization: `bearer   ${KEY_ALL}` })],
  ['a bare key without the scheme', request('POST', '/v1/pushData', push, { ...json, Authorization: KEY_ALL })],
  ['a key without the method (403)', request('POST', '/v1/pushData', push, { ...json, Authorization: `Bearer ${KEY_BATCH_ONLY}` })],
  ['a key with the method', request('POST', '/v1/pushData:batch', batch, { ...json, Authorization: `Bearer ${KEY_BATCH_ONLY}` })],
  ['no key and an oversized body (401 before reading it)', request('POST', '/v1/pushData', big, json)],
  [
    'a refused key, then a push on the same connection',
    [...request('POST', '/v1/pushData', push, { ...json, Connection: 'keep-alive' }), ...request('POST', '/v1/pushData', push, { ...json, Authorization: `Bearer ${KEY_ALL}` })],
  ],
];

for (const [title, withKeys, cases] of [
  ['open API', false, OPEN_CASES],
  ['API keys', true, KEYED_CASES],
] as const) {
  describe(`REST fast path answers exactly as the express routes (${title})`, () => {
    let pair: Pair;
    beforeAll(async () => {
      pair = await startPair(withKeys);
    });
    afterAll(async () => {
      await pair?.close();
    });

    for (const [name, parts] of cases) {
      it(name, async () => {
        const viaExpress = normalize(await exchange(pair.express, parts));
        const viaFast = normalize(await exchange(pair.fast, parts));
        expect(viaExpress).toMatch(/^HTTP\/1\.1 \d{3} /);
        expect(viaFast).toBe(viaExpress);
      });
    }
  });
}

describe('REST fast path metrics', () => {
  let pair: Pair;
  beforeAll(async () => {
    pair = await startPair(false);
  });
  afterAll(async () => {
    await pair?.close();
  });

  const count = async (labels: Record<string, string>): Promise<number> => {
    const m = (await pair.metrics.httpDuration.get()).values.find(
      (v) => v.metricName === 'pushwire_http_request_duration_seconds_count' && Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x),
    );
    return m?.value ?? 0;
  };

  it('records the same duration samples (method, route, status) as the express path', async () => {
    const labels = [
      { method: 'POST', route: '/v1/pushData', status: '200' },
      { method: 'POST', route: '/v1/pushData:batch', status: '200' },
      { method: 'POST', route: '/v1/pushData', status: '400' },
    ];
    const send = async (port: number): Promise<void> => {
      await exchange(port, request('POST', '/v1/pushData', push, json));
      await exchange(port, request('POST', '/v1/pushData:batch', batch, json));
      await exchange(port, request('POST', '/v1/pushData', '{', json));
    };
    const before = await Promise.all(labels.map(count));
    await send(pair.express);
    const mid = await Promise.all(labels.map(count));
    await send(pair.fast);
    const after = await Promise.all(labels.map(count));
    expect(mid.map((v, i) => v - before[i]!)).toEqual([1, 1, 1]);
    expect(after.map((v, i) => v - mid[i]!)).toEqual([1, 1, 1]);
  });
});
