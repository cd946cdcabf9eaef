import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignJWT } from 'jose';
import { parseDuration } from '../config.js';
import { GROUP_PATTERN } from '../core/auth/authenticator.js';
import { uidProblem } from '../core/names.js';
import { UsageError, option } from './args.js';
import { defineCommand } from './command.js';

/**
 * `pushwire token`: a login JWT of the shape the node's JwtAuthenticator accepts (sub = uid,
 * optional pid, exp), for development and tests. With --group it is a server connection's token.
 */
export const token = defineCommand(
  'token',
  {
    usage: 'pushwire token --sub UID [--pid PID] [--ttl DURATION] (--secret SECRET | --key FILE)',
    description:
      'Prints a login JWT for a WebSocket client (login, code 3) to stdout. The node must accept it:\n' +
      '--secret must equal its --jwt-secret, --key be the private half of its --jwt-public-key.',
    flags: [
      { name: 'sub', value: 'UID', help: 'the user id the token logs in as (its "sub" claim)' },
      { name: 'pid', value: 'PID', help: 'the project (its "pid" claim); the node refuses a token for another project' },
      { name: 'ttl', value: 'DURATION', help: 'lifetime (its "exp" claim), e.g. 30m, 1h, 24h', default: '1h' },
      { name: 'secret', value: 'SECRET', help: 'HS256 shared secret (the node\'s --jwt-secret)' },
      { name: 'key', value: 'FILE', help: 'PEM private key: RSA signs RS256, EC P-256 signs ES256' },
      { name: 'group', value: 'GROUP', help: 'a server (backend) connection of this consumer group ("type": "server")' },
    ],
  },
  async (parsed) => {
    const sub = option(parsed, 'sub', true);
    const problem = uidProblem(sub);
    if (problem !== undefined) throw new UsageError(`--sub: ${problem}`);
    const ttlMs = parseDuration(option(parsed, 'ttl', true));
    if (ttlMs === undefined) throw new UsageError('--ttl must be a positive duration such as 30m or 1h');
    const secret = option(parsed, 'secret');
    const keyFile = option(parsed, 'key');
    if ((secret === undefined) === (keyFile === undefined)) throw new UsageError('give exactly one of --secret and --key');
    const group = option(parsed, 'group');
    if (group !== undefined && !GROUP_PATTERN.test(group)) throw new UsageError('--group: 1-64 of A-Z a-z 0-9 _ . -');

    const claims: Record<string, string> = {};
    const pid = option(parsed, 'pid');
    if (pid !== undefined) claims.pid = pid;
    if (group !== undefined) Object.assign(claims, { type: 'server', group });
    const { alg, key } = secret !== undefined ? { alg: 'HS256', key: new TextEncoder().encode(secret) } : signingKey(keyFile!);
    const now = Math.floor(Date.now() / 1000);
    const jwt = await new SignJWT(claims)
      .setProtectedHeader({ alg, typ: 'JWT' })
      .setSubject(sub)
      .setIssuedAt(now)
      .setExpirationTime(now + Math.max(1, Math.round(ttlMs / 1000)))
      .sign(key);
    process.stdout.write(`${jwt}\n`);
  },
);

/** The algorithm follows the key, as the node's verifier does (RS256 for RSA, ES256 for P-256). */
function signingKey(file: string): { alg: string; key: KeyObject } {
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(file, 'utf8'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UsageError(`--key: ${e.code === 'ENOENT' || e.code === 'EACCES' ? `cannot read "${file}": ${e.code}` : `"${file}" is not a PEM private key`}`);
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType === 'rsa') return { alg: 'RS256', key };
  if (key.asymmetricKeyType === 'ec' && curve === 'prime256v1') return { alg: 'ES256', key };
  const what = key.asymmetricKeyType === 'ec' ? `EC curve "${curve}"` : `key type "${key.asymmetricKeyType}"`;
  throw new UsageError(`--key: unsupported ${what}: use an RSA (RS256) or EC P-256 (ES256) key`);
}
