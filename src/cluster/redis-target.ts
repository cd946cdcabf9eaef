/**
 * What `--redis` names: one Redis (redis://, rediss://) or a Redis Cluster given by seed nodes
 * (redis+cluster://h1:p1,h2:p2 or rediss+cluster://...; the rest of the cluster is discovered
 * from them). Credentials in the URL apply to every node.
 */
export type RedisTarget =
  | { mode: 'standalone'; url: string }
  | { mode: 'cluster'; seeds: Array<{ host: string; port: number }>; username?: string; password?: string; tls: boolean };

const CLUSTER = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]+)\/?(?:[?#].*)?$/;

/** Parses `--redis`; throws an Error whose message says what is wrong. */
export function parseRedisTarget(value: string): RedisTarget {
  const m = CLUSTER.exec(value);
  if (m === null) {
    if (!URL.canParse(value) || !/^rediss?:$/.test(new URL(value).protocol)) {
      throw new Error('must be a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL');
    }
    return { mode: 'standalone', url: value };
  }
  const [, scheme, auth, hosts] = m;
  const seeds = hosts!.split(',').map((hp) => {
    const at = hp.lastIndexOf(':');
    const host = at === -1 ? hp : hp.slice(0, at).replace(/^\[(.*)\]$/, '$1');
    const port = at === -1 ? 6379 : Number(hp.slice(at + 1));
    if (host === '' || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad cluster seed node "${hp}" (want host:port)`);
    return { host, port };
  });
  const target: RedisTarget = { mode: 'cluster', seeds, tls: scheme === 'rediss' };
  if (auth !== undefined && auth !== '') {
    const colon = auth.indexOf(':');
    const user = decodeURIComponent(colon === -1 ? auth : auth.slice(0, colon));
    if (user !== '') target.username = user;
    if (colon !== -1) target.password = decodeURIComponent(auth.slice(colon + 1));
  }
  return target;
}
