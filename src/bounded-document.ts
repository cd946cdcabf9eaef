import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { Composer, Lexer, LineCounter, Parser, type CST } from 'yaml';
import { nestsDeeperThan } from './ingress/json-depth.js';

/**
 * The operator's files (--projects, reloaded on SIGHUP and on change; --config) are parsed within
 * bounds, so a wrong or hostile file is refused with a message instead of taking the node down:
 * - The yaml package composes recursively. Nesting deeper than a few hundred levels overflows the
 *   stack, and when V8 compiles a regular expression at that moment it aborts the whole process
 *   ("RegExpCompiler Allocation failed - process out of memory"), which no catch can stop.
 * - YAML costs about 200 bytes of heap per byte of input (1 MiB of `- 1` lines: 230 MB, 1.6 s of
 *   blocked event loop); JSON about 6 (16 MiB: 0.2 s).
 * A valid projects file nests 7 levels; 32 leaves room for anything legitimate.
 */
export const MAX_DOCUMENT_DEPTH = 32;
export const MAX_JSON_FILE_BYTES = 16 * 1024 * 1024;
export const MAX_YAML_FILE_BYTES = 1024 * 1024;

/** The file holds more than `limit` bytes (nothing beyond limit + 1 was read). */
export class FileTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`larger than ${mib(limit)}`);
  }
}

/** The document nests more than MAX_DOCUMENT_DEPTH collections (objects/arrays, mappings/sequences) in one another. */
export class TooDeepError extends Error {
  constructor() {
    super(`nested deeper than ${MAX_DOCUMENT_DEPTH} levels`);
  }
}

export const mib = (bytes: number): string => `${bytes / (1024 * 1024)} MiB`;

/** The file as UTF-8 text, or FileTooLargeError; reads at most maxBytes + 1 bytes whatever the file does meanwhile. */
export function readFileBounded(file: string, maxBytes: number): string {
  const fd = openSync(file, 'r');
  try {
    // The size is a hint only: the file may grow while it is read (or be a pipe, size 0).
    const { size } = fstatSync(fd);
    if (size > maxBytes) throw new FileTooLargeError(maxBytes);
    let buf = Buffer.allocUnsafe(Math.min(maxBytes + 1, Math.max(64 * 1024, size + 1)));
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        if (n > maxBytes) throw new FileTooLargeError(maxBytes);
        const bigger = Buffer.allocUnsafe(Math.min(maxBytes + 1, buf.length * 2));
        buf.copy(bigger, 0, 0, n);
        buf = bigger;
      }
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
    }
    return buf.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
}

/** JSON.parse, after a linear scan refuses over-deep text (TooDeepError). */
export function parseJsonBounded(text: string): unknown {
  if (nestsDeeperThan(text, MAX_DOCUMENT_DEPTH)) throw new TooDeepError();
  return JSON.parse(text);
}

/**
 * The yaml package's parse(), assembled from its public parts so the nesting can be checked while
 * the syntax tree is built (the lexer and parser are iterative; the composer, which recurses, only
 * ever sees a bounded tree). Throws TooDeepError, or the first YAMLError with its line and column.
 * Aliases stay bounded by the package's maxAliasCount (100).
 */
export function parseYamlBounded(text: string): unknown {
  const lines = new LineCounter();
  const parser = new Parser(lines.addNewLine);
  const tokens: CST.Token[] = [];
  lines.addNewLine(0);
  for (const lexeme of new Lexer().lex(text)) {
    for (const token of parser.next(lexeme)) tokens.push(token);
    // The stack is the path to the token being built: the document, collections, maybe a scalar.
    if (parser.stack.length > MAX_DOCUMENT_DEPTH && parser.stack.filter(isCollection).length > MAX_DOCUMENT_DEPTH) throw new TooDeepError();
  }
  for (const token of parser.end()) tokens.push(token);
  const docs = [...new Composer().compose(tokens, true, text.length)];
  const doc = docs[0]!;
  const err = doc.errors[0] ?? (docs.length > 1 ? new Error('source contains multiple documents') : undefined);
  if (err !== undefined) {
    const pos = (err as { pos?: [number, number] }).pos;
    const at = pos === undefined ? undefined : lines.linePos(pos[0]);
    throw new Error(at === undefined ? err.message : `${err.message} at line ${at.line}, column ${at.col}`);
  }
  return doc.toJS();
}

const isCollection = (t: CST.Token): boolean => t.type === 'block-map' || t.type === 'block-seq' || t.type === 'flow-collection';
