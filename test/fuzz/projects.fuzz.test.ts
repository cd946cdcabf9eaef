import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify as toYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { loadProjectsFile } from '../../src/projects.js';
import { pushClient, pushData } from '../helpers/grpc-client.js';
import { startTestServer, type TestServer } from '../helpers/in-process.js';
import { unique } from '../helpers/names.js';
import { TestClient } from '../helpers/ws-client.js';
import { Tally, check, deepJson } from './support.js';

/**
 * Property: any projects file, JSON or YAML, well-formed or not, either loads or is refused with
 * a ConfigError naming the problem — never another exception — and a running node reloading it
 * keeps serving: a refused file leaves the previous projects in place.
 */

const dir = mkdtempSync(join(tmpdir(), 'pushwire-fuzz-projects-'));
writeFileSync(join(dir, 'bad.pem'), '-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n');

const anyValue = fc.jsonValue({ maxDepth: 3 });
const orAny = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({ weight: 4, arbitrary: a }, { weight: 1, arbitrary: anyValue });
const pid = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/), fc.string({ maxLength: 70 }));

const project = fc.record(
  {
    pid: orAny(pid),
    name: orAny(fc.string({ maxLength: 20 })),
    login: orAny(
      fc.record(
        {
          jwtSecret: orAny(fc.string({ maxLength: 40 })),
          jwtPublicKeyFile: orAny(fc.constantFrom('missing.pem', 'bad.pem', '')),
          authUrl: orAny(fc.oneof(fc.webUrl(), fc.string({ maxLength: 20 }))),
          authTimeout: orAny(fc.oneof(fc.constantFrom('3s', '500ms', '0s', '-1s', '1h'), fc.string({ maxLength: 6 }))),
          extra: anyValue,
        },
        { requiredKeys: [] },
      ),
    ),
    apiKeys: orAny(
      fc.array(
        fc.record(
          {
            key: orAny(fc.string({ minLength: 10, maxLength: 30 })),
            methods: orAny(fc.array(fc.constantFrom('PushData', 'PushDataBatch', 'Subscribe', 'Nope', 'ListNodes'), { maxLength: 3 })),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 3 },
      ),
    ),
    limits: orAny(
      fc.record(
        { maxConnections: orAny(fc.integer()), pushesPerSecond: orAny(fc.integer()), requestsPerSecond: orAny(fc.double()), other: fc.nat() },
        { requiredKeys: [] },
      ),
    ),
    allowedOrigins: orAny(fc.array(fc.oneof(fc.webUrl().map((u) => new URL(u).origin), fc.constant('*'), fc.string({ maxLength: 20 })), { maxLength: 3 })),
  },
  { requiredKeys: [] },
);

const doc = fc.record({ projects: orAny(fc.array(project, { maxLength: 4 })), junk: anyValue }, { requiredKeys: [] });

/** A file: its extension picks the parser, its text may be anything. */
const file = fc.oneof(
  { weight: 4, arbitrary: doc.map((d) => ({ ext: 'json', text: JSON.stringify(d) })) },
  { weight: 3, arbitrary: doc.map((d) => ({ ext: 'yaml', text: toYaml(d) })) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('json', 'yaml', 'yml'), fc.string({ unit: 'binary', maxLength: 300 })).map(([ext, text]) => ({ ext, text })) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('json', 'yaml'), deepJson(20_000)).map(([ext, d]) => ({ ext, text: `{"projects":${d}}` })) },
  { weight: 1, arbitrary: fc.constantFrom('yaml', 'yml').map((ext) => ({ ext, text: 'a: &x [*x, *x]\nprojects: *x\n' })) },
);

const GOOD = JSON.stringify({ projects: [{ pid: 'default' }] });

describe('fuzz: projects files', () => {
  let server: TestServer;
  const path = join(dir, 'live.json');
  const tally = new Tally('projects');
  beforeAll(async () => {
    writeFileSync(path, GOOD);
    server = await startTestServer(['--projects', path]);
  });
  afterAll(async () => {
    tally.report();
    await server?.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loads or refuses (ConfigError) every file, and a node reloading them keeps serving', async () => {
    let n = 0;
    await check(
      fc.asyncProperty(file, async ({ ext, text }) => {
        const f = join(dir, `case-${n++ % 16}.${ext}`);
        writeFileSync(f, text);
        try {
          loadProjectsFile(f, 3000);
        } catch (err) {
          expect(err, String((err as Error)?.stack)).toBeInstanceOf(ConfigError);
        }
        // The same file through a running node's reload (what SIGHUP and the file watch call).
        if (ext === 'json') {
          writeFileSync(path, text);
          expect(typeof server.reloadProjects()).toBe('boolean');
        }
        tally.add();
      }),
      tally,
      120,
      0.003,
    );
    writeFileSync(path, GOOD);
    expect(server.reloadProjects()).toBe(true);
    const c = await TestClient.connect(server.wsUrl);
    const grpc = pushClient(server.grpcAddress);
    try {
      const topic = unique('projects-alive');
      await c.subscribe(topic);
      await pushData(grpc, { topic, data: Buffer.from('after reloads') });
      await c.next((fr) => fr.text === 'after reloads');
    } finally {
      grpc.close();
      await c.close();
    }
  });
});
