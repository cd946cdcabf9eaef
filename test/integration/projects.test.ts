import { randomBytes } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PushDataRequest, type PushServiceClient } from '../../gen/pushwire/v1/push.js';
import { b64, pushClient, restPush } from '../helpers/grpc-client.js';
import { startTestServer, type TestServer } from '../helpers/in-process.js';
import { unique } from '../helpers/names.js';
import { NodeProcess, runCli } from '../helpers/node-process.js';
import { waitFor } from '../helpers/ports.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * Projects (tenants) through real sockets: pushes never cross projects under any targeting
 * rule, the WebSocket upgrade picks the project (?pid= or the token's pid claim), each project
 * logs in with its own keys, server-API keys are checked per project and method on gRPC and
 * REST, the projects file reloads (call, file change, SIGHUP), and the CLI refuses bad setups.
 */

const dir = mkdtempSync(join(tmpdir(), 'pushwire-projects-it-'));

const SHOP_SECRET = 'shop-secret-for-projects-test';
const BLOG_SECRET = 'blog-secret-for-projects-test';
const SHOP_KEY = 'shop-key-0123456789abcdef';
const SHOP_PUSH_ONLY = 'shop-push-only-0123456789';
const BLOG_KEY = 'blog-key-0123456789abcdef';

type ProjectsDoc = { projects: Array<Record<string, unknown>> };

/** shop and blog, each with its own HS256 secret; keys only when `keys` is set. */
const twoProjects = (keys: boolean): ProjectsDoc => ({
  projects: [
    {
      pid: 'shop',
      name: 'Shop',
      login: { jwtSecret: SHOP_SECRET },
      ...(keys ? { apiKeys: [{ key: SHOP_KEY }, { key: SHOP_PUSH_ONLY, methods: ['PushData'] }] } : {}),
    },
    { pid: 'blog', login: { jwtSecret: BLOG_SECRET }, ...(keys ? { apiKeys: [{ key: BLOG_KEY }] } : {}) },
  ],
});

let fileSeq = 0;
const writeProjects = (doc: unknown, name = `projects-${++fileSeq}.json`): string => {
  const file = join(dir, name);
  writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc, null, 2));
  return file;
};

const token = (secret: string, uid: string, claims: Record<string, unknown> = {}): Promise<string> =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(uid).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(secret));
const shopToken = (uid: string, claims: Record<string, unknown> = {}): Promise<string> => token(SHOP_SECRET, uid, claims);
const blogToken = (uid: string, claims: Record<string, unknown> = {}): Promise<string> => token(BLOG_SECRET, uid, claims);

interface Push {
  uid?: string;
  topic?: string;
  data: string;
  pid?: string;
}

/** REST push with an optional API key; status and body. */
const rest = (httpUrl: string, key: string | undefined, p: Push, authorization?: string) =>
  restPush(
    httpUrl,
    { uid: p.uid ?? '', topic: p.topic ?? '', data: b64(p.data), ...(p.pid === undefined ? {} : { pid: p.pid }) },
    { headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { authorization: authorization ?? `Bearer ${key}` }) } },
  );

const restBatch = (httpUrl: string, key: string | undefined, pushes: Push[]) =>
  restPush(
    httpUrl,
    { pushes: pushes.map((p) => ({ uid: p.uid ?? '', topic: p.topic ?? '', data: b64(p.data), pid: p.pid ?? '' })) },
    { headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) } },
    '/v1/pushData:batch',
  );

const metadataFor = (key: string | undefined): Metadata => {
  const md = new Metadata();
  if (key !== undefined) md.set('authorization', `Bearer ${key}`);
  return md;
};

const request1 = (p: Push): PushDataRequest =>
  PushDataRequest.fromPartial({ uid: p.uid ?? '', topic: p.topic ?? '', data: Buffer.from(p.data), pid: p.pid ?? '' });

/** gRPC PushData with an optional key: 0 on success, else the status code (and message). */
const grpcPush = (client: PushServiceClient, key: string | undefined, p: Push): Promise<{ code: number; details: string }> =>
  new Promise((resolve) =>
    client.pushData(request1(p), metadataFor(key), (err: ServiceError | null) => resolve({ code: err?.code ?? 0, details: err?.details ?? '' })),
  );

const grpcBatch = (client: PushServiceClient, key: string | undefined, pushes: Push[]): Promise<{ code: number; details: string }> =>
  new Promise((resolve) =>
    client.pushDataBatch({ pushes: pushes.map(request1) }, metadataFor(key), (err: ServiceError | null) =>
      resolve({ code: err?.code ?? 0, details: err?.details ?? '' }),
    ),
  );

/** A WebSocket upgrade by hand, to read the status and body of a refusal. */
function rawUpgrade(wsUrl: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(wsUrl.replace(/^ws/, 'http'), {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      },
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 101, body: '' });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Clients and nodes opened by a test file part; closed by the hooks. */
const clients: TestClient[] = [];
const connect = async (url: string): Promise<TestClient> => {
  const c = await TestClient.connect(url);
  clients.push(c);
  return c;
};
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const logged = (server: { logs: Array<{ msg: string }> }, text: string): boolean => server.logs.some((l) => l.msg.includes(text));

/** Deliveries without fences. */
const got = (c: TestClient): string[] => c.deliveries().filter((t) => !t.startsWith('fence-'));

describe('a node with two keyed projects, shop and blog', () => {
  let server: TestServer;
  let grpc: PushServiceClient;
  const keyOf = { shop: SHOP_KEY, blog: BLOG_KEY } as const;
  type Pid = keyof typeof keyOf;

  beforeAll(async () => {
    server = await startTestServer(['--projects', writeProjects(twoProjects(true))]);
    grpc = pushClient(server.grpcAddress);
  });
  afterAll(async () => {
    grpc?.close();
    await server?.shutdown();
  });

  const url = (query: string): string => `${server.wsUrl}?${query}`;

  /** A push with the project's key; must succeed. */
  const push = async (pid: Pid, p: Push): Promise<void> => {
    const res = await rest(server.httpUrl, keyOf[pid], p);
    expect(res.status, JSON.stringify(res.json)).toBe(200);
  };

  /**
   * A broadcast in `pid` after the pushes under test, awaited on every client: on one node
   * pushes are delivered in publish order, so anything earlier has arrived by then.
   */
  const fence = async (pid: Pid, ...cs: TestClient[]): Promise<void> => {
    const tag = unique('fence');
    await push(pid, { data: tag });
    for (const c of cs) await c.next((f) => f.text === tag);
  };

  /** A connection of `pid` logged in as `uid`, subscribed to `topic` and private `topic`. */
  const member = async (pid: Pid, uid: string, topic: string): Promise<TestClient> => {
    const c = await connect(url(`pid=${pid}`));
    expect(await c.login(await (pid === 'shop' ? shopToken : blogToken)(uid))).toMatchObject({ code: 20003 });
    expect((await c.subscribe(topic)).code).toBe(20001);
    expect((await c.subscribePrivate(topic)).code).toBe(20001);
    return c;
  };

  describe('isolation: a push to one project never reaches the other', () => {
    const rules: Array<[string, (uid: string, topic: string) => Omit<Push, 'data'>]> = [
      ['topic', (_uid, topic) => ({ topic })],
      ['uid + topic (private)', (uid, topic) => ({ uid, topic })],
      ['uid', (uid) => ({ uid })],
      ['broadcast', () => ({})],
    ];

    for (const [from, to] of [
      ['shop', 'blog'],
      ['blog', 'shop'],
    ] as const) {
      it.each(rules)(`%s: ${from} → ${to}`, async (_rule, target) => {
        // Same uid and topic in both projects.
        const uid = unique('u');
        const topic = unique('t');
        const sender = await member(from, uid, topic);
        const other = await member(to, uid, topic);
        const data = unique('msg');
        await push(from, { ...target(uid, topic), data });
        await sender.next((f) => f.text === data);
        await fence(to, other);
        expect(got(other)).toEqual([]);
        expect(got(sender)).toEqual([data]);
      });
    }

    it("pushes aimed at the other project's cids, its default project or its channel names reach nobody there", async () => {
      const uid = unique('u');
      const topic = unique('t');
      const shop = await member('shop', uid, topic);
      const blog = await member('blog', uid, topic);
      const anon = await connect(url('pid=blog'));
      const guesses: Omit<Push, 'data'>[] = [
        { uid: blog.cid },
        { uid: anon.cid },
        { topic: blog.cid },
        { uid: blog.cid, topic },
        { uid: anon.cid, topic: anon.cid },
        // Channel names of blog's project, used as names in shop.
        { topic: `blog/t:${topic}` },
        { uid: `blog/u:${uid}` },
      ];
      for (const g of guesses) await push('shop', { ...g, data: unique('guess') });
      // The pid field cannot name blog with shop's key (403, below); the default project does not exist here.
      expect((await rest(server.httpUrl, SHOP_KEY, { topic, data: 'x', pid: 'default' })).status).toBe(403);
      await fence('blog', blog, anon);
      await fence('shop', shop);
      expect(got(blog)).toEqual([]);
      expect(got(anon)).toEqual([]);
      expect(got(shop)).toEqual([]);
    });

    it('a batch of one project delivers to that project only, in order', async () => {
      const uid = unique('u');
      const topic = unique('t');
      const shop = await member('shop', uid, topic);
      const blog = await member('blog', uid, topic);
      const res = await restBatch(server.httpUrl, SHOP_KEY, [
        { topic, data: 'b-1' },
        { uid, data: 'b-2' },
        { uid, topic, data: 'b-3' },
        { data: 'b-4' },
      ]);
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      await shop.next((f) => f.text === 'b-4');
      await fence('blog', blog);
      expect(got(shop)).toEqual(['b-1', 'b-2', 'b-3', 'b-4']);
      expect(got(blog)).toEqual([]);
    });
  });

  describe('upgrade: choosing the project', () => {
    it('?pid=shop connects to shop', async () => {
      const c = await connect(url('pid=shop'));
      const plain = await connect(url('pid=blog'));
      const tag = unique('hello');
      await push('shop', { data: tag });
      await c.next((f) => f.text === tag);
      await fence('blog', plain);
      expect(got(plain)).toEqual([]);
    });

    it("the pid claim of ?token= picks the project and logs in", async () => {
      const uid = unique('u');
      const c = await connect(url(`token=${await shopToken(uid, { pid: 'shop' })}`));
      expect((await c.next((f) => f.json !== undefined && f.json.code !== 20000)).json).toMatchObject({ code: 20003 });
      const data = unique('to-uid');
      await push('shop', { uid, data });
      await c.next((f) => f.text === data);
      // The same with blog's token and claim.
      const b = await connect(url(`token=${await blogToken(uid, { pid: 'blog' })}`));
      expect((await b.next((f) => f.json !== undefined && f.json.code !== 20000)).json).toMatchObject({ code: 20003 });
      await fence('blog', b);
      expect(got(b)).toEqual([]);
    });

    it('an unknown pid (query or claim) is refused with 404 naming the project', async () => {
      const byQuery = await rawUpgrade(url('pid=nope'));
      expect(byQuery.status).toBe(404);
      expect(byQuery.body).toContain('unknown project "nope"');
      const byClaim = await rawUpgrade(url(`token=${await shopToken('x', { pid: 'ghost' })}`));
      expect(byClaim.status).toBe(404);
      expect(byClaim.body).toContain('unknown project "ghost"');
      await expect(TestClient.connect(url('pid=nope'))).rejects.toThrow(/HTTP 404/);
    });

    it('no pid and no token (or a token without a pid claim) is refused with 400 on a node without a default project', async () => {
      const none = await rawUpgrade(server.wsUrl);
      expect(none.status).toBe(400);
      expect(none.body).toMatch(/pid/);
      expect((await rawUpgrade(url('pid='))).status).toBe(400);
      expect((await rawUpgrade(url(`token=${await shopToken('x')}`))).status).toBe(400);
      // The one that works, for contrast.
      expect((await rawUpgrade(url('pid=shop'))).status).toBe(101);
    });
  });

  describe('login: each project verifies with its own keys', () => {
    it("shop's token logs in on a shop connection", async () => {
      const c = await connect(url('pid=shop'));
      expect(await c.login(await shopToken(unique('u')))).toMatchObject({ code: 20003 });
      // A pid claim naming shop itself is fine.
      expect(await c.login(await shopToken(unique('u'), { pid: 'shop' }))).toMatchObject({ code: 20003 });
    });

    it("blog's token on a shop connection → 30003", async () => {
      const c = await connect(url('pid=shop'));
      expect(await c.login(await blogToken(unique('u')))).toMatchObject({ code: 30003 });
      expect(await c.login(await blogToken(unique('u'), { pid: 'blog' }))).toMatchObject({ code: 30003 });
      expect((await c.subscribePrivate('p')).code).toBe(30002); // still anonymous
    });

    it("a shop-signed token claiming pid blog on a shop connection → 30003 'token is for another project'", async () => {
      const uid = unique('u');
      const c = await connect(url('pid=shop'));
      const reply = await c.login(await shopToken(uid, { pid: 'blog' }));
      expect(reply).toMatchObject({ code: 30003 });
      expect(String(reply.detail)).toContain('token is for another project');
      // And it did not log in: a push to that uid in shop does not reach it.
      await push('shop', { uid, data: 'not-for-you' });
      await fence('shop', c);
      expect(got(c)).toEqual([]);
    });

    it('?pid=shop with a token claiming blog: the shop connection refuses the token', async () => {
      const c = await connect(url(`pid=shop&token=${await shopToken('x', { pid: 'blog' })}`));
      const reply = (await c.next((f) => f.json !== undefined && f.json.code !== 20000)).json!;
      expect(reply).toMatchObject({ code: 30003 });
      expect(String(reply.detail)).toContain('token is for another project');
    });
  });

  describe('server-API keys', () => {
    it('gRPC: missing or unknown key → UNAUTHENTICATED (16)', async () => {
      expect((await grpcPush(grpc, undefined, { data: 'x', pid: 'shop' })).code).toBe(16);
      expect((await grpcPush(grpc, 'unknown-key-0123456789', { data: 'x', pid: 'shop' })).code).toBe(16);
      expect((await grpcBatch(grpc, undefined, [{ data: 'x' }])).code).toBe(16);
      expect((await grpcBatch(grpc, 'unknown-key-0123456789', [{ data: 'x' }])).code).toBe(16);
    });

    it('REST: missing or unknown key → 401 with code 16', async () => {
      for (const key of [undefined, 'unknown-key-0123456789']) {
        const one = await rest(server.httpUrl, key, { data: 'x', pid: 'shop' });
        expect(one.status).toBe(401);
        expect(one.json).toMatchObject({ code: 16, message: expect.any(String) });
        const batch = await restBatch(server.httpUrl, key, [{ data: 'x' }]);
        expect(batch.status).toBe(401);
        expect(batch.json).toMatchObject({ code: 16 });
      }
      // Not a bearer of a known key either.
      expect((await rest(server.httpUrl, SHOP_KEY, { data: 'x' }, `Basic ${b64(`u:${SHOP_KEY}`)}`)).status).toBe(401);
    });

    it("shop's key naming pid blog → PERMISSION_DENIED (7 / 403), nothing delivered", async () => {
      const blog = await connect(url('pid=blog'));
      expect((await grpcPush(grpc, SHOP_KEY, { data: 'leak-1', pid: 'blog' })).code).toBe(7);
      const r = await rest(server.httpUrl, SHOP_KEY, { data: 'leak-2', pid: 'blog' });
      expect(r.status).toBe(403);
      expect(r.json).toMatchObject({ code: 7 });
      // One push in a batch naming blog fails the whole batch.
      expect((await grpcBatch(grpc, SHOP_KEY, [{ data: 'leak-3' }, { data: 'leak-4', pid: 'blog' }])).code).toBe(7);
      const b = await restBatch(server.httpUrl, SHOP_KEY, [{ data: 'leak-5' }, { data: 'leak-6', pid: 'blog' }]);
      expect(b.status).toBe(403);
      expect(b.json).toMatchObject({ code: 7, message: expect.stringContaining('pushes[1]') });
      await fence('blog', blog);
      expect(got(blog)).toEqual([]);
    });

    it('a PushData-only key calling PushDataBatch → PERMISSION_DENIED (7 / 403); PushData works', async () => {
      expect((await grpcBatch(grpc, SHOP_PUSH_ONLY, [{ data: 'x' }])).code).toBe(7);
      const r = await restBatch(server.httpUrl, SHOP_PUSH_ONLY, [{ data: 'x' }]);
      expect(r.status).toBe(403);
      expect(r.json).toMatchObject({ code: 7 });
      expect((await grpcPush(grpc, SHOP_PUSH_ONLY, { data: unique('ok') })).code).toBe(0);
      expect((await rest(server.httpUrl, SHOP_PUSH_ONLY, { data: unique('ok') })).status).toBe(200);
    });

    it("shop's key with an empty pid delivers in shop only (gRPC and REST)", async () => {
      const topic = unique('t');
      const shop = await member('shop', unique('u'), topic);
      const blog = await member('blog', unique('u'), topic);
      expect((await grpcPush(grpc, SHOP_KEY, { topic, data: 'via-grpc' })).code).toBe(0);
      expect((await rest(server.httpUrl, SHOP_KEY, { topic, data: 'via-rest' })).status).toBe(200);
      expect((await grpcPush(grpc, SHOP_KEY, { topic, data: 'via-grpc-pid', pid: 'shop' })).code).toBe(0);
      expect((await grpcBatch(grpc, SHOP_KEY, [{ topic, data: 'via-batch' }])).code).toBe(0);
      await shop.next((f) => f.text === 'via-batch');
      expect(got(shop)).toEqual(['via-grpc', 'via-rest', 'via-grpc-pid', 'via-batch']);
      await fence('blog', blog);
      expect(got(blog)).toEqual([]);
    });

    it('does not log that the API is open', () => {
      expect(logged(server, 'server API is OPEN')).toBe(false);
    });
  });
});

describe('a node with two projects and no API keys (open API)', () => {
  let server: TestServer;
  let grpc: PushServiceClient;

  beforeAll(async () => {
    server = await startTestServer(['--projects', writeProjects(twoProjects(false))]);
    grpc = pushClient(server.grpcAddress);
  });
  afterAll(async () => {
    grpc?.close();
    await server?.shutdown();
  });

  it("warns 'server API is OPEN' at start", () => {
    expect(logged(server, 'server API is OPEN')).toBe(true);
  });

  it("no pid → INVALID_ARGUMENT (3 / 400) 'pid is required...'", async () => {
    const g = await grpcPush(grpc, undefined, { data: 'x' });
    expect(g.code).toBe(3);
    expect(g.details).toMatch(/^pid is required/);
    const r = await rest(server.httpUrl, undefined, { data: 'x' });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 3, message: expect.stringMatching(/^pid is required/) });
  });

  it('unknown pid → NOT_FOUND (5 / 404)', async () => {
    const g = await grpcPush(grpc, undefined, { data: 'x', pid: 'nope' });
    expect(g.code).toBe(5);
    expect(g.details).toContain('nope');
    const r = await rest(server.httpUrl, undefined, { data: 'x', pid: 'nope' });
    expect(r.status).toBe(404);
    expect(r.json).toMatchObject({ code: 5 });
  });

  it('pid "shop" is delivered in shop only; a key sent anyway is ignored', async () => {
    const shop = await connect(`${server.wsUrl}?pid=shop`);
    const blog = await connect(`${server.wsUrl}?pid=blog`);
    expect((await grpcPush(grpc, undefined, { data: 'open-1', pid: 'shop' })).code).toBe(0);
    expect((await rest(server.httpUrl, undefined, { data: 'open-2', pid: 'shop' })).status).toBe(200);
    expect((await rest(server.httpUrl, 'whatever-key-0123456789', { data: 'open-3', pid: 'shop' })).status).toBe(200);
    await shop.next((f) => f.text === 'open-3');
    expect(got(shop)).toEqual(['open-1', 'open-2', 'open-3']);
    const tag = unique('fence');
    expect((await rest(server.httpUrl, undefined, { data: tag, pid: 'blog' })).status).toBe(200);
    await blog.next((f) => f.text === tag);
    expect(got(blog)).toEqual([]);
  });
});

describe('reloading the projects file', () => {
  const OLD_KEY = 'reload-old-key-0123456789';
  const NEW_KEY = 'reload-new-key-0123456789';
  const NEWS_KEY = 'reload-news-key-0123456789';
  const AUTO_KEY = 'reload-auto-key-0123456789';

  const docWith = (shopKey: string, extra: Array<Record<string, unknown>> = []): ProjectsDoc => ({
    projects: [
      { pid: 'shop', login: { jwtSecret: SHOP_SECRET }, apiKeys: [{ key: shopKey }] },
      { pid: 'blog', login: { jwtSecret: BLOG_SECRET }, apiKeys: [{ key: BLOG_KEY }] },
      ...extra,
    ],
  });

  const status = async (server: { httpUrl: string }, key: string, pid = ''): Promise<number> =>
    (await rest(server.httpUrl, key, { data: unique('r'), pid })).status;

  describe('server.reloadProjects() and the file watcher', () => {
    let server: TestServer;
    let file: string;

    beforeAll(async () => {
      file = writeProjects(docWith(OLD_KEY));
      server = await startTestServer(['--projects', file]);
    });
    afterAll(async () => {
      await server?.shutdown();
    });

    it('a rewrite adding a project and replacing a key takes effect on reload', async () => {
      expect(await status(server, OLD_KEY)).toBe(200);
      expect(await status(server, NEW_KEY)).toBe(401);
      expect((await rawUpgrade(`${server.wsUrl}?pid=news`)).status).toBe(404);

      writeProjects(docWith(NEW_KEY, [{ pid: 'news', login: { jwtSecret: 'news-secret' }, apiKeys: [{ key: NEWS_KEY, methods: ['PushData'] }] }]), file.split('/').pop());
      expect(server.reloadProjects()).toBe(true);

      expect(await status(server, NEW_KEY)).toBe(200);
      expect(await status(server, OLD_KEY)).toBe(401);
      expect(await status(server, NEWS_KEY)).toBe(200);
      expect(await status(server, NEWS_KEY, 'shop')).toBe(403);
      // The new project takes connections, and its pushes reach them.
      const news = await connect(`${server.wsUrl}?pid=news`);
      const tag = unique('news');
      expect((await rest(server.httpUrl, NEWS_KEY, { data: tag })).status).toBe(200);
      await news.next((f) => f.text === tag);
    });

    it('a broken rewrite is refused: reloadProjects() is false, logged, and the old keys still work', async () => {
      writeProjects('{"projects": [ {"pid": "shop", "apiKeys": [ {"key": "short"} ] } ]}', file.split('/').pop());
      expect(server.reloadProjects()).toBe(false);
      expect(logged(server, 'projects reload failed')).toBe(true);
      const failure = server.logs.find((l) => l.msg.includes('projects reload failed'))!;
      expect(String(failure.err)).toContain('projects[0].apiKeys[0].key');
      expect(await status(server, NEW_KEY)).toBe(200);
      expect(await status(server, NEWS_KEY)).toBe(200);
      expect(await status(server, BLOG_KEY)).toBe(200);
      // Also after the watcher has seen the broken file.
      await waitFor(() => server.logs.filter((l) => l.msg.includes('projects reload failed')).length >= 2, 5000, 'the watcher tried too');
      expect(await status(server, NEW_KEY)).toBe(200);
    });

    it('a change to the file is picked up without a call (fs.watch)', async () => {
      writeProjects(docWith(AUTO_KEY), file.split('/').pop());
      await waitFor(async () => (await status(server, AUTO_KEY)) === 200, 5000, 'the new key to work');
      await waitFor(async () => (await status(server, NEW_KEY)) === 401, 5000, 'the old key to be refused');
      expect(await status(server, NEWS_KEY)).toBe(401);
      expect(logged(server, 'projects reloaded')).toBe(true);
    });
  });

  it('a file replaced atomically (written aside, renamed over it) is picked up, every time', async () => {
    const file = writeProjects(docWith(OLD_KEY));
    const server = await startTestServer(['--projects', file]);
    try {
      for (const key of ['atomic-key-1-0123456789', 'atomic-key-2-0123456789']) {
        const aside = `${file}.tmp`;
        writeFileSync(aside, JSON.stringify(docWith(key)));
        renameSync(aside, file);
        await waitFor(async () => (await status(server, key)) === 200, 5000, `${key} to work after an atomic replace`);
      }
    } finally {
      await server.shutdown();
    }
  });

  it('SIGHUP reloads a CLI node (the file swapped behind a symlink, which no file watch sees)', async () => {
    const v1 = writeProjects(docWith(OLD_KEY));
    const v2 = writeProjects(docWith(NEW_KEY));
    const link = join(dir, 'current.json');
    symlinkSync(v1, link);
    const proc = await NodeProcess.start(['--projects', link]);
    try {
      expect(await status(proc, OLD_KEY)).toBe(200);
      expect(await status(proc, NEW_KEY)).toBe(401);
      // Swap the link (ConfigMap style): v1's inode, the one watched, never changes.
      const tmpLink = join(dir, 'current.json.tmp');
      symlinkSync(v2, tmpLink);
      renameSync(tmpLink, link);
      proc.proc.kill('SIGHUP');
      await waitFor(async () => (await status(proc, NEW_KEY)) === 200, 10_000, 'the new key to work after SIGHUP');
      expect(await status(proc, OLD_KEY)).toBe(401);
      expect(proc.logs.some((l) => l.msg.includes('SIGHUP'))).toBe(true);
      expect(proc.logs.some((l) => l.msg === 'projects reloaded')).toBe(true);
      expect(proc.proc.exitCode).toBeNull(); // SIGHUP did not kill it
    } finally {
      await proc.stop();
    }
  });
});

describe('CLI', () => {
  /** The environment without PUSHWIRE_* variables. */
  const cleanEnv = (): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PUSHWIRE_')) env[k] = v;
    return env;
  };
  const serve = (args: string[]) =>
    runCli(['serve', '--host', '127.0.0.1', '--ws-port', '0', '--http-port', '0', '--grpc-port', '0', ...args], cleanEnv());

  it.each([
    ['--jwt-secret', 'x'],
    ['--jwt-public-key', '/nonexistent.pem'],
    ['--auth-url', 'http://127.0.0.1:1/auth'],
  ])('--projects with %s → exit 2 naming the flag', async (flag, value) => {
    const r = await serve(['--projects', writeProjects(twoProjects(true)), flag, value]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^pushwire: /);
    expect(r.stderr).toContain(flag);
    expect(r.stderr).toContain('--projects');
    expect(r.stdout).not.toContain('pushwire node listening');
  });

  it('a projects file with an error → exit 2 naming the place', async () => {
    const doc = twoProjects(true);
    doc.projects[1]!.apiKeys = [{ key: BLOG_KEY, methods: ['Publish'] }];
    const r = await serve(['--projects', writeProjects(doc)]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^pushwire: /);
    expect(r.stderr).toContain('projects[1].apiKeys[0].methods');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).not.toContain('pushwire node listening');
  });

  it('a missing projects file → exit 2 naming the file', async () => {
    const missing = join(dir, 'missing.yaml');
    const r = await serve(['--projects', missing]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(missing);
  });
});
