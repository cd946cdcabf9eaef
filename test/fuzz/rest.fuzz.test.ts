import { Agent, request, validateHeaderName, validateHeaderValue } from 'node:http';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeProcess } from '../helpers/node-process.js';
import { Tally, batch, check, deepJson, expectServes } from './support.js';

/**
 * Property: any method, path, headers and body sent to the REST bridge gets a documented
 * answer: 2xx, or a google.rpc.Status body whose HTTP status is grpc-gateway's mapping of its
 * code; never a 5xx other than 501/503/504, never an error log line, and the node (a real
 * process) still serves pushes afterwards.
 */

const HTTP_OF_CODE: Record<number, number> = { 1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401 };

const ROUTES = [
  { method: 'POST', path: '/v1/pushData' },
  { method: 'POST', path: '/v1/pushData:batch' },
  { method: 'POST', path: '/v1/projects/{pid}/presence:get' },
  { method: 'POST', path: '/v1/projects/{pid}/subscribe', stream: true },
  { method: 'GET', path: '/v1/projects/{pid}/online-users' },
  { method: 'GET', path: '/v1/projects/{pid}/online-users:count' },
  { method: 'GET', path: '/v1/projects/{pid}/online-users:watch', stream: true },
  { method: 'GET', path: '/v1/projects/{pid}/presence' },
  { method: 'GET', path: '/v1/nodes' },
  { method: 'GET', path: '/healthz' },
  { method: 'GET', path: '/readyz' },
  { method: 'GET', path: '/metrics' },
];

const anyValue = fc.jsonValue({ maxDepth: 3 });
const pushFields = fc.record(
  {
    uid: fc.oneof(fc.string({ maxLength: 10 }), anyValue),
    topic: fc.oneof(fc.string({ maxLength: 300 }), anyValue),
    data: fc.oneof(fc.base64String({ maxLength: 40 }), fc.string({ maxLength: 20 }), anyValue),
    pid: fc.oneof(fc.constant('default'), fc.string({ maxLength: 10 }), anyValue),
    idempotencyKey: fc.oneof(fc.string({ maxLength: 80 }), anyValue),
    uids: fc.oneof(fc.array(fc.string({ maxLength: 8 }), { maxLength: 5 }), anyValue),
    cids: fc.oneof(fc.array(fc.string({ maxLength: 30 }), { maxLength: 5 }), anyValue),
    tags: fc.oneof(fc.array(fc.string({ maxLength: 8 }), { maxLength: 5 }), anyValue),
    reply_to: fc.oneof(fc.string({ maxLength: 8 }), anyValue),
    topics: fc.oneof(fc.array(fc.string({ maxLength: 8 }), { maxLength: 5 }), anyValue),
    pushes: fc.array(anyValue, { maxLength: 3 }),
    junk: anyValue,
  },
  { requiredKeys: [] },
);

const jsonText = fc.oneof(
  { weight: 4, arbitrary: pushFields.map((o) => JSON.stringify(o)) },
  { weight: 1, arbitrary: pushFields.map((o) => JSON.stringify({ pushes: [o, o] })) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 5 }) },
  { weight: 1, arbitrary: deepJson(25_000).map((d) => `{"topic":${d}}`) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
);

/** A body and the Content-Encoding it is sent with: honestly compressed, mislabelled, or garbage. */
const body = fc.oneof(
  { weight: 4, arbitrary: jsonText.map((t) => ({ encoding: undefined as string | undefined, bytes: Buffer.from(t) })) },
  {
    weight: 2,
    arbitrary: fc.tuple(jsonText, fc.constantFrom('gzip', 'deflate', 'br')).map(([t, e]) => ({
      encoding: e,
      bytes: e === 'gzip' ? gzipSync(t) : e === 'deflate' ? deflateSync(t) : brotliCompressSync(Buffer.from(t)),
    })),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.uint8Array({ maxLength: 300 }), fc.constantFrom('gzip', 'deflate', 'br', 'GZIP', 'identity', 'x-unknown', 'gzip, br', ''))
      .map(([b, e]) => ({ encoding: e, bytes: Buffer.from(b) })),
  },
  { weight: 1, arbitrary: fc.constant({ encoding: undefined as string | undefined, bytes: Buffer.alloc(0) }) },
);

const header = fc.tuple(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 40 })).filter(([n, v]) => {
  try {
    validateHeaderName(n);
    validateHeaderValue(n, v);
    return !['content-length', 'transfer-encoding', 'host', 'connection', 'content-encoding', 'expect', 'upgrade'].includes(n.toLowerCase());
  } catch {
    return false;
  }
});

const requestArb = fc.record({
  route: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...ROUTES) }, { weight: 1, arbitrary: fc.webPath().map((path) => ({ method: 'GET', path: path || '/' })) }),
  method: fc.option(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'), { freq: 3 }),
  pid: fc.oneof(fc.constant('default'), fc.constant('nope'), fc.string({ minLength: 1, maxLength: 8 }).map(encodeURIComponent)),
  query: fc.option(fc.webQueryParameters(), { freq: 2 }),
  contentType: fc.option(fc.constantFrom('application/json', 'text/plain', 'application/octet-stream', 'application/json; charset=latin1', 'x/y'), { freq: 3 }),
  authorization: fc.option(fc.oneof(fc.string({ maxLength: 30 }).map((k) => `Bearer ${k}`), fc.string({ maxLength: 30 })), { freq: 3 }),
  headers: fc.array(header, { maxLength: 3 }),
  body,
});

type FuzzRequest = typeof requestArb extends fc.Arbitrary<infer T> ? T : never;

interface Answer {
  status: number;
  contentType: string | undefined;
  text: string;
}

function send(agent: Agent, port: number, r: FuzzRequest): Promise<Answer> {
  const method = r.method ?? r.route.method;
  const path = r.route.path.replace('{pid}', r.pid) + (r.query ? `?${r.query}` : '');
  const headers: Record<string, string> = {};
  for (const [n, v] of r.headers) headers[n] = v;
  if (r.contentType) headers['content-type'] = r.contentType;
  if (r.authorization !== null) {
    try {
      validateHeaderValue('authorization', r.authorization);
      headers.authorization = r.authorization;
    } catch {
      // not sendable: no header
    }
  }
  if (r.body.encoding !== undefined && r.body.encoding !== '') headers['content-encoding'] = r.body.encoding;
  const withBody = method !== 'GET' && method !== 'HEAD';
  if (withBody) headers['content-length'] = String(r.body.bytes.length);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent }, (res) => {
      const status = res.statusCode ?? 0;
      const contentType = res.headers['content-type'];
      // A stream that was accepted stays open: its headers are the answer.
      if (status === 200 && 'stream' in r.route && r.route.stream === true) {
        res.destroy();
        resolve({ status, contentType, text: '' });
        return;
      }
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status, contentType, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(withBody ? r.body.bytes : undefined);
  });
}

describe('fuzz: REST bodies and headers on every route', () => {
  let node: NodeProcess;
  let agent: Agent;
  const tally = new Tally('rest');
  beforeAll(async () => {
    node = await NodeProcess.start();
    agent = new Agent({ keepAlive: true, maxSockets: 8 });
  });
  afterAll(async () => {
    tally.report(node);
    agent?.destroy();
    await node?.stop();
  });

  it('answers every request with a documented status and google.rpc.Status body, logs no errors, keeps serving', async () => {
    await check(
      fc.asyncProperty(fc.array(requestArb, batch(1, 32)), async (requests) => {
        await Promise.all(requests.map((r) => one(r)));
        tally.add(requests.length);
      }),
      tally,
      200,
      0.08,
    );
    expect(node.logs.filter((l) => l.level >= 50), JSON.stringify(node.logs.filter((l) => l.level >= 50).slice(0, 3))).toEqual([]);
    await expectServes(node);
  });

  async function one(r: FuzzRequest): Promise<void> {
    const a = await send(agent, node.ports.http, r);
    const method = r.method ?? r.route.method;
    expect([200, 204, 400, 401, 403, 404, 409, 429, 499, 501, 503, 504], `${method} ${r.route.path}: ${a.status} ${a.text.slice(0, 200)}`).toContain(a.status);
    if (a.status >= 400 && method !== 'HEAD') {
      const s = JSON.parse(a.text) as { code: number; message: string; details: unknown[] };
      expect(HTTP_OF_CODE[s.code], a.text).toBe(a.status);
      expect(typeof s.message).toBe('string');
      expect(s.details).toEqual([]);
    }
  }
});
