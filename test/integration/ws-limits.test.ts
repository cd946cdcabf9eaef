import { connect as netConnect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { useTestNode } from '../helpers/fixture.js';
import { b64, pushData, restPush } from '../helpers/grpc-client.js';
import { metric } from '../helpers/metrics.js';
import { unique } from '../helpers/names.js';
import { sleep, waitFor } from '../helpers/ports.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * Limits of the WebSocket edge: inbound frames over --max-message-bytes (1009), invalid UTF-8 in
 * text frames (1007), slow consumers over --max-queue-bytes (3008, counted, others unaffected),
 * pushes over --max-push-bytes (INVALID_ARGUMENT, nothing delivered), and no permessage-deflate.
 */

const closedReason = (httpUrl: string, reason: string): Promise<number> =>
  metric(httpUrl, 'pushwire_connections_closed_total', { reason });

/** A JSON subscribe request padded to exactly `size` bytes. */
function paddedSubscribe(topic: string, id: string, size: number): string {
  const bare = JSON.stringify({ code: 1, topic, id, pad: '' });
  const frame = JSON.stringify({ code: 1, topic, id, pad: 'x'.repeat(size - bare.length) });
  expect(Buffer.byteLength(frame)).toBe(size);
  return frame;
}

/** Resolves with the close code seen by a client, or rejects after `ms`. */
const closedWithin = (c: TestClient, ms = 5000): Promise<{ code: number; reason: string }> =>
  Promise.race([
    c.closed,
    sleep(ms).then(() => {
      throw new Error(`connection not closed within ${ms} ms`);
    }),
  ]);

describe('inbound limits on an in-process node (--max-message-bytes 1KiB)', () => {
  const node = useTestNode(['--max-message-bytes', '1KiB']);

  /** Subscribes `c` to a fresh topic, pushes to it over REST and checks `c` receives it. */
  const stillWorks = async (c: TestClient): Promise<void> => {
    const topic = unique('works');
    expect(await c.subscribe(topic)).toMatchObject({ code: 20001, topic });
    const text = unique('payload');
    const res = await restPush(node.server.httpUrl, { topic, data: b64(text) });
    expect(res.status).toBe(200);
    await c.next((f) => f.text === text);
  };

  it('accepts a frame of exactly --max-message-bytes', async () => {
    const c = await node.connect();
    const topic = unique('edge');
    c.send(paddedSubscribe(topic, 'exact', 1024));
    expect((await c.next((f) => f.json?.id === 'exact')).json).toMatchObject({ code: 20001, topic });
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('closes a client sending a frame one byte over --max-message-bytes with 1009; others are unaffected', async () => {
    const before = await closedReason(node.server.httpUrl, 'message_too_big');
    const bystander = await node.connect();
    const offender = await node.connect();
    offender.send(paddedSubscribe(unique('big'), 'too-big', 1025));
    const closed = await closedWithin(offender);
    expect(closed.code).toBe(1009);
    // It never got a reply to the oversized request.
    expect(offender.frames.some((f) => f.json?.id === 'too-big')).toBe(false);
    await waitFor(async () => (await closedReason(node.server.httpUrl, 'message_too_big')) === before + 1, 3000, 'message_too_big counted');
    expect(bystander.ws.readyState).toBe(WebSocket.OPEN);
    await stillWorks(bystander);
    // The node still accepts new connections.
    await stillWorks(await node.connect());
  });

  it('closes with 1009 on a much larger binary frame too', async () => {
    const c = await node.connect();
    c.ws.send(Buffer.alloc(64 * 1024, 0x61), { binary: true });
    expect((await closedWithin(c)).code).toBe(1009);
  });

  it('counts the whole fragmented message against the limit (3 fragments of 500 bytes → 1009)', async () => {
    const c = await node.connect();
    const part = Buffer.alloc(500, 0x20);
    c.ws.send(part, { binary: false, fin: false });
    c.ws.send(part, { binary: false, fin: false });
    c.ws.send(part, { binary: false, fin: true });
    expect((await closedWithin(c)).code).toBe(1009);
  });

  it('reassembles a fragmented message under the limit', async () => {
    const c = await node.connect();
    const topic = unique('frag');
    const text = JSON.stringify({ code: 1, topic, id: 'frag' });
    const mid = Math.floor(text.length / 2);
    c.ws.send(text.slice(0, mid), { fin: false });
    c.ws.send(text.slice(mid), { fin: true });
    expect((await c.next((f) => f.json?.id === 'frag')).json).toMatchObject({ code: 20001, topic });
  });

  it('closes a client sending invalid UTF-8 in a text frame with 1007; others are unaffected', async () => {
    const before = await closedReason(node.server.httpUrl, 'invalid_utf8');
    const bystander = await node.connect();
    const offender = await node.connect();
    // `ws` does not validate outgoing data: this goes out as a text frame with bytes that are not UTF-8.
    const bad = Buffer.concat([Buffer.from('{"code":1,"topic":"'), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from('"}')]);
    offender.ws.send(bad, { binary: false });
    expect((await closedWithin(offender)).code).toBe(1007);
    expect(offender.frames.some((f) => f.json?.code === 20001)).toBe(false);
    await waitFor(async () => (await closedReason(node.server.httpUrl, 'invalid_utf8')) === before + 1, 3000, 'invalid_utf8 counted');
    expect(bystander.ws.readyState).toBe(WebSocket.OPEN);
    await stillWorks(bystander);
  });

  it('closes with 1007 on a truncated multi-byte sequence, also sent as a raw frame over TCP', async () => {
    const before = await closedReason(node.server.httpUrl, 'invalid_utf8');
    const { socket, read } = await rawHandshake(node.server.ports.ws);
    try {
      // Wait for the 20000 frame, then send a masked text frame with a lone lead byte.
      await read((b) => b.includes(Buffer.from('"code":20000')));
      socket.write(maskedFrame(0x1, Buffer.from([0x61, 0x62, 0xe2, 0x82])));
      const all = await read((b) => closeCodeOf(b) !== undefined);
      expect(closeCodeOf(all)).toBe(1007);
    } finally {
      socket.destroy();
    }
    await waitFor(async () => (await closedReason(node.server.httpUrl, 'invalid_utf8')) === before + 1, 3000, 'invalid_utf8 counted');
  });

  it('does not negotiate permessage-deflate even when the client offers it', async () => {
    let offered: string | undefined;
    let answered: string | undefined;
    const ws = new WebSocket(node.server.wsUrl, { perMessageDeflate: true });
    ws.on('upgrade', (res) => (answered = res.headers['sec-websocket-extensions'] as string | undefined));
    const req = (ws as unknown as { _req: { getHeader(n: string): unknown } })._req;
    offered = String(req.getHeader('sec-websocket-extensions'));
    const client = await new Promise<TestClient>((resolve, reject) => {
      ws.once('error', reject);
      ws.once('open', () => {
        ws.close();
        resolve(node.connect(node.server.wsUrl, { perMessageDeflate: true }));
      });
    });
    expect(offered).toContain('permessage-deflate');
    expect(answered).toBeUndefined();
    expect(ws.extensions).toBe('');
    expect(client.ws.extensions).toBe('');
    // Frames from the server are never compressed, and the connection works normally.
    await stillWorks(client);
  });
});

describe('outbound limits on an in-process node (--max-queue-bytes 64KiB, --max-push-bytes 32KiB)', () => {
  const node = useTestNode(['--max-queue-bytes', '64KiB', '--max-push-bytes', '32KiB']);

  it('accepts a push of exactly --max-push-bytes and delivers it in one frame', async () => {
    const c = await node.connect();
    const topic = unique('max');
    await c.subscribe(topic);
    const data = Buffer.alloc(32 * 1024, 0x41);
    expect((await pushData(node.grpc, { topic, data })).messageId).toBeTruthy();
    const f = await c.next((fr) => !fr.json);
    expect(f.data.equals(data)).toBe(true);
  });

  it('rejects a push over --max-push-bytes with INVALID_ARGUMENT (REST 400 / gRPC 3) and delivers nothing', async () => {
    const c = await node.connect();
    const topic = unique('over');
    await c.subscribe(topic);
    const data = Buffer.alloc(32 * 1024 + 1, 0x42);

    const rest = await restPush(node.server.httpUrl, { topic, data: b64(data) });
    expect(rest.status).toBe(400);
    expect(rest.json).toMatchObject({ code: 3, details: [] });
    expect(rest.json.message).toMatch(/32768/);

    const err = await pushData(node.grpc, { topic, data }).then(
      () => undefined,
      (e: { code: number; details: string }) => e,
    );
    expect(err?.code).toBe(3);
    expect(err?.details).toMatch(/32768/);

    // Also for a broadcast (no topic, no uid).
    const all = await restPush(node.server.httpUrl, { data: b64(data) });
    expect(all.status).toBe(400);

    // A push after them arrives, and nothing came before it.
    await pushData(node.grpc, { topic, data: Buffer.from('after') });
    await c.next((f) => f.text === 'after');
    expect(c.deliveries()).toEqual(['after']);
  });

  it('closes a client that stops reading with 3008 (counted); a normal client on the topic gets every message in order', async () => {
    const slowBefore = await metric(node.server.httpUrl, 'pushwire_slow_consumer_closes_total');
    const reasonBefore = await closedReason(node.server.httpUrl, 'slow_consumer');
    const topic = unique('firehose');
    const normal = await node.connect();
    const slow = await node.connect();
    await normal.subscribe(topic);
    await slow.subscribe(topic);
    const slowCloses: number[] = [];
    slow.ws.on('close', (code) => slowCloses.push(code));

    // The slow client stops reading: its kernel buffers fill, then the server's queue for it.
    const slowSocket = (slow.ws as unknown as { _socket: Socket })._socket;
    slowSocket.pause();

    const padding = 'x'.repeat(16 * 1024);
    const body = (i: number): string => `${String(i).padStart(6, '0')}:${padding}`;
    let sent = 0;
    let closedSlow = false;
    // Push until the server gives up on the slow client (bounded), then a few more.
    for (let round = 0; round < 4000 && !closedSlow; round++) {
      await pushData(node.grpc, { topic, data: Buffer.from(body(sent++)) });
      if (sent % 25 === 0) closedSlow = (await metric(node.server.httpUrl, 'pushwire_slow_consumer_closes_total')) > slowBefore;
    }
    expect(closedSlow, `slow consumer not closed after ${sent} pushes of 16 KiB`).toBe(true);
    // Reading again (well within the server's close grace period) it drains what was in flight, then the close frame.
    slowSocket.resume();
    for (let i = 0; i < 20; i++) await pushData(node.grpc, { topic, data: Buffer.from(body(sent++)) });

    // The normal client got every message, in publish order, and is still open.
    const last = body(sent - 1);
    await normal.next((f) => f.text === last, 15_000);
    const got = normal.deliveries();
    expect(got.length).toBe(sent);
    expect(got.map((t) => Number(t.slice(0, 6)))).toEqual(Array.from({ length: sent }, (_, i) => i));
    expect(got.every((t, i) => t === body(i))).toBe(true);
    expect(normal.ws.readyState).toBe(WebSocket.OPEN);
    expect(await normal.subscribe(unique('after'))).toMatchObject({ code: 20001 });

    // The slow client is closed with 3008 "slow consumer", exactly once, counted as reason="slow_consumer".
    expect(await closedWithin(slow, 10_000)).toEqual({ code: 3008, reason: 'slow consumer' });
    expect(slowCloses).toEqual([3008]);
    expect(await metric(node.server.httpUrl, 'pushwire_slow_consumer_closes_total')).toBe(slowBefore + 1);
    await waitFor(async () => (await closedReason(node.server.httpUrl, 'slow_consumer')) === reasonBefore + 1, 10_000, 'slow_consumer close counted');
    // It got a prefix of the stream (what was in flight when it was cut off), in order, and nothing after.
    const slowGot = slow.deliveries().map((t) => Number(t.slice(0, 6)));
    expect(slowGot.length).toBeGreaterThan(0);
    expect(slowGot.length).toBeLessThan(sent - 20);
    expect(slowGot).toEqual(Array.from({ length: slowGot.length }, (_, i) => i));
    expect(await metric(node.server.httpUrl, 'pushwire_connections')).toBe(1);
  });

  it('a slow consumer on one topic does not stop pushes to other topics or clients', async () => {
    const slowBefore = await metric(node.server.httpUrl, 'pushwire_slow_consumer_closes_total');
    const hot = unique('hot');
    const other = unique('other');
    const slow = await node.connect();
    const bystander = await node.connect();
    await slow.subscribe(hot);
    await bystander.subscribe(other);
    (slow.ws as unknown as { _socket: Socket })._socket.pause();
    const big = Buffer.alloc(30 * 1024, 0x7a);
    let closedSlow = false;
    for (let i = 0; i < 4000 && !closedSlow; i++) {
      await pushData(node.grpc, { topic: hot, data: big });
      if (i % 25 === 24) closedSlow = (await metric(node.server.httpUrl, 'pushwire_slow_consumer_closes_total')) > slowBefore;
    }
    expect(closedSlow).toBe(true);
    for (let i = 0; i < 5; i++) await pushData(node.grpc, { topic: other, data: Buffer.from(`other-${i}`) });
    await bystander.next((f) => f.text === 'other-4');
    expect(bystander.deliveries()).toEqual(['other-0', 'other-1', 'other-2', 'other-3', 'other-4']);
    (slow.ws as unknown as { _socket: Socket })._socket.resume();
  });
});

/** Opens a TCP connection to /ws with a manual handshake; `read` waits until the bytes after the handshake match. */
async function rawHandshake(port: number): Promise<{ socket: Socket; read: (until: (b: Buffer) => boolean) => Promise<Buffer> }> {
  const socket = netConnect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let buf = Buffer.alloc(0);
  let headerDone = false;
  const waiters: Array<() => void> = [];
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    if (!headerDone) {
      const end = buf.indexOf('\r\n\r\n');
      if (end !== -1) {
        headerDone = true;
        const head = buf.subarray(0, end).toString();
        if (!head.startsWith('HTTP/1.1 101')) throw new Error(`handshake failed: ${head}`);
        buf = buf.subarray(end + 4);
      }
    }
    for (const w of waiters.splice(0)) w();
  });
  socket.on('close', () => {
    for (const w of waiters.splice(0)) w();
  });
  socket.write(
    'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  const read = async (until: (b: Buffer) => boolean): Promise<Buffer> => {
    const deadline = Date.now() + 5000;
    while (!(headerDone && until(buf))) {
      if (socket.destroyed || Date.now() > deadline) throw new Error(`raw read timed out; have ${buf.toString('hex')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return buf;
  };
  return { socket, read };
}

/** A client (masked) frame with a payload under 126 bytes. */
function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, masked]);
}

/** The status code of the first close frame in a stream of unmasked server frames, if any. */
function closeCodeOf(b: Buffer): number | undefined {
  let i = 0;
  while (i + 2 <= b.length) {
    const opcode = b[i]! & 0x0f;
    let len = b[i + 1]! & 0x7f;
    let off = i + 2;
    if (len === 126) {
      if (off + 2 > b.length) return undefined;
      len = b.readUInt16BE(off);
      off += 2;
    } else if (len === 127) {
      if (off + 8 > b.length) return undefined;
      len = Number(b.readBigUInt64BE(off));
      off += 8;
    }
    if (off + len > b.length) return undefined;
    if (opcode === 0x8) return len >= 2 ? b.readUInt16BE(off) : 1005;
    i = off + len;
  }
  return undefined;
}
