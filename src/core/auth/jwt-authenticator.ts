import { createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import { errors, jwtVerify } from 'jose';
import { uidProblem } from '../names.js';
import { AuthError } from './auth-error.js';
import { identityOf, type Authenticator, type Identity } from './authenticator.js';

export interface JwtKeys {
  /** HS256 shared secret. */
  secret?: string;
  /** PEM public key (RSA for RS256, EC P-256 for ES256). */
  publicKeyPem?: string;
  /** The project these keys log into; a token whose `pid` claim names another is refused. */
  pid?: string;
}

/**
 * Verifies a JWT's signature and `exp`; its `sub` claim is the uid, and `type`/`client_type`
 * and `group` make a server connection (see identityOf).
 */
export class JwtAuthenticator implements Authenticator {
  private readonly secret: Uint8Array | undefined;
  private readonly publicKey: KeyObject | undefined;
  private readonly publicAlgs: string[];
  private readonly pid: string | undefined;
  /**
   * The keys imported into WebCrypto once: given raw bytes or a KeyObject, jose imports a CryptoKey on every
   * verification, about 180 µs of CPU per HS256 login (a reconnect storm's largest single cost on the node).
   */
  private secretKey: Promise<webcrypto.CryptoKey> | undefined;
  private publicCryptoKey: Promise<webcrypto.CryptoKey> | undefined;

  constructor(keys: JwtKeys) {
    this.pid = keys.pid;
    this.secret = keys.secret === undefined ? undefined : new TextEncoder().encode(keys.secret);
    this.publicKey = keys.publicKeyPem === undefined ? undefined : createPublicKey(keys.publicKeyPem);
    const type = this.publicKey?.asymmetricKeyType;
    const curve = this.publicKey?.asymmetricKeyDetails?.namedCurve;
    this.publicAlgs = type === 'rsa' ? ['RS256'] : type === 'ec' && curve === 'prime256v1' ? ['ES256'] : [];
    if (this.publicKey && this.publicAlgs.length === 0) {
      const what = type === 'ec' ? `EC curve "${curve}"` : `key type "${type}"`;
      throw new Error(`unsupported JWT public key (${what}): use an RSA (RS256) or EC P-256 (ES256) key`);
    }
  }

  async authenticate(token: string): Promise<Identity> {
    let claims: { sub?: unknown; pid?: unknown; type?: unknown; client_type?: unknown; group?: unknown };
    try {
      const alg = headerAlg(token);
      if (alg === 'HS256' && this.secret) {
        this.secretKey ??= webcrypto.subtle.importKey('raw', this.secret, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
        claims = (await jwtVerify(token, await this.secretKey, { algorithms: ['HS256'] })).payload;
      } else if (this.publicKey && this.publicAlgs.includes(alg)) {
        this.publicCryptoKey ??= importPublic(this.publicKey, alg);
        claims = (await jwtVerify(token, await this.publicCryptoKey, { algorithms: this.publicAlgs })).payload;
      } else {
        throw new AuthError(`token algorithm ${alg} is not accepted`);
      }
    } catch (err) {
      if (err instanceof AuthError) throw err;
      if (err instanceof errors.JWTExpired) throw new AuthError('token expired');
      if (err instanceof errors.JWSSignatureVerificationFailed) throw new AuthError('token signature is invalid');
      throw new AuthError(`token rejected: ${(err as Error).message}`);
    }
    const { sub, pid } = claims;
    if (typeof sub !== 'string' || uidProblem(sub) !== undefined) throw new AuthError('token has no valid "sub" claim');
    if (pid !== undefined && this.pid !== undefined && pid !== this.pid) throw new AuthError('token is for another project');
    return identityOf(sub, claims);
  }
}

/** One public key serves one algorithm (RS256 for RSA, ES256 for P-256), so the first token's alg picks the import. */
function importPublic(key: KeyObject, alg: string): Promise<webcrypto.CryptoKey> {
  const spki = key.export({ type: 'spki', format: 'der' });
  const algorithm = alg === 'RS256' ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } : { name: 'ECDSA', namedCurve: 'P-256' };
  return webcrypto.subtle.importKey('spki', spki, algorithm, false, ['verify']);
}

function headerAlg(token: string): string {
  const head = token.split('.', 1)[0] ?? '';
  try {
    const alg: unknown = JSON.parse(Buffer.from(head, 'base64url').toString('utf8')).alg;
    if (typeof alg === 'string') return alg;
  } catch {
    // fall through
  }
  throw new AuthError('token is not a JWT');
}
