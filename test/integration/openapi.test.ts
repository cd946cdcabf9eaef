import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpApp, type HttpAppOptions } from '../../src/ingress/http/app.js';
import { openapiPath } from '../../src/ingress/http/openapi-routes.js';
import { Metrics } from '../../src/observability/metrics.js';
import { useTestNode } from '../helpers/fixture.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * The generated OpenAPI document (gen/openapi.json, from the google.api.http annotations) and
 * the REST bridge agree: the same routes both ways, and per route a sample request that the
 * document's schemas accept is answered by the bridge with a body the document's schemas accept.
 */

type Json = any;
const doc: Json = JSON.parse(readFileSync(openapiPath(), 'utf8'));
const VERBS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

interface Operation {
  verb: string;
  path: string;
  op: Json;
}
const operations: Operation[] = Object.entries(doc.paths as Record<string, Json>).flatMap(([path, item]) =>
  VERBS.filter((v) => item[v] !== undefined).map((verb) => ({ verb, path, op: item[verb] })),
);
const streaming = (op: Json): boolean => /^#\/components\/schemas\/StreamResult\./.test(op.responses['200'].content['application/json'].schema.$ref ?? '');

/**
 * The document made strict for checking: objects allow only the properties it names, so a sample
 * or an answer with a field the document does not describe fails (the document itself leaves
 * objects open, since proto3 JSON parsers also take the proto field names).
 */
function strict(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(strict);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Json = {};
  for (const [k, v] of Object.entries(schema)) out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Json).map(([p, s]) => [p, strict(s)])) : strict(v);
  if (schema.type === 'object' && schema.properties !== undefined && schema.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema({ $id: 'openapi.json', components: strict(doc.components) });
const compiled = new Map<string, ValidateFunction>();
function check(schema: Json, value: unknown, what: string): void {
  // Schemas inside the document refer to #/components/...: resolve them against the added document.
  const key = JSON.stringify(schema);
  let validate = compiled.get(key);
  if (validate === undefined) {
    validate = ajv.compile(JSON.parse(key.replaceAll('"#/components/', '"openapi.json#/components/')));
    compiled.set(key, validate);
  }
  if (!validate(value)) throw new Error(`${what} does not match the document: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value)}`);
}

/** The bridge's routes, read from the express app the node serves (its catch-all 501 routes left out). */
function bridgeRoutes(): string[] {
  const stub = { node: { online: {} }, maxPushBytes: 1024, maxQueueBytes: 4096, metrics: new Metrics('openapi-test') } as unknown as HttpAppOptions;
  const app = createHttpApp(stub);
  const routes: string[] = [];
  for (const layer of (app as Json).router.stack as Json[]) {
    const route = layer.route;
    if (route === undefined) continue;
    const methods = Object.keys(route.methods);
    if (methods.includes('m-search')) continue; // app.all(): the UNIMPLEMENTED answer to other verbs
    const path =
      route.path instanceof RegExp
        ? String(route.path.source).replace(/^\^/, '').replace(/\$$/, '').replaceAll('\\/', '/')
        : String(route.path).replaceAll('\\:', '\u0000').replace(/:(\w+)/g, '{$1}').replaceAll('\u0000', ':');
    if (!path.startsWith('/v1/')) continue; // health, metrics, docs: not part of the gRPC API
    for (const m of methods) routes.push(`${m.toUpperCase()} ${path}`);
  }
  return routes.sort();
}

const SECRET = 'openapi-it-secret';
const KEY = 'openapi-test-key-0123456789';
const token = (uid: string): Promise<string> =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(uid).setIssuedAt().setExpirationTime('10m').sign(new TextEncoder().encode(SECRET));
const b64 = (s: string): string => Buffer.from(s).toString('base64');

interface Sample {
  path?: Record<string, string>;
  query?: Record<string, string | string[]>;
  body?: unknown;
}

/** Meaningful samples for the routes this test knows; any other route gets path values only and `{}`. */
const SAMPLES: Record<string, Sample> = {
  PushService_PushData: { body: { topic: 'news', data: b64('hello'), idempotencyKey: 'openapi-1' } },
  PushService_PushDataBatch: { body: { pushes: [{ topic: 'news', data: b64('a') }, { uid: 'alice', data: b64('b') }] } },
  OnlineUsersService_ListOnlineUsers: { query: { pageSize: '10' } },
  OnlineUsersService_GetPresence: { query: { uids: ['alice', 'nobody'] } },
  OnlineUsersService_GetPresence2: { body: { uids: ['alice', 'nobody'] } },
  SubscribeService_Subscribe: { body: { topics: ['openapi-sub'] } },
};

function requestFor(base: string, { path, op }: Operation, sample: Sample): { url: string; body?: string } {
  let url = path;
  for (const p of (op.parameters ?? []) as Json[]) {
    if (p.in !== 'path') continue;
    const value = sample.path?.[p.name] ?? 'shop';
    check(p.schema, value, `path parameter ${p.name}`);
    url = url.replace(`{${p.name}}`, encodeURIComponent(value));
  }
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(sample.query ?? {})) {
    const p = ((op.parameters ?? []) as Json[]).find((x) => x.in === 'query' && x.name === name);
    if (p === undefined) throw new Error(`${op.operationId}: the document has no query parameter ${name}`);
    // A query string carries text: numbers are checked as the bridge reads them.
    const typed = Array.isArray(value) ? value : p.schema.type === 'integer' ? Number(value) : value;
    check(p.schema, typed, `query parameter ${name}`);
    for (const v of Array.isArray(value) ? value : [value]) query.append(name, v);
  }
  const qs = query.size > 0 ? `?${query}` : '';
  if (op.requestBody === undefined) return { url: `${base}${url}${qs}` };
  const body = sample.body ?? {};
  check(op.requestBody.content['application/json'].schema, body, `${op.operationId} request body`);
  return { url: `${base}${url}${qs}`, body: JSON.stringify(body) };
}

/** Reads a streamed response up to its first complete line. */
async function firstLine(res: Response): Promise<string> {
  const reader = res.body!.getReader();
  let text = '';
  while (!text.includes('\n')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += Buffer.from(value).toString();
  }
  await reader.cancel();
  return text.split('\n')[0]!;
}

const projectsFile = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'pushwire-openapi-'));
  const file = join(dir, 'projects.yaml');
  writeFileSync(file, `projects:\n  - pid: shop\n    login: { jwtSecret: ${SECRET} }\n    apiKeys:\n      - key: ${KEY}\n`);
  return file;
};

describe('OpenAPI document', () => {
  const node = useTestNode(() => ['--projects', projectsFile()]);
  const auth = { authorization: `Bearer ${KEY}` };
  let alice: TestClient;
  beforeAll(async () => {
    // Not node.connect(): its clients close after each test, and alice stays online for all of them.
    alice = await TestClient.connect(`${node.server.wsUrl}?pid=shop`);
    expect((await alice.login(await token('alice'))).code).toBe(20003);
  });
  afterAll(() => alice?.close());

  it('is served at /openapi.json exactly as generated, and Swagger UI at /docs from the package', async () => {
    const res = await fetch(`${node.server.httpUrl}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.text()).toBe(readFileSync(openapiPath(), 'utf8'));

    const page = await fetch(`${node.server.httpUrl}/docs`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toContain('docs/swagger-ui-bundle.js');
    for (const asset of assets) {
      expect(asset, 'no CDN: every asset from the node').not.toMatch(/^(https?:)?\/\//);
      const r = await fetch(`${node.server.httpUrl}/${asset}`);
      expect(r.status, asset).toBe(200);
      expect((await r.arrayBuffer()).byteLength, asset).toBeGreaterThan(0);
    }
    const init = await (await fetch(`${node.server.httpUrl}/docs/swagger-initializer.js`)).text();
    expect(init).toContain("url: 'openapi.json'");
    expect((await fetch(`${node.server.httpUrl}/docs/swagger-ui.js.map`)).status).toBe(404);
  });

  it('describes the bearer-key scheme, the google.rpc.Status error and proto3 JSON names', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.components.securitySchemes.bearerKey).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.security).toEqual([{ bearerKey: [] }]);
    expect(doc.components.schemas['google.rpc.Status'].properties).toMatchObject({ code: { type: 'integer' }, message: { type: 'string' } });
    for (const { op } of operations) expect(op.responses.default.content['application/json'].schema.$ref).toBe('#/components/schemas/google.rpc.Status');
    const push = doc.components.schemas['pushwire.v1.PushDataRequest'].properties;
    expect(Object.keys(push)).toContain('idempotencyKey');
    expect(push.data).toMatchObject({ type: 'string', format: 'byte' });
    expect(doc.components.schemas['pushwire.v1.NodeInfo'].properties.startedTimeMs).toMatchObject({ type: 'string', format: 'int64' });
  });

  it('names every bridge route, and the bridge serves every route it names', () => {
    const documented = operations.map(({ verb, path }) => `${verb.toUpperCase()} ${path}`).sort();
    expect(documented.length).toBeGreaterThan(0);
    expect(bridgeRoutes()).toEqual(documented);
  });

  it('refuses every documented route without the bearer key (401, a google.rpc.Status)', async () => {
    for (const o of operations) {
      const { url, body } = requestFor(node.server.httpUrl, o, SAMPLES[o.op.operationId] ?? {});
      const res = await fetch(url, { method: o.verb.toUpperCase(), body });
      const json: unknown = await res.json();
      expect(res.status, o.op.operationId).toBe(401);
      check(o.op.responses.default.content['application/json'].schema, json, `${o.op.operationId} error`);
      expect(json).toMatchObject({ code: 16 });
    }
  });

  for (const o of operations) {
    it(`${o.verb.toUpperCase()} ${o.path} (${o.op.operationId}): a sample the document accepts, answered as it says`, async () => {
      const { url, body } = requestFor(node.server.httpUrl, o, SAMPLES[o.op.operationId] ?? {});
      const ok = o.op.responses['200'].content['application/json'].schema;
      const res = await fetch(url, { method: o.verb.toUpperCase(), body, headers: auth });
      if (!streaming(o.op)) {
        const json: Json = await res.json();
        // The bridge's own answers to a route or verb it lacks (a route may still answer NOT_FOUND itself).
        expect(res.status === 404 && json.message === 'Not Found', `${o.op.operationId} has no route`).toBe(false);
        expect(res.status === 501 && json.message === 'Method Not Allowed', `${o.op.operationId} has no ${o.verb}`).toBe(false);
        if (SAMPLES[o.op.operationId] !== undefined || res.status === 200) {
          expect(res.status, JSON.stringify(json)).toBe(200);
          check(ok, json, `${o.op.operationId} response`);
        } else {
          check(o.op.responses.default.content['application/json'].schema, json, `${o.op.operationId} error`);
        }
        return;
      }
      expect(res.status).toBe(200);
      if (o.op.operationId === 'SubscribeService_Subscribe') {
        // The headers say every subscription is in place: a push now is the stream's first line.
        const line = firstLine(res);
        const push = await fetch(`${node.server.httpUrl}/v1/pushData`, { method: 'POST', headers: auth, body: JSON.stringify({ topic: 'openapi-sub', data: b64('x') }) });
        expect(push.status).toBe(200);
        const item: unknown = JSON.parse(await line);
        check(ok, item, `${o.op.operationId} stream line`);
        expect(item).toMatchObject({ result: { topic: 'openapi-sub', data: b64('x') } });
      } else if (o.op.operationId === 'OnlineUsersService_WatchOnlineUsers') {
        const item: unknown = JSON.parse(await firstLine(res));
        check(ok, item, `${o.op.operationId} stream line`);
        expect(item).toMatchObject({ result: { snapshot: { users: [{ uid: 'alice', connections: 1 }] } } });
      } else {
        // A stream this test has no sample for: its headers are the answer; what it streams is unknown here.
        await res.body?.cancel();
      }
    });
  }
});
