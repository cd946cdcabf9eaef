import { AuthError } from './auth-error.js';

/** Who a login token names. */
export interface Identity {
  uid: string;
  /**
   * Set for a business backend logging in over WebSocket (ws-cluster's "server" connection
   * type): it receives client events as a consumer of `group` instead of acting as a user.
   */
  server?: { group: string };
}

/** Turns a client's login token into an identity, or rejects with AuthError. */
export interface Authenticator {
  authenticate(token: string): Promise<Identity>;
}

/** Consumer group names: they appear in Redis keys. */
export const GROUP_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
export const DEFAULT_GROUP = 'default';

/**
 * The connection type claims of a token or auth reply: `type: "server"` or ws-cluster's
 * `client_type: 2` make a server connection, of consumer group `group` (default "default").
 */
export function identityOf(uid: string, claims: { type?: unknown; client_type?: unknown; group?: unknown }): Identity {
  const server = claims.type === 'server' || claims.client_type === 2 || claims.client_type === '2';
  if (!server) return { uid };
  const group = claims.group ?? DEFAULT_GROUP;
  if (typeof group !== 'string' || !GROUP_PATTERN.test(group)) {
    throw new AuthError('"group" must be 1-64 of A-Z a-z 0-9 _ . -');
  }
  return { uid, server: { group } };
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
