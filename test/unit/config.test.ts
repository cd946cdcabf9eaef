import { describe, expect, it } from 'vitest';
import { ConfigError, envName, helpText, OPTIONS, parseConfig, parseDuration, parseSize } from '../../src/config.js';

/** Parses with an empty environment unless one is given, so the machine's env never leaks in. */
const parse = (args: string[], env: NodeJS.ProcessEnv = {}) => parseConfig(args, env);

function configError(args: string[], env: NodeJS.ProcessEnv = {}): ConfigError {
  let err: unknown;
  try {
    parse(args, env);
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${JSON.stringify(args)} ${JSON.stringify(env)} to throw`).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

describe('parseConfig: defaults', () => {
  it('uses the documented defaults', () => {
    const c = parse([]);
    expect(c).toMatchObject({
      host: '0.0.0.0',
      wsPort: 8812,
      httpPort: 8912,
      grpcPort: 9912,
      redis: undefined,
      redisPrefix: 'pushwire:',
      jwtSecret: undefined,
      jwtPublicKey: undefined,
      authUrl: undefined,
      authTimeoutMs: 3000,
      pingTimeoutMs: 60_000,
      maxMessageBytes: 65536,
      maxPushBytes: 262_144,
      maxQueueBytes: 1_048_576,
      shutdownTimeoutMs: 10_000,
      logLevel: 'info',
    });
  });

  it('generates a node id when none is given: 8 hex chars, different each time', () => {
    const a = parse([]).nodeId;
    const b = parse([]).nodeId;
    expect(a).toMatch(/^[0-9a-f]{8}$/);
    expect(b).toMatch(/^[0-9a-f]{8}$/);
    expect(a).not.toBe(b);
  });

  it('keeps a given node id', () => {
    expect(parse(['--node-id', 'node-1.a_B']).nodeId).toBe('node-1.a_B');
    expect(parse([], { PUSHWIRE_NODE_ID: 'from-env' }).nodeId).toBe('from-env');
  });
});

describe('parseConfig: flags and env', () => {
  it('reads --flag value and --flag=value', () => {
    const c = parse([
      '--host', '127.0.0.1',
      '--ws-port=0',
      '--http-port', '0',
      '--grpc-port=1234',
      '--redis', 'redis://localhost:6379/0',
      '--redis-prefix=pw:',
      '--jwt-secret', 's3cret',
      '--jwt-public-key=/etc/key.pem',
      '--auth-url', 'http://auth.local/check',
      '--auth-timeout=500ms',
      '--ping-timeout', '30s',
      '--max-message-bytes', '1MiB',
      '--max-push-bytes=512KiB',
      '--max-queue-bytes', '2MiB',
      '--shutdown-timeout', '2m',
      '--log-level=debug',
    ]);
    expect(c).toMatchObject({
      host: '127.0.0.1',
      wsPort: 0,
      httpPort: 0,
      grpcPort: 1234,
      redis: 'redis://localhost:6379/0',
      redisPrefix: 'pw:',
      jwtSecret: 's3cret',
      jwtPublicKey: '/etc/key.pem',
      authUrl: 'http://auth.local/check',
      authTimeoutMs: 500,
      pingTimeoutMs: 30_000,
      maxMessageBytes: 1_048_576,
      maxPushBytes: 524_288,
      maxQueueBytes: 2_097_152,
      shutdownTimeoutMs: 120_000,
      logLevel: 'debug',
    });
  });

  it('--flag=value keeps everything after the first "=" (values may contain "=")', () => {
    expect(parse(['--jwt-secret=a=b==']).jwtSecret).toBe('a=b==');
    expect(parse(['--jwt-secret=--looks-like-a-flag']).jwtSecret).toBe('--looks-like-a-flag');
  });

  it('reads PUSHWIRE_* environment variables', () => {
    const c = parse([], {
      PUSHWIRE_HOST: '::1',
      PUSHWIRE_WS_PORT: '1',
      PUSHWIRE_HTTP_PORT: '2',
      PUSHWIRE_GRPC_PORT: '3',
      PUSHWIRE_REDIS: 'rediss://r:6380',
      PUSHWIRE_JWT_SECRET: 'env-secret',
      PUSHWIRE_AUTH_URL: 'https://a/b',
      PUSHWIRE_PING_TIMEOUT: '5s',
      PUSHWIRE_MAX_MESSAGE_BYTES: '1000',
      PUSHWIRE_MAX_QUEUE_BYTES: '4MiB',
      PUSHWIRE_LOG_LEVEL: 'warn',
    });
    expect(c).toMatchObject({
      host: '::1',
      wsPort: 1,
      httpPort: 2,
      grpcPort: 3,
      redis: 'rediss://r:6380',
      jwtSecret: 'env-secret',
      authUrl: 'https://a/b',
      pingTimeoutMs: 5000,
      maxMessageBytes: 1000,
      maxQueueBytes: 4 * 1024 * 1024,
      logLevel: 'warn',
    });
  });

  it('a flag beats its env var, which beats the default', () => {
    const env = { PUSHWIRE_WS_PORT: '1111', PUSHWIRE_HTTP_PORT: '2222' };
    const c = parse(['--ws-port', '3333'], env);
    expect(c.wsPort).toBe(3333);
    expect(c.httpPort).toBe(2222);
    expect(c.grpcPort).toBe(9912);
  });

  it('a flag given twice: the last one wins', () => {
    expect(parse(['--ws-port', '1', '--ws-port=2']).wsPort).toBe(2);
  });

  it('ignores unrelated env vars', () => {
    expect(parse([], { WS_PORT: '1', PUSHWIRE_UNKNOWN: 'x' }).wsPort).toBe(8812);
  });

  it('envName maps flags to PUSHWIRE_ names', () => {
    expect(envName('ws-port')).toBe('PUSHWIRE_WS_PORT');
    expect(envName('max-message-bytes')).toBe('PUSHWIRE_MAX_MESSAGE_BYTES');
    expect(envName('redis')).toBe('PUSHWIRE_REDIS');
  });

  it('help lists every flag with its env var and default', () => {
    const help = helpText();
    for (const o of OPTIONS) {
      expect(help).toContain(`--${o.flag}`);
      expect(help).toContain(envName(o.flag));
      if (o.default !== undefined) expect(help).toContain(`(default ${o.default})`);
    }
  });
});

describe('parseConfig: invalid options throw ConfigError naming the flag', () => {
  it('unexpected positional argument', () => {
    expect(configError(['serve']).message).toContain('serve');
    expect(configError(['-ws-port', '1']).message).toContain('-ws-port');
  });

  it('unknown option', () => {
    expect(configError(['--nope', '1']).message).toContain('--nope');
    expect(configError(['--nope=1']).message).toContain('--nope');
    expect(configError(['--WS-PORT', '1']).message).toContain('--WS-PORT');
  });

  it('option without a value', () => {
    expect(configError(['--ws-port']).message).toContain('--ws-port');
    expect(configError(['--ws-port', '1', '--host']).message).toContain('--host');
  });

  it('a missing value is not silently filled with the next option (use --flag=--value for such values)', () => {
    // "--host" lost its value: taking "--redis=..." as the host would silently drop --redis
    // and start a single node on the in-process bus.
    expect(configError(['--host', '--redis=redis://localhost:6379']).message).toContain('--host');
    expect(configError(['--jwt-secret', '--log-level=debug']).message).toContain('--jwt-secret');
    expect(configError(['--host', '--ws-port', '1']).message).toContain('--host');
  });

  const invalid: [string, string[]][] = [
    ['ws-port', ['65536', '-1', 'abc', '1.5', '', ' 80', '0x10', '1e3']],
    ['http-port', ['99999', 'http']],
    ['grpc-port', ['-0', '80a']],
    ['max-message-bytes', ['0', 'abc', '1.5MiB', '-1', '1TiB', '', '99999999999999999999']],
    ['max-queue-bytes', ['0B', 'MiB']],
    ['ping-timeout', ['0', '0s', 'abc', '-1s', '1d', '', 'ms', '0.4ms']],
    ['auth-timeout', ['never']],
    ['shutdown-timeout', ['-5']],
    ['redis', ['not a url', 'localhost:6379x', 'http://localhost:6379', '', 'redis+cluster://', 'redis+cluster://h:99999', 'redis+cluster://h:1,']],
    ['auth-url', ['nope', 'redis://x', 'ftp://x/y', '']],
    ['log-level', ['verbose', 'INFO', '']],
    ['node-id', ['has space', 'x'.repeat(65), 'a/b', 'a:b', '']],
    ['host', ['']],
    ['redis-prefix', ['']],
    ['jwt-secret', ['']],
  ];
  for (const [flag, values] of invalid) {
    for (const value of values) {
      it(`--${flag}=${JSON.stringify(value)}`, () => {
        const viaFlag = configError([`--${flag}=${value}`]);
        expect(viaFlag.message).toContain(`--${flag}`);
        if (value !== '') {
          expect(configError([`--${flag}`, value]).message).toContain(`--${flag}`);
        }
        if (value !== '') {
          const viaEnv = configError([], { [envName(flag)]: value });
          expect(viaEnv.message).toContain(`--${flag}`);
          expect(viaEnv.message).toContain(envName(flag));
        }
      });
    }
  }

  it('--redis takes cluster seed nodes; on a cluster the prefix must not contain a hash tag brace', () => {
    expect(parseConfig(['--redis', 'redis+cluster://h1:7000,h2:7001']).redis).toBe('redis+cluster://h1:7000,h2:7001');
    expect(parseConfig(['--redis', 'redis://h1', '--redis-prefix', 'a{b}:']).redisPrefix).toBe('a{b}:');
    expect(configError(['--redis', 'redis+cluster://h1:7000', '--redis-prefix', 'a{b}:']).message).toBe(
      '--redis-prefix (PUSHWIRE_REDIS_PREFIX): must not contain { or } on a Redis Cluster, got "a{b}:"',
    );
  });

  it('node-id of 64 characters is fine', () => {
    expect(parse(['--node-id', 'x'.repeat(64)]).nodeId).toBe('x'.repeat(64));
  });

  it('max-push-bytes greater than max-queue-bytes is rejected; equal is fine', () => {
    const err = configError(['--max-push-bytes', '2MiB']);
    expect(err.message).toContain('--max-push-bytes');
    expect(err.message).toContain('--max-queue-bytes');
    configError(['--max-queue-bytes', '100KiB']); // below the 256KiB push default
    configError([], { PUSHWIRE_MAX_PUSH_BYTES: '2000', PUSHWIRE_MAX_QUEUE_BYTES: '1000' });
    const ok = parse(['--max-push-bytes', '1MiB', '--max-queue-bytes', '1MiB']);
    expect(ok.maxPushBytes).toBe(ok.maxQueueBytes);
  });

  it('error messages quote the offending value', () => {
    expect(configError(['--ws-port', 'abc']).message).toContain('"abc"');
  });
});

describe('parseConfig: empty env vars', () => {
  it('treats an empty PUSHWIRE_* variable as unset (compose files expand unset variables to "")', () => {
    const c = parse([], { PUSHWIRE_REDIS: '', PUSHWIRE_WS_PORT: '', PUSHWIRE_LOG_LEVEL: '' });
    expect(c.redis).toBeUndefined();
    expect(c.wsPort).toBe(8812);
    expect(c.logLevel).toBe('info');
  });
});

describe('parseSize', () => {
  it('understands bytes and binary/decimal units, case-insensitively', () => {
    expect(parseSize('65536')).toBe(65536);
    expect(parseSize('10b')).toBe(10);
    expect(parseSize('10B')).toBe(10);
    expect(parseSize('64KiB')).toBe(65536);
    expect(parseSize('64kib')).toBe(65536);
    expect(parseSize('64 KiB')).toBe(65536);
    expect(parseSize(' 64KiB ')).toBe(65536);
    expect(parseSize('1kb')).toBe(1000);
    expect(parseSize('1KB')).toBe(1000);
    expect(parseSize('1GB')).toBe(1_000_000_000);
    expect(parseSize('1MiB')).toBe(1024 * 1024);
    expect(parseSize('3mb')).toBe(3_000_000);
    expect(parseSize('1GiB')).toBe(1024 ** 3);
  });

  it('rejects zero, negatives, fractions, unknown units and garbage', () => {
    for (const v of ['0', '0KiB', '-1', '1.5MiB', '1TiB', '1k', 'KiB', '', 'abc', '1 2', '99999999999999999999']) {
      expect(parseSize(v), v).toBeUndefined();
    }
  });
});

describe('parseDuration', () => {
  it('understands ms, s, m, h; a bare number is ms', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('1500')).toBe(1500);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('0.5m')).toBe(30_000);
    expect(parseDuration(' 5 s ')).toBe(5000);
  });

  it('accepts units in any case', () => {
    expect(parseDuration('30S')).toBe(30_000);
    expect(parseDuration('250MS')).toBe(250);
    expect(parseDuration('2M')).toBe(120_000);
  });

  it('rejects zero, negatives, unknown units and garbage', () => {
    for (const v of ['0', '0s', '0.4', '-1s', '1d', '1w', 's', '', 'abc', '1.s', '.5s', '1 2s']) {
      expect(parseDuration(v), v).toBeUndefined();
    }
  });
});

describe('parseConfig: --grpc-fast-path', () => {
  it('is on by default; true/false from the flag or PUSHWIRE_GRPC_FAST_PATH', () => {
    expect(parse([]).grpcFastPath).toBe(true);
    expect(parse(['--grpc-fast-path', 'false']).grpcFastPath).toBe(false);
    expect(parse([], { PUSHWIRE_GRPC_FAST_PATH: 'false' }).grpcFastPath).toBe(false);
    expect(() => parse(['--grpc-fast-path', 'off'])).toThrow('--grpc-fast-path (PUSHWIRE_GRPC_FAST_PATH): must be true or false, got "off"');
  });
});

describe('parseConfig: --demo', () => {
  it('is off by default, takes true or false, and refuses anything else with the exact message', () => {
    expect(parse([]).demo).toBe(false);
    expect(parse(['--demo', 'true']).demo).toBe(true);
    expect(parse([], { PUSHWIRE_DEMO: 'true' }).demo).toBe(true);
    expect(parse(['--demo=false']).demo).toBe(false);
    expect(() => parse(['--demo', 'yes'])).toThrow('--demo (PUSHWIRE_DEMO): must be true or false, got "yes"');
  });
});

describe('parseConfig: --workers', () => {
  it('defaults to 1 (the node runs in this process)', () => {
    expect(parse([]).workers).toBe(1);
  });

  it('takes a count or "auto" (the available cores)', async () => {
    const { availableParallelism } = await import('node:os');
    expect(parse(['--workers', '4']).workers).toBe(4);
    expect(parse([], { PUSHWIRE_WORKERS: 'auto' }).workers).toBe(availableParallelism());
  });

  it('refuses 0, negatives, fractions and words', () => {
    for (const bad of ['0', '-1', '1.5', 'many', '257']) expect(configError(['--workers', bad]).message).toContain('--workers');
  });
});

describe('parseConfig: --write-delay', () => {
  it('defaults to 0 (deliveries written at the end of the turn)', () => {
    expect(parse([]).writeDelayMs).toBe(0);
  });

  it('takes 0, a number of ms or a duration up to 1s', () => {
    expect(parse(['--write-delay', '5ms']).writeDelayMs).toBe(5);
    expect(parse(['--write-delay', '20']).writeDelayMs).toBe(20);
    expect(parse(['--write-delay', '1s']).writeDelayMs).toBe(1000);
    expect(parse(['--write-delay', '0ms']).writeDelayMs).toBe(0);
  });

  it('refuses more than 1s and non-durations', () => {
    for (const bad of ['2s', 'soon', '-5ms']) expect(configError(['--write-delay', bad]).message).toContain('--write-delay');
  });
});
