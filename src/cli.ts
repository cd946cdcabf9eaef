#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { ConfigError, helpText, parseConfig } from './config.js';
import { createLogger } from './observability/logger.js';
import { startServer } from './server.js';
import { runPrimary } from './workers/primary.js';
import { workerContext } from './workers/worker.js';

const version = (): string =>
  (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function fail(message: string, code = 2): never {
  process.stderr.write(`pushwire: ${message}\n`);
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === 'version') {
    process.stdout.write(`${version()}\n`);
    return;
  }
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(helpText());
    return;
  }
  if (command !== 'serve') fail(`unknown command "${command}"; try "pushwire --help"`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(helpText());
    return;
  }

  let config;
  try {
    config = parseConfig(rest);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  const worker = workerContext();
  if (worker !== undefined) config.nodeId = worker.nodeId;
  const logger = createLogger(config.logLevel);
  if (config.workers > 1 && worker === undefined) {
    runPrimary(config, logger);
    return;
  }
  let server;
  try {
    server = await startServer(config, logger, worker);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    logger.fatal({ err }, 'node failed to start');
    process.exit(1);
  }

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // The hard bound: whatever hangs, the process is gone shortly after --shutdown-timeout.
    setTimeout(() => {
      logger.error('shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs + 1000).unref();
    server.shutdown().then(
      () => {
        logger.info('shutdown complete');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: reloading projects');
    server.reloadProjects();
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main(process.argv.slice(2)).catch((err: unknown) => fail((err as Error).stack ?? String(err), 1));
