import { describe, expect, it } from 'vitest';
import { Code, PushwireError } from '../../src/core/errors.js';
import { MAX_TOPIC_BYTES, MAX_UID_BYTES, checkOptionalName, topicProblem, uidProblem } from '../../src/core/names.js';

describe('topicProblem', () => {
  it('accepts ordinary and unicode topics', () => {
    expect(topicProblem('news')).toBeUndefined();
    expect(topicProblem('a:b/c.d-e_f')).toBeUndefined();
    expect(topicProblem('新闻')).toBeUndefined();
    expect(topicProblem('x'.repeat(MAX_TOPIC_BYTES))).toBeUndefined();
  });

  it('rejects empty, too long (in bytes) and control characters', () => {
    expect(topicProblem('')).toMatch(/empty/);
    expect(topicProblem('x'.repeat(MAX_TOPIC_BYTES + 1))).toMatch(/longer/);
    // 86 three-byte characters = 258 bytes > 256 although only 86 UTF-16 units.
    expect(topicProblem('新'.repeat(86))).toMatch(/longer/);
    for (const c of ['\u0000', '\n', '\t', '\u001f', '\u007f']) {
      expect(topicProblem(`a${c}b`)).toMatch(/control/);
    }
  });
});

describe('uidProblem', () => {
  it('accepts a uid up to the limit and rejects beyond it', () => {
    expect(uidProblem('alice')).toBeUndefined();
    expect(uidProblem('u'.repeat(MAX_UID_BYTES))).toBeUndefined();
    expect(uidProblem('u'.repeat(MAX_UID_BYTES + 1))).toMatch(/longer/);
    expect(uidProblem('')).toMatch(/empty/);
    expect(uidProblem('a\rb')).toMatch(/control/);
  });
});

describe('checkOptionalName', () => {
  it('accepts empty and valid names', () => {
    expect(() => checkOptionalName('uid', '')).not.toThrow();
    expect(() => checkOptionalName('topic', '')).not.toThrow();
    expect(() => checkOptionalName('uid', 'alice')).not.toThrow();
    expect(() => checkOptionalName('topic', 'news')).not.toThrow();
  });

  it('throws INVALID_ARGUMENT for invalid names', () => {
    for (const [kind, value] of [
      ['uid', 'u'.repeat(MAX_UID_BYTES + 1)],
      ['topic', 'x'.repeat(MAX_TOPIC_BYTES + 1)],
      ['topic', 'a\nb'],
    ] as const) {
      let err: unknown;
      try {
        checkOptionalName(kind, value);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PushwireError);
      expect((err as PushwireError).code).toBe(Code.INVALID_ARGUMENT);
    }
  });
});
