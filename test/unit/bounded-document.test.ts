import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { parse as yamlParse, stringify as toYaml } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import {
  FileTooLargeError,
  MAX_DOCUMENT_DEPTH,
  TooDeepError,
  parseJsonBounded,
  parseYamlBounded,
  readFileBounded,
} from '../../src/bounded-document.js';

/**
 * The bounded readers behind --projects and --config: nesting and size are refused with their own
 * errors, and below the bounds the YAML reader (assembled from the yaml package's public parts)
 * gives what yaml.parse gives.
 */

const dir = mkdtempSync(join(tmpdir(), 'pushwire-bounded-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const nestedJson = (levels: number): string => `${'['.repeat(levels)}1${']'.repeat(levels)}`;

describe('nesting', () => {
  it('JSON: MAX_DOCUMENT_DEPTH nested collections parse, one more is TooDeepError (also at 20,000)', () => {
    expect(parseJsonBounded(nestedJson(MAX_DOCUMENT_DEPTH))).toBeInstanceOf(Array);
    expect(() => parseJsonBounded(nestedJson(MAX_DOCUMENT_DEPTH + 1))).toThrow(TooDeepError);
    expect(() => parseJsonBounded(nestedJson(20_000))).toThrow(TooDeepError);
    // Brackets inside strings are not nesting.
    expect(parseJsonBounded(JSON.stringify({ s: '['.repeat(1000) }))).toEqual({ s: '['.repeat(1000) });
  });

  it('YAML: the same bound for flow, block and compact nesting, and for JSON text read as YAML', () => {
    const flow = (n: number): string => nestedJson(n);
    const block = (n: number): string => Array.from({ length: n }, (_, i) => `${'  '.repeat(i)}k${i}:`).join('\n') + ' 1\n';
    const compact = (n: number): string => `${'- '.repeat(n)}1\n`;
    for (const make of [flow, block, compact]) {
      expect(() => parseYamlBounded(make(MAX_DOCUMENT_DEPTH))).not.toThrow();
      expect(() => parseYamlBounded(make(MAX_DOCUMENT_DEPTH + 1))).toThrow(TooDeepError);
    }
    expect(() => parseYamlBounded(`{"projects":${'{"k":['.repeat(10_000)}1${']}'.repeat(10_000)}}`)).toThrow(TooDeepError);
    // Brackets in plain and quoted scalars and in comments are not nesting.
    const text = `a: x${'['.repeat(100)}\nb: '${'{'.repeat(100)}'\n# ${'['.repeat(100)}\n`;
    expect(parseYamlBounded(text)).toEqual(yamlParse(text));
  });
});

describe('YAML below the bounds', () => {
  it('gives what yaml.parse gives (JSON-like documents written as YAML)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        const text = toYaml(value);
        expect(parseYamlBounded(text)).toEqual(yamlParse(text));
      }),
      { numRuns: 300, seed: 20261202 },
    );
  });

  it('refuses what yaml.parse refuses, with a line and column; several documents and alias bombs too', () => {
    expect(() => parseYamlBounded('projects:\n  - pid: shop\n   name: [unclosed\n')).toThrow(/at line \d+, column \d+/);
    expect(() => yamlParse('a: 1\n---\nb: 2\n')).toThrow();
    expect(() => parseYamlBounded('a: 1\n---\nb: 2\n')).toThrow(/multiple documents/);
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (let i = 0; i < 8; i++) bomb.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`);
    expect(() => parseYamlBounded(bomb.join('\n'))).toThrow(/alias/i);
    expect(parseYamlBounded('')).toBeNull();
  });
});

describe('readFileBounded', () => {
  it('reads files up to the limit; one byte more is FileTooLargeError', () => {
    const file = join(dir, 'f.txt');
    writeFileSync(file, 'é'.repeat(50_000)); // 100,000 bytes
    expect(readFileBounded(file, 100_000)).toBe('é'.repeat(50_000));
    expect(() => readFileBounded(file, 99_999)).toThrow(FileTooLargeError);
    expect(() => readFileBounded(join(dir, 'missing'), 10)).toThrow(/ENOENT/);
  });

  it('stops at limit + 1 bytes on a file whose size says nothing (a pipe)', () => {
    // /dev/zero: size 0, endless; the read must end by the limit, not at EOF.
    expect(() => readFileBounded('/dev/zero', 1_000_000)).toThrow(FileTooLargeError);
  });
});
