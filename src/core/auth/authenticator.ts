import { AuthError } from './auth-error.js';

/** Turns a client's login token into a uid, or rejects with AuthError. */
export interface Authenticator {
  authenticate(token: string): Promise<string>;
}

/** Used when no login method is configured: every login fails, clearly. */
export const noAuthenticator: Authenticator = {
  authenticate: () =>
    Promise.reject(new AuthError('login is not configured on this node (set --jwt-secret, --jwt-public-key or --auth-url)')),
};

const COMPACT_JWS = /^[\w-]+\.[\w-]+\.[\w-]*$/;

/**
 * JWT first when the token looks like one and a key is configured; the auth URL otherwise.
 * This lets a deployment move from gpush's callback to JWTs without a flag day.
 */
export function chainAuthenticators(jwt: Authenticator | undefined, callback: Authenticator | undefined): Authenticator {
  if (jwt && callback) {
    return { authenticate: (token) => (COMPACT_JWS.test(token) ? jwt : callback).authenticate(token) };
  }
  return jwt ?? callback ?? noAuthenticator;
}
