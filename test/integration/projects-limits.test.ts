import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_JSON_FILE_BYTES, MAX_YAML_FILE_BYTES } from '../../src/bounded-document.js';
import { b64, restPush } from '../helpers/grpc-client.js';
import { unique } from '../helpers/names.js';
import { NodeProcess, runCli } from '../helpers/node-process.js';
import { waitFor } from '../helpers/ports.js';

/**
 * A projects file that is too deep or too large, given to a running CLI node by SIGHUP: the node
 * refuses it with the documented message, counts the failed reload, keeps serving the previous
 * projects, and takes a good file afterwards. Before the bound, a 20,000-deep YAML file aborted
 * the process inside the yaml package (V8: "RegExpCompiler Allocation failed - process out of
 * memory"), and a large YAML file took a few hundred bytes of heap per byte.
 */

const dir = mkdtempSync(join(tmpdir(), 'pushwire-projects-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const OLD_KEY = 'limits-old-key-0123456789';
const NEW_KEY = 'limits-new-key-0123456789';
const DEPTH = 20_000;

const doc = (key: string) => ({ projects: [{ pid: 'default', apiKeys: [{ key }] }] });
const yamlDoc = (key: string) => `projects:\n  - pid: default\n    apiKeys:\n      - key: ${key}\n`;

/** `{"projects":` + DEPTH levels of alternating arrays and objects (what the fuzz suite's deepJson builds). */
const deepText = (): string => {
  const open: string[] = [];
  const close: string[] = [];
  for (let i = 0; i < DEPTH; i++) {
    open.push(i % 2 ? '[' : '{"k":');
    close.push(i % 2 ? ']' : '}');
  }
  return `{"projects":${open.join('')}1${close.reverse().join('')}}`;
};

const status = async (node: NodeProcess, key: string): Promise<number> =>
  (await restPush(node.httpUrl, { topic: unique('t'), data: b64('x') }, { headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` } })).status;

const failures = (node: NodeProcess): string[] =>
  node.logs.filter((l) => l.msg === 'projects reload failed; keeping the previous projects').map((l) => String(l.err));

/** Writes `text` over the node's file, SIGHUPs it and waits for the refusal naming `why`. */
async function refused(node: NodeProcess, file: string, text: string, why: string): Promise<void> {
  const before = await node.metric('pushwire_projects_reloads_total', { result: 'failed' });
  writeFileSync(file, text);
  node.proc.kill('SIGHUP');
  await waitFor(() => failures(node).some((e) => e.includes(why)) || node.proc.exitCode !== null || node.proc.signalCode !== null, 20_000, `a reload refused for "${why}"`);
  expect(node.proc.exitCode, node.stderr).toBeNull();
  expect(node.proc.signalCode, node.stderr).toBeNull();
  // Still answering, with the previous projects.
  expect((await fetch(`${node.httpUrl}/healthz`)).status).toBe(200);
  expect(await status(node, OLD_KEY)).toBe(200);
  expect(await status(node, NEW_KEY)).toBe(401);
  expect(await node.metric('pushwire_projects_reloads_total', { result: 'failed' })).toBeGreaterThan(before);
}

/** A good file after the refusals: the reload works (the node is not left half-broken). */
async function recovers(node: NodeProcess, file: string, text: string): Promise<void> {
  writeFileSync(file, text);
  node.proc.kill('SIGHUP');
  await waitFor(async () => (await status(node, NEW_KEY)) === 200, 20_000, 'the new key after a good reload');
  expect(await status(node, OLD_KEY)).toBe(401);
  expect(await node.metric('pushwire_projects_reloads_total', { result: 'ok' })).toBeGreaterThanOrEqual(1);
}

describe('projects file bounds through the CLI (serve --projects, SIGHUP)', () => {
  it('YAML: a 20,000-deep file and one over the size limit are refused; the node stays up and keeps its projects', async () => {
    const file = join(dir, 'projects.yaml');
    writeFileSync(file, yamlDoc(OLD_KEY));
    const node = await NodeProcess.start(['--projects', file]);
    try {
      expect(await status(node, OLD_KEY)).toBe(200);
      expect(await node.metric('pushwire_projects_reloads_total', { result: 'failed' })).toBe(0);
      await refused(node, file, deepText(), `"${file}" is nested deeper than 32 levels`);
      // Block-style nesting, the other way YAML nests.
      const block = Array.from({ length: 1000 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n');
      await refused(node, file, `projects:\n${block} 1\n`, 'is nested deeper than 32 levels');
      // Valid YAML (a comment) just over the limit.
      await refused(node, file, `${yamlDoc(NEW_KEY)}#${'x'.repeat(MAX_YAML_FILE_BYTES)}\n`, 'is larger than 1 MiB, the limit for a YAML projects file');
      await recovers(node, file, yamlDoc(NEW_KEY));
    } finally {
      await node.stop();
    }
  });

  it('JSON: a 20,000-deep file and one over the size limit are refused the same way', async () => {
    const file = join(dir, 'projects.json');
    writeFileSync(file, JSON.stringify(doc(OLD_KEY)));
    const node = await NodeProcess.start(['--projects', file]);
    try {
      await refused(node, file, deepText(), `"${file}" is nested deeper than 32 levels`);
      const padded = JSON.stringify(doc(NEW_KEY)).replace('{', `{${' '.repeat(MAX_JSON_FILE_BYTES)}`);
      await refused(node, file, padded, 'is larger than 16 MiB, the limit for a JSON projects file');
      await recovers(node, file, JSON.stringify(doc(NEW_KEY)));
    } finally {
      await node.stop();
    }
  });

  it('check-config and serve refuse the same file at start with the same message (exit 1 and 2)', async () => {
    const file = join(dir, 'deep-start.yaml');
    writeFileSync(file, deepText());
    const check = await runCli(['check-config', '--projects', file]);
    expect(check.code, check.stderr).toBe(1);
    expect(check.stderr).toContain('is nested deeper than 32 levels');
    const serve = await runCli(['serve', '--host', '127.0.0.1', '--ws-port', '0', '--http-port', '0', '--grpc-port', '0', '--projects', file]);
    expect(serve.code, serve.stderr).toBe(2);
    expect(serve.stderr).toMatch(/^pushwire: --projects: .* is nested deeper than 32 levels/);
  });
});
