import { mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse } from 'yaml';
import { envName, OPTIONS, parseConfig, type Config } from '../../src/config.js';
import { loadProjectsFile } from '../../src/projects.js';
import { startTestServer } from '../helpers/in-process.js';
import { waitFor } from '../helpers/ports.js';

/**
 * deploy/k8s/ read as Kubernetes would and checked against the node itself: its option table
 * and parser (ports, shutdown timeout), its health and metrics routes, its projects loader, and
 * its reload of a projects file that kubelet updates inside a Secret volume.
 */

const dir = fileURLToPath(new URL('../../deploy/k8s/', import.meta.url));
const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
const manifests: any[] = files.flatMap((f) =>
  parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => {
    if (d.errors.length > 0) throw new Error(`${f}: ${d.errors.map((e) => e.message).join('; ')}`);
    return { ...(d.toJS() as object), file: f };
  }),
);
const one = (kind: string, name: string): any => {
  const found = manifests.filter((m) => m.kind === kind && m.metadata?.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name}, found ${found.length}`);
  return found[0];
};

const deployment = one('Deployment', 'pushwire');
const pod = deployment.spec.template;
const container = pod.spec.containers.find((c: any) => c.name === 'pushwire');
const env: Record<string, string> = {};
for (const e of container.env as any[]) {
  // Values Kubernetes fills in at run time: the pod name is the node id.
  env[e.name] = e.value ?? (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name' ? 'pushwire-7d9f8c6b5-x2x4q' : '');
}
// The image runs `pushwire serve` plus the container's args, with this env.
const config: Config = parseConfig(container.args ?? [], env);
const containerPort = (name: string | number): number =>
  typeof name === 'number' ? name : (container.ports.find((p: any) => p.name === name)?.containerPort as number);
const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('Kubernetes manifests (deploy/k8s)', () => {
  it('parse, and kustomization.yaml lists every file of the folder', () => {
    const kustomization = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'));
    expect([...kustomization.resources].sort()).toEqual(files.filter((f) => f !== 'kustomization.yaml').sort());
    for (const m of manifests.filter((x) => x.file !== 'kustomization.yaml')) {
      expect(m.apiVersion, m.file).toBeTruthy();
      expect(m.metadata?.name, m.file).toBeTruthy();
    }
  });

  it('set only options the node knows, with values its parser accepts', () => {
    const known = new Set(OPTIONS.map((o) => envName(o.flag)));
    for (const name of Object.keys(env)) expect(known.has(name), name).toBe(true);
    expect(config.nodeId).toBe('pushwire-7d9f8c6b5-x2x4q');
    expect(config.projects).toBeDefined();
    expect(config.redis).toBeDefined();
  });

  it('expose the ports the node listens on, through the Services and the scrape annotations', () => {
    expect({ ws: containerPort('ws'), http: containerPort('http'), grpc: containerPort('grpc') }).toEqual({
      ws: config.wsPort,
      http: config.httpPort,
      grpc: config.grpcPort,
    });
    const services = manifests.filter((m) => m.kind === 'Service' && matches(m.spec.selector, pod.metadata.labels));
    const main = one('Service', 'pushwire');
    expect(main.spec.ports.map((p: any) => p.name).sort()).toEqual(['grpc', 'http', 'ws']);
    for (const s of services) {
      for (const p of s.spec.ports) {
        expect(containerPort(p.targetPort), `${s.metadata.name} ${p.name}`).toBe(p.port);
      }
    }
    const a = pod.metadata.annotations;
    expect(a['prometheus.io/scrape']).toBe('true');
    expect(Number(a['prometheus.io/port'])).toBe(config.httpPort);
    const monitor = one('ServiceMonitor', 'pushwire');
    const monitored = manifests.filter((m) => m.kind === 'Service' && matches(monitor.spec.selector.matchLabels, m.metadata.labels ?? {}));
    expect(monitored.map((s) => s.metadata.name)).toEqual(['pushwire']);
    expect(monitor.spec.endpoints[0].port).toBe('http');
    expect(monitor.spec.endpoints[0].path).toBe(a['prometheus.io/path']);
  });

  it('probe and scrape paths the node answers: readiness /readyz, liveness /healthz, /metrics', async () => {
    const r = container.readinessProbe.httpGet;
    const l = container.livenessProbe.httpGet;
    expect(r.path).toBe('/readyz');
    expect(l.path).toBe('/healthz');
    expect(containerPort(r.port)).toBe(config.httpPort);
    expect(containerPort(l.port)).toBe(config.httpPort);
    const server = await startTestServer();
    try {
      for (const path of [r.path, l.path, pod.metadata.annotations['prometheus.io/path']]) {
        expect((await fetch(`${server.httpUrl}${path}`)).status, path).toBe(200);
      }
      expect(await (await fetch(`${server.httpUrl}${pod.metadata.annotations['prometheus.io/path']}`)).text()).toContain('pushwire_connections');
    } finally {
      await server.shutdown();
    }
  });

  it('give the graceful shutdown its time: grace period > preStop + --shutdown-timeout + the CLI hard bound', () => {
    const preStop: string[] = container.lifecycle.preStop.exec.command;
    expect(preStop[0]).toBe('sleep');
    const preStopMs = Number(preStop[1]) * 1000;
    expect(preStopMs).toBeGreaterThan(0);
    // cli: the process exits at the latest shutdownTimeout + 1 s after SIGTERM.
    expect(pod.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(preStopMs + config.shutdownTimeoutMs + 1000);
  });

  it('run as the image\'s non-root user, with resource requests the HPA scales on', () => {
    expect(pod.spec.securityContext.runAsNonRoot).toBe(true);
    expect(pod.spec.securityContext.runAsUser).toBeGreaterThan(0);
    expect(readFileSync(fileURLToPath(new URL('../../Dockerfile', import.meta.url)), 'utf8')).toMatch(/^USER node$/m);
    expect(container.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(container.resources.requests.cpu).toBeTruthy();
    expect(container.resources.requests.memory).toBeTruthy();
    const hpa = one('HorizontalPodAutoscaler', 'pushwire');
    expect(hpa.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'pushwire' });
    expect(hpa.spec.metrics.map((m: any) => m.resource?.name)).toEqual(['cpu']);
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    const pdb = one('PodDisruptionBudget', 'pushwire');
    expect(matches(pdb.spec.selector.matchLabels, pod.metadata.labels)).toBe(true);
    expect(pdb.spec.maxUnavailable ?? deployment.spec.replicas - pdb.spec.minAvailable).toBeLessThan(hpa.spec.minReplicas);
  });

  it('mount the projects Secret as a folder at --projects, with a file the node\'s loader accepts', () => {
    const mount = container.volumeMounts.find((m: any) => m.mountPath === dirname(config.projects!));
    expect(mount, 'a mount at the folder of --projects').toBeDefined();
    expect(mount.subPath, 'subPath mounts never see updates').toBeUndefined();
    const volume = pod.spec.volumes.find((v: any) => v.name === mount.name);
    const secret = one('Secret', volume.secret.secretName);
    const text: string = secret.stringData[basename(config.projects!)];
    expect(text).toBeDefined();
    const tmp = join(mkdtempSync(join(tmpdir(), 'pushwire-k8s-')), basename(config.projects!));
    writeFileSync(tmp, text);
    expect(loadProjectsFile(tmp, config.authTimeoutMs).apiKeys.size).toBeGreaterThan(0);
  });

  it('point --redis at the reference Redis Service', () => {
    const url = new URL(config.redis!);
    const redis = one('Service', url.hostname);
    expect(redis.spec.ports.map((p: any) => p.port)).toContain(Number(url.port));
    const redisDeployment = manifests.find((m) => m.kind === 'Deployment' && matches(redis.spec.selector, m.spec.template.metadata.labels));
    expect(redisDeployment).toBeDefined();
  });

  it('a Secret/ConfigMap volume update (kubelet swaps the ..data link) reloads the projects file', async () => {
    // kubelet's layout: projects.yaml -> ..data/projects.yaml, ..data -> ..<timestamp>/, swapped by a rename.
    const volume = mkdtempSync(join(tmpdir(), 'pushwire-volume-'));
    const version = (n: number, key: string): string => {
      const d = join(volume, `..2026_12_02_00_00_0${n}.${n}`);
      mkdirSync(d);
      writeFileSync(join(d, 'projects.yaml'), `projects:\n  - pid: shop\n    apiKeys:\n      - key: ${key}\n`);
      return basename(d);
    };
    symlinkSync(version(1, 'k8s-key-one-0123456789'), join(volume, '..data'));
    symlinkSync(join('..data', 'projects.yaml'), join(volume, 'projects.yaml'));
    const server = await startTestServer(['--projects', join(volume, 'projects.yaml')]);
    const status = async (key: string): Promise<number> =>
      (await fetch(`${server.httpUrl}/v1/pushData`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: '{"topic":"t"}' })).status;
    try {
      expect(await status('k8s-key-one-0123456789')).toBe(200);
      symlinkSync(version(2, 'k8s-key-two-0123456789'), join(volume, '..data_tmp'));
      renameSync(join(volume, '..data_tmp'), join(volume, '..data'));
      await waitFor(async () => (await status('k8s-key-two-0123456789')) === 200, 10_000, 'the new key to work');
      expect(await status('k8s-key-one-0123456789')).toBe(401);
    } finally {
      await server.shutdown();
    }
  });
});
