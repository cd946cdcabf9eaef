import { describe, expect, it, vi } from 'vitest';
import { AuthError } from '../../src/core/auth/auth-error.js';
import { chainAuthenticators, noAuthenticator, type Authenticator } from '../../src/core/auth/authenticator.js';

function fake(name: string): Authenticator & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    authenticate: vi.fn(async (token: string) => {
      calls.push(token);
      return { uid: `${name}:${token}` };
    }),
  };
}

const JWT_LIKE = [
  'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl',
  'a.b.c',
  'a-b_c.d-e_f.g-h_i',
  'aaa.bbb.', // unsecured JWS: empty signature
];
const NOT_JWT = ['opaque-token', 'a.b', 'a.b.c.d', 'a b.c.d', 'a.b.c=', '.b.c', 'a..c', 'a+b.c.d', 'token with spaces', 'a.b.c\n'];

describe('chainAuthenticators with both configured', () => {
  it('sends JWT-looking tokens to the JWT authenticator', async () => {
    const jwt = fake('jwt');
    const cb = fake('cb');
    const auth = chainAuthenticators(jwt, cb);
    for (const t of JWT_LIKE) expect((await auth.authenticate(t)).uid).toBe(`jwt:${t}`);
    expect(jwt.calls).toEqual(JWT_LIKE);
    expect(cb.calls).toEqual([]);
  });

  it('sends everything else to the callback', async () => {
    const jwt = fake('jwt');
    const cb = fake('cb');
    const auth = chainAuthenticators(jwt, cb);
    for (const t of NOT_JWT) expect((await auth.authenticate(t)).uid).toBe(`cb:${t}`);
    expect(cb.calls).toEqual(NOT_JWT);
    expect(jwt.calls).toEqual([]);
  });

  it('a rejected JWT stays rejected (no fallback to the callback)', async () => {
    const jwt: Authenticator = { authenticate: () => Promise.reject(new AuthError('token expired')) };
    const cb = fake('cb');
    await expect(chainAuthenticators(jwt, cb).authenticate('a.b.c')).rejects.toThrow('token expired');
    expect(cb.calls).toEqual([]);
  });
});

describe('chainAuthenticators with one configured', () => {
  it('only JWT: every token goes to it', async () => {
    const jwt = fake('jwt');
    const auth = chainAuthenticators(jwt, undefined);
    expect((await auth.authenticate('opaque')).uid).toBe('jwt:opaque');
    expect((await auth.authenticate('a.b.c')).uid).toBe('jwt:a.b.c');
  });

  it('only the callback: every token goes to it', async () => {
    const cb = fake('cb');
    const auth = chainAuthenticators(undefined, cb);
    expect((await auth.authenticate('opaque')).uid).toBe('cb:opaque');
    expect((await auth.authenticate('a.b.c')).uid).toBe('cb:a.b.c');
  });
});

describe('chainAuthenticators with none configured', () => {
  it('rejects every login with an AuthError that says how to configure login', async () => {
    const auth = chainAuthenticators(undefined, undefined);
    expect(auth).toBe(noAuthenticator);
    for (const t of ['a.b.c', 'opaque', '']) {
      const err = await auth.authenticate(t).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AuthError);
      expect((err as AuthError).name).toBe('AuthError');
      expect((err as AuthError).message).toMatch(/--jwt-secret|--auth-url/);
    }
  });
});
