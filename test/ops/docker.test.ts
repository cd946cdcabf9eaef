import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig, parseDuration } from '../../src/config.js';
import { CLI, NodeProcess } from '../helpers/node-process.js';
import { freePort } from '../helpers/ports.js';

/**
 * The image's HEALTHCHECK script, run against CLI nodes the way Docker runs it (it reads the node
 * process's arguments), and the Dockerfile and compose file read against the node's options.
 * (No Docker daemon here: the image itself is not built by the tests.)
 */

const root = (p: string): string => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const HEALTHCHECK = root('deploy/docker/healthcheck.mjs');
const dockerfile = readFileSync(root('Dockerfile'), 'utf8');

function healthcheck(pid: number, env: NodeJS.ProcessEnv = {}): { code: number | null; stderr: string } {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PUSHWIRE_')) clean[k] = v;
  const r = spawnSync(process.execPath, [HEALTHCHECK], { env: { ...clean, ...env, PUSHWIRE_HEALTHCHECK_PID: String(pid) }, encoding: 'utf8' });
  return { code: r.status, stderr: r.stderr };
}

describe('Docker', () => {
  it('HEALTHCHECK follows --http-port given as an argument, over the environment', async () => {
    const port = await freePort();
    const node = await NodeProcess.start(['--http-port', String(port)]);
    try {
      expect(node.ports.http).toBe(port);
      expect(healthcheck(node.proc.pid!).code).toBe(0);
      // The container's env says otherwise; the argument wins, as it does for the node.
      expect(healthcheck(node.proc.pid!, { PUSHWIRE_HTTP_PORT: String(await freePort()) })).toMatchObject({ code: 0 });
    } finally {
      await node.stop();
    }
    expect(healthcheck(node.proc.pid!).code).toBe(1); // gone: unhealthy, not a crash

  });

  it('HEALTHCHECK reads the port from the environment when no flag gives it', async () => {
    const port = await freePort();
    // The image's way: `serve` with no port flags, PUSHWIRE_HTTP_PORT in the container's env.
    const proc = spawn(process.execPath, [CLI, 'serve', '--host', '127.0.0.1', '--ws-port', '0', '--grpc-port', '0'], {
      env: { ...process.env, PUSHWIRE_HTTP_PORT: String(port) },
      stdio: 'ignore',
    });
    try {
      const deadline = Date.now() + 30_000;
      while (!(await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false))) {
        if (Date.now() > deadline || proc.exitCode !== null) throw new Error('node did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(healthcheck(proc.pid!, { PUSHWIRE_HTTP_PORT: String(port) }).code).toBe(0);
      expect(healthcheck(proc.pid!).code).toBe(1); // without the env, the default port: nobody there
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
  });

  it('the image runs a supported Node release and the healthcheck script; the package still supports Node 20', () => {
    const froms = [...dockerfile.matchAll(/^FROM node:(\d+)/gm)].map((m) => Number(m[1]));
    expect(froms.length).toBe(2);
    for (const major of froms) expect(major).toBeGreaterThanOrEqual(22);
    expect(dockerfile).toMatch(/^COPY deploy\/docker\/healthcheck\.mjs \.\/deploy\/docker\/healthcheck\.mjs$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*CMD \["node", "deploy\/docker\/healthcheck\.mjs"\]$/m);
    expect(dockerfile).toMatch(/^RUN npm ci /m);
    const pkg = JSON.parse(readFileSync(root('package.json'), 'utf8')) as { engines: { node: string } };
    expect(pkg.engines.node).toBe('>=20');
  });

  it('compose.yaml: two nodes on one Redis, distinct host ports, a grace period above the shutdown timeout', () => {
    const compose = parse(readFileSync(root('deploy/compose.yaml'), 'utf8'), { merge: true }) as any;
    const nodes = Object.entries(compose.services as Record<string, any>).filter(([, s]) => s.image === 'pushwire:local');
    expect(nodes.length).toBe(2);
    const hostPorts = nodes.flatMap(([, s]) => (s.ports as string[]).map((p) => p.split(':')[0]));
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
    const ids = new Set<string>();
    for (const [name, s] of nodes) {
      const config = parseConfig([], s.environment);
      ids.add(config.nodeId);
      expect(new URL(config.redis!).hostname, name).toBe('redis');
      expect(compose.services.redis).toBeDefined();
      expect(s.depends_on.redis.condition).toBe('service_healthy');
      expect((s.ports as string[]).map((p) => Number(p.split(':')[1])).sort()).toEqual([config.wsPort, config.httpPort, config.grpcPort].sort());
      expect(parseDuration(s.stop_grace_period)!).toBeGreaterThan(config.shutdownTimeoutMs + 1000);
      expect(s.build.context).toBe('..');
    }
    expect(ids.size).toBe(2);
  });
});
