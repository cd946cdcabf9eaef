import { setLogger } from '@grpc/grpc-js';
import { ConfigError, helpText, parseConfig, type Config } from '../config.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { startServer, type RunningServer } from '../server.js';
import { ListenError } from '../startup/listeners.js';
import { fail, wantsHelp, type Command } from './command.js';

export const serve: Command = {
  name: 'serve',
  summary: 'start a node',
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
    const logger = createLogger(config.logLevel);
    // grpc-js writes its own errors to stderr as "E <text>"; in the JSON log they can be searched,
    // and a failed bind is reported once, as the one line below.
    setLogger({ error: (...args: unknown[]) => logger.warn({ component: 'grpc-js' }, args.map(String).join(' ')) });
    let server;
    try {
      server = await startServer(config, logger);
    } catch (err) {
      if (err instanceof ConfigError) fail(err.message);
      if (err instanceof ListenError) {
        logger.fatal({ err: err.message }, 'node failed to start');
        fail(err.message);
      }
      logger.fatal({ err }, 'node failed to start');
      process.exit(1);
    }
    // For the person at the terminal; the JSON line above is for log pipelines.
    process.stderr.write(`${listeningLine(config, server)}\n`);
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

/** "pushwire: node a1b2 listening on ws://127.0.0.1:8812/ws, http://127.0.0.1:8912, grpc 127.0.0.1:9912" */
export function listeningLine(config: Config, server: RunningServer): string {
  // A wildcard bind is reachable on loopback too, which is what a local reader wants to paste.
  const wildcard = config.host === '0.0.0.0' || config.host === '::';
  const host = wildcard ? 'localhost' : config.host.includes(':') ? `[${config.host}]` : config.host;
  const { ws, http, grpc } = server.ports;
  const where = wildcard ? ` (all interfaces, ${config.host})` : '';
  return `pushwire: node ${server.nodeId} listening on ws://${host}:${ws}/ws, http://${host}:${http}, grpc ${host}:${grpc}${where}`;
}
