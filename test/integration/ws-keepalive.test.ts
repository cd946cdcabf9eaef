import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestNode } from '../helpers/fixture.js';
import { b64, restPush } from '../helpers/grpc-client.js';
import { metric } from '../helpers/metrics.js';
import { unique } from '../helpers/names.js';
import { NodeProcess } from '../helpers/node-process.js';
import { sleep, waitFor } from '../helpers/ports.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * Keepalive on the WebSocket edge: gpush's text `ping` (any case) answered with the text `pong`,
 * RFC 6455 ping frames answered with pong frames, and silent clients closed with 3001 after
 * --ping-timeout (counted as reason="ping_timeout").
 */

const PING_TIMEOUT = '400ms';
const PING_TIMEOUT_MS = 400;

/** Calls `tick` every `everyMs` until the returned stop function is called. */
function every(everyMs: number, tick: () => void): () => void {
  const t = setInterval(tick, everyMs);
  return () => clearInterval(t);
}

describe(`keepalive on an in-process node (--ping-timeout ${PING_TIMEOUT})`, () => {
  const node = useTestNode(['--ping-timeout', PING_TIMEOUT]);

  it('answers the text ping in any case with the text pong (not JSON), one pong per ping', async () => {
    const c = await node.connect();
    for (const ping of ['ping', 'PING', 'Ping', 'pInG']) {
      c.send(ping);
      const f = await c.next();
      expect(f.text).toBe('pong');
      expect(f.binary).toBe(false);
      expect(f.json).toBeUndefined();
    }
    // Back to back: exactly as many pongs as pings, nothing else.
    const before = c.frames.length;
    for (let i = 0; i < 10; i++) c.send(i % 2 ? 'PING' : 'ping');
    await waitFor(() => c.frames.length >= before + 10, 3000, '10 pongs');
    await sleep(50);
    expect(c.frames.slice(before).map((f) => f.text)).toEqual(Array(10).fill('pong'));
  });

  it('answers a binary frame holding "ping" with pong as well', async () => {
    const c = await node.connect();
    c.ws.send(Buffer.from('Ping'), { binary: true });
    expect((await c.next()).text).toBe('pong');
  });

  it('does not treat near-pings as pings: they are bad requests (30001)', async () => {
    const c = await node.connect();
    for (const text of ['ping ', ' ping', 'pingg', 'pong', 'p1ng']) {
      c.send(text);
      const f = await c.next();
      expect(f.json, `reply to ${JSON.stringify(text)}`).toMatchObject({ code: 30001 });
      expect(typeof f.json!.detail).toBe('string');
    }
    c.send('ping');
    expect((await c.next()).text).toBe('pong');
  });

  it('answers RFC 6455 ping frames with pong frames carrying the same payload', async () => {
    const c = await node.connect();
    const pongs: string[] = [];
    c.ws.on('pong', (data: Buffer) => pongs.push(data.toString()));
    c.ws.ping(Buffer.from('hello-1'));
    c.ws.ping(Buffer.from('hello-2'));
    c.ws.ping();
    await waitFor(() => pongs.length >= 3, 3000, 'three pong frames');
    expect(pongs).toEqual(['hello-1', 'hello-2', '']);
    // Control frames are not protocol messages: no data frame came back for them.
    await sleep(50);
    expect(c.frames.filter((f) => f.json?.code !== 20000)).toEqual([]);
  });

  it('closes a silent client with close code 3001 "ping timeout" and counts it', async () => {
    const before = await metric(node.server.httpUrl, 'pushwire_connections_closed_total', { reason: 'ping_timeout' });
    const c = await node.connect();
    const opened = Date.now();
    const closed = await Promise.race([
      c.closed,
      sleep(5000).then(() => {
        throw new Error('silent client was not closed');
      }),
    ]);
    expect(closed).toEqual({ code: 3001, reason: 'ping timeout' });
    // Not before the timeout had passed.
    expect(Date.now() - opened).toBeGreaterThanOrEqual(PING_TIMEOUT_MS - 50);
    await waitFor(
      async () => (await metric(node.server.httpUrl, 'pushwire_connections_closed_total', { reason: 'ping_timeout' })) === before + 1,
      3000,
      'ping_timeout counted',
    );
  });

  it('closes every silent client but keeps the ones that keep pinging', async () => {
    const silent = await Promise.all([node.connect(), node.connect(), node.connect()]);
    const chatty = await node.connect();
    const stop = every(100, () => chatty.send('ping'));
    try {
      const results = await Promise.all(silent.map((c) => c.closed));
      for (const r of results) expect(r.code).toBe(3001);
      expect(chatty.ws.readyState).toBe(chatty.ws.OPEN);
    } finally {
      stop();
    }
  });

  it('keeps a client open that sends text pings more often than the timeout, and it still works', async () => {
    const c = await node.connect();
    const stop = every(100, () => c.send('PING'));
    try {
      await sleep(PING_TIMEOUT_MS * 4);
      expect(c.ws.readyState).toBe(c.ws.OPEN);
      expect(c.frames.filter((f) => f.text === 'pong').length).toBeGreaterThanOrEqual(8);
      const topic = unique('alive');
      expect(await c.subscribe(topic)).toMatchObject({ code: 20001, topic });
      const res = await restPush(node.server.httpUrl, { topic, data: b64('still here') });
      expect(res.status).toBe(200);
      await c.next((f) => f.text === 'still here');
    } finally {
      stop();
    }
  });

  it('keeps a client open that sends RFC 6455 ping frames more often than the timeout', async () => {
    const c = await node.connect();
    let pongs = 0;
    c.ws.on('pong', () => pongs++);
    const stop = every(100, () => c.ws.ping());
    try {
      await sleep(PING_TIMEOUT_MS * 4);
      expect(c.ws.readyState).toBe(c.ws.OPEN);
      expect(pongs).toBeGreaterThanOrEqual(8);
      const topic = unique('alive-frames');
      expect(await c.subscribe(topic)).toMatchObject({ code: 20001 });
    } finally {
      stop();
    }
  });

  it('counts any request as activity, not only pings', async () => {
    const c = await node.connect();
    const topic = unique('busy');
    const stop = every(100, () => c.send({ code: 1, topic }));
    try {
      await sleep(PING_TIMEOUT_MS * 4);
      expect(c.ws.readyState).toBe(c.ws.OPEN);
      expect(c.frames.filter((f) => f.json?.code === 20001).length).toBeGreaterThanOrEqual(8);
    } finally {
      stop();
    }
  });

  it('a client that stops pinging is closed afterwards, and leaves no connection behind', async () => {
    const c = await node.connect();
    const stop = every(100, () => c.send('ping'));
    await sleep(PING_TIMEOUT_MS * 2);
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    stop();
    const stoppedAt = Date.now();
    expect((await c.closed).code).toBe(3001);
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(PING_TIMEOUT_MS - 150);
    // Other tests' clients are closed by afterEach already, so nothing of this one stays.
    await waitFor(async () => (await metric(node.server.httpUrl, 'pushwire_connections')) === 0, 3000, 'no live connections');
  });
});

describe('keepalive through the real CLI', () => {
  let node: NodeProcess;

  beforeAll(async () => {
    // The CLI runs from dist/ (npm test builds it first).
    node = await NodeProcess.start(['--ping-timeout', PING_TIMEOUT]);
  });
  afterAll(async () => {
    await node?.stop();
  });

  it('answers ping with pong, closes a silent client with 3001 and counts reason="ping_timeout"', async () => {
    const before = await node.metric('pushwire_connections_closed_total', { reason: 'ping_timeout' });
    const pinger = await TestClient.connect(node.wsUrl);
    const silent = await TestClient.connect(node.wsUrl);
    pinger.send('Ping');
    expect((await pinger.next()).text).toBe('pong');
    const stop = every(100, () => pinger.send('ping'));
    try {
      expect(await silent.closed).toEqual({ code: 3001, reason: 'ping timeout' });
      expect(pinger.ws.readyState).toBe(pinger.ws.OPEN);
    } finally {
      stop();
    }
    await waitFor(
      async () => (await node.metric('pushwire_connections_closed_total', { reason: 'ping_timeout' })) === before + 1,
      3000,
      'ping_timeout counted',
    );
    expect(await node.metric('pushwire_connections')).toBe(1);
    await pinger.close();
  });
});

describe("ws-cluster's heart frame", () => {
  const node = useTestNode(['--ping-timeout', '400ms']);

  it('answers {"type":"heart","ack_id":X} at once with the pong time and the client id, echoing ack_id', async () => {
    const c = await node.connect();
    for (const ackId of [7, 'h-1']) {
      const before = Date.now();
      c.send({ type: 'heart', ack_id: ackId });
      const reply = (await c.next((f) => f.json?.type === 'heart')).json!;
      expect(reply).toEqual({ type: 'heart', ack_id: ackId, payload: { pong: expect.any(Number), client_id: c.cid } });
      const pong = (reply.payload as { pong: number }).pong;
      expect(pong).toBeGreaterThanOrEqual(before);
      expect(pong).toBeLessThanOrEqual(Date.now());
    }
    c.send({ type: 'heart' });
    expect((await c.next((f) => f.json?.type === 'heart')).json).toEqual({ type: 'heart', payload: { pong: expect.any(Number), client_id: c.cid } });
  });

  it('a bad ack_id is a 30001, and heart frames keep the connection alive past the ping timeout', async () => {
    const c = await node.connect();
    c.send({ type: 'heart', ack_id: { x: 1 } });
    expect((await c.next((f) => f.json?.code === 30001)).json!.detail).toMatch(/ack_id/);
    for (let i = 0; i < 8; i++) {
      c.send({ type: 'heart', ack_id: i });
      await c.next((f) => f.json?.ack_id === i);
      await sleep(100);
    }
    // 800 ms of hearts, twice the 400 ms ping timeout: still open and working.
    const topic = unique('heart');
    expect((await c.subscribe(topic)).code).toBe(20001);
    await restPush(node.server.httpUrl, { topic, data: b64('alive') });
    await c.next((f) => f.text === 'alive');
  });
});
