import { readFileSync } from 'node:fs';

/** Assumed when the limit cannot be read (not Linux, /proc not mounted). */
const UNKNOWN_LIMIT = 65536;

/**
 * The process's soft open-file limit (RLIMIT_NOFILE), from /proc/self/limits: Node has no
 * getrlimit. "unlimited" and unreadable give UNKNOWN_LIMIT.
 */
export function openFileLimit(read: () => string = () => readFileSync('/proc/self/limits', 'utf8')): number {
  try {
    const soft = /^Max open files\s+(\d+|unlimited)\s/m.exec(read())?.[1];
    return soft === undefined || soft === 'unlimited' ? UNKNOWN_LIMIT : Number(soft);
  } catch {
    return UNKNOWN_LIMIT;
  }
}

/**
 * The default --max-connections: the open-file limit minus a reserve of a tenth (at least 100)
 * for everything else that needs a descriptor — /healthz and /metrics scrapes, REST and gRPC
 * callers, Redis, the projects file, log output — so a WebSocket flood is refused with 503
 * while the node stays reachable. 20,000 gives 18,000; 1,024 gives 921.
 */
export function defaultMaxConnections(limit: number): number {
  return Math.max(1, limit - Math.max(100, Math.ceil(limit / 10)));
}
