import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, NodeProcess, runCli } from '../helpers/node-process.js';
import { freePort, waitFor } from '../helpers/ports.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * The operator subcommands through the real CLI (dist/src/cli.js) against real nodes started
 * through the same CLI: token, push, consume, nodes, online.
 */

const SECRET = 'cli-commands-secret';
const isDelivery = (f: { json?: Record<string, unknown> }): boolean => !(typeof f.json?.code === 'number');

/** `pushwire ...args`, expecting exit 0; returns stdout. */
async function ok(args: string[], stdin?: string): Promise<string> {
  const r = stdin === undefined ? await runCli(args) : await runWithStdin(args, stdin);
  expect(r.code, `pushwire ${args.join(' ')}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
  return r.stdout;
}

function runWithStdin(args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [CLI, ...args]);
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.on('exit', (code) => resolve({ code, stdout, stderr }));
    proc.stdin.end(input);
  });
}

describe('pushwire token / push / consume / online against one node', () => {
  let node: NodeProcess;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    node = await NodeProcess.start(['--jwt-secret', SECRET]);
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await node.stop();
  });
  const connect = async (query = ''): Promise<TestClient> => {
    const c = await TestClient.connect(`${node.wsUrl}${query}`);
    clients.push(c);
    return c;
  };

  it('token mints a JWT the node logs in; online then shows the user', async () => {
    const jwt = (await ok(['token', '--sub', 'alice', '--secret', SECRET, '--ttl', '10m'])).trim();
    expect(jwt).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const c = await connect();
    expect(await c.login(jwt)).toMatchObject({ code: 20003 });

    const json = JSON.parse(await ok(['online', '--pid', 'default', '--grpc', node.grpcAddress, '--json'])) as {
      count: { users: number; connections: number };
      users: Array<{ uid: string; connections: number }>;
    };
    expect(json.count).toEqual({ users: 1, connections: 1 });
    expect(json.users).toEqual([{ uid: 'alice', connections: 1 }]);
    const text = await ok(['online', '--grpc', node.grpcAddress]);
    expect(text).toContain('project "default": 1 users online, 1 connections');
    expect(text).toMatch(/^UID\s+CONNECTIONS$/m);
    expect(text).toMatch(/^alice\s+1$/m);
  });

  it('a token signed with the wrong secret, or expired-by-design for another project, is refused by the node', async () => {
    const wrong = (await ok(['token', '--sub', 'bob', '--secret', 'not-the-secret'])).trim();
    const c = await connect();
    expect(await c.login(wrong)).toMatchObject({ code: 30003 });
    const other = (await ok(['token', '--sub', 'bob', '--secret', SECRET, '--pid', 'elsewhere'])).trim();
    expect(await c.login(other)).toMatchObject({ code: 30003 });
  });

  it('push over gRPC, over the REST bridge and from a file reaches a subscriber', async () => {
    const c = await connect();
    expect(await c.subscribe('cli-news')).toMatchObject({ code: 20001 });

    const viaGrpc = JSON.parse(await ok(['push', '--topic', 'cli-news', '--data', 'over grpc', '--grpc', node.grpcAddress])) as Record<string, string>;
    expect(viaGrpc).toMatchObject({ nodeId: node.nodeId });
    expect(viaGrpc.messageId).toMatch(/\S/);
    expect((await c.next(isDelivery)).text).toBe('over grpc');

    const viaHttp = JSON.parse(await ok(['push', '--topic', 'cli-news', '--data', 'over http', '--http', node.httpUrl])) as Record<string, string>;
    expect(viaHttp).toMatchObject({ nodeId: node.nodeId });
    expect((await c.next((f) => isDelivery(f) && f.text === 'over http')).text).toBe('over http');

    const dir = mkdtempSync(join(tmpdir(), 'pushwire-push-'));
    try {
      writeFileSync(join(dir, 'payload.json'), '{"from":"file"}');
      await ok(['push', '--topic', 'cli-news', '--file', join(dir, 'payload.json'), '--grpc', node.grpcAddress]);
      expect((await c.next((f) => isDelivery(f) && f.text.includes('file'))).json).toEqual({ from: 'file' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await ok(['push', '--topic', 'cli-news', '--file', '-', '--grpc', node.grpcAddress], 'from stdin');
    expect((await c.next((f) => isDelivery(f) && f.text === 'from stdin')).text).toBe('from stdin');
  });

  it('push to a user: --uid alone reaches every connection of that user', async () => {
    const jwt = (await ok(['token', '--sub', 'carol', '--secret', SECRET])).trim();
    const c = await connect(`?token=${jwt}`);
    await ok(['push', '--uid', 'carol', '--data', 'just for carol', '--grpc', node.grpcAddress]);
    expect((await c.next((f) => isDelivery(f) && f.text === 'just for carol')).text).toBe('just for carol');
  });

  it('consume prints client events as proto3 JSON lines; Ctrl-C ends it with 0', async () => {
    const proc = spawn(process.execPath, [CLI, 'consume', '--pid', 'default', '--group', 'cli', '--grpc', node.grpcAddress]);
    try {
      const lines: string[] = [];
      let stderr = '';
      proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      createInterface({ input: proc.stdout }).on('line', (l) => lines.push(l));
      await waitFor(() => stderr.includes('consuming events of project "default", group "cli"'), 10_000, 'the consumer to register');

      const jwt = (await ok(['token', '--sub', 'dave', '--secret', SECRET])).trim();
      const c = await connect(`?token=${jwt}`);
      c.send({ code: 7, id: 5, topic: 'orders.create', data: { item: 'book' } });
      expect((await c.next((f) => f.json?.id === 5)).json).toMatchObject({ code: 20005 });
      await waitFor(() => lines.some((l) => l.includes('CLIENT_EVENT_TYPE_REQUEST')), 10_000, 'the request event');
      const events = lines.map((l) => JSON.parse(l) as Record<string, string>);
      expect(events.find((e) => e.type === 'CLIENT_EVENT_TYPE_CONNECT')).toMatchObject({ uid: 'dave', pid: 'default', cid: c.cid });
      const request = events.find((e) => e.type === 'CLIENT_EVENT_TYPE_REQUEST')!;
      expect(request).toMatchObject({ uid: 'dave', cid: c.cid, requestId: '5', topic: 'orders.create', nodeId: node.nodeId });
      expect(JSON.parse(Buffer.from(request.data!, 'base64').toString())).toEqual({ item: 'book' });

      // The backend's answer: a push to the requester's cid carrying reply_to.
      await ok(['push', '--cid', request.cid!, '--reply-to', request.requestId!, '--data', '{"ok":true}', '--grpc', node.grpcAddress]);
      expect((await c.next((f) => f.json?.code === 20006)).json).toEqual({ code: 20006, message: 'reply', id: 5, data: { ok: true } });
    } finally {
      const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
      proc.kill('SIGINT');
      expect(await exited).toBe(0);
    }
  });

  it('nodes lists this node with its addresses', async () => {
    const json = JSON.parse(await ok(['nodes', '--grpc', node.grpcAddress, '--json'])) as { nodes: Array<Record<string, unknown>> };
    expect(json.nodes).toHaveLength(1);
    expect(json.nodes[0]).toMatchObject({ nodeId: node.nodeId, grpcAddress: node.grpcAddress, wsAddress: `127.0.0.1:${node.ports.ws}` });
    const text = await ok(['nodes', '--grpc', node.grpcAddress]);
    expect(text).toMatch(/^NODE\s+WS\s+HTTP\s+GRPC\s+VERSION\s+UPTIME\s+CONNECTIONS\s+SUBSCRIPTIONS$/m);
    expect(text).toContain(node.nodeId);
  });
});

describe('pushwire token with --key (RS256, ES256) against --jwt-public-key', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pushwire-token-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const [alg, pair] of [
    ['RS256', () => generateKeyPairSync('rsa', { modulusLength: 2048 })],
    ['ES256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' })],
  ] as const) {
    it(`${alg}: the node logs the token in`, async () => {
      const { publicKey, privateKey } = pair();
      writeFileSync(join(dir, `${alg}.pub`), publicKey.export({ type: 'spki', format: 'pem' }));
      writeFileSync(join(dir, `${alg}.key`), privateKey.export({ type: 'pkcs8', format: 'pem' }));
      const node = await NodeProcess.start(['--jwt-public-key', join(dir, `${alg}.pub`)]);
      try {
        const jwt = (await ok(['token', '--sub', 'erin', '--key', join(dir, `${alg}.key`)])).trim();
        expect(JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()).alg).toBe(alg);
        const c = await TestClient.connect(node.wsUrl);
        expect(await c.login(jwt)).toMatchObject({ code: 20003 });
        c.close();
      } finally {
        await node.stop();
      }
    });
  }

  it('an unsupported key (Ed25519) or a missing file is a one-line error, exit 2', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    writeFileSync(join(dir, 'ed.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const ed = await runCli(['token', '--sub', 'x', '--key', join(dir, 'ed.key')]);
    expect(ed.code).toBe(2);
    expect(ed.stderr).toBe('pushwire: token: --key: unsupported key type "ed25519": use an RSA (RS256) or EC P-256 (ES256) key; try "pushwire token --help"\n');
    const missing = await runCli(['token', '--sub', 'x', '--key', join(dir, 'nope.key')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^pushwire: token: --key: cannot read ".*nope\.key": ENOENT; try/);
  });
});

describe('operator commands: arguments and failures', () => {
  for (const name of ['token', 'push', 'consume', 'nodes', 'online', 'check-config']) {
    it(`${name} --help: usage with placeholders and aligned columns`, async () => {
      const r = await runCli([name, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: pushwire ${name} `));
      const options = r.stdout.slice(r.stdout.indexOf('Options:\n') + 9).split('\n').filter(Boolean);
      expect(options.length).toBeGreaterThan(1);
      // Every description starts in the same column.
      const starts = new Set(options.map((l) => /^ {2}--\S+(?: [A-Z:]+)? +/.exec(l)![0].length));
      expect(starts.size).toBe(1);
    });
  }

  it('pushwire --help lists every command', async () => {
    const r = await runCli(['--help']);
    for (const name of ['serve', 'token', 'push', 'consume', 'nodes', 'online', 'check-config']) expect(r.stdout).toMatch(new RegExp(`^  ${name} +\\S`, 'm'));
  });

  it('bad arguments exit 2 with one line and a hint', async () => {
    const cases = [
      [['token', '--secret', 's'], 'pushwire: token: --sub is required; try "pushwire token --help"\n'],
      [['token', '--sub', 'u', '--secret', 's', '--key', 'f'], 'pushwire: token: give exactly one of --secret and --key; try "pushwire token --help"\n'],
      [['token', '--sub', 'u', '--secret', 's', '--ttl', 'soon'], 'pushwire: token: --ttl must be a positive duration such as 30m or 1h; try "pushwire token --help"\n'],
      [['push', '--data', 'x'], 'pushwire: push: give --topic, --uid, --cid or --broadcast; try "pushwire push --help"\n'],
      [['push', '--topic', 't', '--data', 'x', '--file', 'f'], 'pushwire: push: give at most one of --data and --file; try "pushwire push --help"\n'],
      [['push', '--topic', 't', '--bogus'], 'pushwire: push: unknown option --bogus; try "pushwire push --help"\n'],
      [['consume'], 'pushwire: consume: --pid is required; try "pushwire consume --help"\n'],
      [['nodes', '--grpc'], 'pushwire: nodes: option --grpc needs a value; try "pushwire nodes --help"\n'],
    ] as const;
    const results = await Promise.all(cases.map(([args]) => runCli([...args])));
    cases.forEach(([args, message], i) => {
      expect(results[i]!.code, args.join(' ')).toBe(2);
      expect(results[i]!.stderr).toBe(message);
    });
  });

  it('a node that is not there: exit 1, one line naming the address', async () => {
    const port = await freePort(); // free a moment ago: nothing listens there
    const r = await runCli(['nodes', '--grpc', `127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`pushwire: nodes: 127.0.0.1:${port}: UNAVAILABLE: connection refused (is a node listening there? see --grpc)\n`);
    const h = await runCli(['push', '--topic', 't', '--http', `http://127.0.0.1:${port}`]);
    expect(h.code).toBe(1);
    expect(h.stderr).toBe(`pushwire: push: http://127.0.0.1:${port}: connection refused (is a node listening there? see --http)\n`);
  });
});

describe('operator commands against a node with API keys', () => {
  let node: NodeProcess;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pushwire-keys-'));
    writeFileSync(
      join(dir, 'projects.yaml'),
      'projects:\n  - pid: shop\n    login:\n      jwtSecret: s\n    apiKeys:\n      - key: shop-key-0123456789\n',
    );
    node = await NodeProcess.start(['--projects', join(dir, 'projects.yaml')]);
  });
  afterAll(async () => {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('without --key the node refuses (exit 1, the status); with it the push and the reads work', async () => {
    const r = await runCli(['push', '--topic', 't', '--data', 'x', '--grpc', node.grpcAddress]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pushwire: push: 127\.0\.0\.1:\d+: UNAUTHENTICATED: .+\n$/);
    const h = await runCli(['push', '--topic', 't', '--data', 'x', '--http', node.httpUrl]);
    expect(h.code).toBe(1);
    expect(h.stderr).toMatch(/^pushwire: push: http:\/\/127\.0\.0\.1:\d+: HTTP 401 UNAUTHENTICATED: .+\n$/);

    expect(JSON.parse(await ok(['push', '--topic', 't', '--data', 'x', '--grpc', node.grpcAddress, '--key', 'shop-key-0123456789']))).toMatchObject({ nodeId: node.nodeId });
    expect(JSON.parse(await ok(['push', '--topic', 't', '--data', 'x', '--http', node.httpUrl, '--key', 'shop-key-0123456789']))).toMatchObject({ nodeId: node.nodeId });
    expect(await ok(['online', '--pid', 'shop', '--grpc', node.grpcAddress, '--key', 'shop-key-0123456789'])).toContain('project "shop": 0 users online');
  }, 120_000); // seven CLI processes in a row: slow on a loaded machine
});

describe('pushwire check-config', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pushwire-check-'));
    writeFileSync(join(dir, 'projects.yaml'), 'projects:\n  - pid: shop\n    apiKeys:\n      - key: shop-key-0123456789\n  - pid: blog\n');
    writeFileSync(join(dir, 'pushwire.yaml'), `ws-port: 20100\nlog-level: warn\nprojects: ${join(dir, 'projects.yaml')}\n`);
    writeFileSync(join(dir, 'bad-projects.yaml'), 'projects:\n  - pid: "no spaces allowed"\n');
    writeFileSync(join(dir, 'bad-config.yaml'), 'ws-port: 70000\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('valid files: exit 0, one ok line each (the config names the projects file, which is checked too)', async () => {
    const projects = join(dir, 'projects.yaml');
    expect(await ok(['check-config', '--projects', projects])).toBe(`${projects}: ok (2 projects: shop, blog; 1 API key)\n`);
    const config = join(dir, 'pushwire.yaml');
    expect(await ok(['check-config', '--config', config])).toBe(`${config}: ok\n${projects}: ok (2 projects: shop, blog; 1 API key)\n`);
  });

  it("invalid files: exit 1 with exactly the message `pushwire serve` fails with", async () => {
    // serve gets ephemeral ports from flags except where the file's port is the point (flags beat the file).
    const ports = ['--host', '127.0.0.1', '--ws-port', '0', '--http-port', '0', '--grpc-port', '0'];
    const checks = [
      [['--projects', join(dir, 'bad-projects.yaml')], [...ports, '--projects', join(dir, 'bad-projects.yaml')]],
      [['--config', join(dir, 'bad-config.yaml')], ['--config', join(dir, 'bad-config.yaml')]],
      [['--projects', join(dir, 'missing.yaml')], [...ports, '--projects', join(dir, 'missing.yaml')]],
    ] as const;
    const runs = await Promise.all(
      checks.map(([check, serve]) => Promise.all([runCli(['check-config', ...check]), runCli(['serve', ...serve])])),
    );
    for (const [c, s] of runs) {
      expect(c.code, c.stderr).toBe(1);
      expect(s.code, s.stderr).toBe(2);
      expect(c.stderr).toMatch(/^pushwire: .+\n$/);
      expect(c.stderr).toBe(s.stderr);
    }
  }, 60_000);

  it('without a file to check: exit 2', async () => {
    const r = await runCli(['check-config']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('pushwire: check-config: give --config, --projects or both; try "pushwire check-config --help"\n');
  });

  it('a node starts from the config file it checked', async () => {
    writeFileSync(join(dir, 'node.yaml'), 'host: 127.0.0.1\nnode-id: from-config-file\njwt-secret: file-secret\n');
    const node = await NodeProcess.start(['--config', join(dir, 'node.yaml')]);
    try {
      expect(node.nodeId).toBe('from-config-file');
      const jwt = (await ok(['token', '--sub', 'frank', '--secret', 'file-secret'])).trim();
      const c = await TestClient.connect(node.wsUrl);
      expect(await c.login(jwt)).toMatchObject({ code: 20003 });
      c.close();
    } finally {
      await node.stop();
    }
  });
});
