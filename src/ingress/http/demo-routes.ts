import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Express } from 'express';
import { Code } from '../../core/errors.js';
import type { HttpAppOptions } from './options.js';
import { send } from './route-helpers.js';

/**
 * The client SDK's demo page (`--demo true`): `/demo` (the page), `/demo/demo.js` (its script),
 * `/demo/sdk/*` (the built SDK, client/dist, as ES modules) and `/demo/config.json` (the WebSocket
 * port, which the page cannot guess: it is another listener than the one serving the page).
 * Files come from the repository's client/ directory, found from this module's own location.
 */
export function demoRoutes(app: Express, o: HttpAppOptions): void {
  const demo = o.demo;
  if (!demo) return;
  const dir = findClientDir(dirname(fileURLToPath(import.meta.url)));
  if (!dir || !existsSync(join(dir, 'dist', 'index.js'))) {
    const why = 'the demo needs the built SDK (client/dist): run "npm run build"';
    o.logger.error({ clientDir: dir }, why);
    app.get(/^\/demo(\/.*)?$/, (_req, res) => send(res, Code.NOT_FOUND, why));
    return;
  }
  o.logger.info({ path: '/demo' }, 'serving the SDK demo page');
  app.get('/demo', (_req, res) => {
    res.sendFile(join(dir, 'demo', 'index.html'));
  });
  app.get('/demo/demo.js', (_req, res) => {
    res.sendFile(join(dir, 'demo', 'demo.js'));
  });
  app.get('/demo/config.json', (_req, res) => {
    res.json({ wsPort: demo.wsPort() });
  });
  app.use('/demo/sdk', express.static(join(dir, 'dist'), { index: false, fallthrough: true }));
}

/** The repository's client/ directory: the nearest ancestor of `from` that has client/package.json. */
export function findClientDir(from: string): string | undefined {
  for (let d = from; ; d = dirname(d)) {
    if (existsSync(join(d, 'client', 'package.json'))) return join(d, 'client');
    if (dirname(d) === d) return undefined;
  }
}
