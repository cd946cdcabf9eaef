/** A token that does not identify a user; the reason is safe to show the client. */
export class AuthError extends Error {
  override name = 'AuthError';
}
