import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort, sleep, waitFor } from './ports.js';

const run = promisify(execFile);

interface ClusterNode {
  port: number;
  proc: ChildProcess;
}

/** One line of CLUSTER NODES, as the tests need it. */
export interface NodeInfo {
  id: string;
  port: number;
  master: boolean;
  /** The master's id, for a replica. */
  masterId: string | undefined;
  failed: boolean;
  /** Slot ranges [from, to] a master serves. */
  slots: Array<[number, number]>;
}

/**
 * A private Redis Cluster: `masters` masters with `replicas` replicas each, every redis-server
 * on ephemeral ports (client port and cluster-bus port, so nothing collides with another
 * test), joined with `redis-cli --cluster create`, and a short node timeout so a failover
 * takes a couple of seconds. cluster-require-full-coverage is off (as docs/configuration.md
 * recommends): while one master is down, the other masters keep serving their slots. Everything lives in a temporary directory removed by stop().
 */
export class TestRedisCluster {
  private readonly nodes: ClusterNode[] = [];

  private constructor(private readonly dir: string) {}

  static async start(masters = 3, replicas = 1, nodeTimeoutMs = 1000): Promise<TestRedisCluster> {
    const c = new TestRedisCluster(mkdtempSync(join(tmpdir(), 'pushwire-cluster-')));
    const count = masters * (1 + replicas);
    for (let i = 0; i < count; i++) {
      const [port, busPort] = [await freePort(), await freePort()];
      const proc = spawn(
        'redis-server',
        [
          '--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1',
          '--cluster-enabled', 'yes', '--cluster-config-file', join(c.dir, `nodes-${port}.conf`),
          '--cluster-node-timeout', String(nodeTimeoutMs), '--cluster-require-full-coverage', 'no', '--dir', c.dir, '--save', '', '--appendonly', 'no',
        ],
        { stdio: 'ignore' },
      );
      c.nodes.push({ port, proc });
    }
    for (const n of c.nodes) await waitFor(() => ping(n.port), 5000, `redis-server on ${n.port}`);
    await run('redis-cli', [
      '--cluster', 'create', ...c.nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas', String(replicas), '--cluster-yes',
    ]);
    // Generous: on a loaded box the cluster takes longer to agree; callers' hook timeouts still bound it.
    await c.waitHealthy(60_000);
    return c;
  }

  /** `redis+cluster://` URL with two seed nodes (the rest is discovered). */
  get url(): string {
    return `redis+cluster://${this.nodes.slice(0, 2).map((n) => `127.0.0.1:${n.port}`).join(',')}`;
  }

  get ports(): number[] {
    return this.nodes.filter((n) => running(n.proc)).map((n) => n.port);
  }

  /** CLUSTER NODES as seen by a live node. */
  async topology(): Promise<NodeInfo[]> {
    const text = await this.onAny((r) => r.call('CLUSTER', 'NODES') as Promise<string>);
    return text.trim().split('\n').map((line) => {
      const f = line.split(' ');
      return {
        id: f[0]!,
        port: Number(f[1]!.split('@')[0]!.split(':')[1]),
        master: f[2]!.includes('master'),
        masterId: f[3] === '-' ? undefined : f[3],
        failed: f[2]!.includes('fail'),
        slots: f.slice(8).filter((s) => /^\d/.test(s)).map((s) => {
          const [a, b] = s.split('-');
          return [Number(a), Number(b ?? a)] as [number, number];
        }),
      };
    });
  }

  async masters(): Promise<NodeInfo[]> {
    return (await this.topology()).filter((n) => n.master && !n.failed && n.slots.length > 0);
  }

  /** Every live node reports cluster_state:ok, every slot has a live master, and every live replica is in sync. */
  async waitHealthy(timeoutMs: number): Promise<void> {
    await waitFor(async () => {
      for (const port of this.ports) {
        const info = await this.client(port, (r) => r.call('CLUSTER', 'INFO') as Promise<string>).catch(() => '');
        if (!info.includes('cluster_state:ok')) return false;
      }
      const topology = await this.topology();
      const served = topology.filter((n) => n.master && !n.failed).flatMap((m) => m.slots).reduce((n, [a, b]) => n + b - a + 1, 0);
      if (served !== 16384) return false;
      // Every live replica has synced with its master: one that has not would refuse to fail over.
      for (const r of topology.filter((n) => !n.master && !n.failed && this.ports.includes(n.port))) {
        const info = await this.client(r.port, (c) => c.info('replication')).catch(() => '');
        if (!info.includes('master_link_status:up')) return false;
      }
      return true;
    }, timeoutMs, 'redis cluster healthy');
  }

  /** SIGKILLs the redis-server on `port` and waits for it to exit. */
  async kill(port: number): Promise<void> {
    const n = this.nodes.find((x) => x.port === port);
    if (n === undefined || !running(n.proc)) return;
    const exited = new Promise((r) => n.proc.once('exit', r));
    n.proc.kill('SIGKILL');
    await exited;
  }

  /** Runs `fn` on a short-lived plain client of one node. */
  async client<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
    const r = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => {});
    try {
      await r.connect();
      return await fn(r);
    } finally {
      r.disconnect();
    }
  }

  private async onAny<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
    let last: unknown;
    for (const port of this.ports) {
      try {
        return await this.client(port, fn);
      } catch (err) {
        last = err;
      }
    }
    throw last ?? new Error('no live redis cluster node');
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.kill(n.port)));
    await sleep(10);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function running(proc: ChildProcess): boolean {
  return proc.exitCode === null && proc.signalCode === null;
}

async function ping(port: number): Promise<boolean> {
  const r = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => {});
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}
