import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b64, restPush } from '../helpers/grpc-client.js';
import { startTestServer, type TestServer } from '../helpers/in-process.js';
import { metric } from '../helpers/metrics.js';
import { waitFor } from '../helpers/ports.js';
import { TestClient, type Frame } from '../helpers/ws-client.js';

const isDelivery = (f: Frame): boolean => !(f.json && typeof f.json.code === 'number' && f.json.code >= 20000);

function expectStatus(res: { status: number; json: any }, http: number, code: number, message?: RegExp): void {
  expect(res.status, JSON.stringify(res.json)).toBe(http);
  expect(res.json).toEqual({ code, message: expect.any(String), details: [] });
  expect(res.json.message.length).toBeGreaterThan(0);
  if (message) expect(res.json.message).toMatch(message);
}

describe('REST bridge: POST /v1/pushData (grpc-gateway conventions)', () => {
  let node: TestServer;
  let client: TestClient;
  let topicSeq = 0;

  beforeAll(async () => {
    node = await startTestServer();
    client = await TestClient.connect(node.wsUrl);
  });
  afterAll(async () => {
    await client?.close();
    await node?.shutdown();
  });

  /** A fresh topic the shared client subscribes to. */
  async function freshTopic(): Promise<string> {
    const topic = `rest-${++topicSeq}`;
    expect((await client.subscribe(topic)).code).toBe(20001);
    return topic;
  }

  it('accepts proto3 JSON and answers the PushDataResponse as application/json', async () => {
    const topic = await freshTopic();
    const res = await fetch(`${node.httpUrl}/v1/pushData`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ uid: '', topic, data: b64('hello rest') }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const json = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(json).sort()).toEqual(['messageId', 'nodeId']);
    expect(json.nodeId).toBe(node.nodeId);
    expect(typeof json.messageId).toBe('string');
    expect(json.messageId).not.toBe('');
    const f = await client.next((x) => x.text === 'hello rest');
    expect(f.binary).toBe(false);
  });

  it('gives every push a distinct messageId', async () => {
    const topic = await freshTopic();
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const res = await restPush(node.httpUrl, { topic, data: b64(`m${i}`) });
      expect(res.status).toBe(200);
      ids.add(res.json.messageId);
    }
    expect(ids.size).toBe(5);
    for (let i = 0; i < 5; i++) await client.next((f) => f.text === `m${i}`);
  });

  it('parses the body as proto3 JSON whatever its content type', async () => {
    const topic = await freshTopic();
    // uid, topic and data are single words: their lowerCamelCase JSON names equal the original proto names.
    const res = await restPush(node.httpUrl, { topic, data: b64('names ok') }, { headers: { 'content-type': 'text/plain' } });
    expect(res.status).toBe(200);
    await client.next((f) => f.text === 'names ok');
  });

  // Encodes to "+/+//gCA/w==" in standard base64 and "-_-_-gCA_w" URL-safe; not valid UTF-8.
  const binary = Buffer.from([0xfb, 0xff, 0xbf, 0xfe, 0x00, 0x80, 0xff]);
  const std = binary.toString('base64');
  const url = binary.toString('base64url');
  const variants: Array<[string, string]> = [
    ['standard, padded', std],
    ['standard, unpadded', std.replace(/=+$/, '')],
    ['URL-safe, padded', url + '='.repeat((4 - (url.length % 4)) % 4)],
    ['URL-safe, unpadded', url],
  ];

  it('test data really exercises both alphabets and padding', () => {
    expect(std).toMatch(/[+/]/);
    expect(std).toMatch(/=$/);
    expect(url).toMatch(/[-_]/);
    expect(url).not.toMatch(/=/);
  });

  for (const [name, encoded] of variants) {
    it(`accepts data as ${name} base64 (${encoded}) and delivers it byte-exact`, async () => {
      const topic = await freshTopic();
      const res = await restPush(node.httpUrl, { topic, data: encoded });
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      const f = await client.next((x) => isDelivery(x) && x.binary);
      expect(f.data.equals(binary)).toBe(true);
    });
  }

  it('delivers padded and unpadded forms of 1- and 2-byte remainders byte-exact', async () => {
    const topic = await freshTopic();
    for (const text of ['a', 'ab', 'abc', 'abcd', 'abcde']) {
      const padded = b64(text);
      for (const encoded of new Set([padded, padded.replace(/=+$/, '')])) {
        const res = await restPush(node.httpUrl, { topic, data: encoded });
        expect(res.status, `${encoded}: ${JSON.stringify(res.json)}`).toBe(200);
        expect((await client.next(isDelivery)).text).toBe(text);
      }
    }
  });

  const badBase64: Array<[string, string]> = [
    ['a character outside both alphabets', 'YW*j'],
    ['a space', 'YW Jj'],
    ['non-ASCII', 'YWJjé'],
    ['mixed standard and URL-safe alphabets', 'a+b-'],
    ['mixed alphabets, the other way round', 'ab_/'],
    ['padding on a length not a multiple of 4', 'YQ='],
    ['too much padding', 'YQ==='],
    ['three padding characters', 'Y==='],
    ['padding in the middle', 'YQ==YQ=='],
    ['a dangling sextet (length % 4 == 1)', 'YWJjZ'],
    ['a single character', 'Y'],
    ['only padding', '=='],
  ];
  for (const [why, data] of badBase64) {
    it(`rejects data with ${why} (${JSON.stringify(data)}) as 400 INVALID_ARGUMENT`, async () => {
      const res = await restPush(node.httpUrl, { topic: 'never-delivered', data });
      expectStatus(res, 400, 3, /base64/);
      expect(res.json.message).toMatch(/data/);
    });
  }

  const notJson: Array<[string, string]> = [
    ['plain text', 'hello'],
    ['truncated JSON', '{"topic":"t"'],
    ['a trailing comma', '{"topic":"t",}'],
    ['single quotes', "{'topic':'t'}"],
  ];
  for (const [why, body] of notJson) {
    it(`rejects a non-JSON body (${why}) as 400 INVALID_ARGUMENT`, async () => {
      expectStatus(await restPush(node.httpUrl, body), 400, 3, /JSON/);
    });
  }

  for (const body of ['[]', '[{"topic":"t"}]', '42', '"a string"', 'true']) {
    it(`rejects the JSON value ${body} (not an object) as 400 INVALID_ARGUMENT`, async () => {
      expectStatus(await restPush(node.httpUrl, body), 400, 3, /object/);
    });
  }

  it('rejects an unknown field with a message naming it', async () => {
    const res = await restPush(node.httpUrl, { topic: 't', bogusField: 'x' });
    expectStatus(res, 400, 3, /bogusField/);
  });

  it('rejects response fields and misspellings as unknown request fields', async () => {
    expectStatus(await restPush(node.httpUrl, { message_id: 'x' }), 400, 3, /message_id/);
    expectStatus(await restPush(node.httpUrl, { Topic: 't' }), 400, 3, /Topic/);
  });

  const wrongTypes: Array<[string, unknown]> = [
    ['a number for topic', { topic: 5 }],
    ['a boolean for uid', { uid: true }],
    ['an object for data', { data: {} }],
    ['an array for data', { data: [1, 2, 3] }],
    ['a number for data', { data: 12 }],
    ['an object for topic', { topic: { name: 't' } }],
  ];
  for (const [why, body] of wrongTypes) {
    it(`rejects ${why} as 400 INVALID_ARGUMENT naming the field`, async () => {
      const field = Object.keys(body as object)[0]!;
      expectStatus(await restPush(node.httpUrl, body), 400, 3, new RegExp(field));
    });
  }

  it('treats null fields as their defaults', async () => {
    const topic = await freshTopic();
    const res = await restPush(node.httpUrl, { uid: null, topic, data: null });
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    const f = await client.next(isDelivery);
    expect(f.data.length).toBe(0);
  });

  it('treats an empty body as the empty message: a broadcast of empty data', async () => {
    const other = await TestClient.connect(node.wsUrl); // subscribed to nothing: only a broadcast reaches it
    try {
      const res = await restPush(node.httpUrl, '');
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      expect(res.json.nodeId).toBe(node.nodeId);
      expect((await other.next(isDelivery)).data.length).toBe(0);
      expect((await client.next(isDelivery)).data.length).toBe(0);
    } finally {
      await other.close();
    }
  });

  it('treats {} as the empty message too', async () => {
    const res = await restPush(node.httpUrl, {});
    expect(res.status).toBe(200);
    expect((await client.next(isDelivery)).data.length).toBe(0);
  });

  it('validates topic: at most 256 bytes, no control characters', async () => {
    expect((await restPush(node.httpUrl, { topic: 'x'.repeat(256), data: b64('ok') })).status).toBe(200);
    expectStatus(await restPush(node.httpUrl, { topic: 'x'.repeat(257) }), 400, 3, /topic.*256/);
    // 129 two-byte characters: 258 bytes although only 129 characters.
    expectStatus(await restPush(node.httpUrl, { topic: 'é'.repeat(129) }), 400, 3, /topic.*256/);
    for (const topic of ['a\nb', 'a\u0000b', 'tab\there', 'del\u007f']) {
      expectStatus(await restPush(node.httpUrl, { topic }), 400, 3, /topic.*control/);
    }
  });

  it('validates uid: at most 128 bytes, no control characters', async () => {
    expect((await restPush(node.httpUrl, { uid: 'u'.repeat(128) })).status).toBe(200);
    expectStatus(await restPush(node.httpUrl, { uid: 'u'.repeat(129) }), 400, 3, /uid.*128/);
    expectStatus(await restPush(node.httpUrl, { uid: 'bad\r\nuid', topic: 't' }), 400, 3, /uid.*control/);
  });

  it('does not deliver anything for a rejected push', async () => {
    const topic = await freshTopic();
    expect((await restPush(node.httpUrl, { topic, data: 'a+b-' })).status).toBe(400);
    expect((await restPush(node.httpUrl, { topic, data: b64('marker') })).status).toBe(200);
    // The first delivery on this topic is the marker: the rejected push left nothing behind.
    expect((await client.next(isDelivery)).text).toBe('marker');
  });

  for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
    it(`answers ${method} /v1/pushData with 501 UNIMPLEMENTED`, async () => {
      const res = await fetch(`${node.httpUrl}/v1/pushData`, { method, ...(method === 'GET' || method === 'DELETE' ? {} : { body: '{}' }) });
      expect(res.status).toBe(501);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toEqual({ code: 12, message: expect.any(String), details: [] });
    });
  }

  for (const [method, path] of [
    ['GET', '/'],
    ['GET', '/v1/unknown'],
    ['POST', '/v1/pushdata/extra'],
    ['POST', '/v2/pushData'],
    ['POST', '/ws'],
    // grpc-gateway matches exactly: no case folding, no trailing slash.
    ['POST', '/v1/pushdata'],
    ['POST', '/v1/pushData/'],
  ] as const) {
    it(`answers ${method} ${path} with 404 NOT_FOUND`, async () => {
      const res = await fetch(`${node.httpUrl}${path}`, { method, ...(method === 'POST' ? { body: '{}' } : {}) });
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ code: 5, message: expect.any(String), details: [] });
    });
  }

  it('serves /healthz and /readyz (200 on a memory-bus node)', async () => {
    const health = await fetch(`${node.httpUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${node.httpUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('exposes push, HTTP, delivery, byte and connection metrics on /metrics', async () => {
    const topic = await freshTopic();
    const okBefore = await metric(node.httpUrl, 'pushwire_pushes_total', { ingress: 'http', result: 'ok' });
    const badBefore = await metric(node.httpUrl, 'pushwire_pushes_total', { ingress: 'http', result: 'invalid_argument' });
    const deliveriesBefore = await metric(node.httpUrl, 'pushwire_deliveries_total');
    const bytesBefore = await metric(node.httpUrl, 'pushwire_bytes_sent_total');

    expect((await restPush(node.httpUrl, { topic, data: b64('metered') })).status).toBe(200);
    await client.next((f) => f.text === 'metered');
    expect((await restPush(node.httpUrl, { topic: 'bad\ntopic' })).status).toBe(400);

    await waitFor(async () => (await metric(node.httpUrl, 'pushwire_deliveries_total')) >= deliveriesBefore + 1, 5000, 'a delivery');
    expect(await metric(node.httpUrl, 'pushwire_pushes_total', { ingress: 'http', result: 'ok' })).toBe(okBefore + 1);
    expect(await metric(node.httpUrl, 'pushwire_pushes_total', { ingress: 'http', result: 'invalid_argument' })).toBe(badBefore + 1);
    expect(await metric(node.httpUrl, 'pushwire_bytes_sent_total')).toBeGreaterThan(bytesBefore);
    expect(await metric(node.httpUrl, 'pushwire_connections')).toBeGreaterThanOrEqual(1);

    const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
    expect(text).toMatch(/# TYPE pushwire_http_request_duration_seconds histogram/);
    expect(text).toMatch(/pushwire_http_request_duration_seconds_bucket\{[^}]*le="[^"]+"[^}]*\}/);
    await waitFor(
      async () => (await metric(node.httpUrl, 'pushwire_http_request_duration_seconds_count', { route: '/v1/pushData', status: '200', method: 'POST' })) > 0,
      5000,
      'a POST /v1/pushData 200 sample',
    );
    await waitFor(
      async () => (await metric(node.httpUrl, 'pushwire_http_request_duration_seconds_count', { route: '/v1/pushData', status: '400' })) > 0,
      5000,
      'a POST /v1/pushData 400 sample',
    );
    expect(text).toMatch(/# TYPE pushwire_pushes_total counter/);
    expect(text).toMatch(/# TYPE pushwire_connections gauge/);
  });

  it('counts a live connection in pushwire_connections and forgets it when it closes', async () => {
    const before = await metric(node.httpUrl, 'pushwire_connections');
    const extra = await TestClient.connect(node.wsUrl);
    await waitFor(async () => (await metric(node.httpUrl, 'pushwire_connections')) === before + 1, 5000, 'connection gauge up');
    await extra.close();
    await waitFor(async () => (await metric(node.httpUrl, 'pushwire_connections')) === before, 5000, 'connection gauge down');
  });
});

describe('REST bridge size limits (node with --max-push-bytes 1KiB)', () => {
  let node: TestServer;
  beforeAll(async () => {
    node = await startTestServer(['--max-push-bytes', '1KiB']);
  });
  afterAll(async () => {
    await node?.shutdown();
  });

  it('accepts data of exactly the limit', async () => {
    const res = await restPush(node.httpUrl, { topic: 't', data: b64(Buffer.alloc(1024, 7)) });
    expect(res.status, JSON.stringify(res.json)).toBe(200);
  });

  it('rejects data one byte over the limit with 400 INVALID_ARGUMENT', async () => {
    const res = await restPush(node.httpUrl, { topic: 't', data: b64(Buffer.alloc(1025, 7)) });
    expectStatus(res, 400, 3, /1025.*1024/);
  });

  it('rejects a body over the HTTP limit with 400 INVALID_ARGUMENT', async () => {
    const res = await restPush(node.httpUrl, { topic: 't', data: b64(Buffer.alloc(200 * 1024, 7)) });
    expectStatus(res, 400, 3, /exceeds/);
    // The node is fine afterwards.
    expect((await restPush(node.httpUrl, { topic: 't', data: b64('still up') })).status).toBe(200);
  });

  it('counts the rejections as invalid_argument pushes', async () => {
    const before = await metric(node.httpUrl, 'pushwire_pushes_total', { ingress: 'http', result: 'invalid_argument' });
    await restPush(node.httpUrl, { topic: 't', data: b64(Buffer.alloc(2000)) });
    expect(await metric(node.httpUrl, 'pushwire_pushes_total', { ingress: 'http', result: 'invalid_argument' })).toBe(before + 1);
  });
});
