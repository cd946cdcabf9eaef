import { parseRedisTarget, type RedisTarget } from './cluster/redis-target.js';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { ConfigError } from './config-error.js';
import { readConfigFile } from './config-file.js';
import { LOG_LEVELS } from './observability/logger.js';

/** Everything a node needs to start. Produced only by `parseConfig` (or tests building one). */
export interface Config {
  /** Bind address for all three listeners. @default "0.0.0.0" */
  host: string;
  /** WebSocket port (0 = ephemeral). @default 8812 */
  wsPort: number;
  /** HTTP port: REST bridge, health, metrics. @default 8912 */
  httpPort: number;
  /** gRPC port. @default 9912 */
  grpcPort: number;
  /**
   * Serve PushService.PushData and PushStream from node:http2 in front of grpc-js on the gRPC
   * port (byte-compatible, cheaper per push); false leaves every call to grpc-js. @default true
   */
  grpcFastPath: boolean;
  /** Serve the client SDK's demo page (live ticker + chat room) at /demo on the HTTP port. @default false */
  demo: boolean;
  /** Unique id of this node in the cluster. @default random 8 hex chars */
  nodeId: string;
  /** Redis URL; absent runs a single node on an in-process bus. */
  redis: string | undefined;
  /** Prefix of every Redis channel. @default "pushwire:" */
  redisPrefix: string;
  /** Projects file (JSON or YAML); absent: one project, "default", configured by the login flags. */
  projects: string | undefined;
  /** HS256 secret for login tokens. */
  jwtSecret: string | undefined;
  /** PEM file with an RSA or EC public key for RS256/ES256 login tokens. */
  jwtPublicKey: string | undefined;
  /** gpush-style auth callback URL. */
  authUrl: string | undefined;
  /** Timeout of one auth callback, ms. @default 3000 */
  authTimeoutMs: number;
  /** A client silent for this long is closed, ms. @default 60000 */
  pingTimeoutMs: number;
  /** Largest inbound WebSocket message, bytes. @default 65536 */
  maxMessageBytes: number;
  /** Largest pushed payload, bytes. @default 262144 */
  maxPushBytes: number;
  /** How long a push's idempotency_key is remembered, cluster-wide, ms. @default 300000 */
  idempotencyWindowMs: number;
  /** Backend consumer registrations not refreshed for this long expire (a node that died), ms. @default 15000 */
  consumerTtlMs: number;
  /**
   * A presence entry or node record not refreshed for this long is dropped (a node that died);
   * each node refreshes its own every ttl/3, ms. @default 30000
   */
  presenceTtlMs: number;
  /** How often server WebSocket connections get the online report, ms. @default 10000 */
  onlineReportIntervalMs: number;
  /** Outbound bytes a connection may have pending before it is closed as a slow consumer. @default 1048576 */
  maxQueueBytes: number;
  /**
   * A bus publish (Redis) not confirmed within this long is answered DEADLINE_EXCEEDED: sent,
   * outcome unknown. Also bounds every other Redis command's wait, ms. @default 5000
   */
  busTimeoutMs: number;
  /**
   * Most bus publishes sent to Redis and not yet confirmed, per node; over it a push is
   * refused at once (UNAVAILABLE), so a stalled Redis cannot grow the node's memory. @default 10000
   */
  busMaxInFlight: number;
  /** Longest a graceful shutdown may take before the process exits anyway, ms. @default 10000 */
  shutdownTimeoutMs: number;
  /** The default project's channel options (namespaces, history, recovery) as JSON; see docs/configuration.md. */
  channels: string | undefined;
  /** Protocol v1: the server pings a connection silent for this long, ms. @default 25000 */
  v1PingIntervalMs: number;
  /** Protocol v1: a connection that sends nothing this long after a ping is closed (3001), ms. @default 8000 */
  v1PongTimeoutMs: number;
  /** pino level. @default "info" */
  logLevel: string;
  /**
   * Worker processes sharing the three ports, each a node of its own (`serve --workers`);
   * "auto" is the machine's available cores. 1 runs the node in this process. @default 1
   */
  workers: number;
  /**
   * WebSocket connections this node accepts; the next upgrade gets HTTP 503. Absent: the
   * process's open-file limit minus a reserve for HTTP, gRPC and Redis (see fd-limit.ts).
   */
  maxConnections: number | undefined;
  /** Topics (public and private) one WebSocket connection may hold; more get 30007. @default 128 */
  maxSubscriptions: number;
  /**
   * Browser origins allowed to open WebSockets (projects may set their own). Absent: only the
   * node's own origin (Origin host = Host); ["*"]: any. Clients sending no Origin are not browsers
   * and always pass. @default same origin
   */
  allowedOrigins: string[] | undefined;
  /** Origins the REST bridge answers CORS for; absent: no CORS headers. @default off */
  corsOrigins: string[] | undefined;
  /** A request's headers (HTTP, and the WebSocket upgrade) must arrive within this, ms. @default 10000 */
  headerTimeoutMs: number;
  /** A whole HTTP request (headers and body) must arrive within this, ms. @default 30000 */
  requestTimeoutMs: number;
  /** Default write delay of a project's deliveries, ms; 0 = none (see Project.writeDelayMs). @default 0 */
  writeDelayMs: number;
  /** Key of the admin page (/admin on the HTTP port); absent: the page is off. */
  adminKey: string | undefined;
}

/** Longest write delay a project may have. */
export const MAX_WRITE_DELAY_MS = 1000;

/** Most workers one `serve` starts. */
export const MAX_WORKERS = 256;

export { ConfigError };

type Kind = 'string' | 'port' | 'size' | 'duration' | 'url' | 'boolean' | 'count' | 'workers' | 'delay' | 'origins';

export interface OptionSpec {
  key: keyof Config;
  flag: string;
  kind: Kind;
  default: string | undefined;
  help: string;
  /** The value's placeholder in --help; by kind when absent (PORT, SIZE, DURATION, URL). */
  value?: string;
}

/** The option table: flags, env vars (PUSHWIRE_<FLAG>), defaults and help all come from here. */
export const OPTIONS: readonly OptionSpec[] = [
  { key: 'host', flag: 'host', kind: 'string', value: 'HOST', default: '0.0.0.0', help: 'bind address of all listeners' },
  { key: 'wsPort', flag: 'ws-port', kind: 'port', default: '8812', help: 'WebSocket port (0 = ephemeral)' },
  { key: 'httpPort', flag: 'http-port', kind: 'port', default: '8912', help: 'HTTP port: REST bridge, /healthz, /readyz, /metrics' },
  { key: 'grpcPort', flag: 'grpc-port', kind: 'port', default: '9912', help: 'gRPC port' },
  { key: 'grpcFastPath', flag: 'grpc-fast-path', kind: 'boolean', default: 'true', help: 'serve PushService PushData/PushStream from node:http2 in front of grpc-js (true/false)' },
  { key: 'demo', flag: 'demo', kind: 'boolean', default: 'false', help: 'serve the client SDK demo page at /demo on the HTTP port (true/false)' },
  { key: 'nodeId', flag: 'node-id', kind: 'string', value: 'ID', default: undefined, help: 'node id, unique in the cluster (default: random)' },
  { key: 'redis', flag: 'redis', kind: 'string', value: 'URL', default: undefined, help: 'Redis URL (redis://, rediss://) or Redis Cluster seed nodes (redis+cluster://h1:p1,h2:p2); absent = single node, in-process bus' },
  { key: 'redisPrefix', flag: 'redis-prefix', kind: 'string', value: 'PREFIX', default: 'pushwire:', help: 'prefix of every Redis channel' },
  { key: 'projects', flag: 'projects', kind: 'string', value: 'FILE', default: undefined, help: 'projects (tenants) file, JSON or YAML; reloaded on SIGHUP and on change' },
  { key: 'jwtSecret', flag: 'jwt-secret', kind: 'string', value: 'SECRET', default: undefined, help: 'HS256 secret for login JWTs' },
  { key: 'jwtPublicKey', flag: 'jwt-public-key', kind: 'string', value: 'FILE', default: undefined, help: 'PEM public key file for RS256/ES256 login JWTs' },
  { key: 'authUrl', flag: 'auth-url', kind: 'url', default: undefined, help: 'gpush auth callback URL (POST {"token"})' },
  { key: 'authTimeoutMs', flag: 'auth-timeout', kind: 'duration', default: '3s', help: 'timeout of one auth callback' },
  { key: 'pingTimeoutMs', flag: 'ping-timeout', kind: 'duration', default: '60s', help: 'close clients silent for this long' },
  { key: 'maxMessageBytes', flag: 'max-message-bytes', kind: 'size', default: '64KiB', help: 'largest inbound WebSocket message' },
  { key: 'maxPushBytes', flag: 'max-push-bytes', kind: 'size', default: '256KiB', help: 'largest pushed payload' },
  { key: 'consumerTtlMs', flag: 'consumer-ttl', kind: 'duration', default: '15s', help: 'backend consumer registrations expire this long after their node stops refreshing them' },
  { key: 'idempotencyWindowMs', flag: 'idempotency-window', kind: 'duration', default: '5m', help: 'how long a push idempotency_key is remembered' },
  { key: 'presenceTtlMs', flag: 'presence-ttl', kind: 'duration', default: '30s', help: 'a dead node drops out of presence and the node list after this (refreshed every ttl/3)' },
  { key: 'onlineReportIntervalMs', flag: 'online-report-interval', kind: 'duration', default: '10s', help: 'how often server WebSocket connections receive the online report' },
  { key: 'maxQueueBytes', flag: 'max-queue-bytes', kind: 'size', default: '1MiB', help: 'outbound bytes pending per connection before it is closed as slow' },
  { key: 'busTimeoutMs', flag: 'bus-timeout', kind: 'duration', default: '5s', help: 'a push Redis has not confirmed by then answers DEADLINE_EXCEEDED (outcome unknown)' },
  { key: 'busMaxInFlight', flag: 'bus-max-in-flight', kind: 'count', default: '10000', help: 'most unconfirmed Redis publishes per node; beyond, pushes answer UNAVAILABLE at once' },
  { key: 'shutdownTimeoutMs', flag: 'shutdown-timeout', kind: 'duration', default: '10s', help: 'bound on graceful shutdown' },
  { key: 'channels', flag: 'channels', kind: 'string', value: 'JSON', default: undefined, help: 'default project channel options as JSON: {"history":{"size":100,"ttl":"10m"},"namespaces":{...}}' },
  { key: 'v1PingIntervalMs', flag: 'v1-ping-interval', kind: 'duration', default: '25s', help: 'protocol v1: ping a connection after this much server-side silence' },
  { key: 'v1PongTimeoutMs', flag: 'v1-pong-timeout', kind: 'duration', default: '8s', help: 'protocol v1: close (3001) a connection silent this long after a ping' },
  { key: 'workers', flag: 'workers', kind: 'workers', value: 'N|auto', default: '1', help: 'worker processes sharing the ports, each a cluster node (auto = available cores)' },
  { key: 'writeDelayMs', flag: 'write-delay', kind: 'delay', value: 'DURATION', default: '0', help: `how long deliveries may wait to share one socket write, 0-${MAX_WRITE_DELAY_MS}ms (projects without writeDelay)` },
  { key: 'logLevel', flag: 'log-level', kind: 'string', value: 'LEVEL', default: 'info', help: `log level: ${LOG_LEVELS.join(', ')}` },
  { key: 'adminKey', flag: 'admin-key', kind: 'string', value: 'KEY', default: undefined, help: 'key of the admin page /admin on the HTTP port (absent: the page is off)' },
  { key: 'maxConnections', flag: 'max-connections', kind: 'count', value: 'N', default: undefined, help: 'WebSocket connections per node, then HTTP 503 (default: open-file limit minus a reserve)' },
  { key: 'maxSubscriptions', flag: 'max-subscriptions', kind: 'count', value: 'N', default: '128', help: 'topics one WebSocket connection may hold (more: 30007)' },
  { key: 'allowedOrigins', flag: 'allowed-origins', kind: 'origins', value: 'ORIGINS', default: undefined, help: 'comma-separated browser origins allowed to open WebSockets, * for any (default: same origin only)' },
  { key: 'corsOrigins', flag: 'cors-origins', kind: 'origins', value: 'ORIGINS', default: undefined, help: 'comma-separated origins the REST bridge answers CORS for, * for any (default: no CORS)' },
  { key: 'headerTimeoutMs', flag: 'header-timeout', kind: 'duration', default: '10s', help: 'HTTP request and WebSocket upgrade headers must arrive within this' },
  { key: 'requestTimeoutMs', flag: 'request-timeout', kind: 'duration', default: '30s', help: 'a whole HTTP request (headers and body) must arrive within this' },
];

/** `--config FILE` (env PUSHWIRE_CONFIG): a YAML or JSON file of the options above, by flag name. */
export const CONFIG_FLAG = 'config';

const PLACEHOLDERS: Record<Kind, string> = { string: 'VALUE', port: 'PORT', size: 'SIZE', duration: 'DURATION', url: 'URL', boolean: 'true|false', count: 'N', workers: 'N', delay: 'DURATION', origins: 'ORIGINS' };

export const placeholder = (o: OptionSpec): string => o.value ?? PLACEHOLDERS[o.kind];

export const envName = (flag: string): string => `PUSHWIRE_${flag.toUpperCase().replaceAll('-', '_')}`;

/**
 * Reads `--flag value` / `--flag=value` arguments, then PUSHWIRE_* env vars, then the --config
 * file (PUSHWIRE_CONFIG), then defaults. Throws ConfigError with a message naming the offending
 * flag, env var or file.
 */
export function parseConfig(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Config {
  const given = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    if (flag !== CONFIG_FLAG && !OPTIONS.some((o) => o.flag === flag)) throw new ConfigError(`unknown option --${flag}`);
    // `--host --redis=...` is a missing value, not a host named "--redis=..."; a value that
    // really starts with "--" can still be given as --flag=--value.
    const value = eq === -1 ? args[i + 1] : arg.slice(eq + 1);
    if (value === undefined || (eq === -1 && value.startsWith('--'))) throw new ConfigError(`option --${flag} needs a value`);
    if (eq === -1) i++;
    given.set(flag, value);
  }
  const configFile = given.get(CONFIG_FLAG) ?? (env[envName(CONFIG_FLAG)] || undefined);
  const file = configFile === undefined ? new Map<string, string>() : readConfigFile(configFile, OPTIONS.map((o) => o.flag));
  const raw: Record<string, unknown> = {};
  for (const o of OPTIONS) {
    // An empty env var counts as unset (compose files often expand unset variables to "").
    const fromArgs = given.get(o.flag) ?? (env[envName(o.flag)] || undefined);
    const fromFile = fromArgs === undefined ? file.get(o.flag) : undefined;
    const value = fromArgs ?? fromFile ?? o.default;
    const where = fromFile !== undefined ? `${configFile}: ${o.flag}` : `--${o.flag} (${envName(o.flag)})`;
    raw[o.key] = value === undefined ? undefined : convert(o, value, where);
  }
  const config = raw as unknown as Config;
  config.nodeId ??= randomBytes(4).toString('hex');
  check(config);
  return config;
}

/** `where` names the source in the message: the flag and its env var, or the config file and key. */
function convert(o: OptionSpec, value: string, where: string): unknown {
  const bad = (why: string): never => {
    throw new ConfigError(`${where}: ${why}, got "${value}"`);
  };
  switch (o.kind) {
    case 'string':
      if (value === '') bad('must not be empty');
      return value;
    case 'port': {
      const n = Number(value);
      if (!/^\d+$/.test(value) || n > 65535) bad('must be a port number 0-65535');
      return n;
    }
    case 'size':
      return parseSize(value) ?? bad('must be a positive size such as 65536, 64KiB or 1MiB');
    case 'duration':
      return parseDuration(value) ?? bad('must be a positive duration such as 500ms, 30s or 2m');
    case 'url':
      if (!URL.canParse(value)) bad('must be a URL');
      return value;
    case 'boolean':
      if (value !== 'true' && value !== 'false') bad('must be true or false');
      return value === 'true';
    case 'count': {
      const n = Number(value);
      if (!/^\d+$/.test(value) || n < 1 || !Number.isSafeInteger(n)) bad('must be a positive whole number');
      return n;
    }
    case 'delay': {
      const d = parseDelay(value);
      return d !== undefined && d <= MAX_WRITE_DELAY_MS ? d : bad(`must be a duration 0-${MAX_WRITE_DELAY_MS}ms such as 0, 5ms or 20ms`);
    }
    case 'workers': {
      if (value === 'auto') return availableParallelism();
      const n = Number(value);
      if (!/^\d+$/.test(value) || n < 1 || n > MAX_WORKERS) bad(`must be "auto" or a number 1-${MAX_WORKERS}`);
      return n;
    }
    case 'origins':
      return parseOrigins(value) ?? bad('must be * or comma-separated origins such as https://app.example.com or https://*.example.com');
  }
}

/**
 * "*" or a comma-separated list of `scheme://host[:port]`, the host optionally starting with
 * "*." for any subdomain. Origins are compared lower-cased (browsers send them so).
 */
export function parseOrigins(value: string): string[] | undefined {
  const list = value.split(',').map((o) => o.trim().toLowerCase()).filter((o) => o !== '');
  if (list.length === 0) return undefined;
  if (list.includes('*')) return list.length === 1 ? ['*'] : undefined;
  const ok = list.every((o) => /^[a-z][a-z0-9+.-]*:\/\/(\*\.)?[a-z0-9.-]+(:\d{1,5})?$/.test(o));
  return ok ? list : undefined;
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kib: 1024, kb: 1000, mib: 1024 ** 2, mb: 1000 ** 2, gib: 1024 ** 3, gb: 1000 ** 3 };

export function parseSize(value: string): number | undefined {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(value.trim());
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) return undefined;
  const n = Number(m[1]) * unit;
  return n > 0 && Number.isSafeInteger(n) ? n : undefined;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Like parseDuration, but 0 is allowed (a delay that can be off). */
export function parseDelay(value: string): number | undefined {
  return /^0+(\.0+)?\s*(ms|s|m|h)?$/i.test(value.trim()) ? 0 : parseDuration(value);
}

/** "250ms", "30s", "2m", "1h"; a bare number is milliseconds. */
export function parseDuration(value: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/i.exec(value.trim());
  if (!m) return undefined;
  const n = Math.round(Number(m[1]) * DURATION_UNITS[(m[2] ?? 'ms').toLowerCase()]!);
  return n > 0 ? n : undefined;
}

function check(c: Config): void {
  if (!(LOG_LEVELS as readonly string[]).includes(c.logLevel)) {
    throw new ConfigError(`--log-level (PUSHWIRE_LOG_LEVEL): must be one of ${LOG_LEVELS.join(', ')}, got "${c.logLevel}"`);
  }
  if (c.redis !== undefined) {
    let target: RedisTarget;
    try {
      target = parseRedisTarget(c.redis);
    } catch (err) {
      throw new ConfigError(`--redis (PUSHWIRE_REDIS): ${(err as Error).message}, got "${c.redis}"`);
    }
    // The prefix sits in front of every hash tag; a brace in it would become the tag.
    if (target.mode === 'cluster' && /[{}]/.test(c.redisPrefix)) {
      throw new ConfigError(`--redis-prefix (PUSHWIRE_REDIS_PREFIX): must not contain { or } on a Redis Cluster, got "${c.redisPrefix}"`);
    }
  }
  if (c.authUrl !== undefined && !/^https?:$/.test(new URL(c.authUrl).protocol)) {
    throw new ConfigError(`--auth-url (PUSHWIRE_AUTH_URL): must be an http:// or https:// URL, got "${c.authUrl}"`);
  }
  if (c.projects !== undefined) {
    const clash = (['jwtSecret', 'jwtPublicKey', 'authUrl'] as const).find((k) => c[k] !== undefined);
    if (clash) {
      const flag = OPTIONS.find((o) => o.key === clash)!.flag;
      throw new ConfigError(`--${flag} cannot be combined with --projects: set each project's login in the projects file`);
    }
    if (c.channels !== undefined) {
      throw new ConfigError("--channels cannot be combined with --projects: set each project's channels in the projects file");
    }
  }
  if (c.maxPushBytes > c.maxQueueBytes) {
    throw new ConfigError(
      `--max-push-bytes (${c.maxPushBytes}) must not exceed --max-queue-bytes (${c.maxQueueBytes}): every client would be closed as slow`,
    );
  }
  if (c.requestTimeoutMs < c.headerTimeoutMs) {
    throw new ConfigError(`--request-timeout (${c.requestTimeoutMs} ms) must not be shorter than --header-timeout (${c.headerTimeoutMs} ms)`);
  }
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(c.nodeId)) {
    throw new ConfigError(`--node-id (PUSHWIRE_NODE_ID): 1-64 of A-Z a-z 0-9 _ . -, got "${c.nodeId}"`);
  }
}

/** `pushwire serve --help`: every option with its placeholder, default and env var, in aligned columns. */
export function helpText(): string {
  const rows: Array<[string, string]> = [
    [`--${CONFIG_FLAG} FILE`, `YAML or JSON file of these options, by flag name (precedence: flag > env > file > default)`],
    ['', `env ${envName(CONFIG_FLAG)}`],
  ];
  for (const o of OPTIONS) {
    const def = o.default === undefined ? '' : ` (default ${o.default})`;
    rows.push([`--${o.flag} ${placeholder(o)}`, `${o.help}${def}`], ['', `env ${envName(o.flag)}`]);
  }
  return `Usage: pushwire serve [options]\n\nStarts one pushwire node.\n\nOptions:\n${columns(rows)}`;
}

/** Two columns, the second aligned after the widest first one. */
export function columns(rows: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return rows.map(([left, right]) => `  ${left.padEnd(width)}${right}`.trimEnd() + '\n').join('');
}
