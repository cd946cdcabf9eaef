import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './ports.js';

export interface PrometheusOptions {
  /** host:port targets scraped as job="pushwire" every second. */
  targets: string[];
  /** Rule files loaded (and evaluated every second). */
  ruleFiles?: string[];
}

/** The answer of Prometheus's HTTP API: `data` on success, `error` otherwise. */
export interface ApiAnswer<T = any> {
  status: 'success' | 'error';
  data: T;
  errorType?: string;
  error?: string;
}

/**
 * Debian's `prometheus` (the real server, as .ci/run installs it) on an ephemeral port with its
 * own config and TSDB in a temporary folder, scraping the given targets every second.
 */
export class TestPrometheus {
  private constructor(
    private readonly proc: ChildProcess,
    readonly url: string,
    private readonly dir: string,
    private output: { text: string },
  ) {}

  static async start(o: PrometheusOptions): Promise<TestPrometheus> {
    requireBinary('prometheus');
    const dir = mkdtempSync(join(tmpdir(), 'pushwire-prometheus-'));
    const config = join(dir, 'prometheus.yml');
    writeFileSync(
      config,
      JSON.stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: o.ruleFiles ?? [],
        scrape_configs: [{ job_name: 'pushwire', static_configs: [{ targets: o.targets }] }],
      }),
    );
    const port = await freePort();
    const proc = spawn(
      'prometheus',
      [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const output = { text: '' };
    proc.stdout!.on('data', (d: Buffer) => (output.text += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (output.text += d.toString()));
    const p = new TestPrometheus(proc, `http://127.0.0.1:${port}`, dir, output);
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`prometheus exited with ${proc.exitCode}: ${output.text}`);
        return fetch(`${p.url}/-/ready`).then(
          (r) => r.ok,
          () => false,
        );
      },
      20_000,
      'prometheus ready',
    );
    return p;
  }

  get log(): string {
    return this.output.text;
  }

  async api<T = any>(path: string, params: Record<string, string> = {}): Promise<ApiAnswer<T>> {
    const res = await fetch(`${this.url}/api/v1/${path}?${new URLSearchParams(params)}`);
    return (await res.json()) as ApiAnswer<T>;
  }

  /** An instant query, evaluated now. */
  query(expr: string): Promise<ApiAnswer<{ resultType: string; result: any[] }>> {
    return this.api('query', { query: expr });
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs `promtool` with `args`: exit code and output. */
export function promtool(args: string[]): { code: number | null; output: string } {
  requireBinary('promtool');
  const r = spawnSync('promtool', args, { encoding: 'utf8' });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

function requireBinary(name: string): void {
  const r = spawnSync(name, ['--version'], { stdio: 'ignore' });
  if (r.error !== undefined) throw new Error(`${name} is not installed: apt-get install prometheus (.ci/run does)`);
}
