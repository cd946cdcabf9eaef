import { invalidArgument } from './errors.js';

/** What a page token continues: online users (by uid) or connections (by cid). */
export type PageKind = 'users' | 'connections';

/**
 * Opaque page tokens: the last key of the previous page, bound to its project and listing, so
 * a token replayed elsewhere is refused instead of silently paging something else. Not
 * secret: it names a uid the caller has already seen.
 */
export function encodePageToken(pid: string, kind: PageKind, after: string): string {
  return Buffer.from(JSON.stringify([1, pid, kind, after])).toString('base64url');
}

/** The key to continue after; undefined for the empty (first page) token. INVALID_ARGUMENT otherwise. */
export function decodePageToken(token: string, pid: string, kind: PageKind): string | undefined {
  if (token === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalidArgument('invalid page_token');
  }
  if (!Array.isArray(parsed) || parsed.length !== 4 || parsed[0] !== 1 || typeof parsed[3] !== 'string' || parsed[3] === '') {
    throw invalidArgument('invalid page_token');
  }
  if (parsed[1] !== pid || parsed[2] !== kind) throw invalidArgument('page_token belongs to another listing');
  return parsed[3];
}
