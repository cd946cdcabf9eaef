import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, importPKCS8 } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { Code, PushwireError } from '../../src/core/errors.js';
import { ProjectRegistry, type ApiKeyGrant, type Project, type ProjectSet } from '../../src/core/projects/registry.js';
import { loadProjectsFile } from '../../src/projects.js';

/**
 * The projects file (JSON / YAML) and the registry's API-key decisions: what a valid file
 * yields, that every mistake is a ConfigError naming its place, and the authorize/resolvePid
 * truth table.
 */

const dir = mkdtempSync(join(tmpdir(), 'pushwire-projects-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
/** Writes `text` (an object is written as JSON) to a fresh file with extension `ext`; returns its path. */
const write = (content: unknown, ext = 'json', folder = dir): string => {
  const file = join(folder, `projects-${++files}.${ext}`);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
};

const load = (file: string): ProjectSet => loadProjectsFile(file, 5000);

/** The ConfigError thrown by loading `content`; fails the test if loading succeeds or throws something else. */
const configError = (content: unknown, ext = 'json'): ConfigError => {
  const file = write(content, ext);
  try {
    load(file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`expected ${JSON.stringify(content)} to be refused`);
};

const KEY_A = 'shop-key-0123456789';
const KEY_B = 'shop-push-only-0123456789';
const KEY_C = 'blog-key-0123456789';

const valid = {
  projects: [
    {
      pid: 'shop',
      name: 'Shop',
      login: { jwtSecret: 'shop-secret', authUrl: 'http://127.0.0.1:1234/auth', authTimeout: '3s' },
      apiKeys: [{ key: KEY_A }, { key: KEY_B, methods: ['PushData'] }],
    },
    { pid: 'blog', apiKeys: [{ key: KEY_C, methods: ['PushData', 'PushDataBatch'] }] },
    { pid: 'Bare_project-9' },
  ],
};

const hs256 = (secret: string, claims: Record<string, unknown> = {}, sub = 'alice'): Promise<string> =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('10m').sign(new TextEncoder().encode(secret));

const project = (set: ProjectSet, pid: string): Project => {
  const p = set.projects.find((q) => q.pid === pid);
  if (!p) throw new Error(`no project ${pid}`);
  return p;
};

describe('loadProjectsFile: writeDelay', () => {
  it('takes ms or a duration per project; projects without one get the default (--write-delay)', () => {
    const file = write({ projects: [{ pid: 'a', writeDelay: 5 }, { pid: 'b', writeDelay: '20ms' }, { pid: 'c' }, { pid: 'd', writeDelay: 0 }] });
    expect(loadProjectsFile(file, 5000).projects.map((q) => q.writeDelayMs)).toEqual([5, 20, 0, 0]);
    expect(loadProjectsFile(file, 5000, 7).projects.map((q) => q.writeDelayMs)).toEqual([5, 20, 7, 0]);
  });
});

describe('loadProjectsFile: valid files', () => {
  const check = (set: ProjectSet): void => {
    expect(set.projects.map((p) => [p.pid, p.name])).toEqual([
      ['shop', 'Shop'],
      ['blog', 'blog'],
      ['Bare_project-9', 'Bare_project-9'],
    ]);
    expect([...set.apiKeys.keys()].sort()).toEqual([KEY_C, KEY_A, KEY_B].sort());
    const grant = (k: string): ApiKeyGrant => set.apiKeys.get(k)!;
    expect(grant(KEY_A)).toEqual({ pid: 'shop', methods: undefined });
    expect(grant(KEY_B).pid).toBe('shop');
    expect(grant(KEY_B).methods).toBeInstanceOf(Set);
    expect([...grant(KEY_B).methods!]).toEqual(['PushData']);
    expect(grant(KEY_C).pid).toBe('blog');
    expect([...grant(KEY_C).methods!].sort()).toEqual(['PushData', 'PushDataBatch']);
  };

  it('reads a JSON file into projects and key grants', () => {
    check(load(write(valid)));
  });

  it('reads the same file written as YAML (.yaml and .yml)', () => {
    const yaml = `
projects:
  - pid: shop            # a comment
    name: Shop
    login:
      jwtSecret: shop-secret
      authUrl: http://127.0.0.1:1234/auth
      authTimeout: 3s
    apiKeys:
      - key: ${KEY_A}
      - key: ${KEY_B}
        methods: [PushData]
  - pid: blog
    apiKeys:
      - key: ${KEY_C}
        methods:
          - PushData
          - PushDataBatch
  - pid: Bare_project-9
`;
    check(load(write(yaml, 'yaml')));
    check(load(write(yaml, 'yml')));
  });

  it("builds each project's login from its own settings", async () => {
    const set = load(write(valid));
    await expect(project(set, 'shop').authenticator.authenticate(await hs256('shop-secret'))).resolves.toEqual({ uid: 'alice' });
    await expect(project(set, 'shop').authenticator.authenticate(await hs256('other-secret'))).rejects.toThrow();
    // A token naming another project in its pid claim is refused even with the right signature.
    await expect(project(set, 'shop').authenticator.authenticate(await hs256('shop-secret', { pid: 'blog' }))).rejects.toThrow(
      'token is for another project',
    );
    await expect(project(set, 'shop').authenticator.authenticate(await hs256('shop-secret', { pid: 'shop' }))).resolves.toEqual({ uid: 'alice' });
    // No login configured: every login fails.
    await expect(project(set, 'blog').authenticator.authenticate(await hs256('shop-secret'))).rejects.toThrow();
  });

  it('no apiKeys anywhere gives an empty key map (an open API)', () => {
    const set = load(write({ projects: [{ pid: 'a' }, { pid: 'b', apiKeys: [] }] }));
    expect(set.apiKeys.size).toBe(0);
    expect(new ProjectRegistry(set).open).toBe(true);
  });

  it.each([
    ['EC P-256', 'ES256', () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' })],
    ['RSA', 'RS256', () => generateKeyPairSync('rsa', { modulusLength: 2048 })],
  ] as const)('resolves a relative jwtPublicKeyFile against the file folder (%s)', async (_name, alg, gen) => {
    const folder = mkdtempSync(join(dir, 'nested-'));
    mkdirSync(join(folder, 'keys'));
    const { publicKey, privateKey } = gen();
    writeFileSync(join(folder, 'keys', 'shop.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    // Loaded from another working directory than the file's folder: only the file's folder has keys/shop.pem.
    expect(process.cwd()).not.toBe(folder);
    const file = write({ projects: [{ pid: 'shop', login: { jwtPublicKeyFile: 'keys/shop.pem' } }] }, 'json', folder);
    const set = load(file);
    const pkcs8 = await importPKCS8(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, alg);
    const token = await new SignJWT({ pid: 'shop' }).setProtectedHeader({ alg }).setSubject('bob').setExpirationTime('10m').sign(pkcs8);
    await expect(project(set, 'shop').authenticator.authenticate(token)).resolves.toEqual({ uid: 'bob' });
  });
});

describe('loadProjectsFile: every mistake is a ConfigError naming its place', () => {
  const p = (over: Record<string, unknown>): Record<string, unknown> => ({ pid: 'shop', ...over });

  it.each<[string, unknown, RegExp]>([
    ['no projects field', { other: 1 }, /projects: must be a non-empty list/],
    ['projects not a list', { projects: { pid: 'shop' } }, /projects: must be a non-empty list/],
    ['projects a string', { projects: 'shop' }, /projects: must be a non-empty list/],
    ['empty list', { projects: [] }, /projects: must be a non-empty list/],
    ['a document that is a list', [{ pid: 'shop' }], /projects: must be a non-empty list/],
    ['a document that is null', 'null', /projects: must be a non-empty list/],
    ['a project that is not an object', { projects: ['shop'] }, /projects\[0\]: must be an object/],
    ['a project that is a list', { projects: [p({}), [1]] }, /projects\[1\]: must be an object/],
    ['missing pid', { projects: [{ name: 'x' }] }, /projects\[0\]\.pid: must be 1-64/],
    ['empty pid', { projects: [p({ pid: '' })] }, /projects\[0\]\.pid: must be 1-64/],
    ['pid with a slash', { projects: [p({ pid: 'a/b' })] }, /projects\[0\]\.pid: must be 1-64/],
    ['pid with a colon', { projects: [p({ pid: 'a:b' })] }, /projects\[0\]\.pid: must be 1-64/],
    ['pid with a space', { projects: [p({ pid: 'a b' })] }, /projects\[0\]\.pid: must be 1-64/],
    ['pid of 65 characters', { projects: [p({ pid: 'x'.repeat(65) })] }, /projects\[0\]\.pid: must be 1-64/],
    ['numeric pid', { projects: [p({ pid: 42 })] }, /projects\[0\]\.pid: must be 1-64/],
    ['duplicate pid', { projects: [p({}), { pid: 'blog' }, p({})] }, /projects\[2\]\.pid: "shop" is listed twice/],
    ['unknown project field', { projects: [p({ apikeys: [] })] }, /projects\[0\]\.apikeys: unknown field/],
    ['unknown login field', { projects: [p({ login: { jwtSecret: 's', secret: 's' } })] }, /projects\[0\]\.login\.secret: unknown field/],
    ['unknown key field', { projects: [p({ apiKeys: [{ key: KEY_A, method: ['PushData'] }] })] }, /projects\[0\]\.apiKeys\[0\]\.method: unknown field/],
    ['name not a string', { projects: [p({ name: 7 })] }, /projects\[0\]\.name: must be a string/],
    ['login not an object', { projects: [p({ login: 'shop-secret' })] }, /projects\[0\]\.login: must be an object/],
    ['empty jwtSecret', { projects: [p({ login: { jwtSecret: '' } })] }, /projects\[0\]\.login\.jwtSecret: must be a non-empty string/],
    ['empty jwtPublicKeyFile', { projects: [p({ login: { jwtPublicKeyFile: '' } })] }, /projects\[0\]\.login\.jwtPublicKeyFile: must be a non-empty string/],
    ['empty authUrl', { projects: [p({ login: { authUrl: '' } })] }, /projects\[0\]\.login\.authUrl: must be a non-empty string/],
    ['empty authTimeout', { projects: [p({ login: { authTimeout: '' } })] }, /projects\[0\]\.login\.authTimeout: must be a non-empty string/],
    ['numeric jwtSecret', { projects: [p({ login: { jwtSecret: 123 } })] }, /projects\[0\]\.login\.jwtSecret: must be a non-empty string/],
    ['authUrl not a URL', { projects: [p({ login: { authUrl: 'not a url' } })] }, /projects\[0\]\.login\.authUrl: must be an http/],
    ['authUrl not http', { projects: [p({ login: { authUrl: 'ftp://example.com/auth' } })] }, /projects\[0\]\.login\.authUrl: must be an http/],
    ['authTimeout not a duration', { projects: [p({ login: { authTimeout: 'soon' } })] }, /projects\[0\]\.login\.authTimeout: must be a duration/],
    ['authTimeout zero', { projects: [p({ login: { authTimeout: '0s' } })] }, /projects\[0\]\.login\.authTimeout: must be a duration/],
    ['apiKeys not a list', { projects: [p({ apiKeys: { key: KEY_A } })] }, /projects\[0\]\.apiKeys: must be a list/],
    ['a key entry that is a string', { projects: [p({ apiKeys: [KEY_A] })] }, /projects\[0\]\.apiKeys\[0\]: must be an object/],
    ['key too short', { projects: [p({ apiKeys: [{ key: KEY_A }, { key: 'short-key-01234' }] })] }, /projects\[0\]\.apiKeys\[1\]\.key: must be a string of at least 16/],
    ['key missing', { projects: [p({ apiKeys: [{ methods: ['PushData'] }] })] }, /projects\[0\]\.apiKeys\[0\]\.key: must be a string/],
    ['key not a string', { projects: [p({ apiKeys: [{ key: 12345678901234567890 }] })] }, /projects\[0\]\.apiKeys\[0\]\.key: must be a string/],
    ['duplicate key in one project', { projects: [p({ apiKeys: [{ key: KEY_A }, { key: KEY_A }] })] }, /projects\[0\]\.apiKeys\[1\]\.key: is used twice/],
    [
      'duplicate key across projects',
      { projects: [p({ apiKeys: [{ key: KEY_A }] }), { pid: 'blog', apiKeys: [{ key: KEY_C }, { key: KEY_A }] }] },
      /projects\[1\]\.apiKeys\[1\]\.key: is used twice/,
    ],
    ['methods not a list', { projects: [p({ apiKeys: [{ key: KEY_A, methods: 'PushData' }] })] }, /projects\[0\]\.apiKeys\[0\]\.methods: must be a non-empty list of PushData, PushDataBatch/],
    ['unknown method', { projects: [p({ apiKeys: [{ key: KEY_A, methods: ['PushData', 'Push'] }] })] }, /projects\[0\]\.apiKeys\[0\]\.methods: must be a non-empty list/],
    ['method in the wrong case', { projects: [p({ apiKeys: [{ key: KEY_A, methods: ['pushdata'] }] })] }, /projects\[0\]\.apiKeys\[0\]\.methods: must be a non-empty list/],
    ['an empty methods list (a key that can call nothing)', { projects: [p({ apiKeys: [{ key: KEY_A, methods: [] }] })] }, /projects\[0\]\.apiKeys\[0\]\.methods: must be a non-empty list/],
    ['a key with a space (a Bearer header cannot carry it)', { projects: [p({ apiKeys: [{ key: 'abc def ghi jkl mno' }] })] }, /projects\[0\]\.apiKeys\[0\]\.key: .*without spaces/],
    ['limits with an unknown field', { projects: [p({ limits: { maxConns: 1 } })] }, /projects\[0\]\.limits\.maxConns: unknown field/],
    ['a limit that is not a positive integer', { projects: [p({ limits: { pushesPerSecond: 0 } })] }, /projects\[0\]\.limits\.pushesPerSecond: must be a positive integer/],
    ['a writeDelay over 1 s', { projects: [p({ writeDelay: 1500 })] }, /projects\[0\]\.writeDelay: must be 0-1000 ms/],
    ['a writeDelay that is not a duration', { projects: [p({ writeDelay: 'soon' })] }, /projects\[0\]\.writeDelay: must be 0-1000 ms/],
    ['a negative writeDelay', { projects: [p({ writeDelay: -5 })] }, /projects\[0\]\.writeDelay/],
    ['a gRPC full method name', { projects: [p({ apiKeys: [{ key: KEY_A, methods: ['pushwire.v1.PushService/PushData'] }] })] }, /projects\[0\]\.apiKeys\[0\]\.methods/],
    ['a presence option that is not a boolean', { projects: [p({ channels: { namespaces: { room: { presence: 'yes' } } } })] }, /projects\[0\]\.channels\.namespaces\.room\.presence: must be true or false/],
    ['a joinLeave option that is not a boolean', { projects: [p({ channels: { joinLeave: 1 } })] }, /projects\[0\]\.channels\.joinLeave: must be true or false/],
    [
      'the second project is the broken one',
      { projects: [p({}), { pid: 'blog', apiKeys: [{ key: KEY_C, methods: [1] }] }] },
      /projects\[1\]\.apiKeys\[0\]\.methods/,
    ],
  ])('%s', (_what, content, message) => {
    const err = configError(content);
    expect(err.message).toMatch(message);
    expect(err.message).toContain('--projects');
  });

  it('names the place in YAML files too', () => {
    const yaml = `projects:\n  - pid: shop\n  - pid: blog\n    apiKeys:\n      - key: ${KEY_C}\n        methods: [PushData, Publish]\n`;
    expect(configError(yaml, 'yaml').message).toMatch(/projects\[1\]\.apiKeys\[0\]\.methods/);
    expect(configError('projects:\n  - pid: shop\n    login:\n      jwtSecret: ""\n', 'yml').message).toMatch(/projects\[0\]\.login\.jwtSecret/);
  });

  it('an unknown top-level field is refused (a misplaced apiKeys must not leave the API open)', () => {
    // Every other level refuses unknown fields; a top-level `apiKeys` (keys meant for the node)
    // silently ignored would leave the server API open.
    const err = configError({ projects: [p({})], apiKeys: [{ key: KEY_A }] });
    expect(err.message).toMatch(/apiKeys: unknown field/);
  });

  it('an unreadable jwtPublicKeyFile names the setting and the resolved path', () => {
    const err = configError({ projects: [p({}), { pid: 'blog', login: { jwtPublicKeyFile: 'keys/missing.pem' } }] });
    expect(err.message).toMatch(/projects\[1\]\.login\.jwtPublicKeyFile: cannot read/);
    expect(err.message).toContain(join(dir, 'keys', 'missing.pem'));
  });

  it('a jwtPublicKeyFile that holds no usable key names the setting', () => {
    writeFileSync(join(dir, 'garbage.pem'), 'not a key\n');
    const err = configError({ projects: [p({ login: { jwtPublicKeyFile: 'garbage.pem' } })] });
    expect(err.message).toMatch(/projects\[0\]\.login\.jwtPublicKeyFile/);
    const ed = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' });
    writeFileSync(join(dir, 'ed.pem'), ed);
    const unsupported = configError({ projects: [p({ login: { jwtPublicKeyFile: 'ed.pem' } })] });
    expect(unsupported.message).toMatch(/projects\[0\]\.login\.jwtPublicKeyFile: unsupported JWT public key/);
  });

  it('invalid JSON names the file and the format', () => {
    const file = write('{"projects": [ {"pid": "shop", } ]');
    expect(() => load(file)).toThrow(ConfigError);
    expect(() => load(file)).toThrow(new RegExp(`"${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}" is not valid JSON`));
  });

  it('invalid YAML names the file and the format', () => {
    const file = write('projects:\n  - pid: shop\n   name: [unclosed\n', 'yaml');
    expect(() => load(file)).toThrow(ConfigError);
    expect(() => load(file)).toThrow(/is not valid YAML/);
    expect(() => load(file)).toThrow(file);
  });

  it('a missing file names the file', () => {
    const file = join(dir, 'nope.json');
    expect(() => load(file)).toThrow(ConfigError);
    expect(() => load(file)).toThrow(/--projects: cannot read/);
  });
});

describe('ProjectRegistry', () => {
  const auth = { authenticate: () => Promise.reject(new Error('no login')) };
  // Cast, so the fixture compiles whether or not Project grows optional-looking fields (e.g. limits).
  const projectsOf = (...pids: string[]): Project[] => pids.map((pid) => ({ pid, name: pid, authenticator: auth, limits: {} }) as Project);
  const keyed = (pids: string[]): ProjectRegistry =>
    new ProjectRegistry({
      projects: projectsOf(...pids),
      apiKeys: new Map<string, ApiKeyGrant>([
        [KEY_A, { pid: 'shop', methods: undefined }],
        [KEY_B, { pid: 'shop', methods: new Set(['PushData']) }],
        [KEY_C, { pid: 'blog', methods: new Set(['PushDataBatch']) }],
      ]),
    });
  const open = (pids: string[]): ProjectRegistry => new ProjectRegistry({ projects: projectsOf(...pids), apiKeys: new Map() });

  /** The PushwireError code `fn` throws, or its result. */
  const outcome = (fn: () => string | undefined): { code: number } | { ok: string | undefined } => {
    try {
      return { ok: fn() };
    } catch (err) {
      expect(err).toBeInstanceOf(PushwireError);
      return { code: (err as PushwireError).code };
    }
  };

  it('exposes its projects', () => {
    const r = keyed(['shop', 'blog']);
    expect(r.pids).toEqual(['shop', 'blog']);
    expect(r.get('shop')?.pid).toBe('shop');
    expect(r.get('default')).toBeUndefined();
    expect(r.open).toBe(false);
    expect(open(['shop']).open).toBe(true);
  });

  describe('authorize', () => {
    it('an open API lets anyone call anything, with no key project', () => {
      const r = open(['shop', 'blog']);
      for (const bearer of [undefined, '', 'whatever', KEY_A]) {
        expect(r.authorize(bearer, 'PushData')).toBeUndefined();
        expect(r.authorize(bearer, 'PushDataBatch')).toBeUndefined();
      }
    });

    it.each<[string | undefined, 'PushData' | 'PushDataBatch', { code: number } | { ok: string }]>([
      [undefined, 'PushData', { code: Code.UNAUTHENTICATED }],
      ['', 'PushData', { code: Code.UNAUTHENTICATED }],
      ['unknown-key-0123456789', 'PushData', { code: Code.UNAUTHENTICATED }],
      [KEY_A.toUpperCase(), 'PushData', { code: Code.UNAUTHENTICATED }],
      [KEY_A, 'PushData', { ok: 'shop' }],
      [KEY_A, 'PushDataBatch', { ok: 'shop' }],
      [KEY_B, 'PushData', { ok: 'shop' }],
      [KEY_B, 'PushDataBatch', { code: Code.PERMISSION_DENIED }],
      [KEY_C, 'PushData', { code: Code.PERMISSION_DENIED }],
      [KEY_C, 'PushDataBatch', { ok: 'blog' }],
    ])('keyed: bearer %s calling %s → %j', (bearer, method, expected) => {
      expect(outcome(() => keyed(['shop', 'blog']).authorize(bearer, method))).toEqual(expected);
    });

    it('the errors say what is wrong', () => {
      const r = keyed(['shop', 'blog']);
      expect(() => r.authorize(undefined, 'PushData')).toThrow(/missing API key/);
      expect(() => r.authorize('nope-nope-nope-nope', 'PushData')).toThrow(/unknown API key/);
      expect(() => r.authorize(KEY_B, 'PushDataBatch')).toThrow(/may not call PushDataBatch/);
    });
  });

  describe('resolvePid', () => {
    it.each<[string, string[], string, string | undefined, { code: number } | { ok: string }]>([
      // A key: its own project, whatever the node holds.
      ['key, no pid', ['shop', 'blog'], '', 'shop', { ok: 'shop' }],
      ['key, its own pid', ['shop', 'blog'], 'shop', 'shop', { ok: 'shop' }],
      ['key, another pid', ['shop', 'blog'], 'blog', 'shop', { code: Code.PERMISSION_DENIED }],
      ['key, an unknown pid', ['shop', 'blog'], 'nope', 'shop', { code: Code.PERMISSION_DENIED }],
      ['key, "default" asked', ['default', 'shop'], 'default', 'shop', { code: Code.PERMISSION_DENIED }],
      // Open API.
      ['open, no pid, no default project', ['shop', 'blog'], '', undefined, { code: Code.INVALID_ARGUMENT }],
      ['open, no pid, one non-default project', ['shop'], '', undefined, { code: Code.INVALID_ARGUMENT }],
      ['open, no pid, default project present', ['default', 'shop'], '', undefined, { ok: 'default' }],
      ['open, known pid', ['shop', 'blog'], 'blog', undefined, { ok: 'blog' }],
      ['open, unknown pid', ['shop', 'blog'], 'nope', undefined, { code: Code.NOT_FOUND }],
      ['open, "default" asked without a default project', ['shop'], 'default', undefined, { code: Code.NOT_FOUND }],
      ['open, "default" asked with a default project', ['default'], 'default', undefined, { ok: 'default' }],
    ])('%s', (_what, pids, requested, keyPid, expected) => {
      expect(outcome(() => open(pids).resolvePid(requested, keyPid))).toEqual(expected);
    });

    it('the errors say what is wrong', () => {
      const r = open(['shop', 'blog']);
      expect(() => r.resolvePid('', undefined)).toThrow(/pid is required/);
      expect(() => r.resolvePid('nope', undefined)).toThrow(/unknown project "nope"/);
      expect(() => r.resolvePid('blog', 'shop')).toThrow(/another project/);
    });
  });

  it('replace swaps projects and keys at once', () => {
    const r = keyed(['shop', 'blog']);
    r.replace({ projects: projectsOf('news'), apiKeys: new Map([['news-key-0123456789', { pid: 'news', methods: undefined }]]) });
    expect(r.pids).toEqual(['news']);
    expect(r.get('shop')).toBeUndefined();
    expect(() => r.authorize(KEY_A, 'PushData')).toThrow(/unknown API key/);
    expect(r.authorize('news-key-0123456789', 'PushData')).toBe('news');
    r.replace({ projects: projectsOf('news'), apiKeys: new Map() });
    expect(r.open).toBe(true);
  });
});
