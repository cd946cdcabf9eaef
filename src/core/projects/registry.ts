import type { Authenticator } from '../auth/authenticator.js';
import type { ChannelSettings } from '../channels/options.js';
import { Code, PushwireError } from '../errors.js';
import { DEFAULT_PID } from '../targeting.js';

/** Server-API methods a key may be limited to. */
export const API_METHODS = [
  'PushData',
  'PushDataBatch',
  // BackendService
  'Connect',
  // OnlineUsersService
  'ListOnlineUsers',
  'GetPresence',
  'CountOnline',
  'WatchOnlineUsers',
  // SubscribeService
  'Subscribe',
  // ClusterService
  'ListNodes',
  // HistoryService
  'GetHistory',
  'RemoveHistory',
] as const;
export type ApiMethod = (typeof API_METHODS)[number];

/** Per-node limits of one project; undefined: unlimited. */
export interface ProjectLimits {
  maxConnections?: number;
  pushesPerSecond?: number;
  requestsPerSecond?: number;
}

/** A tenant: its own login method and connections; pushes never cross projects. */
export interface Project {
  pid: string;
  name: string;
  /** Verifies this project's login tokens. */
  authenticator: Authenticator;
  limits: ProjectLimits;
  /** History, recovery and push size per namespace; absent: no history anywhere. */
  channels?: ChannelSettings;
  /**
   * Browser origins allowed to open this project's WebSockets (lower-cased, "*" = any);
   * undefined: the node's --allowed-origins.
   */
  allowedOrigins?: readonly string[];
  /**
   * How long a connection's deliveries may wait to share one socket write, ms (0: written at the
   * end of the event-loop turn, as always). Replies to the connection's own requests are never delayed.
   */
  writeDelayMs?: number;
}

/** What a server-API key grants: one project, and optionally only some methods. */
export interface ApiKeyGrant {
  pid: string;
  /** Undefined: every method. */
  methods: ReadonlySet<string> | undefined;
}

export interface ProjectSet {
  projects: readonly Project[];
  /** Secret key → grant. Empty: the server API is open. */
  apiKeys: ReadonlyMap<string, ApiKeyGrant>;
}

/** pid syntax: it appears in bus channel names (before a "/") and in URLs. */
export const PID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The projects this node serves. Reloading swaps the whole set at once; connections keep the
 * pid they were accepted with (a removed project's connections stay until they close).
 */
export class ProjectRegistry {
  private byPid = new Map<string, Project>();
  private keys: ReadonlyMap<string, ApiKeyGrant> = new Map();

  constructor(set: ProjectSet) {
    this.replace(set);
  }

  replace(set: ProjectSet): void {
    this.byPid = new Map(set.projects.map((p) => [p.pid, p]));
    this.keys = set.apiKeys;
  }

  get(pid: string): Project | undefined {
    return this.byPid.get(pid);
  }

  get pids(): string[] {
    return [...this.byPid.keys()];
  }

  /** True when no API key is configured: every caller may push to any project. */
  get open(): boolean {
    return this.keys.size === 0;
  }

  /**
   * Checks a server-API call. Returns the key's project, or undefined for an open API.
   * Missing/unknown key: UNAUTHENTICATED; a key not allowed `method`: PERMISSION_DENIED.
   */
  authorize(bearer: string | undefined, method: ApiMethod): string | undefined {
    if (this.open) return undefined;
    if (bearer === undefined || bearer === '') throw new PushwireError(Code.UNAUTHENTICATED, 'missing API key (authorization: Bearer <key>)');
    const grant = this.keys.get(bearer);
    if (grant === undefined) throw new PushwireError(Code.UNAUTHENTICATED, 'unknown API key');
    if (grant.methods !== undefined && !grant.methods.has(method)) {
      throw new PushwireError(Code.PERMISSION_DENIED, `this API key may not call ${method}`);
    }
    return grant.pid;
  }

  /**
   * The project a push goes to: the one asked for, checked against the caller's key; an
   * empty request means the key's project, or the default project on a node without projects.
   */
  resolvePid(requested: string, keyPid: string | undefined): string {
    if (keyPid !== undefined) {
      if (requested !== '' && requested !== keyPid) {
        throw new PushwireError(Code.PERMISSION_DENIED, `this API key belongs to another project than "${requested}"`);
      }
      return keyPid;
    }
    const pid = requested === '' ? DEFAULT_PID : requested;
    if (!this.byPid.has(pid)) {
      throw requested === ''
        ? new PushwireError(Code.INVALID_ARGUMENT, 'pid is required: this node serves several projects')
        : new PushwireError(Code.NOT_FOUND, `unknown project "${requested}"`);
    }
    return pid;
  }
}
