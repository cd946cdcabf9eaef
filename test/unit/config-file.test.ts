import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, OPTIONS, parseConfig } from '../../src/config.js';

/** `--config FILE`: every option by its flag name; precedence flag > env > file > default. */
describe('parseConfig with a config file', () => {
  let dir: string;
  let n = 0;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pushwire-config-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (text: string, ext = 'yaml'): string => {
    const path = join(dir, `c${n++}.${ext}`);
    writeFileSync(path, text);
    return path;
  };
  const problem = (args: string[], env: NodeJS.ProcessEnv = {}): string => {
    try {
      parseConfig(args, env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error('expected a ConfigError');
  };

  it('reads every option by its flag name (YAML)', () => {
    const path = file(
      [
        'host: 127.0.0.1',
        'ws-port: 20001',
        'http-port: "20002"',
        'grpc-port: 20003',
        'node-id: from-file',
        'redis: redis://127.0.0.1:6390',
        'redis-prefix: "pw:"',
        'jwt-secret: file-secret',
        'auth-url: http://127.0.0.1:9/auth',
        'auth-timeout: 2s',
        'ping-timeout: 45s',
        'max-message-bytes: 32KiB',
        'max-push-bytes: 100000',
        'consumer-ttl: 20s',
        'idempotency-window: 1m',
        'presence-ttl: 40s',
        'online-report-interval: 5s',
        'max-queue-bytes: 2MiB',
        'shutdown-timeout: 4s',
        'bus-timeout: 3s',
        'bus-max-in-flight: 500',
        'log-level: warn',
        'admin-key: admin-from-file',
        'workers: 3',
        'write-delay: 5ms',
        'max-connections: 900',
        'max-subscriptions: 64',
        'allowed-origins: "https://a.example, https://*.b.example"',
        'cors-origins: "*"',
        'header-timeout: 5s',
        'request-timeout: 20s',
        `channels: '{"history":{"size":5,"ttl":"1m"}}'`,
        'v1-ping-interval: 30s',
        'v1-pong-timeout: 9s',
        'demo: true',
        'grpc-fast-path: false',
      ].join('\n'),
    );
    const c = parseConfig(['--config', path], {});
    expect(c).toMatchObject({
      host: '127.0.0.1',
      wsPort: 20001,
      httpPort: 20002,
      grpcPort: 20003,
      nodeId: 'from-file',
      redis: 'redis://127.0.0.1:6390',
      redisPrefix: 'pw:',
      jwtSecret: 'file-secret',
      authUrl: 'http://127.0.0.1:9/auth',
      authTimeoutMs: 2000,
      pingTimeoutMs: 45_000,
      maxMessageBytes: 32 * 1024,
      maxPushBytes: 100_000,
      consumerTtlMs: 20_000,
      idempotencyWindowMs: 60_000,
      presenceTtlMs: 40_000,
      onlineReportIntervalMs: 5000,
      maxQueueBytes: 2 * 1024 ** 2,
      shutdownTimeoutMs: 4000,
      busTimeoutMs: 3000,
      busMaxInFlight: 500,
      logLevel: 'warn',
      adminKey: 'admin-from-file',
      workers: 3,
      writeDelayMs: 5,
      maxConnections: 900,
      maxSubscriptions: 64,
      allowedOrigins: ['https://a.example', 'https://*.b.example'],
      corsOrigins: ['*'],
      headerTimeoutMs: 5000,
      requestTimeoutMs: 20_000,
      channels: '{"history":{"size":5,"ttl":"1m"}}',
      v1PingIntervalMs: 30_000,
      v1PongTimeoutMs: 9000,
      demo: true,
      grpcFastPath: false,
    });
  });

  it('the test above sets every option but the two that exclude others (projects, jwt-public-key)', () => {
    const set = ['host', 'ws-port', 'http-port', 'grpc-port', 'node-id', 'redis', 'redis-prefix', 'jwt-secret', 'auth-url', 'auth-timeout',
      'ping-timeout', 'max-message-bytes', 'max-push-bytes', 'consumer-ttl', 'idempotency-window', 'presence-ttl', 'online-report-interval',
      'max-queue-bytes', 'shutdown-timeout', 'bus-timeout', 'bus-max-in-flight', 'log-level', 'admin-key', 'workers', 'write-delay',
      'max-connections', 'max-subscriptions', 'allowed-origins', 'cors-origins', 'header-timeout', 'request-timeout', 'channels', 'v1-ping-interval',
      'v1-pong-timeout', 'demo', 'grpc-fast-path'];
    expect(OPTIONS.map((o) => o.flag).filter((f) => !set.includes(f)).sort()).toEqual(['jwt-public-key', 'projects']);
  });

  it('JSON works too (JSON is YAML)', () => {
    expect(parseConfig(['--config', file('{"ws-port": 20011, "log-level": "debug"}', 'json')], {})).toMatchObject({ wsPort: 20011, logLevel: 'debug' });
  });

  it('precedence: flag > env > file > default', () => {
    const path = file('ws-port: 20021\nhttp-port: 20022\ngrpc-port: 20023\n');
    const c = parseConfig(['--config', path, '--ws-port', '20031'], { PUSHWIRE_WS_PORT: '20041', PUSHWIRE_HTTP_PORT: '20042' });
    expect(c.wsPort).toBe(20031); // flag over env and file
    expect(c.httpPort).toBe(20042); // env over file
    expect(c.grpcPort).toBe(20023); // file over default
    expect(c.host).toBe('0.0.0.0'); // default
  });

  it('PUSHWIRE_CONFIG names the file when --config is absent; --config wins over it', () => {
    const a = file('ws-port: 20051\n');
    const b = file('ws-port: 20052\n');
    expect(parseConfig([], { PUSHWIRE_CONFIG: a }).wsPort).toBe(20051);
    expect(parseConfig(['--config', b], { PUSHWIRE_CONFIG: a }).wsPort).toBe(20052);
  });

  it('an empty file, and a key set to nothing, mean the defaults', () => {
    expect(parseConfig(['--config', file('')], {}).wsPort).toBe(8812);
    expect(parseConfig(['--config', file('redis:\nws-port: 20061\n')], {})).toMatchObject({ redis: undefined, wsPort: 20061 });
  });

  it('exact messages: a bad value names the file and the key', () => {
    const path = file('ws-port: 70000\n');
    expect(problem(['--config', path])).toBe(`${path}: ws-port: must be a port number 0-65535, got "70000"`);
    const d = file('ping-timeout: soon\n');
    expect(problem(['--config', d])).toBe(`${d}: ping-timeout: must be a positive duration such as 500ms, 30s or 2m, got "soon"`);
  });

  it('exact messages: a bad value from a flag over the file still names the flag', () => {
    expect(problem(['--config', file('ws-port: 20071\n'), '--ws-port', 'x'])).toBe('--ws-port (PUSHWIRE_WS_PORT): must be a port number 0-65535, got "x"');
  });

  it('exact messages: unknown keys (with a hint), lists, a non-mapping, bad YAML, a missing file', () => {
    const unknown = file('wsPort: 1\n');
    expect(problem(['--config', unknown])).toBe(`${unknown}: unknown option "wsPort" (did you mean "ws-port"?)`);
    const other = file('frobnicate: 1\n');
    expect(problem(['--config', other])).toBe(`${other}: unknown option "frobnicate"`);
    const list = file('host: [a, b]\n');
    expect(problem(['--config', list])).toBe(`${list}: host: must be a single value, got a list`);
    const scalar = file('just text\n');
    expect(problem(['--config', scalar])).toBe(`${scalar}: must be a mapping of option names to values (e.g. "ws-port: 8812")`);
    const broken = file('host: "unterminated\n');
    expect(problem(['--config', broken])).toMatch(new RegExp(`^${broken.replaceAll('.', '\\.')}: not valid YAML or JSON: `));
    expect(problem(['--config', join(dir, 'missing.yaml')])).toBe(`--config: cannot read "${join(dir, 'missing.yaml')}": ENOENT`);
  });

  it('the cross-option checks apply to file values as well', () => {
    expect(problem(['--config', file('projects: p.yaml\njwt-secret: s\n')])).toBe(
      '--jwt-secret cannot be combined with --projects: set each project\'s login in the projects file',
    );
  });
});
