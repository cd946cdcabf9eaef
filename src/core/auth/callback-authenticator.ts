import { uidProblem } from '../names.js';
import { AuthError } from './auth-error.js';
import { identityOf, type Authenticator, type Identity } from './authenticator.js';

/**
 * gpush's auth callback: POST {"token"} to a URL; {"code":0,"data":{"user_info":{"uid":"..."}}}
 * means success. Anything else — a timeout, a non-2xx status, a body of another shape — fails
 * the login and never throws past this class.
 */
export class CallbackAuthenticator implements Authenticator {
  constructor(
    private readonly url: string,
    private readonly timeoutMs: number,
  ) {}

  async authenticate(token: string): Promise<Identity> {
    let body: unknown;
    try {
      const res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (!res.ok) throw new AuthError(`auth service answered HTTP ${res.status}`);
      body = await res.json();
    } catch (err) {
      if (err instanceof AuthError) throw err;
      const name = (err as Error).name;
      if (name === 'TimeoutError' || name === 'AbortError') throw new AuthError('auth service timed out');
      if (err instanceof SyntaxError) throw new AuthError('auth service reply is not JSON');
      throw new AuthError('auth service unreachable');
    }
    return uidFrom(body);
  }
}

/** The user_info's uid, and its `client_type`/`type` and `group` for server connections. */
function uidFrom(body: unknown): Identity {
  type UserInfo = { uid?: unknown; type?: unknown; client_type?: unknown; group?: unknown };
  const reply = body as { code?: unknown; data?: { user_info?: UserInfo } } | null;
  if (typeof reply !== 'object' || reply === null || reply.code !== 0) throw new AuthError('auth service refused the token');
  let uid = reply.data?.user_info?.uid;
  if (typeof uid === 'number' && Number.isSafeInteger(uid)) uid = String(uid);
  if (typeof uid !== 'string' || uidProblem(uid) !== undefined) throw new AuthError('auth service reply has no valid uid');
  return identityOf(uid, reply.data?.user_info ?? {});
}
