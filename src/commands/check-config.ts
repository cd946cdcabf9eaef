import { parseConfig } from '../config.js';
import { loadProjectsFile } from '../projects.js';
import { loadProjects } from '../startup/projects-source.js';
import { UsageError, option } from './args.js';
import { defineCommand } from './command.js';

/**
 * `pushwire check-config`: the node's own loaders on a config file and a projects file, so the
 * messages are exactly those `pushwire serve` would fail with. Exit 0 when both are valid, 1 with
 * the first problem, 2 for bad arguments.
 */
export const checkConfig = defineCommand(
  'check-config',
  {
    usage: 'pushwire check-config [--projects FILE] [--config FILE]',
    description:
      'Checks a node config file (--config, every serve option) and a projects file (--projects) as\n' +
      '`pushwire serve` would load them, without starting anything. Environment variables are ignored.\n' +
      'A --config that names a projects file has that file checked too. Exit 0: valid; 1: invalid.',
    flags: [
      { name: 'projects', value: 'FILE', help: 'projects (tenants) file, JSON or YAML' },
      { name: 'config', value: 'FILE', help: 'node config file, YAML or JSON' },
    ],
  },
  async (parsed) => {
    const configFile = option(parsed, 'config');
    const projectsFile = option(parsed, 'projects');
    if (configFile === undefined && projectsFile === undefined) throw new UsageError('give --config, --projects or both');
    if (configFile !== undefined) {
      const config = parseConfig(['--config', configFile], {});
      // The login settings and key files the config names load as they would at start.
      if (projectsFile === undefined) loadProjects(config);
      process.stdout.write(`${configFile}: ok\n`);
      if (projectsFile === undefined && config.projects !== undefined) report(config.projects, config.authTimeoutMs);
    }
    if (projectsFile !== undefined) report(projectsFile, parseConfig(configFile === undefined ? [] : ['--config', configFile], {}).authTimeoutMs);
  },
);

function report(file: string, authTimeoutMs: number): void {
  const set = loadProjectsFile(file, authTimeoutMs);
  const pids = set.projects.map((p) => p.pid).join(', ');
  const keys = set.apiKeys.size === 0 ? 'no API keys: the server API would be OPEN' : `${set.apiKeys.size} API key${set.apiKeys.size === 1 ? '' : 's'}`;
  process.stdout.write(`${file}: ok (${set.projects.length} project${set.projects.length === 1 ? '' : 's'}: ${pids}; ${keys})\n`);
}
