import { setLogger } from '@grpc/grpc-js';
import { ConfigError, helpText, parseConfig, type Config } from '../config.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { startServer, type RunningServer } from '../server.js';
import { listeningLine } from '../startup/listening-line.js';
import { ListenError } from '../startup/listeners.js';
import { runPrimary } from '../workers/primary.js';
import { workerContext } from '../workers/worker.js';
import { fail, wantsHelp, type Command } from './command.js';

export const serve: Command = {
  name: 'serve',
  async run(args) {
    if (wantsHelp(args)) {
      process.stdout.write(helpText());
      return;
    }
    let config;
    try {
      config = parseConfig(args);
    } catch (err) {
      if (err instanceof ConfigError) fail(err.message);
      throw err;
    }
    // A `--workers` worker is this command again, forked by the primary with its node id in the env.
    const worker = workerContext();
    if (worker !== undefined) config.nodeId = worker.nodeId;
    const logger = createLogger(config.logLevel);
    // grpc-js writes its own errors to stderr as "E <text>"; in the JSON log they can be searched,
    // and a failed bind is reported once, as the one line below.
    setLogger({ error: (...args: unknown[]) => logger.warn({ component: 'grpc-js' }, args.map(String).join(' ')) });
    if (config.workers > 1 && worker === undefined) {
      runPrimary(config, logger);
      return;
    }
    let server;
    try {
      server = await startServer(config, logger, worker);
    } catch (err) {
      if (err instanceof ConfigError) fail(err.message);
      if (err instanceof ListenError) {
        logger.fatal({ err: err.message }, 'node failed to start');
        fail(err.message);
      }
      logger.fatal({ err }, 'node failed to start');
      process.exit(1);
    }
    // For the person at the terminal; the JSON line above is for log pipelines. With --workers the
    // primary says it once for all of them.
    if (worker === undefined) process.stderr.write(`${listeningLine(config, server.nodeId, server.ports)}\n`);
    handleSignals(server, config, logger);
  },
};

/** SIGHUP reloads the projects; SIGTERM and SIGINT shut down gracefully, bounded by --shutdown-timeout. */
function handleSignals(server: RunningServer, config: Config, logger: Logger): void {
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
