import { mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { MAX_JSON_DEPTH } from '../../src/ingress/json-depth.js';
import { PAUSE_AT_REQUESTS } from '../../src/ingress/ws/connection.js';
import { useTestNode, type TestNode } from '../helpers/fixture.js';
import { b64, pushData, restPush } from '../helpers/grpc-client.js';
import { unique } from '../helpers/names.js';
import { sleep, waitFor } from '../helpers/ports.js';
import type { TestClient } from '../helpers/ws-client.js';

/**
 * Issue 9, part A, through real sockets: input that used to crash or stall a node (deep JSON,
 * corrupt compressed bodies, pipelined floods) and the exhaustion and hijacking guards
 * (connection cap, slowloris timeouts, subscription limit, origins, CORS, unguessable cids).
 */

const nested = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);

/** The node answers a fresh client's subscribe and delivers a push to it end to end. */
async function stillServes(node: TestNode): Promise<void> {
  const c = await node.connect();
  const topic = unique('alive');
  expect(await c.subscribe(topic)).toMatchObject({ code: 20001 });
  const text = unique('pushed');
  await pushData(node.grpc, { topic, data: Buffer.from(text) });
  await c.next((f) => f.text === text);
}

/** Status and body of an upgrade attempt that the node refuses (rejects if it is accepted). */
function refusedUpgrade(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('upgrade accepted'));
    });
    ws.once('error', () => {});
  });
}

/** A raw HTTP exchange: status and headers of the answer. */
function rawRequest(
  url: string,
  init: { method: string; headers?: Record<string, string>; body?: Buffer | string },
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: init.method, headers: init.headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

describe('deep JSON and corrupt bodies (issue 9, defects 1 and 2)', () => {
  const node = useTestNode();

  it('answers 5,000-deep code-7 data with 30001 instead of crashing, and keeps serving', async () => {
    const c = await node.connect();
    c.send(`{"code":7,"id":1,"data":${nested(5000)}}`);
    const r = (await c.next()).json!;
    expect(r).toMatchObject({ code: 30001, message: 'bad request' });
    expect(r.detail).toMatch(new RegExp(`nested deeper than ${MAX_JSON_DEPTH}`));
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    await stillServes(node);
  });

  it('answers a 5,000-deep ws-cluster payload (text and binary frames) with 30001', async () => {
    const c = await node.connect(`ws://127.0.0.1:${node.server.ports.ws}/connect`);
    c.send(`{"payload":${nested(5000)}}`);
    expect((await c.next()).json).toMatchObject({ code: 30001 });
    c.ws.send(Buffer.from(`{"ack_id":2,"payload":{"a":${nested(30_000)}}}`), { binary: true });
    expect((await c.next()).json).toMatchObject({ code: 30001 });
    await stillServes(node);
  });

  it('answers deep JSON on protocol v1 (pushwire.v1.json) with a 30001 error instead of crashing', async () => {
    const ws = new WebSocket(node.server.wsUrl, ['pushwire.v1.json']);
    const frames: string[] = [];
    ws.on('message', (d: Buffer) => frames.push(d.toString()));
    ws.on('error', () => {});
    await new Promise((r) => ws.once('open', r));
    ws.send(`{"id":1,"request":{"data":${nested(8000)}}}`);
    await waitFor(() => frames.some((f) => f.includes('nested deeper than')), 10_000, 'the v1 error');
    expect(frames.find((f) => f.includes('nested deeper than'))).toMatch(/"code":30001/);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.close();
    await stillServes(node);
  });

  it(`accepts ${MAX_JSON_DEPTH} levels and refuses ${MAX_JSON_DEPTH + 1}; brackets inside strings do not count`, async () => {
    const c = await node.connect();
    // Code 7 with no backend: 30005 means the frame was understood.
    c.send(`{"code":7,"id":"ok","data":${nested(MAX_JSON_DEPTH - 1)}}`);
    expect((await c.next((f) => f.json?.id === 'ok')).json).toMatchObject({ code: 30005 });
    c.send(`{"code":7,"id":"deep","data":${nested(MAX_JSON_DEPTH)}}`);
    expect((await c.next()).json).toMatchObject({ code: 30001 });
    c.send(JSON.stringify({ code: 7, id: 'str', data: '['.repeat(10_000) }));
    expect((await c.next((f) => f.json?.id === 'str')).json).toMatchObject({ code: 30005 });
  });

  it('answers corrupt gzip, deflate and br bodies with 400 / code 3 on every body route, without error logs', async () => {
    const errorsBefore = node.server.logs.filter((l) => l.level >= 50).length;
    const routes = ['/v1/pushData', '/v1/pushData:batch', '/v1/projects/default/presence:get', '/v1/projects/default/subscribe'];
    const bodies: Record<string, Buffer> = {
      gzip: Buffer.from('definitely not gzip'),
      deflate: Buffer.from('not deflate either'),
      br: Buffer.from([0xff, 0xff, 0xff, 0xff]),
    };
    // A gzip stream cut short, too.
    const truncated = gzipSync(Buffer.from(JSON.stringify({ topic: 't', data: b64('x') }))).subarray(0, 12);
    for (const route of routes) {
      for (const [encoding, body] of [...Object.entries(bodies), ['gzip', truncated] as const]) {
        const res = await rawRequest(`${node.server.httpUrl}${route}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-encoding': encoding },
          body,
        });
        expect(res.status, `${route} ${encoding}`).toBe(400);
        expect(JSON.parse(res.body), `${route} ${encoding}`).toMatchObject({ code: 3 });
      }
    }
    // A good compressed body still works.
    const topic = unique('gz');
    const c = await node.connect();
    await c.subscribe(topic);
    const ok = await rawRequest(`${node.server.httpUrl}/v1/pushData`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'br' },
      body: brotliCompressSync(Buffer.from(JSON.stringify({ topic, data: b64('compressed') }))),
    });
    expect(ok.status).toBe(200);
    await c.next((f) => f.text === 'compressed');
    expect(node.server.logs.filter((l) => l.level >= 50).length).toBe(errorsBefore);
  });

  it('answers a field nested 20,000 deep with 400 / code 3 on the fast path, the express path and presence routes', async () => {
    const errorsBefore = node.server.logs.filter((l) => l.level >= 50).length;
    const deep = `{"topic":${nested(20_000)}}`;
    const cases: [string, Record<string, string>, Buffer][] = [
      ['/v1/pushData', {}, Buffer.from(deep)],
      ['/v1/pushData:batch', {}, Buffer.from(`{"pushes":[${deep}]}`)],
      ['/v1/pushData', { 'content-encoding': 'gzip' }, gzipSync(deep)],
      ['/v1/projects/default/presence:get', {}, Buffer.from(`{"uids":${nested(20_000)}}`)],
      ['/v1/projects/default/subscribe', {}, Buffer.from(`{"topics":${nested(20_000)}}`)],
    ];
    for (const [route, headers, body] of cases) {
      const res = await rawRequest(`${node.server.httpUrl}${route}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
      expect(res.status, route).toBe(400);
      expect(JSON.parse(res.body)).toMatchObject({ code: 3, message: expect.stringMatching(/nested deeper/) });
    }
    expect(node.server.logs.filter((l) => l.level >= 50).length).toBe(errorsBefore);
    expect((await restPush(node.server.httpUrl, { topic: unique('t'), data: b64('x') })).status).toBe(200);
  });
});

describe('pipelined request floods (issue 9, defect 5)', () => {
  const N = 30_000;
  const node = useTestNode();

  /** Sends `frames` in one write, so the node reads them back to back. */
  const flood = (c: TestClient, frames: string[]): void => {
    const sock = (c.ws as unknown as { _socket: Socket })._socket;
    sock.cork();
    for (const f of frames) c.ws.send(f);
    process.nextTick(() => sock.uncork());
  };

  it(`answers ${N} pipelined code-1 requests without ids, every one, in order, and stays open`, async () => {
    const c = await node.connect();
    const topics = Array.from({ length: 50 }, (_, i) => unique(`f${i}`));
    flood(
      c,
      Array.from({ length: N }, (_, i) => JSON.stringify({ code: 1, topic: topics[i % 50] })),
    );
    await waitFor(() => c.frames.length >= 1 + N || c.ws.readyState !== WebSocket.OPEN, 120_000, 'a reply per request');
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    const replies = c.frames.slice(1);
    expect(replies.length).toBe(N);
    expect(replies.every((f, i) => f.json?.code === 20001 && f.json.topic === topics[i % 50])).toBe(true);
    await pushData(node.grpc, { topic: topics[7], data: Buffer.from('after the flood') });
    await c.next((f) => f.text === 'after the flood');
  });

  it(`answers ${N} pipelined code-7 requests (no backend: 30005 each) and stays open`, async () => {
    const c = await node.connect();
    flood(
      c,
      Array.from({ length: N }, (_, i) => JSON.stringify({ code: 7, id: i, data: { i } })),
    );
    await waitFor(() => c.frames.length >= 1 + N || c.ws.readyState !== WebSocket.OPEN, 120_000, 'a reply per request');
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    const replies = c.frames.slice(1);
    expect(replies.length).toBe(N);
    expect(replies.every((f, i) => f.json?.code === 30005 && f.json.id === i)).toBe(true);
    await stillServes(node);
  });

  it('holds a flood back while the client does not read its replies, then answers everything once it does', async () => {
    const c = await node.connect();
    const topic = unique('held');
    c.ws.pause();
    flood(
      c,
      Array.from({ length: N }, () => JSON.stringify({ code: 1, topic })),
    );
    // Time for the replies to back up (the assertions do not depend on how long): the node stops
    // reading instead of closing the client as a slow consumer.
    await sleep(1000);
    c.ws.resume();
    await waitFor(() => c.frames.length >= 1 + N || c.ws.readyState !== WebSocket.OPEN, 120_000, 'a reply per request');
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    expect(c.frames.length).toBe(1 + N);
  });
});

describe('requests piled behind a slow login (issue 9, defect 5)', () => {
  // An auth callback that accepts the connection and never answers: the login waits for its
  // timeout and every later request of the connection waits behind it.
  let blackhole: TcpServer;
  const held: Socket[] = [];
  beforeAll(async () => {
    blackhole = createTcpServer((s) => held.push(s.on('error', () => {})));
    await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    for (const s of held) s.destroy();
    await new Promise((r) => blackhole.close(r));
  });
  const node = useTestNode(() => ['--auth-url', `http://127.0.0.1:${(blackhole.address() as { port: number }).port}/auth`, '--auth-timeout', '3s']);

  it(`stops reading at ${PAUSE_AT_REQUESTS} pending requests instead of refusing, and answers all ${2 * PAUSE_AT_REQUESTS} in order`, async () => {
    const c = await node.connect();
    const topic = unique('pile');
    c.send({ code: 3, data: 'token', id: 'login' });
    const total = 2 * PAUSE_AT_REQUESTS;
    for (let i = 0; i < total; i++) c.send({ code: 1, topic, id: i });
    await waitFor(() => c.frames.length >= 2 + total || c.ws.readyState !== WebSocket.OPEN, 60_000, 'every answer');
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    const replies = c.frames.slice(1).map((f) => [f.json?.id, f.json?.code]);
    expect(replies[0]).toEqual(['login', 30003]);
    expect(replies.slice(1)).toEqual(Array.from({ length: total }, (_, i) => [i, 20001]));
  });
});

describe('connection cap and slowloris (issue 9, defect 9)', () => {
  const node = useTestNode(['--max-connections', '3', '--header-timeout', '1s', '--request-timeout', '2s']);

  it('refuses the connection over --max-connections with 503 at the upgrade; health, metrics and gRPC stay reachable', async () => {
    const clients = await Promise.all([node.connect(), node.connect(), node.connect()]);
    const refused = await refusedUpgrade(node.server.wsUrl);
    expect(refused.status).toBe(503);
    expect(refused.body).toMatch(/connection limit \(3\)/);
    expect((await fetch(`${node.server.httpUrl}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${node.server.httpUrl}/metrics`)).text()).toMatch(/limit="node_connections"/);
    const topic = unique('cap');
    await clients[0]!.subscribe(topic);
    await pushData(node.grpc, { topic, data: Buffer.from('over grpc') });
    await clients[0]!.next((f) => f.text === 'over grpc');
    // A slot freed is a slot taken.
    await clients[2]!.close();
    await waitFor(async () => {
      try {
        await node.connect();
        return true;
      } catch {
        return false;
      }
    }, 10_000, 'a connection accepted again');
  });

  /** Opens a raw socket, dribbles `lines` one per 300 ms (never finishing), resolves when the node closes it. */
  const dribble = (port: number, lines: string[]): Promise<void> =>
    new Promise((resolve, reject) => {
      const sock = connect(port, '127.0.0.1');
      let i = 0;
      const timer = setInterval(() => {
        if (!sock.destroyed) sock.write(lines[i++ % lines.length]!);
      }, 300);
      const giveUp = setTimeout(() => {
        clearInterval(timer);
        sock.destroy();
        reject(new Error('slow socket still open after 20 s'));
      }, 20_000);
      sock.on('error', () => {});
      sock.on('close', () => {
        clearInterval(timer);
        clearTimeout(giveUp);
        resolve();
      });
    });

  it('closes sockets that dribble headers (WebSocket upgrade and HTTP) or a body, on both servers', async () => {
    const headerLines = ['X-a: 1\r\n', 'X-b: 2\r\n'];
    await Promise.all([
      dribble(node.server.ports.ws, ['GET /ws HTTP/1.1\r\n', ...headerLines]),
      dribble(node.server.ports.http, ['GET /healthz HTTP/1.1\r\n', ...headerLines]),
      // Headers complete, the body never is: the request timeout.
      dribble(node.server.ports.http, ['POST /v1/pushData HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n', '{', ' ']),
    ]);
    expect((await fetch(`${node.server.httpUrl}/healthz`)).status).toBe(200);
  });
});

describe('subscriptions per connection (issue 9, defect 9)', () => {
  const SECRET = 'hardening-subscriptions-secret';
  const node = useTestNode(['--max-subscriptions', '3', '--jwt-secret', SECRET]);

  it('answers the subscription beyond --max-subscriptions with 30007; repeats, unsubscribes and private topics count right', async () => {
    const c = await node.connect();
    const [a, b, d, e] = [unique('a'), unique('b'), unique('d'), unique('e')];
    for (const t of [a, b, d]) expect(await c.subscribe(t)).toMatchObject({ code: 20001 });
    expect(await c.subscribe(a)).toMatchObject({ code: 20001 }); // already held: no new topic
    const over = await c.subscribe(e);
    expect(over).toMatchObject({ code: 30007, message: 'too many subscriptions', topic: e });
    expect(over.detail).toMatch(/at most 3 topics/);
    await c.unsubscribe(b);
    expect(await c.subscribe(e)).toMatchObject({ code: 20001 });
    await pushData(node.grpc, { topic: e, data: Buffer.from('to e') });
    await c.next((f) => f.text === 'to e');
    // Logged in, private topics share the bound; the user channel itself does not count.
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('u1').sign(new TextEncoder().encode(SECRET));
    expect(await c.login(token)).toMatchObject({ code: 20003 });
    expect(await c.subscribePrivate(unique('p'))).toMatchObject({ code: 30007 });
    await c.unsubscribe(a);
    expect(await c.subscribePrivate(unique('p'))).toMatchObject({ code: 20001 });
  });
});

describe('allowed origins and CORS (issue 9, defect 10)', () => {
  describe('defaults: same origin only, no CORS', () => {
    const node = useTestNode();

    it('refuses a cross-site upgrade with 403 and accepts same-origin and Origin-less clients', async () => {
      const port = node.server.ports.ws;
      const refused = await refusedUpgrade(node.server.wsUrl, { Origin: 'https://evil.example' });
      expect(refused.status).toBe(403);
      expect(refused.body).toMatch(/not allowed/);
      expect((await refusedUpgrade(node.server.wsUrl, { Origin: 'null' })).status).toBe(403);
      await node.connect(node.server.wsUrl, { headers: { Origin: `http://127.0.0.1:${port}` } });
      await node.connect();
      const res = await rawRequest(`${node.server.httpUrl}/v1/pushData`, {
        method: 'OPTIONS',
        headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST' },
      });
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
    });
  });

  describe('--allowed-origins, a project of its own, --cors-origins', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pushwire-origins-'));
    const file = join(dir, 'projects.json');
    writeFileSync(
      file,
      JSON.stringify({
        projects: [{ pid: 'node-wide' }, { pid: 'own', allowedOrigins: ['https://own.example'] }, { pid: 'any', allowedOrigins: ['*'] }],
      }),
    );
    const node = useTestNode([
      '--projects',
      file,
      '--allowed-origins',
      'https://app.example.com,https://*.good.example',
      '--cors-origins',
      'https://app.example.com',
    ]);
    const url = (pid: string): string => `${node.server.wsUrl}?pid=${pid}`;

    it('applies the node list, and a project list instead of it', async () => {
      await node.connect(url('node-wide'), { headers: { Origin: 'https://app.example.com' } });
      await node.connect(url('node-wide'), { headers: { Origin: 'https://a.b.good.example' } });
      expect((await refusedUpgrade(url('node-wide'), { Origin: 'https://good.example' })).status).toBe(403);
      expect((await refusedUpgrade(url('node-wide'), { Origin: 'http://app.example.com' })).status).toBe(403);
      expect((await refusedUpgrade(url('node-wide'), { Origin: 'https://own.example' })).status).toBe(403);
      await node.connect(url('own'), { headers: { Origin: 'https://own.example' } });
      expect((await refusedUpgrade(url('own'), { Origin: 'https://app.example.com' })).status).toBe(403);
      await node.connect(url('any'), { headers: { Origin: 'https://whatever.example' } });
    });

    it('answers CORS preflights and requests for allowed origins only', async () => {
      const pre = await rawRequest(`${node.server.httpUrl}/v1/pushData`, {
        method: 'OPTIONS',
        headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization' },
      });
      expect(pre.status).toBe(204);
      expect(pre.headers['access-control-allow-origin']).toBe('https://app.example.com');
      expect(pre.headers['access-control-allow-headers']).toMatch(/Authorization/);
      expect(pre.headers['access-control-allow-methods']).toMatch(/POST/);
      const post = await rawRequest(`${node.server.httpUrl}/v1/pushData`, {
        method: 'POST',
        headers: { Origin: 'https://app.example.com', 'content-type': 'application/json' },
        body: JSON.stringify({ pid: 'node-wide', topic: 't', data: b64('x') }),
      });
      expect(post.status).toBe(200);
      expect(post.headers['access-control-allow-origin']).toBe('https://app.example.com');
      expect(post.headers.vary).toMatch(/Origin/);
      const other = await rawRequest(`${node.server.httpUrl}/healthz`, { method: 'GET', headers: { Origin: 'https://evil.example' } });
      expect(other.status).toBe(200);
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
    });
  });
});

describe('connection ids (issue 9, defect 11)', () => {
  const node = useTestNode();

  it('gives each connection `<node-id>-<24 random base-36 digits>`, no two alike, and targets still route', async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => node.connect()));
    const cids = clients.map((c) => c.cid);
    const shape = new RegExp(`^${node.server.nodeId}-[0-9a-z]{24}$`);
    for (const cid of cids) expect(cid).toMatch(shape);
    expect(new Set(cids).size).toBe(cids.length);
    // Consecutive ids share no long prefix of the random part (nothing sequential).
    const rest = cids.map((c) => c.slice(node.server.nodeId.length + 1));
    expect(rest.filter((r, i) => i > 0 && r.slice(0, 6) === rest[i - 1]!.slice(0, 6)).length).toBe(0);
    await pushData(node.grpc, { cids: [cids[5]!], data: Buffer.from('just you') });
    await clients[5]!.next((f) => f.text === 'just you');
  });
});
