import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { FileTooLargeError, MAX_JSON_FILE_BYTES, MAX_YAML_FILE_BYTES, TooDeepError, mib, parseJsonBounded, parseYamlBounded, readFileBounded } from './bounded-document.js';
import { ConfigError, MAX_WRITE_DELAY_MS, parseDelay, parseDuration, parseOrigins, type Config } from './config.js';
import { parseChannelSettings, type ChannelSettings } from './core/channels/options.js';
import { chainAuthenticators, type Authenticator } from './core/auth/authenticator.js';
import { CallbackAuthenticator } from './core/auth/callback-authenticator.js';
import { JwtAuthenticator } from './core/auth/jwt-authenticator.js';
import { API_METHODS, PID_PATTERN, type ApiKeyGrant, type Project, type ProjectLimits, type ProjectSet } from './core/projects/registry.js';
import { DEFAULT_PID } from './core/targeting.js';

/** How one project's clients log in; any subset, tried as documented in chainAuthenticators. */
interface LoginSettings {
  pid: string;
  jwtSecret?: string;
  /** PEM text, already read. */
  jwtPublicKeyPem?: string;
  authUrl?: string;
  authTimeoutMs: number;
}

/** `where` names the setting in error messages (a flag, or a path in the projects file). */
function buildAuthenticator(login: LoginSettings, where: string): Authenticator {
  let jwt: JwtAuthenticator | undefined;
  if (login.jwtSecret !== undefined || login.jwtPublicKeyPem !== undefined) {
    try {
      jwt = new JwtAuthenticator({ secret: login.jwtSecret, publicKeyPem: login.jwtPublicKeyPem, pid: login.pid });
    } catch (err) {
      throw new ConfigError(`${where}: ${(err as Error).message}`);
    }
  }
  const callback = login.authUrl === undefined ? undefined : new CallbackAuthenticator(login.authUrl, login.authTimeoutMs);
  return chainAuthenticators(jwt, callback);
}

function readKey(file: string, where: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${where}: cannot read "${file}": ${(err as Error).message}`);
  }
}

/** Without a projects file: one project, "default", logging in with the --jwt-* / --auth-url flags. */
export function defaultProjects(config: Config): ProjectSet {
  const authenticator = buildAuthenticator(
    {
      pid: DEFAULT_PID,
      jwtSecret: config.jwtSecret,
      jwtPublicKeyPem: config.jwtPublicKey === undefined ? undefined : readKey(config.jwtPublicKey, '--jwt-public-key'),
      authUrl: config.authUrl,
      authTimeoutMs: config.authTimeoutMs,
    },
    '--jwt-public-key',
  );
  const project: Project = { pid: DEFAULT_PID, name: DEFAULT_PID, authenticator, limits: {}, writeDelayMs: config.writeDelayMs };
  if (config.channels !== undefined) project.channels = channelsFlag(config.channels);
  return { projects: [project], apiKeys: new Map() };
}

/** --channels: the default project's `channels` object as JSON. */
function channelsFlag(text: string): ChannelSettings {
  let raw: unknown;
  try {
    raw = parseJsonBounded(text);
  } catch (err) {
    if (err instanceof TooDeepError) throw new ConfigError(`--channels: ${err.message}`);
    throw new ConfigError(`--channels: not valid JSON: ${(err as Error).message}`);
  }
  return parseChannelSettings(raw, 'channels', (where, why) => {
    throw new ConfigError(`--channels: ${where}: ${why}`);
  }, parseDuration);
}

/** Whether a project can log anyone in (for the start-up warning). */
export const hasLogin = (config: Config): boolean =>
  config.jwtSecret !== undefined || config.jwtPublicKey !== undefined || config.authUrl !== undefined;

const TOP_FIELDS = new Set(['projects']);
const PROJECT_FIELDS = new Set(['pid', 'name', 'login', 'apiKeys', 'limits', 'writeDelay', 'channels', 'allowedOrigins']);
const LIMIT_FIELDS = new Set(['maxConnections', 'pushesPerSecond', 'requestsPerSecond']);
const LOGIN_FIELDS = new Set(['jwtSecret', 'jwtPublicKeyFile', 'authUrl', 'authTimeout']);
const KEY_FIELDS = new Set(['key', 'methods']);
const MIN_KEY_LENGTH = 16;

/**
 * Reads a projects file (JSON, or YAML by extension .yaml/.yml) into a ProjectSet. Every
 * problem throws ConfigError naming its place, e.g. `projects[1].apiKeys[0].methods`; a
 * relative jwtPublicKeyFile is resolved against the file's folder. A project without
 * `writeDelay` gets `defaultWriteDelayMs` (--write-delay). Size and nesting are bounded before
 * anything recursive sees the document (bounded-document.ts): a reload can refuse a file, never
 * crash the node.
 */
export function loadProjectsFile(file: string, defaultAuthTimeoutMs: number, defaultWriteDelayMs = 0): ProjectSet {
  const yaml = /\.ya?ml$/i.test(file);
  const format = yaml ? 'YAML' : 'JSON';
  let text: string;
  try {
    text = readFileBounded(file, yaml ? MAX_YAML_FILE_BYTES : MAX_JSON_FILE_BYTES);
  } catch (err) {
    if (err instanceof FileTooLargeError) {
      throw new ConfigError(`--projects: "${file}" is ${err.message}, the limit for a ${format} projects file (JSON: ${mib(MAX_JSON_FILE_BYTES)}, YAML: ${mib(MAX_YAML_FILE_BYTES)})`);
    }
    throw new ConfigError(`--projects: cannot read "${file}": ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = yaml ? parseYamlBounded(text) : parseJsonBounded(text);
  } catch (err) {
    if (err instanceof TooDeepError) throw new ConfigError(`--projects: "${file}" is ${err.message} (a projects file needs 7)`);
    throw new ConfigError(`--projects: "${file}" is not valid ${format}: ${(err as Error).message}`);
  }
  const bad = (where: string, why: string): never => {
    throw new ConfigError(`--projects ${file}: ${where}: ${why}`);
  };
  const list = (doc as { projects?: unknown } | null)?.projects;
  if (!Array.isArray(list) || list.length === 0) bad('projects', 'must be a non-empty list');
  // Unknown top-level fields are refused too: a misplaced `apiKeys` must not leave the API open.
  object(doc, '(top level)', TOP_FIELDS, bad);
  const projects: Project[] = [];
  const apiKeys = new Map<string, ApiKeyGrant>();
  (list as unknown[]).forEach((raw, i) => {
    const at = `projects[${i}]`;
    const p = object(raw, at, PROJECT_FIELDS, bad);
    if (typeof p.pid !== 'string' || !PID_PATTERN.test(p.pid)) bad(`${at}.pid`, 'must be 1-64 of A-Z a-z 0-9 _ -');
    const pid = p.pid as string;
    if (projects.some((q) => q.pid === pid)) bad(`${at}.pid`, `"${pid}" is listed twice`);
    if (p.name !== undefined && typeof p.name !== 'string') bad(`${at}.name`, 'must be a string');
    const login = p.login === undefined ? {} : object(p.login, `${at}.login`, LOGIN_FIELDS, bad);
    for (const f of ['jwtSecret', 'jwtPublicKeyFile', 'authUrl', 'authTimeout']) {
      if (login[f] !== undefined && (typeof login[f] !== 'string' || login[f] === '')) bad(`${at}.login.${f}`, 'must be a non-empty string');
    }
    const authUrl = login.authUrl as string | undefined;
    if (authUrl !== undefined && !(URL.canParse(authUrl) && /^https?:$/.test(new URL(authUrl).protocol))) {
      bad(`${at}.login.authUrl`, 'must be an http:// or https:// URL');
    }
    let authTimeoutMs = defaultAuthTimeoutMs;
    if (login.authTimeout !== undefined) {
      authTimeoutMs = parseDuration(login.authTimeout as string) ?? bad(`${at}.login.authTimeout`, 'must be a duration such as 3s');
    }
    const keyFile = login.jwtPublicKeyFile as string | undefined;
    const authenticator = buildAuthenticator(
      {
        pid,
        jwtSecret: login.jwtSecret as string | undefined,
        jwtPublicKeyPem: keyFile === undefined ? undefined : readKey(resolve(dirname(file), keyFile), `--projects ${file}: ${at}.login.jwtPublicKeyFile`),
        authUrl,
        authTimeoutMs,
      },
      `--projects ${file}: ${at}.login.jwtPublicKeyFile`,
    );
    const keys = p.apiKeys ?? [];
    if (!Array.isArray(keys)) bad(`${at}.apiKeys`, 'must be a list');
    (keys as unknown[]).forEach((rawKey, j) => {
      const kat = `${at}.apiKeys[${j}]`;
      const k = object(rawKey, kat, KEY_FIELDS, bad);
      if (typeof k.key !== 'string' || k.key.length < MIN_KEY_LENGTH || /\s/.test(k.key)) {
        bad(`${kat}.key`, `must be a string of at least ${MIN_KEY_LENGTH} characters, without spaces`);
      }
      if (apiKeys.has(k.key as string)) bad(`${kat}.key`, 'is used twice (a key belongs to exactly one project)');
      let methods: Set<string> | undefined;
      if (k.methods !== undefined) {
        if (!Array.isArray(k.methods) || k.methods.length === 0 || k.methods.some((m) => !(API_METHODS as readonly unknown[]).includes(m))) {
          bad(`${kat}.methods`, `must be a non-empty list of ${API_METHODS.join(', ')}`);
        }
        methods = new Set(k.methods as string[]);
      }
      apiKeys.set(k.key as string, { pid, methods });
    });
    const limits = p.limits === undefined ? {} : object(p.limits, `${at}.limits`, LIMIT_FIELDS, bad);
    for (const [f, v] of Object.entries(limits)) {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) bad(`${at}.limits.${f}`, 'must be a positive integer');
    }
    let writeDelayMs = defaultWriteDelayMs;
    if (p.writeDelay !== undefined) {
      const d = typeof p.writeDelay === 'number' ? p.writeDelay : typeof p.writeDelay === 'string' ? parseDelay(p.writeDelay) : undefined;
      if (d === undefined || !Number.isInteger(d) || d < 0 || d > MAX_WRITE_DELAY_MS) {
        bad(`${at}.writeDelay`, `must be 0-${MAX_WRITE_DELAY_MS} ms (a number of ms, or a duration such as "5ms")`);
      }
      writeDelayMs = d!;
    }
    let allowedOrigins: string[] | undefined;
    if (p.allowedOrigins !== undefined) {
      const origins = p.allowedOrigins;
      const parsed =
        Array.isArray(origins) && origins.length > 0 && origins.every((o) => typeof o === 'string' && !o.includes(',')) ? parseOrigins(origins.join(',')) : undefined;
      allowedOrigins = parsed ?? bad(`${at}.allowedOrigins`, 'must be a non-empty list of origins such as https://app.example.com, https://*.example.com, or ["*"]');
    }
    const project: Project = { pid, name: (p.name as string | undefined) ?? pid, authenticator, limits: limits as ProjectLimits, writeDelayMs };
    if (p.channels !== undefined) project.channels = parseChannelSettings(p.channels, `${at}.channels`, bad, parseDuration);
    if (allowedOrigins !== undefined) project.allowedOrigins = allowedOrigins;
    projects.push(project);
  });
  return { projects, apiKeys };
}

function object(
  raw: unknown,
  where: string,
  allowed: ReadonlySet<string>,
  bad: (where: string, why: string) => never,
): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad(where, 'must be an object');
  const o = raw as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!allowed.has(key)) bad(`${where}.${key}`, `unknown field (expected one of ${[...allowed].join(', ')})`);
  return o;
}
