import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OPTIONS, envName } from '../../src/config.js';
import { CLI, NodeProcess, runCli, type LogLine } from '../helpers/node-process.js';
import { freePort, waitFor } from '../helpers/ports.js';
import { TestClient } from '../helpers/ws-client.js';

/** The options issue 2 requires, each with its env var. */
const REQUIRED_FLAGS = [
  'host',
  'ws-port',
  'http-port',
  'grpc-port',
  'node-id',
  'redis',
  'jwt-secret',
  'jwt-public-key',
  'auth-url',
  'ping-timeout',
  'max-message-bytes',
  'max-queue-bytes',
  'log-level',
];

/** The environment of the test process without any PUSHWIRE_* variable, so only what a test sets counts. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PUSHWIRE_')) env[k] = v;
  return { ...env, ...extra };
}

/** Runs `pushwire serve ...args` expecting a fast start-up failure with exit code 2. */
async function expectConfigError(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await runCli(['serve', '--host', '127.0.0.1', '--ws-port', '0', '--http-port', '0', '--grpc-port', '0', ...args], cleanEnv(env));
  expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(2);
  expect(r.stderr).toMatch(/^pushwire: /);
  expect(r.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
  expect(r.stdout).not.toContain('pushwire node listening');
  return r.stderr;
}

/**
 * `pushwire serve` with no flags at all: everything from `env`. Resolves once the node logs its
 * ports (the same line NodeProcess waits for).
 */
async function serveFromEnv(env: NodeJS.ProcessEnv): Promise<{ proc: ChildProcess; logs: LogLine[]; stop: () => Promise<number | null> }> {
  const proc = spawn(process.execPath, [CLI, 'serve'], { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv(env) });
  const logs: LogLine[] = [];
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as LogLine);
    } catch {
      logs.push({ level: 30, msg: line });
    }
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  await waitFor(() => {
    if (proc.exitCode !== null) throw new Error(`node exited with ${proc.exitCode}: ${stderr}`);
    return logs.some((l) => l.msg === 'pushwire node listening');
  }, 10_000, 'the node to start');
  return {
    proc,
    logs,
    stop: () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

describe('pushwire --help and --version', () => {
  it('--help lists every option with its env var and default', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/Usage: pushwire serve/);
    for (const flag of REQUIRED_FLAGS) {
      expect(r.stdout).toContain(`--${flag}`);
      expect(r.stdout).toContain(envName(flag));
    }
    // Every option the parser knows is documented, with its default when it has one.
    for (const o of OPTIONS) {
      expect(r.stdout).toContain(`--${o.flag}`);
      expect(r.stdout).toContain(`PUSHWIRE_${o.flag.toUpperCase().replaceAll('-', '_')}`);
      if (o.default !== undefined) expect(r.stdout).toContain(`(default ${o.default})`);
    }
    for (const def of ['8812', '8912', '9912']) expect(r.stdout).toContain(`(default ${def})`);
  });

  it('"help" prints the same as --help; "serve --help" is its options part', async () => {
    const main = await runCli(['--help']);
    const serve = await runCli(['serve', '--help']);
    const help = await runCli(['help']);
    expect(serve.code).toBe(0);
    expect(help.code).toBe(0);
    expect(help.stdout).toBe(main.stdout);
    expect(main.stdout.endsWith(serve.stdout)).toBe(true);
    expect(serve.stdout).toMatch(/^Usage: pushwire serve/);
  });

  it('serve --help: value placeholders and one column for every description', async () => {
    const r = await runCli(['serve', '--help']);
    expect(r.stdout).toMatch(/^ {2}--ws-port PORT +WebSocket port/m);
    expect(r.stdout).toMatch(/^ {2}--ping-timeout DURATION +close clients/m);
    expect(r.stdout).toMatch(/^ {2}--max-queue-bytes SIZE +/m);
    expect(r.stdout).toMatch(/^ {2}--config FILE +YAML or JSON/m);
    const lines = r.stdout.slice(r.stdout.indexOf('Options:\n') + 9).split('\n').filter(Boolean);
    const starts = new Set(lines.map((l) => /^ {2}(?:--\S+ \S+)? +/.exec(l)![0].length));
    expect(starts.size).toBe(1);
  });

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('an unknown command exits 2 with a hint', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command "frobnicate"/);
    expect(r.stderr).toMatch(/--help/);
  });
});

describe('pushwire serve: invalid options fail fast with exit code 2', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'pushwire-cli-'));
  });
  afterAll(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  it('unknown option', async () => {
    expect(await expectConfigError(['--no-such-flag', '1'])).toMatch(/unknown option --no-such-flag/);
  });

  it('a positional argument', async () => {
    expect(await expectConfigError(['stray'])).toMatch(/unexpected argument "stray"/);
  });

  it('an option without its value', async () => {
    expect(await expectConfigError(['--ws-port'])).toMatch(/--ws-port needs a value/);
  });

  for (const port of ['70000', '65536', '-1', 'abc', '1.5', '']) {
    it(`bad port ${JSON.stringify(port)}`, async () => {
      const err = await expectConfigError([`--http-port=${port}`]);
      expect(err).toMatch(/--http-port/);
      expect(err).toMatch(/port number/);
    });
  }

  it('bad port from the environment names the env var', async () => {
    const r = await runCli(['serve'], cleanEnv({ PUSHWIRE_WS_PORT: '70000' }));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--ws-port \(PUSHWIRE_WS_PORT\)/);
    expect(r.stderr).toContain('"70000"');
  });

  for (const size of ['12XB', '0', '-1', 'lots', '1.5KiB']) {
    it(`bad size ${JSON.stringify(size)}`, async () => {
      const err = await expectConfigError(['--max-message-bytes', size]);
      expect(err).toMatch(/--max-message-bytes/);
      expect(err).toMatch(/size/);
    });
  }

  for (const duration of ['abc', '0', '-5s', '10 years', '5d']) {
    it(`bad duration ${JSON.stringify(duration)}`, async () => {
      const err = await expectConfigError(['--ping-timeout', duration]);
      expect(err).toMatch(/--ping-timeout/);
      expect(err).toMatch(/duration/);
    });
  }

  it('bad log level', async () => {
    const err = await expectConfigError(['--log-level', 'loud']);
    expect(err).toMatch(/--log-level/);
    expect(err).toMatch(/info/); // lists the valid levels
    expect(err).toContain('"loud"');
  });

  it('a redis URL that is not redis:// (http://x)', async () => {
    expect(await expectConfigError(['--redis', 'http://x'])).toMatch(/--redis.*redis:\/\//);
  });

  it('a redis value that is not a URL at all', async () => {
    expect(await expectConfigError(['--redis', 'localhost'])).toMatch(/--redis/);
  });

  it('an auth URL that is not http(s)', async () => {
    expect(await expectConfigError(['--auth-url', 'ftp://x/auth'])).toMatch(/--auth-url/);
  });

  it('an invalid node id', async () => {
    expect(await expectConfigError(['--node-id', 'has space'])).toMatch(/--node-id/);
  });

  it('an empty string option', async () => {
    expect(await expectConfigError(['--host='])).toMatch(/--host.*empty/);
  });

  it('an unreadable --jwt-public-key file', async () => {
    const missing = join(tmp, 'missing.pem');
    const err = await expectConfigError(['--jwt-public-key', missing]);
    expect(err).toMatch(/--jwt-public-key/);
    expect(err).toContain(missing);
  });

  it('a --jwt-public-key file that is not a public key', async () => {
    const garbage = join(tmp, 'garbage.pem');
    writeFileSync(garbage, 'this is not a PEM key\n');
    expect(await expectConfigError(['--jwt-public-key', garbage])).toMatch(/--jwt-public-key/);
  });

  it('a --jwt-public-key of an unsupported key type (Ed25519)', async () => {
    const file = join(tmp, 'ed25519.pem');
    writeFileSync(file, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
    expect(await expectConfigError(['--jwt-public-key', file])).toMatch(/--jwt-public-key.*(RSA|RS256|ES256)/);
  });

  it('--max-push-bytes larger than --max-queue-bytes', async () => {
    const err = await expectConfigError(['--max-push-bytes', '2MiB', '--max-queue-bytes', '1MiB']);
    expect(err).toMatch(/--max-push-bytes/);
    expect(err).toMatch(/--max-queue-bytes/);
  });

  it('--max-push-bytes larger than the default --max-queue-bytes', async () => {
    expect(await expectConfigError(['--max-push-bytes', '4MiB'])).toMatch(/--max-push-bytes.*--max-queue-bytes/);
  });
});

describe('pushwire serve: start-up failures other than options', () => {
  let blocker: Server;
  let port: number;
  beforeAll(async () => {
    blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    port = (blocker.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((r) => blocker.close(r));
  });

  for (const [flag, what] of [
    ['--http-port', 'HTTP'],
    ['--ws-port', 'WebSocket'],
    ['--grpc-port', 'gRPC'],
  ] as const) {
    it(`${flag} already in use: exits 2 with one human line (not hung, not a stack trace)`, async () => {
      const ports: Record<string, string> = { '--ws-port': '0', '--http-port': '0', '--grpc-port': '0', [flag]: String(port) };
      const r = await runCli(['serve', '--host', '127.0.0.1', ...Object.entries(ports).flat()], cleanEnv());
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`pushwire: cannot listen for ${what} on 127.0.0.1:${port} (--host, ${flag}): the port is already in use\n`);
      expect(r.stdout).not.toContain('pushwire node listening');
      expect(r.stdout).not.toMatch(/\n\s+at /);
    });
  }

  it('a --host this machine cannot bind: exits 2 with one human line', async () => {
    const r = await runCli(['serve', '--host', 'no-such-host.invalid', '--ws-port', '0', '--http-port', '0', '--grpc-port', '0'], cleanEnv());
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('pushwire: cannot listen for WebSocket on no-such-host.invalid:0 (--host, --ws-port): unknown host (check --host)\n');
  });
});

describe('pushwire serve: the human start-up line', () => {
  it('says where to connect, on stderr, beside the JSON log on stdout', async () => {
    const node = await NodeProcess.start();
    try {
      await waitFor(() => node.stderr.includes('listening on'), 10_000, 'the listening line');
      expect(node.stderr).toContain(
        `pushwire: node ${node.nodeId} listening on ws://127.0.0.1:${node.ports.ws}/ws, http://127.0.0.1:${node.ports.http}, grpc 127.0.0.1:${node.ports.grpc}\n`,
      );
    } finally {
      await node.stop();
    }
  });
});

describe('pushwire serve: environment variables and flags', () => {
  const stops: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });

  it('starts from PUSHWIRE_* env vars alone and logs its bound ports as JSON', async () => {
    const node = await serveFromEnv({
      PUSHWIRE_HOST: '127.0.0.1',
      PUSHWIRE_WS_PORT: '0',
      PUSHWIRE_HTTP_PORT: '0',
      PUSHWIRE_GRPC_PORT: '0',
      PUSHWIRE_NODE_ID: 'abc',
    });
    stops.push(node.stop);
    const line = node.logs.find((l) => l.msg === 'pushwire node listening')!;
    expect(line.nodeId).toBe('abc');
    expect(line.host).toBe('127.0.0.1');
    for (const key of ['wsPort', 'httpPort', 'grpcPort']) {
      expect(typeof line[key]).toBe('number');
      expect(line[key]).toBeGreaterThan(0);
    }
    expect(new Set([line.wsPort, line.httpPort, line.grpcPort]).size).toBe(3);
    expect(typeof line.level).toBe('number');
    expect(typeof line.time).toBe('number');
    // The logged ports are the real ones.
    expect((await fetch(`http://127.0.0.1:${line.httpPort}/healthz`)).status).toBe(200);
    const ws = await TestClient.connect(`ws://127.0.0.1:${line.wsPort}/ws`);
    expect(ws.cid).toMatch(/^abc-/);
    await ws.close();
  });

  it('PUSHWIRE_NODE_ID shows in the log and in the REST response', async () => {
    const node = await NodeProcess.start([], cleanEnv({ PUSHWIRE_NODE_ID: 'abc' }));
    stops.push(() => node.stop());
    expect(node.nodeId).toBe('abc');
    const res = await fetch(`${node.httpUrl}/v1/pushData`, { method: 'POST', body: '{}' });
    expect(((await res.json()) as { nodeId: string }).nodeId).toBe('abc');
  });

  it('without --node-id a random id is generated, different per process', async () => {
    const a = await NodeProcess.start([], cleanEnv());
    stops.push(() => a.stop());
    const b = await NodeProcess.start([], cleanEnv());
    stops.push(() => b.stop());
    expect(a.nodeId).toMatch(/^[0-9a-f]{8}$/);
    expect(b.nodeId).toMatch(/^[0-9a-f]{8}$/);
    expect(a.nodeId).not.toBe(b.nodeId);
  });

  it('flags beat env vars', async () => {
    // PUSHWIRE_WS_PORT=70000 would be fatal; the --ws-port 0 flag NodeProcess passes wins.
    const node = await NodeProcess.start(['--node-id', 'from-flag'], cleanEnv({ PUSHWIRE_NODE_ID: 'from-env', PUSHWIRE_WS_PORT: '70000' }));
    stops.push(() => node.stop());
    expect(node.nodeId).toBe('from-flag');
    expect(node.ports.ws).toBeGreaterThan(0);
  });

  it('env vars are used for options not given as flags (PUSHWIRE_MAX_PUSH_BYTES)', async () => {
    const node = await NodeProcess.start([], cleanEnv({ PUSHWIRE_MAX_PUSH_BYTES: '10' }));
    stops.push(() => node.stop());
    const ok = await fetch(`${node.httpUrl}/v1/pushData`, { method: 'POST', body: JSON.stringify({ data: Buffer.alloc(10).toString('base64') }) });
    expect(ok.status).toBe(200);
    const tooBig = await fetch(`${node.httpUrl}/v1/pushData`, { method: 'POST', body: JSON.stringify({ data: Buffer.alloc(11).toString('base64') }) });
    expect(tooBig.status).toBe(400);
  });

  it('--log-level warn (here via PUSHWIRE_LOG_LEVEL) silences info lines', async () => {
    // The listening line is info, so start-up is detected by polling /healthz on a known port.
    const httpPort = await freePort();
    const r = spawn(process.execPath, [CLI, 'serve', '--host', '127.0.0.1', '--ws-port', '0', '--http-port', String(httpPort), '--grpc-port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: cleanEnv({ PUSHWIRE_LOG_LEVEL: 'warn' }),
    });
    let out = '';
    r.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => r.once('exit', (code) => resolve(code)));
    stops.push(async () => {
      if (r.exitCode === null && r.signalCode === null) r.kill('SIGKILL');
      return exited;
    });
    await waitFor(async () => {
      if (r.exitCode !== null) throw new Error(`node exited with ${r.exitCode}`);
      return (await fetch(`http://127.0.0.1:${httpPort}/healthz`).catch(() => undefined))?.status === 200;
    }, 30_000, 'the node to answer /healthz');
    r.kill('SIGTERM');
    expect(await exited).toBe(0);
    const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogLine);
    // No login method configured: the start-up warning is there, but no info line (level 30) is.
    expect(lines.some((l) => l.level === 40)).toBe(true);
    expect(lines.filter((l) => l.level < 40)).toEqual([]);
  });
});

describe('pushwire serve: graceful shutdown', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal}: clients are closed with 1012, /readyz stops answering 200, the process exits 0`, async () => {
      const node = await NodeProcess.start(['--shutdown-timeout', '3s'], cleanEnv());
      try {
        const a = await TestClient.connect(node.wsUrl);
        const b = await TestClient.connect(node.wsUrl);
        expect((await a.subscribe('t')).code).toBe(20001);
        expect((await fetch(`${node.httpUrl}/readyz`)).status).toBe(200);

        node.proc.kill(signal);
        // From now on /readyz is 503 or the port is closed; it never answers "ready" again.
        const readyAfter = await waitFor(async () => {
          try {
            const res = await fetch(`${node.httpUrl}/readyz`);
            return res.status === 200 ? undefined : `status ${res.status}`;
          } catch {
            return 'closed';
          }
        }, 5000, '/readyz to stop answering 200');
        expect(['status 503', 'closed']).toContain(readyAfter);

        expect((await a.closed).code).toBe(1012);
        expect((await b.closed).code).toBe(1012);
        expect(await node.exited).toBe(0);
        expect(node.logs.some((l) => l.msg === 'shutting down' && l.signal === signal)).toBe(true);
        expect(node.logs.some((l) => l.msg === 'shutdown complete')).toBe(true);
        expect(node.logs.some((l) => l.msg === 'shutdown timed out; exiting')).toBe(false);
        // Nothing listens any more.
        await expect(fetch(`${node.httpUrl}/healthz`)).rejects.toThrow();
      } finally {
        await node.stop('SIGKILL');
      }
    });
  }

  it('open idle HTTP keep-alive and gRPC connections do not hold up shutdown', async () => {
    const node = await NodeProcess.start(['--shutdown-timeout', '3s'], cleanEnv());
    const { pushClient, pushData } = await import('../helpers/grpc-client.js');
    const grpc = pushClient(node.grpcAddress);
    try {
      await pushData(grpc, { topic: 'x', data: Buffer.from('y') }); // leaves the channel connected
      await fetch(`${node.httpUrl}/healthz`); // leaves a keep-alive connection idle
      expect(await node.stop('SIGTERM')).toBe(0);
      expect(node.logs.some((l) => l.msg === 'shutdown timed out; exiting')).toBe(false);
    } finally {
      grpc.close();
      await node.stop('SIGKILL');
    }
  });

  it('a second signal during shutdown does not change the outcome', async () => {
    const node = await NodeProcess.start([], cleanEnv());
    const ws = await TestClient.connect(node.wsUrl);
    node.proc.kill('SIGTERM');
    node.proc.kill('SIGINT');
    expect((await ws.closed).code).toBe(1012);
    expect(await node.exited).toBe(0);
    expect(node.logs.filter((l) => l.msg === 'shutting down')).toHaveLength(1);
  });
});
