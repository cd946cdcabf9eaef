import { describe, expect, it } from 'vitest';
import { Code, CODE_NAMES, type Code as CodeT } from '../../src/core/errors.js';
import { httpStatusOf, statusBody } from '../../src/ingress/http/status.js';

// grpc-gateway's table (shared/reference/anchors.md).
const TABLE: [keyof typeof Code, number][] = [
  ['OK', 200],
  ['CANCELLED', 499],
  ['UNKNOWN', 500],
  ['INVALID_ARGUMENT', 400],
  ['DEADLINE_EXCEEDED', 504],
  ['NOT_FOUND', 404],
  ['ALREADY_EXISTS', 409],
  ['PERMISSION_DENIED', 403],
  ['RESOURCE_EXHAUSTED', 429],
  ['FAILED_PRECONDITION', 400],
  ['ABORTED', 409],
  ['OUT_OF_RANGE', 400],
  ['UNIMPLEMENTED', 501],
  ['INTERNAL', 500],
  ['UNAVAILABLE', 503],
  ['DATA_LOSS', 500],
  ['UNAUTHENTICATED', 401],
];

describe('httpStatusOf', () => {
  for (const [name, http] of TABLE) {
    it(`${name} (${Code[name]}) -> ${http}`, () => {
      expect(httpStatusOf(Code[name])).toBe(http);
    });
  }

  it('covers all 17 gRPC codes with their standard numbers', () => {
    expect(TABLE).toHaveLength(17);
    expect(Object.keys(Code)).toHaveLength(17);
    expect(TABLE.map(([name]) => Code[name])).toEqual(Array.from({ length: 17 }, (_, i) => i));
  });

  it('an unknown code maps to 500', () => {
    expect(httpStatusOf(99 as CodeT)).toBe(500);
    expect(httpStatusOf(-1 as CodeT)).toBe(500);
  });
});

describe('statusBody', () => {
  it('is google.rpc.Status as grpc-gateway writes it', () => {
    expect(statusBody(Code.INVALID_ARGUMENT, 'bad')).toEqual({ code: 3, message: 'bad', details: [] });
    expect(statusBody(Code.UNAVAILABLE, 'bus down')).toEqual({ code: 14, message: 'bus down', details: [] });
  });
});

describe('CODE_NAMES', () => {
  it('lower-cases each code name', () => {
    expect(CODE_NAMES[14]).toBe('unavailable');
    expect(CODE_NAMES[0]).toBe('ok');
    expect(CODE_NAMES[3]).toBe('invalid_argument');
  });
});
