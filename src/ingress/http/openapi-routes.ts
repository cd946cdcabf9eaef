import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Express } from 'express';

/** Where `npm run generate` writes the bridge's OpenAPI document (tools/openapi/). */
const DOCUMENT = join('gen', 'openapi.json');

/**
 * The package root holding gen/openapi.json, found by walking up: this file runs from src/
 * (tests) and from dist/src/ (the CLI, the image), and tsc copies no JSON into dist/.
 */
export function openapiPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, DOCUMENT))) return join(dir, DOCUMENT);
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`${DOCUMENT} not found above ${fileURLToPath(import.meta.url)}: run "npm run generate"`);
    dir = parent;
  }
}

/** GET /openapi.json: the generated document, read once; public, like /healthz (it holds no secrets). */
export function openapiRoutes(app: Express): void {
  const body = readFileSync(openapiPath());
  app.get('/openapi.json', (_req, res) => {
    res.type('application/json').set('cache-control', 'no-cache').send(body);
  });
}
