const STD = /^[A-Za-z0-9+/]*$/;
const URL_SAFE = /^[A-Za-z0-9\-_]*$/;

/**
 * Decodes proto3 JSON `bytes` the way protojson does: standard or URL-safe alphabet (not
 * mixed), padded or not; anything else (stray characters, bad padding, a dangling
 * sextet) is rejected rather than silently skipped as Buffer.from(…, 'base64') would.
 */
export function decodeBase64(text: string): Buffer | undefined {
  let body = text;
  const padded = body.endsWith('=');
  if (padded) {
    if (body.length % 4 !== 0) return undefined;
    body = body.replace(/==?$/, '');
  }
  if (body.length % 4 === 1) return undefined;
  if (!STD.test(body) && !URL_SAFE.test(body)) return undefined;
  return Buffer.from(body, STD.test(body) ? 'base64' : 'base64url');
}
