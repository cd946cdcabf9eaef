import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, parseOrigins } from '../../src/config.js';
import { CidSource } from '../../src/core/cids.js';
import { nodeOfCid } from '../../src/core/targeting.js';
import { PushDataRequest, PushServiceService } from '../../gen/pushwire/v1/push.js';
import { Undecodable, decodeFailure, tolerant } from '../../src/ingress/grpc/tolerant-decode.js';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../../src/ingress/json-depth.js';
import { originAllowed } from '../../src/ingress/origin.js';
import { defaultMaxConnections, openFileLimit } from '../../src/startup/fd-limit.js';

/** The pure parts of issue 9's hardening (the socket-level behaviour is in test/integration/hardening.test.ts). */

describe('nestsDeeperThan', () => {
  const nest = (n: number): string => '['.repeat(n) + ']'.repeat(n);

  it('counts arrays and objects, up to the bound and one past it', () => {
    expect(nestsDeeperThan(nest(MAX_JSON_DEPTH))).toBe(false);
    expect(nestsDeeperThan(nest(MAX_JSON_DEPTH + 1))).toBe(true);
    expect(nestsDeeperThan('{"a":{"b":[1]}}', 3)).toBe(false);
    expect(nestsDeeperThan('{"a":{"b":[1]}}', 2)).toBe(true);
    expect(nestsDeeperThan('[[],[],[]]', 2)).toBe(false);
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(nestsDeeperThan(JSON.stringify({ s: '[[[[[[' }), 1)).toBe(false);
    expect(nestsDeeperThan(JSON.stringify({ s: 'a"[[[[\\"[[' }), 1)).toBe(false);
    expect(nestsDeeperThan(`["\\\\",[[`, 2)).toBe(true);
  });

  it('handles any depth without recursion', () => {
    expect(nestsDeeperThan(nest(1_000_000))).toBe(true);
  });
});

describe('originAllowed', () => {
  it('lets clients without Origin through, whatever the list', () => {
    expect(originAllowed(undefined, 'h:1', undefined)).toBe(true);
    expect(originAllowed(undefined, undefined, ['https://a.example'])).toBe(true);
  });

  it('by default allows only the same origin (host and port)', () => {
    expect(originAllowed('http://push.example:8812', 'push.example:8812', undefined)).toBe(true);
    expect(originAllowed('HTTPS://PUSH.example:8812', 'push.example:8812', undefined)).toBe(true);
    expect(originAllowed('http://push.example:9000', 'push.example:8812', undefined)).toBe(false);
    expect(originAllowed('https://evil.example', 'push.example', undefined)).toBe(false);
    expect(originAllowed('null', 'push.example', undefined)).toBe(false);
    expect(originAllowed('garbage', 'push.example', undefined)).toBe(false);
    expect(originAllowed('http://push.example', undefined, undefined)).toBe(false);
  });

  it('matches exact origins, subdomain wildcards and *', () => {
    const list = ['https://app.example.com', 'https://*.good.example'];
    expect(originAllowed('https://app.example.com', 'x', list)).toBe(true);
    expect(originAllowed('http://app.example.com', 'x', list)).toBe(false);
    expect(originAllowed('https://app.example.com:444', 'x', list)).toBe(false);
    expect(originAllowed('https://a.good.example', 'x', list)).toBe(true);
    expect(originAllowed('https://a.b.good.example', 'x', list)).toBe(true);
    expect(originAllowed('https://good.example', 'x', list)).toBe(false);
    expect(originAllowed('https://evilgood.example', 'x', list)).toBe(false);
    expect(originAllowed('https://a.good.example.evil', 'x', list)).toBe(false);
    expect(originAllowed('null', 'x', ['*'])).toBe(true);
  });
});

describe('parseOrigins and the new options', () => {
  it('accepts * alone or origins, lower-cased', () => {
    expect(parseOrigins('*')).toEqual(['*']);
    expect(parseOrigins(' https://A.example , http://localhost:3000,https://*.x.example ')).toEqual([
      'https://a.example',
      'http://localhost:3000',
      'https://*.x.example',
    ]);
    for (const bad of ['', ',', '*,https://a.example', 'a.example', 'https://a.example/path', 'https://*', 'https://a.*.example']) {
      expect(parseOrigins(bad), bad).toBeUndefined();
    }
  });

  it('parses --max-connections, --max-subscriptions, origins and timeouts, with defaults', () => {
    const d = parseConfig([], {});
    expect(d).toMatchObject({ maxConnections: undefined, maxSubscriptions: 128, allowedOrigins: undefined, corsOrigins: undefined, headerTimeoutMs: 10_000, requestTimeoutMs: 30_000 });
    const c = parseConfig(['--max-connections', '500', '--max-subscriptions=7', '--allowed-origins', '*', '--cors-origins', 'https://a.example', '--header-timeout', '2s', '--request-timeout', '5s'], {});
    expect(c).toMatchObject({ maxConnections: 500, maxSubscriptions: 7, allowedOrigins: ['*'], corsOrigins: ['https://a.example'], headerTimeoutMs: 2000, requestTimeoutMs: 5000 });
    expect(() => parseConfig(['--max-connections', '0'], {})).toThrow(/--max-connections \(PUSHWIRE_MAX_CONNECTIONS\): must be a positive whole number, got "0"/);
    expect(() => parseConfig(['--allowed-origins', 'nope'], {})).toThrow(ConfigError);
    expect(() => parseConfig(['--header-timeout', '40s'], {})).toThrow(/--request-timeout .* must not be shorter than --header-timeout/);
  });
});

describe('open-file limit and the default connection cap', () => {
  const limits = (soft: string): string =>
    `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${soft}                524288               files\n`;

  it('reads the soft limit from /proc/self/limits text', () => {
    expect(openFileLimit(() => limits('20000'))).toBe(20000);
    expect(openFileLimit(() => limits('unlimited'))).toBe(65536);
    expect(openFileLimit(() => 'nothing here')).toBe(65536);
    expect(
      openFileLimit(() => {
        throw new Error('ENOENT');
      }),
    ).toBe(65536);
    expect(openFileLimit()).toBeGreaterThan(0);
  });

  it('keeps a tenth (at least 100) in reserve', () => {
    expect(defaultMaxConnections(20_000)).toBe(18_000);
    expect(defaultMaxConnections(1024)).toBe(921);
    expect(defaultMaxConnections(150)).toBe(50);
    expect(defaultMaxConnections(50)).toBe(1);
  });
});

describe('CidSource', () => {
  it('makes `<node-id>-<24 base-36 digits>` ids, all different, routed to their node', () => {
    const source = new CidSource('node-a.eu');
    const cids = Array.from({ length: 10_000 }, () => source.next());
    expect(new Set(cids).size).toBe(cids.length);
    for (const cid of cids.slice(0, 100)) {
      expect(cid).toMatch(/^node-a\.eu-[0-9a-z]{24}$/);
      expect(nodeOfCid(cid)).toBe('node-a.eu');
    }
  });
});

describe('tolerant gRPC request decoding', () => {
  it('hands undecodable bytes to the handler as INVALID_ARGUMENT instead of throwing', () => {
    const d = tolerant(PushServiceService);
    const bad = d.pushData.requestDeserialize(Buffer.from([0x0a, 0x05]));
    expect(bad).toBeInstanceOf(Undecodable);
    expect(decodeFailure(bad)).toMatchObject({ code: 3, message: expect.stringMatching(/^request could not be decoded: /) });
    const good = d.pushData.requestDeserialize(Buffer.from(PushDataRequest.encode(PushDataRequest.fromPartial({ topic: 't' })).finish()));
    expect(good).toMatchObject({ topic: 't' });
    expect(decodeFailure(good)).toBeUndefined();
  });
});
