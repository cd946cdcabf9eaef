import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { invalidTimeoutMessage, timeoutHeader, timeoutMs } from '../../src/ingress/grpc/grpc-timeout.js';

/**
 * grpc-timeout as the fast path reads it must be what grpc-js's server reads. Besides fixed cases,
 * each value is run through the regex and unit table taken from grpc-js's own built source, so a
 * grpc-js that reads the header differently fails here.
 */

const require_ = createRequire(import.meta.url);
const source = readFileSync(require_.resolve('@grpc/grpc-js/build/src/server-interceptors.js'), 'utf8');

function grpcJsTimeout(value: string): number | undefined {
  const regex = /const DEADLINE_REGEX = \/(.+)\/;/.exec(source);
  const units = /const deadlineUnitsToMs = (\{[^}]*\})/.exec(source);
  if (!regex || !units) throw new Error('grpc-js no longer has DEADLINE_REGEX / deadlineUnitsToMs: re-check src/ingress/grpc/grpc-timeout.ts');
  const table = Function(`return ${units[1]}`)() as Record<string, number>;
  const match = new RegExp(regex[1]!).exec(value);
  return match === null ? undefined : (Number(match[1]) * table[match[2]!]!) | 0;
}

const values = [
  '5S', '1H', '2M', '100m', '250u', '999n', '1n', '0S', '0n', '99999999H', '99999999S', '12345678m',
  // 9 digits: grpc-js takes the last 8 before the unit
  '123456789S',
  // malformed for grpc-js: no digits-and-unit anywhere
  '', 'abc', '5', 'S', '5s', '5 seconds', '-', '1.5S',
  // accepted by grpc-js though not the spec's form
  ' 5S', '5 S', 'x5S', '-1S', '1S, 2S', '5Sx', '1.5m',
];

describe('grpc-timeout', () => {
  it.each(values)('%j reads as grpc-js reads it', (v) => {
    expect(timeoutMs(v)).toBe(grpcJsTimeout(v));
  });

  it('units and the 32-bit truncation', () => {
    expect([timeoutMs('5S'), timeoutMs('2M'), timeoutMs('1H'), timeoutMs('100m'), timeoutMs('2500u'), timeoutMs('999n')]).toEqual([5000, 120_000, 3_600_000, 100, 2, 0]);
    expect(timeoutMs('99999999H')).toBe((99999999 * 3_600_000) | 0);
    expect([timeoutMs('abc'), timeoutMs(''), timeoutMs('5s')]).toEqual([undefined, undefined, undefined]);
  });

  it("the header as grpc-js's Metadata gives it", () => {
    expect(timeoutHeader({})).toBeUndefined();
    expect(timeoutHeader({ 'grpc-timeout': '5S' })).toBe('5S');
    expect(timeoutHeader({ 'grpc-timeout': '' })).toBe('');
    // Outside printable ASCII: grpc-js drops the header, so the call has no deadline.
    expect(timeoutHeader({ 'grpc-timeout': '5S\u00e9' })).toBeUndefined();
  });

  it("grpc-js's message", () => {
    expect(source).toContain('details: `Invalid ${GRPC_TIMEOUT_HEADER} value "${timeoutHeader}"`');
    expect(source).toContain("details: 'Deadline exceeded'");
    expect(invalidTimeoutMessage('abc')).toBe('Invalid grpc-timeout value "abc"');
  });
});
