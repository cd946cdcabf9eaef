import { Writable } from 'node:stream';
import { parseConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/observability/logger.js';
import { startServer, type RunningServer } from '../../src/server.js';
import type { LogLine } from './node-process.js';

export interface TestServer extends RunningServer {
  config: Config;
  logs: LogLine[];
  wsUrl: string;
  httpUrl: string;
  grpcAddress: string;
}

/**
 * A node started through the same entry function the CLI uses, in this process, on port 0.
 * `args` are CLI flags (e.g. ['--jwt-secret', 'x']). Logs are parsed into `logs`.
 */
export async function startTestServer(args: string[] = []): Promise<TestServer> {
  const config = parseConfig(['--host', '127.0.0.1', '--ws-port', '0', '--http-port', '0', '--grpc-port', '0', '--log-level', 'debug', ...args], {});
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as LogLine);
      cb();
    },
  });
  const server = await startServer(config, createLogger(config.logLevel, sink));
  return {
    ...server,
    config,
    logs,
    wsUrl: `ws://127.0.0.1:${server.ports.ws}/ws`,
    httpUrl: `http://127.0.0.1:${server.ports.http}`,
    grpcAddress: `127.0.0.1:${server.ports.grpc}`,
  };
}
