import type { RequestListener } from 'node:http';
import { originAllowed } from '../origin.js';

/** How long a browser may cache a preflight answer, seconds. */
const PREFLIGHT_MAX_AGE = 600;
const ALLOW_METHODS = 'GET, POST, OPTIONS';
const ALLOW_HEADERS = 'Authorization, Content-Type, Content-Encoding';

/**
 * CORS for the REST bridge, for browsers calling it directly (off unless --cors-origins is
 * set). An allowed Origin gets Access-Control-Allow-Origin echoed on every answer (with
 * `Vary: Origin`, so caches keep origins apart); a preflight (OPTIONS with
 * Access-Control-Request-Method) is answered 204 here, before auth, as browsers send it
 * without credentials. A disallowed origin gets no CORS headers, so the browser withholds the
 * answer; the request itself is served as for any non-browser client (CORS protects readers,
 * the API key protects the API). No cookies are used, so credentials are never allowed.
 */
export function withCors(origins: readonly string[] | undefined, next: RequestListener): RequestListener {
  if (origins === undefined) return next;
  return (req, res) => {
    const origin = req.headers.origin;
    if (origin !== undefined && originAllowed(origin, undefined, origins)) {
      res.setHeader('Access-Control-Allow-Origin', origins.includes('*') ? '*' : origin);
      res.setHeader('Vary', 'Origin');
      if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
        res.writeHead(204, {
          'Access-Control-Allow-Methods': ALLOW_METHODS,
          'Access-Control-Allow-Headers': ALLOW_HEADERS,
          'Access-Control-Max-Age': String(PREFLIGHT_MAX_AGE),
        });
        res.end();
        return;
      }
    }
    next(req, res);
  };
}
