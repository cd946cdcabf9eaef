import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { useTestNode } from '../helpers/fixture.js';
import { b64, pushData, restPush } from '../helpers/grpc-client.js';
import { metric } from '../helpers/metrics.js';
import { unique } from '../helpers/names.js';
import { sleep, waitFor } from '../helpers/ports.js';
import { TestClient, type Frame } from '../helpers/ws-client.js';

/**
 * Every WebSocket bad-input case: each is answered with 30001 and a `detail`, echoes the id and
 * topic when they could be read, and leaves the connection (and every other one) working.
 * Also: wrong upgrade paths, plain HTTP on /ws, and a flood of bad frames.
 */

const SECRET = 'ws-bad-input-secret';

interface Case {
  name: string;
  /** The raw text frame to send. */
  frame: string;
  /** Fields the 30001 reply must carry besides code and detail (id, topic), or must lack. */
  echo: { id?: string | number; topic?: string };
  /** A pattern the detail must match. */
  detail: RegExp;
}

const longTopic = 't'.repeat(257);
// 129 two-byte characters: 258 bytes, though only 129 characters long.
const longMultibyteTopic = 'é'.repeat(129);

const CASES: Case[] = [
  { name: 'malformed JSON', frame: '{"code":1,"topic":"a"', echo: {}, detail: /JSON/ },
  { name: 'plain text', frame: 'hello there', echo: {}, detail: /JSON/ },
  { name: 'a JSON array', frame: '[1,"news"]', echo: {}, detail: /object/ },
  { name: 'a JSON number', frame: '42', echo: {}, detail: /object/ },
  { name: 'a JSON string', frame: '"subscribe"', echo: {}, detail: /object/ },
  { name: 'JSON null', frame: 'null', echo: {}, detail: /object/ },
  { name: 'an empty frame', frame: '', echo: {}, detail: /JSON/ },
  { name: 'missing code', frame: '{"topic":"news","id":"m1"}', echo: { id: 'm1', topic: 'news' }, detail: /missing code/ },
  { name: 'unknown code 99', frame: '{"code":99,"topic":"news","id":"m2"}', echo: { id: 'm2', topic: 'news' }, detail: /unknown code 99/ },
  { name: 'unknown code 0', frame: '{"code":0,"id":7}', echo: { id: 7 }, detail: /unknown code/ },
  { name: 'a reply code as request code', frame: '{"code":20001,"topic":"news","id":"m3"}', echo: { id: 'm3', topic: 'news' }, detail: /unknown code/ },
  { name: 'a fractional code', frame: '{"code":1.5,"topic":"news","id":"m4"}', echo: { id: 'm4', topic: 'news' }, detail: /unknown code/ },
  { name: 'code as a string', frame: '{"code":"1","topic":"news","id":"m5"}', echo: { id: 'm5', topic: 'news' }, detail: /code must be a number/ },
  { name: 'code null', frame: '{"code":null,"topic":"news","id":"m6"}', echo: { id: 'm6', topic: 'news' }, detail: /code must be a number/ },
  { name: 'subscribe without topic', frame: '{"code":1,"id":"t1"}', echo: { id: 't1' }, detail: /missing topic/ },
  { name: 'unsubscribe without topic', frame: '{"code":2,"id":"t2"}', echo: { id: 't2' }, detail: /missing topic/ },
  { name: 'private subscribe without topic', frame: '{"code":5,"id":"t3"}', echo: { id: 't3' }, detail: /missing topic/ },
  { name: 'private unsubscribe without topic', frame: '{"code":6,"id":"t4"}', echo: { id: 't4' }, detail: /missing topic/ },
  { name: 'topic a number', frame: '{"code":1,"topic":5,"id":"t5"}', echo: { id: 't5' }, detail: /topic must be a string/ },
  { name: 'topic an object', frame: '{"code":1,"topic":{"a":1},"id":"t6"}', echo: { id: 't6' }, detail: /topic must be a string/ },
  { name: 'topic null', frame: '{"code":2,"topic":null,"id":"t7"}', echo: { id: 't7' }, detail: /topic must be a string/ },
  { name: 'empty topic', frame: '{"code":1,"topic":"","id":"t8"}', echo: { id: 't8', topic: '' }, detail: /empty/ },
  {
    name: 'topic longer than 256 bytes',
    frame: JSON.stringify({ code: 1, topic: longTopic, id: 't9' }),
    echo: { id: 't9', topic: longTopic },
    detail: /256 bytes/,
  },
  {
    name: 'topic of 129 characters but 258 UTF-8 bytes',
    frame: JSON.stringify({ code: 1, topic: longMultibyteTopic, id: 't10' }),
    echo: { id: 't10', topic: longMultibyteTopic },
    detail: /256 bytes/,
  },
  { name: 'topic with a newline', frame: JSON.stringify({ code: 1, topic: 'a\nb', id: 't11' }), echo: { id: 't11', topic: 'a\nb' }, detail: /control/ },
  { name: 'topic with NUL', frame: JSON.stringify({ code: 1, topic: 'a\u0000b', id: 't12' }), echo: { id: 't12', topic: 'a\u0000b' }, detail: /control/ },
  { name: 'topic with DEL', frame: JSON.stringify({ code: 5, topic: 'a\u007fb', id: 't13' }), echo: { id: 't13', topic: 'a\u007fb' }, detail: /control/ },
  { name: 'login without data', frame: '{"code":3,"id":"l1"}', echo: { id: 'l1' }, detail: /token/ },
  { name: 'login with numeric data', frame: '{"code":3,"data":12345,"id":"l2"}', echo: { id: 'l2' }, detail: /token/ },
  { name: 'login with object data', frame: '{"code":3,"data":{"token":"x"},"id":"l3"}', echo: { id: 'l3' }, detail: /token/ },
  { name: 'login with empty data', frame: '{"code":3,"data":"","id":"l4"}', echo: { id: 'l4' }, detail: /token/ },
  { name: 'id an object', frame: '{"code":1,"topic":"news","id":{"n":1}}', echo: { topic: 'news' }, detail: /id must be/ },
  { name: 'id an array', frame: '{"code":1,"topic":"news","id":[1]}', echo: { topic: 'news' }, detail: /id must be/ },
  { name: 'id a boolean', frame: '{"code":4,"id":true}', echo: {}, detail: /id must be/ },
  { name: 'id a fraction', frame: '{"code":4,"id":1.5}', echo: {}, detail: /id must be/ },
  { name: 'id longer than 64 characters', frame: JSON.stringify({ code: 1, topic: 'news', id: 'i'.repeat(65) }), echo: { topic: 'news' }, detail: /64/ },
  // The id is checked before the code: a bad id wins, and is not echoed.
  { name: 'bad id and missing code', frame: '{"id":{"x":1}}', echo: {}, detail: /id must be/ },
];

describe('bad input on the WebSocket edge (in-process node)', () => {
  const node = useTestNode(['--jwt-secret', SECRET]);

  /** Subscribes `c` to a fresh topic, pushes to it over gRPC and checks `c` receives exactly that. */
  const stillWorks = async (c: TestClient): Promise<void> => {
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    const topic = unique('works');
    expect(await c.subscribe(topic)).toMatchObject({ code: 20001, topic });
    const text = unique('payload');
    await pushData(node.grpc, { topic, data: Buffer.from(text) });
    await c.next((f) => f.text === text);
  };

  const expectBadRequest = (f: Frame, k: Case): void => {
    const r = f.json!;
    expect(r, `reply to ${k.name}: ${f.text}`).toBeDefined();
    expect(r.code).toBe(30001);
    expect(r.message).toBe('bad request');
    expect(typeof r.detail).toBe('string');
    expect(r.detail).toMatch(k.detail);
    if (k.echo.id === undefined) expect(r).not.toHaveProperty('id');
    else expect(r.id).toEqual(k.echo.id);
    if (k.echo.topic === undefined) expect(r).not.toHaveProperty('topic');
    else expect(r.topic).toBe(k.echo.topic);
  };

  for (const k of CASES) {
    it(`answers ${k.name} with 30001 and a detail, and the connection keeps working`, async () => {
      const c = await node.connect();
      c.send(k.frame);
      expectBadRequest(await c.next(), k);
      // Nothing else came back for it.
      await sleep(20);
      expect(c.frames.length).toBe(2);
      await stillWorks(c);
    });
  }

  it('answers all bad frames sent back to back, one reply each, in order, and still works', async () => {
    const c = await node.connect();
    const before = await metric(node.server.httpUrl, 'pushwire_client_errors_total', { code: '30001' });
    for (const k of CASES) c.send(k.frame);
    await waitFor(() => c.frames.length >= 1 + CASES.length, 5000, 'a reply per bad frame');
    const replies = c.frames.slice(1);
    expect(replies.length).toBe(CASES.length);
    replies.forEach((f, i) => expectBadRequest(f, CASES[i]!));
    expect(await metric(node.server.httpUrl, 'pushwire_client_errors_total', { code: '30001' })).toBe(before + CASES.length);
    await stillWorks(c);
  });

  it('treats a binary frame holding valid JSON like a text frame', async () => {
    const c = await node.connect();
    const topic = unique('bin');
    c.ws.send(Buffer.from(JSON.stringify({ code: 1, topic, id: 'bin-1' })), { binary: true });
    expect((await c.next((f) => f.json?.id === 'bin-1')).json).toMatchObject({ code: 20001, topic, message: 'subscribed' });
    await pushData(node.grpc, { topic, data: Buffer.from('to binary subscriber') });
    await c.next((f) => f.text === 'to binary subscriber');
    // A bad request in a binary frame is a 30001 like any other.
    c.ws.send(Buffer.from('{"code":77,"id":"bin-2"}'), { binary: true });
    expect((await c.next((f) => f.json?.id === 'bin-2')).json).toMatchObject({ code: 30001, detail: 'unknown code 77' });
  });

  it('answers a binary frame that is not UTF-8 with 30001 (the connection stays open)', async () => {
    const c = await node.connect();
    c.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x00, 0x80, 0x7d]), { binary: true });
    const f = await c.next();
    expect(f.json).toMatchObject({ code: 30001, message: 'bad request' });
    expect(f.json!.detail).toMatch(/UTF-8/);
    await stillWorks(c);
  });

  it('keeps replies in request order when bad frames follow (and precede) subscribes', async () => {
    const c = await node.connect();
    const t1 = unique('order');
    const t2 = unique('order');
    c.send('garbage');
    c.send({ code: 1, topic: t1, id: 's1' });
    c.send({ code: 99, topic: t1, id: 'b1' });
    c.send({ code: 5, topic: t2, id: 'p1' }); // not logged in: 30002
    c.send('[]');
    c.send({ code: 1, topic: t2, id: 's2' });
    c.send({ code: 1, id: 'b2' });
    c.send({ code: 2, topic: t1, id: 'u1' });
    await waitFor(() => c.frames.length >= 9, 5000, 'eight replies');
    const replies = c.frames.slice(1).map((f) => [f.json?.id, f.json?.code]);
    expect(replies).toEqual([
      [undefined, 30001],
      ['s1', 20001],
      ['b1', 30001],
      ['p1', 30002],
      [undefined, 30001],
      ['s2', 20001],
      ['b2', 30001],
      ['u1', 20002],
    ]);
    // The good requests took effect: t2 subscribed, t1 unsubscribed.
    await pushData(node.grpc, { topic: t1, data: Buffer.from('t1 msg') });
    await pushData(node.grpc, { topic: t2, data: Buffer.from('t2 msg') });
    await c.next((f) => f.text === 't2 msg');
    expect(c.deliveries()).toEqual(['t2 msg']);
  });

  it('keeps replies in order behind a slow-ish login (bad frames do not overtake it)', async () => {
    const c = await node.connect();
    c.send({ code: 3, data: 'not-a-jwt', id: 'login' });
    c.send('{bad');
    c.send({ code: 4, id: 'logout' });
    await waitFor(() => c.frames.length >= 4, 5000, 'three replies');
    expect(c.frames.slice(1).map((f) => [f.json?.id, f.json?.code])).toEqual([
      ['login', 30003],
      [undefined, 30001],
      ['logout', 20004],
    ]);
  });

  it('accepts a burst of pipelined requests (all read at once, none refused), in order, and stays open', async () => {
    const c = await node.connect();
    // One topic fewer than a connection may hold (--max-subscriptions, default 128): stillWorks adds one.
    const N = 127;
    const topics = Array.from({ length: N }, (_, i) => unique(`burst${i}`));
    // One write: the node sees all requests in one read, before any of them has finished.
    const sock = (c.ws as unknown as { _socket: Socket })._socket;
    sock.cork();
    topics.forEach((topic, i) => c.send({ code: 1, topic, id: i }));
    process.nextTick(() => sock.uncork());
    await waitFor(() => c.frames.length >= 1 + N, 5000, 'a reply per request');
    await sleep(50);
    const replies = c.frames.slice(1).map((f) => f.json!);
    // A legacy client subscribing to many topics at connect loses none of them.
    expect(replies).toEqual(topics.map((topic, id) => ({ code: 20001, message: 'subscribed', topic, id })));
    const probe = [0, 63, 64, N - 1];
    for (const i of probe) await pushData(node.grpc, { topic: topics[i]!, data: Buffer.from(`burst-${i}`) });
    await stillWorks(c);
    expect(c.deliveries().filter((t) => t.startsWith('burst-'))).toEqual(probe.map((i) => `burst-${i}`));
  });

  it('does not let a bad request change subscriptions', async () => {
    const c = await node.connect();
    const topic = unique('keep');
    await c.subscribe(topic);
    // Bad unsubscribes of the same topic: wrong code type, bad id.
    c.send({ code: '2', topic, id: 'x1' });
    c.send({ code: 2, topic, id: { bad: true } });
    await waitFor(() => c.frames.filter((f) => f.json?.code === 30001).length === 2, 3000, 'two 30001');
    await pushData(node.grpc, { topic, data: Buffer.from('still subscribed') });
    await c.next((f) => f.text === 'still subscribed');
  });

  it('refuses a WebSocket upgrade on a wrong path with HTTP 404', async () => {
    for (const path of ['/nope', '/', '/ws/', '/wss', '/ws/extra']) {
      const url = `ws://127.0.0.1:${node.server.ports.ws}${path}`;
      const status = await new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(url);
        ws.once('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          res.resume();
          ws.terminate();
        });
        ws.once('open', () => reject(new Error(`upgrade on ${path} was accepted`)));
        ws.once('error', () => {});
      });
      expect(status, path).toBe(404);
    }
    // The right path still works, with a query string too.
    const c = await node.connect(`${node.server.wsUrl}?foo=bar`);
    await stillWorks(c);
  });

  it('answers a plain GET on /ws with 426 and other plain requests with 404', async () => {
    const ws = await fetch(`http://127.0.0.1:${node.server.ports.ws}/ws`);
    expect(ws.status).toBe(426);
    expect(await ws.text()).toMatch(/Upgrade Required/);
    const other = await fetch(`http://127.0.0.1:${node.server.ports.ws}/nope`);
    expect(other.status).toBe(404);
    await other.text();
    const post = await fetch(`http://127.0.0.1:${node.server.ports.ws}/ws`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(426);
    await post.text();
  });

  it('refuses an upgrade request without a valid Sec-WebSocket-Key with 400 and keeps serving', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({
        host: '127.0.0.1',
        port: node.server.ports.ws,
        path: '/ws',
        headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'short' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('upgrade', () => reject(new Error('upgrade accepted')));
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(400);
    await stillWorks(await node.connect());
  });

  it('survives a flood of bad frames while other clients keep receiving', async () => {
    const FLOOD = 3000;
    const errorsBefore = await metric(node.server.httpUrl, 'pushwire_client_errors_total', { code: '30001' });
    const topic = unique('flood');
    const watcher = await node.connect();
    await watcher.subscribe(topic);
    const flooders = await Promise.all([node.connect(), node.connect()]);
    const kinds = ['{', '[]', '{"code":99}', '{"code":1}', '{"code":1,"topic":""}', 'x'.repeat(200)];
    const floodDone = (async () => {
      for (let i = 0; i < FLOOD; i++) {
        for (const f of flooders) f.send(kinds[i % kinds.length]!);
        if (i % 200 === 0) await sleep(1);
      }
    })();
    // Pushes interleaved with the flood all arrive, in order.
    for (let i = 0; i < 50; i++) {
      await pushData(node.grpc, { topic, data: Buffer.from(`flood-${i}`) });
      if (i % 10 === 0) await sleep(1);
    }
    await floodDone;
    await watcher.next((f) => f.text === 'flood-49', 10_000);
    expect(watcher.deliveries()).toEqual(Array.from({ length: 50 }, (_, i) => `flood-${i}`));

    for (const f of flooders) {
      await waitFor(() => f.frames.length >= 1 + FLOOD, 15_000, 'a 30001 per flood frame');
      expect(f.frames.slice(1).every((fr) => fr.json?.code === 30001)).toBe(true);
      expect(f.frames.length).toBe(1 + FLOOD);
      await stillWorks(f);
    }
    expect(await metric(node.server.httpUrl, 'pushwire_client_errors_total', { code: '30001' })).toBe(errorsBefore + 2 * FLOOD);
    // The node is healthy and accepts new connections.
    expect((await fetch(`${node.server.httpUrl}/healthz`)).status).toBe(200);
    expect(await metric(node.server.httpUrl, 'pushwire_connections')).toBe(3);
    await stillWorks(await node.connect());
  });

  it('still delivers over REST to clients after bad input from others', async () => {
    const topic = unique('rest');
    const good = await node.connect();
    const bad = await node.connect();
    await good.subscribe(topic);
    bad.send('not json');
    bad.ws.send(Buffer.from([0xff]), { binary: true });
    await waitFor(() => bad.frames.length >= 3, 3000, 'two 30001');
    const res = await restPush(node.server.httpUrl, { topic, data: b64('via rest') });
    expect(res.status).toBe(200);
    await good.next((f) => f.text === 'via rest');
    expect(bad.deliveries()).toEqual([]);
  });
});

describe('bad input behind a slow login (in-process node with a slow --auth-url)', () => {
  let auth: Server;

  // Registered before the node's hooks: the auth callback starts first and, as after-hooks run
  // in reverse order, closes after the node has shut down.
  beforeAll(async () => {
    // gpush-style auth callback that takes 300 ms and accepts every token as uid "u-<token>".
    auth = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const { token } = JSON.parse(body) as { token: string };
        setTimeout(() => {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ code: 0, data: { user_info: { uid: `u-${token}` } } }));
        }, 300);
      });
    });
    await new Promise<void>((r) => auth.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    auth?.closeAllConnections();
    await new Promise((r) => auth?.close(r));
  });

  const node = useTestNode(() => ['--auth-url', `http://127.0.0.1:${(auth.address() as AddressInfo).port}/auth`]);

  it('answers bad frames (text and non-UTF-8 binary) after the login reply, in request order', async () => {
    const c = await node.connect();
    const topic = unique('after-login');
    c.send({ code: 3, data: 'alice', id: 'login' });
    c.send('{not json');
    c.ws.send(Buffer.from([0xff, 0xfe, 0xfd]), { binary: true });
    c.send({ code: 5, topic, id: 'private' });
    c.send({ code: 42, id: 'unknown' });
    await waitFor(() => c.frames.length >= 6, 5000, 'five replies');
    expect(c.frames.slice(1).map((f) => [f.json?.id, f.json?.code, f.json?.detail])).toEqual([
      ['login', 20003, undefined],
      [undefined, 30001, 'bad data format: not JSON'],
      [undefined, 30001, 'bad data format: binary frame is not UTF-8 JSON'],
      ['private', 20001, undefined],
      ['unknown', 30001, 'unknown code 42'],
    ]);
    // The login and the private subscription took effect.
    await pushData(node.grpc, { uid: 'u-alice', topic, data: Buffer.from('private hello') });
    await c.next((f) => f.text === 'private hello');
  });

  it('a text ping is answered at once, even while a login is running', async () => {
    const c = await node.connect();
    c.send({ code: 3, data: 'bob', id: 'login' });
    c.send('ping');
    await waitFor(() => c.frames.length >= 3, 5000, 'pong and login reply');
    expect(c.frames.slice(1).map((f) => f.json?.id ?? f.text)).toEqual(['pong', 'login']);
  });
});

