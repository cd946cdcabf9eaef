/**
 * Per-channel options of a project (projects file `channels`, or --channels for the default
 * project): defaults for every topic, overridden per namespace, the topic's text before its
 * first ":" ("chat:room1" is in namespace "chat"). User channels take the defaults.
 */

export interface HistoryOptions {
  /** Most publications kept per channel. */
  size: number;
  /** Publications older than this are no longer served; an idle stream expires after it. */
  ttlMs: number;
  /**
   * How long the stream's position (epoch, offset) outlives its last publication, so a client
   * coming back late gets recovered=false instead of a new epoch that hides the loss.
   */
  metaTtlMs: number;
}

export interface ChannelOptions {
  /** Undefined: the channel keeps no history, publications carry no offset. */
  history?: HistoryOptions;
  /** Clients may recover missed publications (subscribe with since); needs history. */
  recover: boolean;
  /** Overrides --max-push-bytes for pushes to the channel. */
  maxPushBytes?: number;
  /** Protocol v1 clients may ask who is subscribed (the presence command); subscriptions are recorded cluster-wide. */
  presence: boolean;
  /** Protocol v1 subscribers receive join/leave pushes when a v1 client subscribes or leaves. */
  joinLeave: boolean;
}

export interface ChannelSettings {
  defaults: ChannelOptions;
  namespaces: ReadonlyMap<string, ChannelOptions>;
}

export const NO_CHANNEL_OPTIONS: ChannelOptions = Object.freeze({ recover: false, presence: false, joinLeave: false });

export const NO_CHANNEL_SETTINGS: ChannelSettings = Object.freeze({ defaults: NO_CHANNEL_OPTIONS, namespaces: new Map() });

/** Publications a history read or a recovery returns at most. */
export const MAX_HISTORY_READ = 1000;

/** Largest history.size (a Redis stream per channel, trimmed exactly). */
export const MAX_HISTORY_SIZE = 100_000;

export const DEFAULT_META_TTL_MS = 30 * 24 * 3600 * 1000;

/** The namespace of a topic, or undefined when it has none. */
export function namespaceOf(topic: string): string | undefined {
  const i = topic.indexOf(':');
  return i > 0 ? topic.slice(0, i) : undefined;
}

/** The options of a topic; '' (a user's own channel) takes the defaults. */
export function channelOptions(settings: ChannelSettings, topic: string): ChannelOptions {
  if (settings.namespaces.size === 0) return settings.defaults;
  const ns = namespaceOf(topic);
  return (ns !== undefined && settings.namespaces.get(ns)) || settings.defaults;
}

const OPTION_FIELDS = new Set(['history', 'recover', 'maxPushBytes', 'presence', 'joinLeave']);
const SETTINGS_FIELDS = new Set([...OPTION_FIELDS, 'namespaces']);
const HISTORY_FIELDS = new Set(['size', 'ttl', 'metaTtl']);
const NAMESPACE_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

type Bad = (where: string, why: string) => never;

/**
 * Validates a `channels` object; every problem calls `bad` with its place
 * (e.g. `channels.namespaces.chat.history.size`).
 */
export function parseChannelSettings(
  raw: unknown,
  where: string,
  bad: Bad,
  parseDuration: (s: string) => number | undefined,
): ChannelSettings {
  const o = fields(raw, where, SETTINGS_FIELDS, bad);
  const defaults = parseOptions(o, where, bad, parseDuration);
  const namespaces = new Map<string, ChannelOptions>();
  if (o.namespaces !== undefined) {
    const ns = fields(o.namespaces, `${where}.namespaces`, undefined, bad);
    for (const [name, value] of Object.entries(ns)) {
      const at = `${where}.namespaces.${name}`;
      if (!NAMESPACE_PATTERN.test(name)) bad(at, 'a namespace name is 1-64 of A-Z a-z 0-9 _ . -');
      namespaces.set(name, parseOptions(fields(value, at, OPTION_FIELDS, bad), at, bad, parseDuration));
    }
  }
  return { defaults, namespaces };
}

function parseOptions(
  o: Record<string, unknown>,
  where: string,
  bad: Bad,
  parseDuration: (s: string) => number | undefined,
): ChannelOptions {
  let history: HistoryOptions | undefined;
  if (o.history !== undefined) {
    const h = fields(o.history, `${where}.history`, HISTORY_FIELDS, bad);
    const size = h.size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1 || size > MAX_HISTORY_SIZE) {
      bad(`${where}.history.size`, `must be an integer from 1 to ${MAX_HISTORY_SIZE}`);
    }
    const duration = (f: 'ttl' | 'metaTtl'): number | undefined => {
      if (h[f] === undefined) return undefined;
      const ms = typeof h[f] === 'string' ? parseDuration(h[f]) : undefined;
      return ms ?? bad(`${where}.history.${f}`, 'must be a duration such as 30s, 10m or 24h');
    };
    const ttlMs = duration('ttl') ?? bad(`${where}.history.ttl`, 'is required (a duration such as 10m)');
    const metaTtlMs = duration('metaTtl') ?? Math.max(DEFAULT_META_TTL_MS, ttlMs);
    if (metaTtlMs < ttlMs) bad(`${where}.history.metaTtl`, 'must not be shorter than history.ttl');
    history = { size: size as number, ttlMs, metaTtlMs };
  }
  if (o.recover !== undefined && typeof o.recover !== 'boolean') bad(`${where}.recover`, 'must be true or false');
  const recover = (o.recover as boolean | undefined) ?? history !== undefined;
  if (recover && history === undefined) bad(`${where}.recover`, 'needs history (recovery replays the history)');
  for (const flag of ['presence', 'joinLeave'] as const) {
    if (o[flag] !== undefined && typeof o[flag] !== 'boolean') bad(`${where}.${flag}`, 'must be true or false');
  }
  const options: ChannelOptions = { recover, presence: (o.presence as boolean | undefined) ?? false, joinLeave: (o.joinLeave as boolean | undefined) ?? false };
  if (history !== undefined) options.history = history;
  if (o.maxPushBytes !== undefined) {
    const v = o.maxPushBytes;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) bad(`${where}.maxPushBytes`, 'must be a positive integer (bytes)');
    options.maxPushBytes = v as number;
  }
  return options;
}

function fields(raw: unknown, where: string, allowed: ReadonlySet<string> | undefined, bad: Bad): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad(where, 'must be an object');
  const o = raw as Record<string, unknown>;
  if (allowed !== undefined) {
    for (const key of Object.keys(o)) if (!allowed.has(key)) bad(`${where}.${key}`, `unknown field (expected one of ${[...allowed].join(', ')})`);
  }
  return o;
}
