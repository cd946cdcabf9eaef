#!/usr/bin/env node
// The image's HEALTHCHECK: GET /healthz on the HTTP port the node really uses. The port is read with
// the node's own option parser from the node process's arguments (/proc/<pid>/cmdline, PID 1 in the
// container) and this environment, so `--http-port`, PUSHWIRE_HTTP_PORT and a --config file all count,
// with the node's precedence. Exit 0 healthy, 1 not.
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../dist/src/config.js';

const pid = process.env.PUSHWIRE_HEALTHCHECK_PID || '1';
try {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  const serve = argv.indexOf('serve');
  const config = parseConfig(serve === -1 ? [] : argv.slice(serve + 1));
  const wildcard = config.host === '0.0.0.0' || config.host === '::';
  const host = wildcard ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host;
  const res = await fetch(`http://${host}:${config.httpPort}/healthz`, { signal: AbortSignal.timeout(2500) });
  process.exit(res.ok ? 0 : 1);
} catch (err) {
  process.stderr.write(`healthcheck: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
