import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify as toYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_DOCUMENT_DEPTH, MAX_YAML_FILE_BYTES } from '../../src/bounded-document.js';
import { ConfigError } from '../../src/config.js';
import { loadProjectsFile } from '../../src/projects.js';
import { pushClient, pushData } from '../helpers/grpc-client.js';
import { startTestServer, type TestServer } from '../helpers/in-process.js';
import { unique } from '../helpers/names.js';
import { TestClient } from '../helpers/ws-client.js';
import { Tally, check, deepJsonOf } from './support.js';

/**
 * Property: any projects file, JSON or YAML, well-formed or not, either loads or is refused with
 * a ConfigError naming the problem — never another exception — and a running node reloading it
 * keeps serving: a refused file leaves the previous projects in place. Nesting beyond the bound
 * is refused as such.
 *
 * The loader runs in this worker, so the inputs stay small enough that even a loader without its
 * bounds could not take the worker down: nesting up to DEEPEST (the yaml package's recursion
 * overflowed from about 400 levels, and V8 then aborted the process, "RegExpCompiler Allocation
 * failed"), files up to just over the YAML size limit. The 20,000-deep and oversized files go to
 * a real node through the CLI in test/integration/projects-limits.test.ts. `npm test` checks the
 * same inputs every run (SEED).
 */
const DEEPEST = 160;
const SEED = 20261202;

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

/** A file: its extension picks the parser, its text may be anything; `depth` when it is built nested. */
const file: fc.Arbitrary<{ ext: string; text: string; depth?: number }> = fc.oneof(
  { weight: 4, arbitrary: doc.map((d) => ({ ext: 'json', text: JSON.stringify(d) })) },
  { weight: 3, arbitrary: doc.map((d) => ({ ext: 'yaml', text: toYaml(d) })) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('json', 'yaml', 'yml'), fc.string({ unit: 'binary', maxLength: 300 })).map(([ext, text]) => ({ ext, text })) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom('json', 'yaml'), fc.integer({ min: 1, max: DEEPEST }), fc.integer())
      .map(([ext, depth, seed]) => ({ ext, text: `{"projects":${deepJsonOf(depth, seed)}}`, depth: depth + 1 })),
  },
  // Just over the size limit: a valid document padded with a comment.
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 1000 }).map((extra) => ({ ext: 'yaml', text: `projects:\n  - pid: a\n#${'x'.repeat(MAX_YAML_FILE_BYTES + extra)}\n` })) },
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
      fc.asyncProperty(file, async ({ ext, text, depth }) => {
        const f = join(dir, `case-${n++ % 16}.${ext}`);
        writeFileSync(f, text);
        try {
          loadProjectsFile(f, 3000);
          expect(depth === undefined || depth <= MAX_DOCUMENT_DEPTH).toBe(true);
        } catch (err) {
          expect(err, String((err as Error)?.stack)).toBeInstanceOf(ConfigError);
          if (depth !== undefined && depth > MAX_DOCUMENT_DEPTH) expect((err as Error).message).toContain(`nested deeper than ${MAX_DOCUMENT_DEPTH} levels`);
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
      SEED,
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
