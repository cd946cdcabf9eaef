import { watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Config } from '../config.js';
import { ProjectRegistry, type ProjectSet } from '../core/projects/registry.js';
import type { Logger } from '../observability/logger.js';
import { MAX_JSON_FILE_BYTES, readFileBounded } from '../bounded-document.js';
import type { Metrics } from '../observability/metrics.js';
import { defaultProjects, hasLogin, loadProjectsFile } from '../projects.js';

/** The projects file (--projects) or the one "default" project the login flags describe. */
export function loadProjects(config: Config): ProjectSet {
  return config.projects === undefined ? defaultProjects(config) : loadProjectsFile(config.projects, config.authTimeoutMs, config.writeDelayMs);
}

/** The registry for the configured projects, with the warnings an operator must see at start. */
export function openProjects(config: Config, logger: Logger): ProjectRegistry {
  const projects = new ProjectRegistry(loadProjects(config));
  if (projects.open) {
    logger.warn('server API is OPEN: no API keys configured, any caller can push to any project (configure keys with --projects)');
  }
  if (config.projects === undefined && !hasLogin(config)) {
    logger.warn('no login method configured: WebSocket logins (code 3) will fail with 30003');
  }
  return projects;
}

/**
 * Re-reads the projects into `projects`; false (and the old set kept) when they are invalid.
 * Never throws: it runs from a signal handler and a file watch, where a throw ends the process.
 */
export function projectsReloader(config: Config, projects: ProjectRegistry, logger: Logger, metrics: Metrics): () => boolean {
  return () => {
    try {
      const set = loadProjects(config);
      projects.replace(set);
      metrics.projectsReloads.inc({ result: 'ok' });
      logger.info({ pids: projects.pids, apiKeys: set.apiKeys.size }, 'projects reloaded');
      if (projects.open) logger.warn('server API is OPEN after the reload: no API keys configured');
      return true;
    } catch (err) {
      metrics.projectsReloads.inc({ result: 'failed' });
      logger.error({ err: (err as Error).message }, 'projects reload failed; keeping the previous projects');
      return false;
    }
  };
}

/**
 * Re-reads the projects file on change. A broken edit is logged and ignored: the node keeps
 * serving the last good set. The folder is watched, not the file: editors and config tools
 * save by renaming a new file over the old one, which a watch on the file's inode loses, and a
 * Kubernetes ConfigMap or Secret volume swaps its `..data` symlink, so no event names the file
 * at all. Hence any event in the folder, after a short debounce (writers take several steps),
 * re-reads the file, and reloads only when its content changed.
 */
export function watchProjects(config: Config, apply: () => void): FSWatcher | undefined {
  if (config.projects === undefined) return undefined;
  const path = resolve(config.projects);
  const read = (): string | undefined => {
    try {
      // Bounded like the loader (a JSON file's limit is the larger one): a huge file is never read whole here either.
      return readFileBounded(path, MAX_JSON_FILE_BYTES);
    } catch {
      return undefined; // gone, unreadable or too large: apply() reports it
    }
  };
  let seen = read();
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(dirname(path), () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const now = read();
      if (now === seen) return;
      seen = now;
      apply();
    }, 200);
  });
  watcher.unref();
  return watcher;
}
