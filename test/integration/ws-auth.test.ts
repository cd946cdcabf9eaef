import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { b64, restPush } from '../helpers/grpc-client.js';
import { startTestServer, type TestServer } from '../helpers/in-process.js';
import { unique } from '../helpers/names.js';
import { NodeProcess } from '../helpers/node-process.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * WebSocket login (code 3 and ?token=): JWT HS256 / RS256 / ES256, and gpush's auth callback.
 * Every failure is a 30003 on a connection that stays usable.
 */

const HS_SECRET = 'ws-auth-hs-secret';
const hsKey = new TextEncoder().encode(HS_SECRET);

interface Claims {
  sub?: string;
  exp?: number | string;
}

async function sign(alg: string, key: Uint8Array | KeyObject, claims: Claims = {}): Promise<string> {
  const jwt = new SignJWT({}).setProtectedHeader({ alg }).setIssuedAt();
  if (claims.sub !== undefined) jwt.setSubject(claims.sub);
  jwt.setExpirationTime(claims.exp ?? '1h');
  return jwt.sign(key);
}

const b64url = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
/** An unsecured JWT (alg "none"), which must never be accepted. */
const unsignedToken = (sub: string): string =>
  `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ sub, exp: Math.floor(Date.now() / 1000) + 3600 })}.`;

const past = (): number => Math.floor(Date.now() / 1000) - 60;

/** Shared checks against one node (in-process or CLI). */
interface Target {
  wsUrl: string;
  httpUrl: string;
}

function harness(target: () => Target) {
  const clients: TestClient[] = [];
  const connect = async (query = ''): Promise<TestClient> => {
    const c = await TestClient.connect(target().wsUrl + query);
    clients.push(c);
    return c;
  };
  const closeAll = async (): Promise<void> => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  };
  /** Proves `c` is logged in as `uid`: a push to that uid reaches it. */
  const expectLoggedInAs = async (c: TestClient, uid: string): Promise<void> => {
    const tag = unique(`for-${uid}`);
    const res = await restPush(target().httpUrl, { uid, data: b64(tag) });
    expect(res.status).toBe(200);
    await c.next((f) => f.text === tag);
  };
  /** Proves the connection is still open and usable: subscribe, then receive a push. */
  const expectUsable = async (c: TestClient): Promise<void> => {
    const topic = unique('usable');
    expect(await c.subscribe(topic)).toMatchObject({ code: 20001, topic });
    const tag = unique('ping-through');
    await restPush(target().httpUrl, { topic, data: b64(tag) });
    await c.next((f) => f.text === tag);
  };
  /** Sends a login and expects a 30003 echoing the id; returns the reply. */
  const expectAuthFailed = async (c: TestClient, token: string, timeoutMs = 5000): Promise<Record<string, unknown>> => {
    const reply = await c.request({ code: 3, data: token }, timeoutMs);
    expect(reply).toMatchObject({ code: 30003, message: expect.any(String), detail: expect.any(String) });
    return reply;
  };
  return { connect, closeAll, expectLoggedInAs, expectUsable, expectAuthFailed };
}

describe('JWT login, HS256 (--jwt-secret)', () => {
  let server: TestServer;
  const h = harness(() => server);
  beforeAll(async () => {
    server = await startTestServer(['--jwt-secret', HS_SECRET]);
  });
  afterEach(() => h.closeAll());
  afterAll(async () => {
    await server?.shutdown();
  });

  it('logs in with a valid token; sub becomes the uid', async () => {
    const c = await h.connect();
    const reply = await c.request({ code: 3, data: await sign('HS256', hsKey, { sub: 'alice' }), topic: 'x' });
    expect(reply).toMatchObject({ code: 20003, topic: 'x' });
    await h.expectLoggedInAs(c, 'alice');
    // and private subscriptions now work under that uid
    expect((await c.subscribePrivate('inbox')).code).toBe(20001);
    await restPush(server.httpUrl, { uid: 'alice', topic: 'inbox', data: b64('private mail') });
    await c.next((f) => f.text === 'private mail');
  });

  it('rejects an expired token with 30003; the connection stays usable and anonymous', async () => {
    const c = await h.connect();
    const reply = await h.expectAuthFailed(c, await sign('HS256', hsKey, { sub: 'late', exp: past() }));
    expect(String(reply.detail)).toMatch(/expired/i);
    expect((await c.subscribePrivate('p')).code).toBe(30002); // not logged in
    await h.expectUsable(c);
  });

  it('rejects a token signed with another secret (bad signature)', async () => {
    const c = await h.connect();
    const other = new TextEncoder().encode('not-the-secret');
    const reply = await h.expectAuthFailed(c, await sign('HS256', other, { sub: 'mallory' }));
    expect(String(reply.detail)).toMatch(/signature/i);
    await h.expectUsable(c);
  });

  it('rejects a token that is not valid yet (nbf in the future)', async () => {
    const c = await h.connect();
    const early = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('early')
      .setNotBefore(Math.floor(Date.now() / 1000) + 3600)
      .setExpirationTime('2h')
      .sign(hsKey);
    await h.expectAuthFailed(c, early);
    expect((await c.subscribePrivate('p')).code).toBe(30002);
  });

  it('rejects a token whose payload was tampered with', async () => {
    const c = await h.connect();
    const [head, , sig] = (await sign('HS256', hsKey, { sub: 'bob' })).split('.');
    const forged = `${head}.${b64url({ sub: 'admin', exp: Math.floor(Date.now() / 1000) + 3600 })}.${sig}`;
    await h.expectAuthFailed(c, forged);
    await h.expectUsable(c);
  });

  it('rejects alg "none", garbage, and a token without sub', async () => {
    const c = await h.connect();
    await h.expectAuthFailed(c, unsignedToken('root'));
    await h.expectAuthFailed(c, 'garbage');
    await h.expectAuthFailed(c, 'a.b.c');
    await h.expectAuthFailed(c, `${b64url({ alg: 'HS256' })}.not-base64-json.`);
    const noSub = await h.expectAuthFailed(c, await sign('HS256', hsKey, {}));
    expect(String(noSub.detail)).toMatch(/sub/);
    await h.expectUsable(c);
    // after all of that, a good token still logs in on the same connection
    expect((await c.login(await sign('HS256', hsKey, { sub: 'finally' }))).code).toBe(20003);
    await h.expectLoggedInAs(c, 'finally');
  });

  it('rejects a login with a missing or non-string token as a bad request (30001)', async () => {
    const c = await h.connect();
    expect((await c.request({ code: 3 })).code).toBe(30001);
    expect((await c.request({ code: 3, data: 42 })).code).toBe(30001);
    expect((await c.request({ code: 3, data: '' })).code).toBe(30001);
    await h.expectUsable(c);
  });

  it('?token= logs in at connect: 20000 then 20003', async () => {
    const token = await sign('HS256', hsKey, { sub: 'url-user' });
    const c = await h.connect(`?token=${encodeURIComponent(token)}`);
    expect(c.frames[0]!.json?.code).toBe(20000);
    const second = await c.next((f) => f.json !== undefined);
    expect(second.json?.code).toBe(20003);
    await h.expectLoggedInAs(c, 'url-user');
  });

  it('a bad ?token= answers 30003 after 20000 and leaves the connection open and anonymous', async () => {
    const c = await h.connect(`?token=${encodeURIComponent(unsignedToken('root'))}`);
    expect(c.frames[0]!.json?.code).toBe(20000);
    expect((await c.next((f) => f.json !== undefined)).json?.code).toBe(30003);
    expect((await c.subscribePrivate('p')).code).toBe(30002);
    await h.expectUsable(c);
  });

  it('an empty ?token= is ignored (no login attempt)', async () => {
    const c = await h.connect('?token=');
    await h.expectUsable(c);
    expect(c.frames.some((f) => f.json?.code === 30003 || f.json?.code === 20003)).toBe(false);
  });
});

describe('JWT login, RS256 and ES256 (--jwt-public-key)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pushwire-ws-auth-'));
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsaOther = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ecOther = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const rsaFile = join(dir, 'rsa.pem');
  const ecFile = join(dir, 'ec.pem');
  writeFileSync(rsaFile, rsaPem);
  writeFileSync(ecFile, ec.publicKey.export({ type: 'spki', format: 'pem' }));

  let rsNode: TestServer;
  let esNode: NodeProcess;
  const rs = harness(() => rsNode);
  const es = harness(() => esNode);

  beforeAll(async () => {
    rsNode = await startTestServer(['--jwt-public-key', rsaFile]);
    // ES256 through the real CLI: the key file path is read by the CLI's config.
    esNode = await NodeProcess.start(['--jwt-public-key', ecFile]);
  });
  afterEach(async () => {
    await rs.closeAll();
    await es.closeAll();
  });
  afterAll(async () => {
    await rsNode?.shutdown();
    await esNode?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('RS256: a valid token logs in as sub', async () => {
    const c = await rs.connect();
    expect((await c.login(await sign('RS256', rsa.privateKey, { sub: 'rsa-user' }))).code).toBe(20003);
    await rs.expectLoggedInAs(c, 'rsa-user');
  });

  it('RS256: another key, an expired token, HS256 forged with the public key, alg none → 30003', async () => {
    const c = await rs.connect();
    await rs.expectAuthFailed(c, await sign('RS256', rsaOther.privateKey, { sub: 'x' }));
    const expired = await rs.expectAuthFailed(c, await sign('RS256', rsa.privateKey, { sub: 'x', exp: past() }));
    expect(String(expired.detail)).toMatch(/expired/i);
    // Classic algorithm confusion: HS256 keyed with the public key's PEM text.
    await rs.expectAuthFailed(c, await sign('HS256', new TextEncoder().encode(rsaPem), { sub: 'x' }));
    await rs.expectAuthFailed(c, unsignedToken('x'));
    // An ES256 token on an RSA-configured node
    await rs.expectAuthFailed(c, await sign('ES256', ec.privateKey, { sub: 'x' }));
    await rs.expectUsable(c);
  });

  it('ES256: a valid token logs in as sub (CLI node)', async () => {
    const c = await es.connect();
    expect((await c.login(await sign('ES256', ec.privateKey, { sub: 'ec-user' }))).code).toBe(20003);
    await es.expectLoggedInAs(c, 'ec-user');
  });

  it('ES256: another key, an expired token, garbage → 30003 (CLI node)', async () => {
    const c = await es.connect();
    const bad = await es.expectAuthFailed(c, await sign('ES256', ecOther.privateKey, { sub: 'x' }));
    expect(String(bad.detail)).toMatch(/signature/i);
    await es.expectAuthFailed(c, await sign('ES256', ec.privateKey, { sub: 'x', exp: past() }));
    await es.expectAuthFailed(c, 'definitely-not-a-token');
    await es.expectAuthFailed(c, await sign('RS256', rsa.privateKey, { sub: 'x' }));
    await es.expectUsable(c);
    expect(esNode.proc.exitCode).toBeNull();
  });

  it('?token= with an ES256 token logs in at connect (CLI node)', async () => {
    const token = await sign('ES256', ec.privateKey, { sub: 'ec-url' });
    const c = await es.connect(`?token=${token}`);
    expect(c.frames[0]!.json?.code).toBe(20000);
    expect((await c.next((f) => f.json !== undefined)).json?.code).toBe(20003);
    await es.expectLoggedInAs(c, 'ec-url');
  });
});

describe('login with no method configured', () => {
  let server: TestServer;
  const h = harness(() => server);
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterEach(() => h.closeAll());
  afterAll(async () => {
    await server?.shutdown();
  });

  it('answers 30003 with a detail that names the missing options', async () => {
    const c = await h.connect();
    const reply = await h.expectAuthFailed(c, await sign('HS256', hsKey, { sub: 'u' }));
    expect(String(reply.detail)).toMatch(/not configured/);
    expect(String(reply.detail)).toMatch(/--jwt-secret/);
    await h.expectUsable(c);
  });
});

/** A gpush-style auth service whose answer depends on the token. */
interface AuthCall {
  method: string;
  contentType: string | undefined;
  body: unknown;
}

function startAuthService(): Promise<{ server: Server; url: string; calls: AuthCall[]; timers: Set<NodeJS.Timeout> }> {
  const calls: AuthCall[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const answer = (res: ServerResponse, status: number, body: string, type = 'application/json'): void => {
    if (!res.destroyed) res.writeHead(status, { 'content-type': type }).end(body);
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (d: Buffer) => (raw += d.toString()));
    req.on('end', () => {
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
      calls.push({ method: req.method ?? '', contentType: req.headers['content-type'], body });
      const token = (body as { token?: unknown } | null)?.token;
      const ok = (uid: unknown): string => JSON.stringify({ code: 0, message: 'ok', data: { user_info: { uid } } });
      switch (token) {
        case 'tok-u1':
          return answer(res, 200, ok('u1'));
        case 'tok-u2':
          return answer(res, 200, ok('u2'));
        case 'tok-numeric':
          return answer(res, 200, ok(42));
        case 'tok-refused':
          return answer(res, 200, JSON.stringify({ code: 1001, message: 'token invalid' }));
        case 'tok-500':
          return answer(res, 500, JSON.stringify({ error: 'boom' }));
        case 'tok-html':
          return answer(res, 200, '<html>not json</html>', 'text/html');
        case 'tok-data-string':
          return answer(res, 200, JSON.stringify({ code: 0, data: 'u1' }));
        case 'tok-no-uid':
          return answer(res, 200, JSON.stringify({ code: 0, data: { user_info: {} } }));
        case 'tok-null':
          return answer(res, 200, 'null');
        case 'tok-array':
          return answer(res, 200, '[1,2,3]');
        case 'tok-uid-object':
          return answer(res, 200, ok({ id: 'u1' }));
        case 'tok-slow': {
          const t = setTimeout(() => {
            timers.delete(t);
            answer(res, 200, ok('slow-user'));
          }, 30_000);
          timers.add(t);
          return;
        }
        case 'tok-slow-body': {
          // Headers and half a body at once, the rest never: the timeout must cover the body too.
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('{"code":0,"data":{"user_info":');
          return;
        }
        default:
          return answer(res, 200, JSON.stringify({ code: 401, message: 'unknown token' }));
      }
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}/auth`, calls, timers });
    }),
  );
}

describe('gpush auth callback (--auth-url), CLI node', () => {
  let auth: Awaited<ReturnType<typeof startAuthService>>;
  let node: NodeProcess;
  const h = harness(() => node);

  beforeAll(async () => {
    auth = await startAuthService();
    // Long enough for a normal callback on a loaded machine; the slow one answers far later.
    node = await NodeProcess.start(['--auth-url', auth.url, '--auth-timeout', '2s']);
  });
  afterEach(() => h.closeAll());
  afterAll(async () => {
    await node?.stop();
    for (const t of auth?.timers ?? []) clearTimeout(t);
    auth?.server.closeAllConnections();
    await new Promise((r) => auth?.server.close(r));
  });

  it('code 0 with user_info.uid logs in as that uid; the callback got POST {"token"} as JSON', async () => {
    const c = await h.connect();
    const before = auth.calls.length;
    expect(await c.request({ code: 3, data: 'tok-u1', topic: 'login' })).toMatchObject({ code: 20003, topic: 'login' });
    await h.expectLoggedInAs(c, 'u1');
    const call = auth.calls[before]!;
    expect(call.method).toBe('POST');
    expect(call.contentType).toMatch(/^application\/json/);
    expect(call.body).toEqual({ token: 'tok-u1' });
  });

  it('?token= goes through the callback at connect', async () => {
    const c = await h.connect('?token=tok-u2');
    expect((await c.next((f) => f.json?.code === 20003 || f.json?.code === 30003)).json?.code).toBe(20003);
    await h.expectLoggedInAs(c, 'u2');
    expect(auth.calls.some((x) => (x.body as { token?: string }).token === 'tok-u2')).toBe(true);
  });

  it('a numeric uid is accepted as its decimal string', async () => {
    const c = await h.connect();
    expect((await c.login('tok-numeric')).code).toBe(20003);
    await h.expectLoggedInAs(c, '42');
  });

  it.each([
    ['code ≠ 0', 'tok-refused', /refused/],
    ['HTTP 500', 'tok-500', /500/],
    ['a non-JSON body', 'tok-html', /not JSON/],
    ['data as a string', 'tok-data-string', /uid/],
    ['no uid', 'tok-no-uid', /uid/],
    ['a JSON null', 'tok-null', /refused/],
    ['a JSON array', 'tok-array', /refused/],
    ['uid as an object', 'tok-uid-object', /uid/],
  ])('an auth reply with %s is a 30003 and the connection stays usable', async (_what, token, detail) => {
    const c = await h.connect();
    const reply = await h.expectAuthFailed(c, token);
    expect(String(reply.detail)).toMatch(detail);
    expect((await c.subscribePrivate('p')).code).toBe(30002);
    await h.expectUsable(c);
    // the same connection can still log in properly afterwards
    expect((await c.login('tok-u1')).code).toBe(20003);
    expect(node.proc.exitCode).toBeNull();
  });

  it('a reply slower than --auth-timeout is a 30003, not a stall; the node stays healthy', async () => {
    const slow = await h.connect();
    const other = await h.connect();
    slow.send({ code: 3, data: 'tok-slow', id: 'slow-login' });
    // While the callback hangs, another client is served normally.
    await h.expectUsable(other);
    const reply = (await slow.next((f) => f.json?.id === 'slow-login', 15_000)).json!;
    expect(reply).toMatchObject({ code: 30003, detail: expect.stringMatching(/timed out/) });
    // The slow client itself is usable and still anonymous.
    expect((await slow.subscribePrivate('p')).code).toBe(30002);
    await h.expectUsable(slow);
    const health = await fetch(`${node.httpUrl}/healthz`);
    expect(health.status).toBe(200);
    await h.expectUsable(await h.connect());
    expect(node.proc.exitCode).toBeNull();
  });

  it('a reply whose body stalls after the headers is a 30003 too', async () => {
    const c = await h.connect();
    c.send({ code: 3, data: 'tok-slow-body', id: 'stalled' });
    const reply = (await c.next((f) => f.json?.id === 'stalled', 15_000)).json!;
    expect(reply).toMatchObject({ code: 30003 });
    await h.expectUsable(c);
    expect(node.proc.exitCode).toBeNull();
  });

  it('an unreachable auth service is a 30003', async () => {
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
    const port = (dead.address() as AddressInfo).port;
    await new Promise((r) => dead.close(r));
    const other = await NodeProcess.start(['--auth-url', `http://127.0.0.1:${port}/auth`, '--auth-timeout', '300ms']);
    try {
      const c = await TestClient.connect(other.wsUrl);
      const reply = await c.request({ code: 3, data: 'tok-u1' });
      expect(reply).toMatchObject({ code: 30003, detail: expect.stringMatching(/unreachable/) });
      expect((await c.subscribe('still-here')).code).toBe(20001);
      await c.close();
    } finally {
      await other.stop();
    }
  });
});

describe('JWT and auth callback together', () => {
  let auth: Awaited<ReturnType<typeof startAuthService>>;
  let server: TestServer;
  const h = harness(() => server);
  beforeAll(async () => {
    auth = await startAuthService();
    server = await startTestServer(['--jwt-secret', HS_SECRET, '--auth-url', auth.url]);
  });
  afterEach(() => h.closeAll());
  afterAll(async () => {
    await server?.shutdown();
    auth?.server.closeAllConnections();
    await new Promise((r) => auth?.server.close(r));
  });

  it('JWTs are verified locally, other tokens go to the callback', async () => {
    const jwtClient = await h.connect();
    const before = auth.calls.length;
    expect((await jwtClient.login(await sign('HS256', hsKey, { sub: 'jwt-user' }))).code).toBe(20003);
    await h.expectLoggedInAs(jwtClient, 'jwt-user');
    expect(auth.calls.length).toBe(before); // no callback for a JWT

    const cbClient = await h.connect();
    expect((await cbClient.login('tok-u1')).code).toBe(20003);
    await h.expectLoggedInAs(cbClient, 'u1');
    expect(auth.calls.length).toBe(before + 1);

    // A badly signed JWT fails; it is not handed to the callback as a fallback.
    await h.expectAuthFailed(jwtClient, await sign('HS256', new TextEncoder().encode('wrong'), { sub: 'x' }));
    expect(auth.calls.length).toBe(before + 1);
  });
});
