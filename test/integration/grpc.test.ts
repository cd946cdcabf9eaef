import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fromBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PushDataRequest, PushDataResponse, type PushServiceClient } from '../../gen/pushwire/v1/push.js';
import { b64, pushClient, pushData, restPush } from '../helpers/grpc-client.js';
import { startTestServer, type TestServer } from '../helpers/in-process.js';
import { waitFor } from '../helpers/ports.js';
import { TestClient, type Frame } from '../helpers/ws-client.js';

const require = createRequire(import.meta.url);
const isDelivery = (f: Frame): boolean => !(f.json && typeof f.json.code === 'number' && f.json.code >= 20000);

/** PushData expected to fail: resolves with the ServiceError. */
async function pushError(client: PushServiceClient, req: Partial<PushDataRequest>): Promise<grpc.ServiceError> {
  try {
    await pushData(client, req);
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error(`PushData ${JSON.stringify({ ...req, data: undefined })} unexpectedly succeeded`);
}

/** gpush's `Data{uid=1,topic=2,data=3}` encoded by hand, as a Go gpush caller would put it on the wire. */
function gpushData(uid: string, topic: string, data: Uint8Array): Uint8Array {
  const w = new BinaryWriter();
  if (uid) w.tag(1, WireType.LengthDelimited).string(uid);
  if (topic) w.tag(2, WireType.LengthDelimited).string(topic);
  if (data.length) w.tag(3, WireType.LengthDelimited).bytes(data);
  return w.finish();
}

describe('gRPC ingress: PushService', () => {
  let node: TestServer;
  let client: PushServiceClient;
  let ws: TestClient;

  beforeAll(async () => {
    node = await startTestServer();
    client = pushClient(node.grpcAddress);
    ws = await TestClient.connect(node.wsUrl);
    expect((await ws.subscribe('g')).code).toBe(20001);
  });
  afterAll(async () => {
    client?.close();
    await ws?.close();
    await node?.shutdown();
  });

  it('PushData delivers a UTF-8 payload as a text frame and answers messageId + nodeId', async () => {
    const text = 'héllo gRPC ✓ {"json":"inside"}';
    const res = await pushData(client, { topic: 'g', data: Buffer.from(text) });
    expect(res.nodeId).toBe(node.nodeId);
    expect(res.messageId).toMatch(/\S/);
    const f = await ws.next(isDelivery);
    expect(f.binary).toBe(false);
    expect(f.data.equals(Buffer.from(text))).toBe(true);
  });

  it('PushData delivers a non-UTF-8 payload as a binary frame, byte-exact', async () => {
    const bytes = Buffer.alloc(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + 7) & 0xff;
    bytes[0] = 0xff; // never valid UTF-8
    await pushData(client, { topic: 'g', data: bytes });
    const f = await ws.next(isDelivery);
    expect(f.binary).toBe(true);
    expect(f.data.equals(bytes)).toBe(true);
  });

  it('PushData with every byte value 0..255 arrives unchanged', async () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    await pushData(client, { topic: 'g', data: bytes });
    expect((await ws.next(isDelivery)).data.equals(bytes)).toBe(true);
  });

  it('keeps publish order for one publisher and one topic', async () => {
    const n = 50;
    await Promise.all(Array.from({ length: n }, (_, i) => pushData(client, { topic: 'g', data: Buffer.from(`seq-${i}`) })));
    // Calls were issued concurrently, so order is only promised per sequential publisher: do it sequentially too.
    const seen: string[] = [];
    for (let i = 0; i < n; i++) seen.push((await ws.next(isDelivery)).text);
    expect(seen.sort()).toEqual(Array.from({ length: n }, (_, i) => `seq-${i}`).sort());
    for (let i = 0; i < n; i++) await pushData(client, { topic: 'g', data: Buffer.from(`ord-${i}`) });
    for (let i = 0; i < n; i++) expect((await ws.next(isDelivery)).text).toBe(`ord-${i}`);
  });

  it('gives distinct message ids', async () => {
    const a = await pushData(client, { topic: 'nobody-here', data: Buffer.from('a') });
    const b = await pushData(client, { topic: 'nobody-here', data: Buffer.from('b') });
    expect(a.messageId).not.toBe(b.messageId);
  });

  it('an empty request is a broadcast of empty data', async () => {
    const other = await TestClient.connect(node.wsUrl);
    try {
      await pushData(client, {});
      expect((await other.next(isDelivery)).data.length).toBe(0);
      expect((await ws.next(isDelivery)).data.length).toBe(0);
    } finally {
      await other.close();
    }
  });

  it('rejects invalid topics and uids with INVALID_ARGUMENT', async () => {
    for (const req of [{ topic: 'x'.repeat(257) }, { topic: 'a\nb' }, { topic: 'nul\u0000' }, { uid: 'u'.repeat(129) }, { uid: 'a\tb', topic: 't' }]) {
      const err = await pushError(client, req);
      expect(err.code, JSON.stringify(req).slice(0, 60)).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.details).toMatch(/topic|uid/);
    }
  });

  it('counts pushes by ingress and result in /metrics', async () => {
    await pushError(client, { topic: 'bad\ntopic' });
    const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
    expect(text).toMatch(/pushwire_pushes_total\{[^}]*ingress="grpc"[^}]*result="ok"[^}]*\} [1-9]/);
    expect(text).toMatch(/pushwire_pushes_total\{[^}]*ingress="grpc"[^}]*result="invalid_argument"[^}]*\} [1-9]/);
    expect(text).toMatch(/pushwire_grpc_request_duration_seconds_count\{[^}]*method="PushData"[^}]*code="OK"[^}]*\} [1-9]/);
    expect(text).toMatch(/pushwire_grpc_request_duration_seconds_count\{[^}]*method="PushData"[^}]*code="INVALID_ARGUMENT"[^}]*\} [1-9]/);
  });
});

describe('gRPC ingress: size limits (node with --max-push-bytes 1KiB)', () => {
  let node: TestServer;
  let client: PushServiceClient;
  beforeAll(async () => {
    node = await startTestServer(['--max-push-bytes', '1KiB']);
    client = pushClient(node.grpcAddress);
  });
  afterAll(async () => {
    client?.close();
    await node?.shutdown();
  });

  it('accepts data of exactly the limit', async () => {
    const res = await pushData(client, { topic: 't', data: Buffer.alloc(1024, 1) });
    expect(res.nodeId).toBe(node.nodeId);
  });

  it('rejects data over the limit with INVALID_ARGUMENT', async () => {
    const err = await pushError(client, { topic: 't', data: Buffer.alloc(2000, 1) });
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/2000.*1024/);
  });

  it('rejects a message far over the limit with INVALID_ARGUMENT or RESOURCE_EXHAUSTED, and keeps serving', async () => {
    const err = await pushError(client, { topic: 't', data: Buffer.alloc(512 * 1024, 1) });
    expect([grpc.status.INVALID_ARGUMENT, grpc.status.RESOURCE_EXHAUSTED]).toContain(err.code);
    expect((await pushData(client, { topic: 't', data: Buffer.from('after') })).nodeId).toBe(node.nodeId);
  });

  it('gRPC and REST answer the same invalid input with the same code and message (one handler)', async () => {
    const cases: Array<{ uid?: string; topic?: string; data?: Buffer }> = [
      { topic: 'x'.repeat(257) },
      { topic: 'é'.repeat(129) },
      { topic: 'ctl\u0001' },
      { uid: 'u'.repeat(129) },
      { uid: 'new\nline' },
      { topic: 't', data: Buffer.alloc(1500, 2) },
    ];
    for (const req of cases) {
      const err = await pushError(client, req);
      const rest = await restPush(node.httpUrl, { ...req, data: req.data ? b64(req.data) : undefined });
      expect(err.code).toBe(3);
      expect(rest.status).toBe(400);
      expect(rest.json).toEqual({ code: err.code, message: err.details, details: [] });
    }
  });
});

describe('gRPC ingress: standard health service', () => {
  let node: TestServer;
  let health: grpc.Client & Record<string, any>;
  beforeAll(async () => {
    node = await startTestServer();
    const def = protoLoader.loadSync(require('grpc-health-check').protoPath as string, { enums: String, keepCase: false });
    const pkg = grpc.loadPackageDefinition(def) as any;
    health = new pkg.grpc.health.v1.Health(node.grpcAddress, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    health?.close();
    await node?.shutdown();
  });

  const check = (service: string): Promise<{ status: string }> =>
    new Promise((resolve, reject) => health.Check({ service }, (err: grpc.ServiceError | null, res: { status: string }) => (err ? reject(err) : resolve(res))));

  it("Check('') is SERVING", async () => {
    expect((await check('')).status).toBe('SERVING');
  });

  it("Check('pushwire.v1.PushService') is SERVING", async () => {
    expect((await check('pushwire.v1.PushService')).status).toBe('SERVING');
  });

  it('Check of an unknown service is NOT_FOUND', async () => {
    await expect(check('no.such.Service')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });
});

describe('gRPC ingress: health turns NOT_SERVING on shutdown', () => {
  it('Watch reports NOT_SERVING as soon as the node starts draining', async () => {
    const node = await startTestServer(['--shutdown-timeout', '2s']);
    const def = protoLoader.loadSync(require('grpc-health-check').protoPath as string, { enums: String });
    const pkg = grpc.loadPackageDefinition(def) as any;
    const health = new pkg.grpc.health.v1.Health(node.grpcAddress, grpc.credentials.createInsecure());
    try {
      // Watch streams status changes: SERVING first, then NOT_SERVING when shutdown begins.
      const statuses: string[] = [];
      const call = health.Watch({ service: 'pushwire.v1.PushService' });
      const ended = new Promise<void>((resolve) => {
        call.on('data', (r: { status: string }) => statuses.push(r.status));
        call.on('error', () => resolve());
        call.on('end', () => resolve());
      });
      await waitFor(() => statuses.includes('SERVING'), 5000, 'SERVING');
      const stopped = node.shutdown();
      await Promise.race([waitFor(() => statuses.includes('NOT_SERVING'), 5000, 'NOT_SERVING'), ended]);
      call.cancel();
      await stopped;
      expect(statuses).toEqual(['SERVING', 'NOT_SERVING']);
    } finally {
      health.close();
    }
  });
});

describe('gRPC ingress: server reflection', () => {
  let node: TestServer;
  beforeAll(async () => {
    node = await startTestServer();
  });
  afterAll(async () => {
    await node?.shutdown();
  });

  const reflectionRoot = join(dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto');

  for (const version of ['v1', 'v1alpha']) {
    const protoFile = join(reflectionRoot, 'grpc', 'reflection', version, 'reflection.proto');

    /** One request on a fresh ServerReflectionInfo stream; resolves with the first response. */
    function reflect(request: Record<string, unknown>): Promise<any> {
      const def = protoLoader.loadSync(protoFile, { keepCase: false, longs: String, defaults: true, oneofs: true });
      const pkg = grpc.loadPackageDefinition(def) as any;
      const Ctor = pkg.grpc.reflection[version].ServerReflection;
      const client = new Ctor(node.grpcAddress, grpc.credentials.createInsecure());
      return new Promise((resolve, reject) => {
        const call = client.ServerReflectionInfo();
        call.on('data', (res: unknown) => {
          resolve(res);
          call.end();
          client.close();
        });
        call.on('error', (err: Error) => {
          client.close();
          reject(err);
        });
        call.write(request);
      });
    }

    it(`${version}: the reflection proto is shipped by @grpc/reflection`, () => {
      expect(existsSync(protoFile)).toBe(true);
    });

    it(`${version}: list_services includes PushService and Health`, async () => {
      const res = await reflect({ listServices: '' });
      expect(res.errorResponse ?? null).toBeNull();
      const names = (res.listServicesResponse.service as Array<{ name: string }>).map((s) => s.name);
      expect(names).toContain('pushwire.v1.PushService');
      expect(names).toContain('order.Proxy');
      expect(names).toContain('grpc.health.v1.Health');
    });

    it(`${version}: file_containing_symbol pushwire.v1.PushService returns its FileDescriptorProto`, async () => {
      const res = await reflect({ fileContainingSymbol: 'pushwire.v1.PushService' });
      const files = (res.fileDescriptorResponse.fileDescriptorProto as Buffer[]).map((b) => fromBinary(FileDescriptorProtoSchema, b));
      // @grpc/reflection rebuilds descriptors per package (it names this one "pushwire_v1.proto"), so find it by content.
      const push = files.find((f) => f.package === 'pushwire.v1' && f.service.some((s) => s.name === 'PushService'));
      expect(push, files.map((f) => f.name).join(', ')).toBeDefined();
      expect(push!.package).toBe('pushwire.v1');
      // Every service of the package lands in that one descriptor.
      expect(push!.service.map((s) => s.name)).toEqual(['PushService', 'BackendService', 'OnlineUsersService', 'SubscribeService', 'ClusterService', 'HistoryService']);
      expect(push!.service[0]!.method.map((m) => m.name)).toEqual(['PushData', 'PushDataBatch', 'PushStream']);
      const req = push!.messageType.find((m) => m.name === 'PushDataRequest')!;
      expect(req.field.map((f) => [f.name, f.number])).toEqual([
        ['uid', 1],
        ['topic', 2],
        ['data', 3],
        ['pid', 4],
        ['idempotency_key', 5],
        ['uids', 6],
        ['cids', 7],
        ['tags', 8],
        ['reply_to', 9],
        ['ttl', 10],
        ['skip_history', 11],
      ]);
    });

    it(`${version}: an unknown symbol is answered with NOT_FOUND`, async () => {
      const res = await reflect({ fileContainingSymbol: 'no.such.Symbol' });
      expect(res.errorResponse?.errorCode).toBe(grpc.status.NOT_FOUND);
    });
  }
});

describe('gpush wire compatibility', () => {
  it('bytes of gpush Data{uid=1,topic=2,data=3} decode with PushDataRequest.decode to the same fields', () => {
    const data = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x7f]);
    const decoded = PushDataRequest.decode(gpushData('user-42', 'orders', data));
    expect(decoded.uid).toBe('user-42');
    expect(decoded.topic).toBe('orders');
    expect(Buffer.from(decoded.data).equals(data)).toBe(true);
  });

  it('raw hand-written bytes decode too, and PushDataRequest.encode produces the same bytes', () => {
    // 0a 01 'u' | 12 02 't' 'p' | 1a 03 01 02 03
    const raw = Uint8Array.from([0x0a, 0x01, 0x75, 0x12, 0x02, 0x74, 0x70, 0x1a, 0x03, 0x01, 0x02, 0x03]);
    const decoded = PushDataRequest.decode(raw);
    expect(decoded.uid).toBe('u');
    expect(decoded.topic).toBe('tp');
    expect([...decoded.data]).toEqual([1, 2, 3]);
    expect(Buffer.from(PushDataRequest.encode(decoded).finish()).equals(Buffer.from(raw))).toBe(true);
  });

  it('a legacy caller sending gpush Data bytes over the wire gets a delivery', async () => {
    const node = await startTestServer();
    const ws = await TestClient.connect(node.wsUrl);
    const raw = new grpc.Client(node.grpcAddress, grpc.credentials.createInsecure());
    try {
      expect((await ws.subscribe('legacy')).code).toBe(20001);
      const reply = await new Promise<Buffer>((resolve, reject) =>
        raw.makeUnaryRequest(
          '/pushwire.v1.PushService/PushData',
          (b: Uint8Array) => Buffer.from(b),
          (b: Buffer) => b,
          gpushData('', 'legacy', Buffer.from('from gpush')),
          (err, res) => (err ? reject(err) : resolve(res!)),
        ),
      );
      expect(PushDataResponse.decode(reply).nodeId).toBe(node.nodeId);
      expect((await ws.next(isDelivery)).text).toBe('from gpush');
    } finally {
      raw.close();
      await ws.close();
      await node.shutdown();
    }
  });

  it("a gpush gRPC caller's /order.Proxy/PushData works unchanged: Empty reply, same validation", async () => {
    const node = await startTestServer();
    const ws = await TestClient.connect(node.wsUrl);
    const raw = new grpc.Client(node.grpcAddress, grpc.credentials.createInsecure());
    const call = (body: Uint8Array): Promise<Buffer> =>
      new Promise((resolve, reject) =>
        raw.makeUnaryRequest('/order.Proxy/PushData', (b: Uint8Array) => Buffer.from(b), (b: Buffer) => b, body, (err, res) =>
          err ? reject(err) : resolve(res!),
        ),
      );
    try {
      expect((await ws.subscribe('proxy')).code).toBe(20001);
      // gpush's Empty is zero bytes on the wire.
      expect((await call(gpushData('', 'proxy', Buffer.from('via order.Proxy')))).length).toBe(0);
      expect((await ws.next(isDelivery)).text).toBe('via order.Proxy');
      const err = (await call(gpushData('', 'bad\u0001topic', Buffer.from('x'))).catch((e: unknown) => e)) as grpc.ServiceError;
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.details).toBe('topic contains control characters');
    } finally {
      raw.close();
      await ws.close();
      await node.shutdown();
    }
  });
});
