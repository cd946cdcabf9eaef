import { describe, expect, it } from 'vitest';
import { Code, PushwireError } from '../../src/core/errors.js';
import { decodeProtoJson, type FieldSpec } from '../../src/ingress/http/proto-json.js';

const PUSH: FieldSpec[] = [
  { name: 'uid', kind: 'string' },
  { name: 'topic', kind: 'string' },
  { name: 'data', kind: 'bytes' },
];
const SNAKE: FieldSpec[] = [
  { name: 'message_id', kind: 'string' },
  { name: 'raw_payload_v2', kind: 'bytes' },
];

function invalid(fn: () => unknown): PushwireError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(PushwireError);
  expect((err as PushwireError).code).toBe(Code.INVALID_ARGUMENT);
  expect((err as PushwireError).code).toBe(3);
  return err as PushwireError;
}

describe('decodeProtoJson', () => {
  it('decodes strings and base64 bytes', () => {
    const out = decodeProtoJson({ uid: 'alice', topic: 'news', data: 'aGVsbG8=' }, 'PushDataRequest', PUSH);
    expect(out).toEqual({ uid: 'alice', topic: 'news', data: Buffer.from('hello') });
  });

  it('accepts URL-safe and unpadded base64 for bytes', () => {
    expect(decodeProtoJson({ data: '_w' }, 'T', PUSH).data).toEqual(Buffer.from([0xff]));
    expect(decodeProtoJson({ data: '' }, 'T', PUSH).data).toEqual(Buffer.alloc(0));
  });

  it('accepts both lowerCamelCase and original snake_case names', () => {
    expect(decodeProtoJson({ messageId: 'm1' }, 'T', SNAKE)).toEqual({ message_id: 'm1' });
    expect(decodeProtoJson({ message_id: 'm2' }, 'T', SNAKE)).toEqual({ message_id: 'm2' });
    expect(decodeProtoJson({ rawPayloadV2: 'AQ==' }, 'T', SNAKE)).toEqual({ raw_payload_v2: Buffer.from([1]) });
    expect(decodeProtoJson({ raw_payload_v2: 'AQ' }, 'T', SNAKE)).toEqual({ raw_payload_v2: Buffer.from([1]) });
  });

  it('an empty object decodes to no fields', () => {
    expect(decodeProtoJson({}, 'T', PUSH)).toEqual({});
  });

  it('null means the field is absent', () => {
    const out = decodeProtoJson({ uid: null, topic: 'news', data: null }, 'T', PUSH);
    expect(out).toEqual({ topic: 'news' });
    expect('uid' in out).toBe(false);
    expect('data' in out).toBe(false);
    expect(decodeProtoJson({ messageId: null }, 'T', SNAKE)).toEqual({});
  });

  it('rejects unknown fields, naming them', () => {
    const err = invalid(() => decodeProtoJson({ topic: 'a', extra: 1 }, 'PushDataRequest', PUSH));
    expect(err.message).toContain('extra');
    expect(err.message).toContain('PushDataRequest');
    // Case matters: neither "Topic" nor "messageID" is a name of any field.
    invalid(() => decodeProtoJson({ Topic: 'a' }, 'T', PUSH));
    invalid(() => decodeProtoJson({ messageID: 'a' }, 'T', SNAKE));
  });

  it('rejects a field given under both its names', () => {
    const err = invalid(() => decodeProtoJson({ message_id: 'a', messageId: 'b' }, 'T', SNAKE));
    expect(err.message).toMatch(/duplicate/);
    invalid(() => decodeProtoJson({ messageId: 'b', message_id: 'a' }, 'T', SNAKE));
    // Even when one of them is null.
    invalid(() => decodeProtoJson({ messageId: null, message_id: 'a' }, 'T', SNAKE));
  });

  it('rejects wrong value types', () => {
    for (const value of [1, true, {}, [], ['a'], 0]) {
      invalid(() => decodeProtoJson({ topic: value }, 'T', PUSH));
      invalid(() => decodeProtoJson({ data: value }, 'T', PUSH));
    }
  });

  it('rejects invalid base64 for bytes fields, naming the field', () => {
    for (const bad of ['***', 'abc==', 'a', 'aGk= ', '+_+_']) {
      const err = invalid(() => decodeProtoJson({ data: bad }, 'T', PUSH));
      expect(err.message).toContain('data');
      expect(err.message).toMatch(/base64/);
    }
  });

  it('rejects anything that is not a JSON object', () => {
    for (const body of [null, undefined, 'x', 1, true, [], [{ topic: 'a' }]]) {
      const err = invalid(() => decodeProtoJson(body, 'PushDataRequest', PUSH));
      expect(err.message).toContain('PushDataRequest');
    }
  });

  it('does not treat inherited object keys as fields', () => {
    const body = JSON.parse('{"__proto__": "x"}');
    invalid(() => decodeProtoJson(body, 'T', PUSH));
    invalid(() => decodeProtoJson({ constructor: 'x' }, 'T', PUSH));
  });

  it('decodes a repeated message field element by element, naming the failing index', () => {
    const BATCH: FieldSpec[] = [{ name: 'push_list', kind: 'messages', of: { typeName: 'Push', fields: PUSH } }];
    const out = decodeProtoJson({ pushList: [{ topic: 'a' }, { data: 'aGk=' }] }, 'Batch', BATCH);
    expect(out.push_list).toEqual([{ topic: 'a' }, { data: Buffer.from('hi') }]);
    expect(decodeProtoJson({ push_list: null }, 'Batch', BATCH)).toEqual({});
    expect(invalid(() => decodeProtoJson({ push_list: {} }, 'Batch', BATCH)).message).toBe(
      'invalid value for repeated field push_list: expected an array',
    );
    expect(invalid(() => decodeProtoJson({ push_list: [{}, { nope: 1 }] }, 'Batch', BATCH)).message).toBe(
      'push_list[1]: unknown field "nope" in Push',
    );
    expect(invalid(() => decodeProtoJson({ push_list: [7] }, 'Batch', BATCH)).message).toMatch(/^push_list\[0\]: invalid JSON for Push/);
  });
});

