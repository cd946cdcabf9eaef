/**
 * Cross-site WebSocket hijacking guard: browsers send `Origin` on every WebSocket upgrade and
 * let any page open a socket to any host, with the user's cookies and network position. The
 * upgrade is refused (403) unless the origin is allowed. Non-browser clients send no Origin
 * and are not affected.
 *
 * `allowed`: lower-cased `scheme://host[:port]` entries, a host may start with "*." (any
 * subdomain, not the bare domain); ["*"] allows every origin; undefined allows only the node's
 * own origin (the Origin's host:port equals the Host header), as Centrifugo and gorilla do.
 */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: readonly string[] | undefined): boolean {
  if (origin === undefined) return true;
  const o = origin.trim().toLowerCase();
  if (allowed === undefined) return host !== undefined && hostOf(o) === host.trim().toLowerCase();
  for (const pattern of allowed) {
    if (pattern === '*' || pattern === o) return true;
    const star = pattern.indexOf('://*.');
    if (star !== -1) {
      const scheme = pattern.slice(0, star + 3);
      const suffix = pattern.slice(star + 4); // ".example.com[:port]"
      if (o.startsWith(scheme) && o.endsWith(suffix) && o.length > scheme.length + suffix.length) {
        const sub = o.slice(scheme.length, o.length - suffix.length);
        if (/^[a-z0-9.-]+$/.test(sub)) return true;
      }
    }
  }
  return false;
}

/** host[:port] of an origin, or undefined when it is not one ("null", garbage). */
function hostOf(origin: string): string | undefined {
  if (!URL.canParse(origin)) return undefined;
  const u = new URL(origin);
  return u.origin === 'null' ? undefined : u.host;
}
