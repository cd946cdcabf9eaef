import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PushDataRequest } from '../../gen/pushwire/v1/push.js';
import { b64, pushClient, restPush } from '../helpers/grpc-client.js';
import { startTestServer, type TestServer } from '../helpers/in-process.js';
import { metric } from '../helpers/metrics.js';
import { TestClient } from '../helpers/ws-client.js';

/** Sends a WebSocket upgrade by hand and returns the raw HTTP answer (status line, headers, body). */
function rawUpgrade(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect(port, '127.0.0.1', () =>
      sock.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      ),
    );
    let text = '';
    sock.on('data', (d) => (text += d.toString()));
    sock.on('end', () => resolve(text));
    sock.on('error', reject);
  });
}

const SHOP_KEY = 'shop-limits-key-0123456789';
const BLOG_KEY = 'blog-limits-key-0123456789';

describe('per-project limits (per node)', () => {
  let server: TestServer;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pushwire-limits-'));
    const file = join(dir, 'projects.json');
    writeFileSync(
      file,
      JSON.stringify({
        projects: [
          { pid: 'shop', apiKeys: [{ key: SHOP_KEY }], limits: { maxConnections: 2, pushesPerSecond: 5, requestsPerSecond: 4 } },
          { pid: 'blog', apiKeys: [{ key: BLOG_KEY }] },
        ],
      }),
    );
    server = await startTestServer(['--projects', file]);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.shutdown();
  });

  const connect = async (pid: string): Promise<TestClient> => {
    const c = await TestClient.connect(`${server.wsUrl}?pid=${pid}`);
    clients.push(c);
    return c;
  };

  it('maxConnections: the connection over the limit is refused at the upgrade with 429; other projects are unaffected', async () => {
    const a = await connect('shop');
    await connect('shop');
    await expect(TestClient.connect(`${server.wsUrl}?pid=shop`)).rejects.toThrow(/HTTP 429/);
    const refusal = await rawUpgrade(server.ports.ws, '/ws?pid=shop');
    expect(refusal).toMatch(/^HTTP\/1\.1 429 Too Many Requests/);
    expect(refusal).toContain('project "shop" is at its connection limit (2 on this node)');
    await connect('blog');
    await connect('blog');
    await connect('blog');
    expect(await metric(server.httpUrl, 'pushwire_limit_rejections_total', { pid: 'shop', limit: 'connections' })).toBeGreaterThanOrEqual(1);
    // A slot frees when a connection closes.
    await a.close();
    clients.splice(clients.indexOf(a), 1);
    const deadline = Date.now() + 3000;
    let again: TestClient | undefined;
    while (!again && Date.now() < deadline) again = await TestClient.connect(`${server.wsUrl}?pid=shop`).catch(() => undefined);
    expect(again).toBeDefined();
    clients.push(again!);
  });

  it('pushesPerSecond: pushes over the rate get RESOURCE_EXHAUSTED (gRPC 8 / HTTP 429); another project is unaffected', async () => {
    const grpc = pushClient(server.grpcAddress);
    const md = new Metadata();
    md.set('authorization', `Bearer ${SHOP_KEY}`);
    const call = () =>
      new Promise<number>((resolve) =>
        grpc.pushData(PushDataRequest.fromPartial({ topic: 't', data: Buffer.from('x') }), md, (err: ServiceError | null) =>
          resolve(err ? err.code : status.OK),
        ),
      );
    // A burst far over the rate, sent at once, so it lands within one refill however slow the machine is
    // (sequential calls on a loaded machine can each take longer than the refill of one token).
    const burst = (n: number) => Promise.all(Array.from({ length: n }, call));
    const codes = await burst(30);
    expect(codes.filter((c) => c === status.OK).length).toBeGreaterThanOrEqual(5);
    expect(codes.filter((c) => c === status.OK).length).toBeLessThan(30);
    expect(codes.every((c) => c === status.OK || c === status.RESOURCE_EXHAUSTED)).toBe(true);
    const shopPush = () => restPush(server.httpUrl, { topic: 't', data: b64('x') }, { headers: { authorization: `Bearer ${SHOP_KEY}`, 'content-type': 'application/json' } });
    // The REST push rides on another burst, so the bucket is empty when it arrives.
    let rest = await shopPush();
    for (let i = 0; i < 10 && rest.status !== 429; i++) rest = (await Promise.all([shopPush(), burst(20)]))[0];
    expect(rest.status).toBe(429);
    expect(rest.json).toEqual({ code: 8, message: 'project "shop" is over its push rate (5/s)', details: [] });
    const blog = await restPush(server.httpUrl, { topic: 't', data: b64('x') }, { headers: { authorization: `Bearer ${BLOG_KEY}`, 'content-type': 'application/json' } });
    expect(blog.status).toBe(200);
    expect(await metric(server.httpUrl, 'pushwire_limit_rejections_total', { pid: 'shop', limit: 'pushes' })).toBeGreaterThanOrEqual(1);
    expect(await metric(server.httpUrl, 'pushwire_pushes_total', { result: 'resource_exhausted' })).toBeGreaterThanOrEqual(1);
    grpc.close();
  });

  it('requestsPerSecond: client requests over the rate get a 30004 error frame; the connection stays usable', async () => {
    const s = clients[clients.length - 1]!; // a shop connection (opened last in the first test)
    for (let i = 0; i < 10; i++) s.send({ code: 1, topic: `r${i}`, id: i });
    const replies: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 10; i++) replies.push((await s.next((f) => f.json?.id === i)).json!);
    const limited = replies.filter((r) => r.code === 30004);
    expect(limited.length).toBeGreaterThanOrEqual(1);
    expect(limited[0]).toMatchObject({ message: 'too many requests', detail: 'project "shop" allows 4 requests per second' });
    expect(replies.filter((r) => r.code === 20001).length).toBeGreaterThanOrEqual(4);
    expect(await metric(server.httpUrl, 'pushwire_limit_rejections_total', { pid: 'shop', limit: 'requests' })).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await s.subscribe('after-the-second')).code).toBe(20001);
  });
});
